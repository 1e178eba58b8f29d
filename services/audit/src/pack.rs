//! Palisade's audit rule pack, shipped with the binary.

/// File name of the pack in the repository's rules/audit folder.
pub const PACK_FILE_NAME: &str = "palisade_k8s_audit_rules.yaml";

/// The pack's text.
pub const PACK_TEXT: &str = include_str!("../../../rules/audit/palisade_k8s_audit_rules.yaml");

/// The built-in rules as (name, text) pairs, for a rules loader.
pub fn builtin_rules() -> Vec<(String, String)> {
    vec![(format!("builtin:{PACK_FILE_NAME}"), PACK_TEXT.to_string())]
}
