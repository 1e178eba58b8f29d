//! Palisade's detection language, compatible with Falco rules files.
//!
//! Rules files are loaded in order by [`RulesLoader`] (lists, macros and rules, with appends and
//! overrides), compiled once per event source by [`RuleEngine`] against that source's
//! [`FieldSource`], and evaluated per event. Every problem found is a located [`Diagnostic`];
//! a rule that cannot load is reported and skipped, never silently dropped.

pub mod check;
pub mod compile;
pub mod condition;
pub mod engine;
pub mod error;
pub mod eval;
pub mod explain;
pub mod fields;
pub mod fuzzing;
pub mod items;
pub mod loader;
pub mod mitre;
pub mod optimize;
pub mod output;
pub mod program;
pub mod reload;
pub mod testing;
pub mod yaml;

pub use check::{CheckArgs, CheckReport, ExitStatus, check};
pub use engine::{
    CompileOptions, CompiledRule, CompiledRules, Detection, Explanation, LoadSummary, MatchMode,
    RuleEngine, RuleStatus, compile_rules,
};
pub use error::{Diagnostic, DiagnosticCode, RulesError, Severity};
pub use eval::EvalScratch;
pub use fields::{
    ArgRule, FieldArg, FieldError, FieldInfo, FieldSchema, FieldSource, FieldSpec, TableSchema,
    Value, ValueType,
};
pub use loader::{LoadedRules, RulesLoader};
pub use mitre::{MitreTags, mitre_from_tags};
pub use reload::{ReloadPolicy, ReloadReport, ReloadableRules, RulesSource};
pub use testing::{TestArgs, TestEvent, TestReport, run_tests};
