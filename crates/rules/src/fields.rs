//! Field sources: what fields an event source offers (its schema) and how they are extracted
//! from an event. Each event source (syscall, k8s_audit, ...) implements [`FieldSource`]; rules
//! are compiled against the schema once and evaluated against events many times.

use std::borrow::Cow;
use std::net::IpAddr;

/// Type of the values a field yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// Text (Falco's charbuf, string, fspath ...).
    String,
    /// Signed or unsigned integer (Falco's int*/uint*, relative and absolute times).
    Int,
    /// Boolean.
    Bool,
    /// IPv4 or IPv6 address; compares against addresses and CIDR networks.
    Ip,
}

impl ValueType {
    /// Lower-case name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int => "number",
            Self::Bool => "bool",
            Self::Ip => "ip address",
        }
    }
}

/// Whether a field takes an argument between brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgRule {
    /// `field[x]` is an error.
    None,
    /// `field` and `field[x]` are both valid.
    Optional,
    /// `field` alone is an error.
    Required,
}

/// A parsed field argument.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldArg {
    /// No argument.
    None,
    /// A numeric index (`proc.aname[2]`, `ka.req.pod.containers.image[0]`).
    Index(usize),
    /// A key or a JSON pointer (`ka.uri.param[command]`, `jevt.value[/stage]`).
    Key(String),
}

/// Description of one field of a source, for listings and documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    /// Field name.
    pub name: &'static str,
    /// Value type.
    pub value_type: ValueType,
    /// Whether the field yields a list of values.
    pub is_list: bool,
    /// Whether the field takes an argument.
    pub arg: ArgRule,
    /// One line saying what the field is.
    pub description: &'static str,
}

/// A field resolved against a schema at compile time: what the extractor needs at run time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// Source-defined field number; only the source that produced it interprets it.
    pub id: u32,
    /// The parsed argument.
    pub arg: FieldArg,
    /// Type of the extracted values.
    pub value_type: ValueType,
    /// Whether the field yields a list.
    pub is_list: bool,
}

/// Why a field cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// No field of that name in the source.
    Unknown,
    /// The field needs an argument (`ka.uri.param[key]`).
    ArgumentRequired,
    /// The field takes no argument.
    ArgumentNotAllowed,
    /// The argument is not valid for the field.
    BadArgument(String),
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown => write!(formatter, "unknown field"),
            Self::ArgumentRequired => write!(formatter, "the field requires an argument"),
            Self::ArgumentNotAllowed => write!(formatter, "the field takes no argument"),
            Self::BadArgument(reason) => write!(formatter, "bad argument: {reason}"),
        }
    }
}

/// The compile-time side of a field source: resolves field names. Object-safe, so tools such as
/// `rules check` can validate rules of every source without knowing their event types.
pub trait FieldSchema: Send + Sync {
    /// Event source name as rules name it in `source:` (`syscall`, `k8s_audit`).
    fn source_name(&self) -> &str;

    /// Resolves a field name and its argument text.
    fn resolve(&self, name: &str, arg: Option<&str>) -> Result<FieldSpec, FieldError>;

    /// Fields whose value selects candidate rules (for syscall, `evt.type`). Each must be a
    /// single-valued string field without argument. Rules are indexed by the values a condition
    /// requires of these fields, so an event is tested only against rules that can match it.
    fn index_fields(&self) -> &[&'static str] {
        &[]
    }

    /// Every field of the source, for listings.
    fn fields(&self) -> Vec<FieldInfo> {
        Vec::new()
    }
}

/// One extracted value. Strings borrow from the event when they can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'event> {
    /// Text.
    Str(Cow<'event, str>),
    /// Integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// IP address.
    Ip(IpAddr),
}

impl Value<'_> {
    /// The value as Falco prints it in outputs.
    pub fn render(&self) -> Cow<'_, str> {
        match self {
            Self::Str(text) => Cow::Borrowed(text.as_ref()),
            Self::Int(number) => Cow::Owned(number.to_string()),
            Self::Bool(flag) => Cow::Borrowed(if *flag { "true" } else { "false" }),
            Self::Ip(address) => Cow::Owned(address.to_string()),
        }
    }
}

/// The run-time side of a field source: extracts values from events.
pub trait FieldSource: FieldSchema {
    /// The event type this source reads.
    type Event;

    /// Appends the values of `field` in `event` to `values`. Appending nothing means the field
    /// is absent from the event: every comparison on it is false and `exists` is false.
    fn extract<'event>(
        &self,
        field: &FieldSpec,
        event: &'event Self::Event,
        values: &mut Vec<Value<'event>>,
    );
}

/// Parses the common argument forms: a decimal index or any text as key.
pub fn parse_index_or_key(arg: Option<&str>) -> FieldArg {
    match arg {
        None => FieldArg::None,
        Some(text) => match text.parse::<usize>() {
            Ok(index) => FieldArg::Index(index),
            Err(_) => FieldArg::Key(text.to_string()),
        },
    }
}

/// Checks an argument against an [`ArgRule`] and parses it.
pub fn check_argument(rule: ArgRule, arg: Option<&str>) -> Result<FieldArg, FieldError> {
    match (rule, arg) {
        (ArgRule::None, Some(_)) => Err(FieldError::ArgumentNotAllowed),
        (ArgRule::Required, None) => Err(FieldError::ArgumentRequired),
        (_, arg) => Ok(parse_index_or_key(arg)),
    }
}

/// A schema built from a static table of [`FieldInfo`], field ids being table positions. Event
/// sources with a fixed field list implement [`FieldSchema`] by delegating to it.
#[derive(Debug, Clone)]
pub struct TableSchema {
    source: String,
    fields: Vec<FieldInfo>,
    index_fields: &'static [&'static str],
}

impl TableSchema {
    /// A schema for `source` with these fields.
    pub fn new(
        source: impl Into<String>,
        fields: Vec<FieldInfo>,
        index_fields: &'static [&'static str],
    ) -> Self {
        Self {
            source: source.into(),
            fields,
            index_fields,
        }
    }

    /// The field with this id.
    pub fn info(&self, id: u32) -> Option<&FieldInfo> {
        self.fields.get(id as usize)
    }
}

impl FieldSchema for TableSchema {
    fn source_name(&self) -> &str {
        &self.source
    }

    fn resolve(&self, name: &str, arg: Option<&str>) -> Result<FieldSpec, FieldError> {
        let Some(position) = self.fields.iter().position(|field| field.name == name) else {
            return Err(FieldError::Unknown);
        };
        let info = &self.fields[position];
        let arg = check_argument(info.arg, arg)?;
        Ok(FieldSpec {
            id: u32::try_from(position).map_err(|_| FieldError::Unknown)?,
            arg,
            value_type: info.value_type,
            is_list: info.is_list,
        })
    }

    fn index_fields(&self) -> &[&'static str] {
        self.index_fields
    }

    fn fields(&self) -> Vec<FieldInfo> {
        self.fields.clone()
    }
}
