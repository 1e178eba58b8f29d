//! Fuzz entry points, shared by the cargo-fuzz targets in `fuzz/` and by unit tests.

use crate::check::SyntaxOnlySchema;
use crate::condition::parse_condition;
use crate::engine::{CompileOptions, compile_rules};
use crate::loader::RulesLoader;
use crate::output::parse_template;

/// Feeds arbitrary bytes to every parser of untrusted rules input: the rules file loader and
/// compiler, the condition parser and the output template parser. Must never panic or hang.
pub fn fuzz_rules_input(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = parse_condition(&text);
    let _ = parse_template(&text);
    let mut loader = RulesLoader::new();
    loader.add_text("fuzz.yaml", &text);
    let loaded = loader.finish();
    for source in ["syscall", "k8s_audit"] {
        let schema = SyntaxOnlySchema {
            source: source.to_string(),
        };
        let compiled = compile_rules(&loaded, &schema, CompileOptions::default());
        debug_assert!(
            compiled.summary().loaded + compiled.summary().disabled <= loaded.rules.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_inputs_do_not_panic() {
        let inputs: &[&[u8]] = &[
            b"",
            b"- rule: x\n  condition: (((((\n  output: o\n  priority: INFO\n",
            b"- macro: a\n  condition: b\n- macro: b\n  condition: a\n- rule: r\n  desc: d\n  condition: a\n  output: o\n  priority: INFO\n",
            b"- list: l\n  items: [l]\n- rule: r\n  desc: d\n  condition: x.y in (l)\n  output: '%x.y[%'\n  priority: INFO\n",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]",
            b"not not not not not not not ( a.b = \"\\\\\" and c.d regex '(' )",
            b"- rule: r\n  exceptions: [{name: e, fields: [a.b, c.d], comps: [in], values: [[x]]}]\n  condition: a.b exists\n  output: o\n  priority: INFO\n  desc: d\n",
            b"\xff\xfe- rule: \x00",
        ];
        for input in inputs {
            fuzz_rules_input(input);
        }
    }
}
