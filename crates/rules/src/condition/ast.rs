//! The syntax tree of a Falco condition, before macros, lists and fields are resolved.

/// A byte range in the condition text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A field transformer, applied to extracted values before comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transformer {
    /// `tolower(field)`
    ToLower,
    /// `toupper(field)`
    ToUpper,
    /// `b64(field)`: base64-decodes the value.
    Base64,
    /// `basename(field)`: the last path component.
    Basename,
    /// `len(field)`: number of values of a list field, bytes of a string.
    Len,
}

impl Transformer {
    /// The transformer with this function name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "tolower" => Self::ToLower,
            "toupper" => Self::ToUpper,
            "b64" => Self::Base64,
            "basename" => Self::Basename,
            "len" => Self::Len,
            _ => return None,
        })
    }

    /// The function name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ToLower => "tolower",
            Self::ToUpper => "toupper",
            Self::Base64 => "b64",
            Self::Basename => "basename",
            Self::Len => "len",
        }
    }
}

/// A field reference, possibly with an argument and transformers (`tolower(proc.aname[2])`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    /// Field name, e.g. `ka.req.pod.containers.image`.
    pub name: String,
    /// The text between brackets, e.g. `0` or `/requestObject/spec`.
    pub arg: Option<String>,
    /// Transformers, innermost first.
    pub transformers: Vec<Transformer>,
    /// Where the field is written.
    pub span: Span,
}

impl std::fmt::Display for FieldRef {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for transformer in self.transformers.iter().rev() {
            write!(formatter, "{}(", transformer.name())?;
        }
        write!(formatter, "{}", self.name)?;
        if let Some(arg) = &self.arg {
            write!(formatter, "[{arg}]")?;
        }
        for _ in &self.transformers {
            write!(formatter, ")")?;
        }
        Ok(())
    }
}

/// Comparison operators of the condition language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `=` or `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `contains`
    Contains,
    /// `icontains`
    IContains,
    /// `bcontains` (hex bytes)
    BContains,
    /// `startswith`
    StartsWith,
    /// `bstartswith` (hex bytes)
    BStartsWith,
    /// `endswith`
    EndsWith,
    /// `glob`
    Glob,
    /// `iglob`
    IGlob,
    /// `regex` (full match)
    Regex,
    /// `in (...)`
    In,
    /// `intersects (...)`
    Intersects,
    /// `pmatch (...)` (path prefixes)
    Pmatch,
    /// `exists`
    Exists,
}

impl Operator {
    /// Operator taking a parenthesised list of values.
    pub fn takes_list(self) -> bool {
        matches!(self, Self::In | Self::Intersects | Self::Pmatch)
    }

    /// The operator as written in a condition.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Contains => "contains",
            Self::IContains => "icontains",
            Self::BContains => "bcontains",
            Self::StartsWith => "startswith",
            Self::BStartsWith => "bstartswith",
            Self::EndsWith => "endswith",
            Self::Glob => "glob",
            Self::IGlob => "iglob",
            Self::Regex => "regex",
            Self::In => "in",
            Self::Intersects => "intersects",
            Self::Pmatch => "pmatch",
            Self::Exists => "exists",
        }
    }

    /// The operator with this name or symbol.
    pub fn from_symbol(text: &str) -> Option<Self> {
        Some(match text {
            "=" | "==" => Self::Eq,
            "!=" => Self::Ne,
            "<" => Self::Lt,
            "<=" => Self::Le,
            ">" => Self::Gt,
            ">=" => Self::Ge,
            "contains" => Self::Contains,
            "icontains" => Self::IContains,
            "bcontains" => Self::BContains,
            "startswith" => Self::StartsWith,
            "bstartswith" => Self::BStartsWith,
            "endswith" => Self::EndsWith,
            "glob" => Self::Glob,
            "iglob" => Self::IGlob,
            "regex" => Self::Regex,
            "in" => Self::In,
            "intersects" => Self::Intersects,
            "pmatch" => Self::Pmatch,
            "exists" => Self::Exists,
            _ => return None,
        })
    }
}

/// A literal value of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operand {
    /// The value after unquoting.
    pub text: String,
    /// Quoted values are never list names.
    pub quoted: bool,
    /// Where the value is written.
    pub span: Span,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rhs {
    /// `exists` has none.
    None,
    /// One value.
    Value(Operand),
    /// A parenthesised list; bare items may name lists.
    List(Vec<Operand>),
    /// Another field (`val(proc.pname)`).
    Field(FieldRef),
}

/// A condition expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// All must hold.
    And(Vec<Expr>),
    /// One must hold.
    Or(Vec<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// A macro reference by bare name.
    Macro {
        /// Macro name.
        name: String,
        /// Where it is written.
        span: Span,
    },
    /// A field comparison.
    Check {
        /// The compared field.
        field: FieldRef,
        /// The operator.
        operator: Operator,
        /// The compared value(s).
        rhs: Rhs,
        /// The check's text in the condition, for explanations.
        text: String,
        /// Where it is written.
        span: Span,
    },
}
