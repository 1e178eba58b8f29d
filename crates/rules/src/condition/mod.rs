//! The condition language: syntax tree and parser.

pub mod ast;
pub mod parser;

pub use ast::{Expr, FieldRef, Operand, Operator, Rhs, Span, Transformer};
pub use parser::{ParseError, parse_condition};
