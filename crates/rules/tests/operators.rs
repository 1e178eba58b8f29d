//! Semantics of the condition language on a small source: every operator, list fields, macros,
//! lists, exceptions, output rendering and the rule index.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use palisade_rules::fields::{
    ArgRule, FieldError, FieldInfo, FieldSchema, FieldSource, FieldSpec, TableSchema, Value,
    ValueType,
};
use palisade_rules::{CompileOptions, RuleEngine, RulesLoader, Severity};

/// Events are maps of field name to values.
type Event = HashMap<&'static str, Vec<&'static str>>;

struct MapSource(TableSchema);

fn info(name: &'static str, value_type: ValueType, is_list: bool) -> FieldInfo {
    FieldInfo {
        name,
        value_type,
        is_list,
        arg: ArgRule::None,
        description: "",
    }
}

impl MapSource {
    fn new() -> Self {
        Self(TableSchema::new(
            "map",
            vec![
                info("m.type", ValueType::String, false),
                info("m.name", ValueType::String, false),
                info("m.path", ValueType::String, false),
                info("m.tags", ValueType::String, true),
                info("m.count", ValueType::Int, false),
                info("m.ip", ValueType::Ip, false),
                info("m.flag", ValueType::Bool, false),
            ],
            &["m.type"],
        ))
    }
}

impl FieldSchema for MapSource {
    fn source_name(&self) -> &str {
        "map"
    }
    fn resolve(&self, name: &str, arg: Option<&str>) -> Result<FieldSpec, FieldError> {
        self.0.resolve(name, arg)
    }
    fn index_fields(&self) -> &[&'static str] {
        self.0.index_fields()
    }
}

impl FieldSource for MapSource {
    type Event = Event;
    fn extract<'event>(
        &self,
        field: &FieldSpec,
        event: &'event Event,
        values: &mut Vec<Value<'event>>,
    ) {
        let Some(info) = self.0.info(field.id) else {
            return;
        };
        for value in event.get(info.name).into_iter().flatten() {
            values.push(match info.value_type {
                ValueType::Int => Value::Int(value.parse().unwrap_or_default()),
                ValueType::Bool => Value::Bool(*value == "true"),
                ValueType::Ip => match value.parse() {
                    Ok(address) => Value::Ip(address),
                    Err(_) => continue,
                },
                ValueType::String => Value::Str(Cow::Borrowed(value)),
            });
        }
    }
}

fn engine(rules: &str) -> RuleEngine<MapSource> {
    let mut loader = RulesLoader::new();
    loader.add_text("rules.yaml", rules);
    let engine = RuleEngine::new(
        Arc::new(MapSource::new()),
        &loader.finish(),
        CompileOptions::default(),
    );
    let errors: Vec<String> = engine
        .compiled()
        .diagnostics()
        .iter()
        .filter(|diagnostic| diagnostic.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    engine
}

fn rule(name: &str, condition: &str) -> String {
    format!(
        "- rule: {name}\n  desc: d\n  condition: {condition}\n  output: \"n=%m.name tags=%m.tags missing=%m.count\"\n  priority: WARNING\n  source: map\n"
    )
}

fn event(fields: &[(&'static str, &[&'static str])]) -> Event {
    fields
        .iter()
        .map(|(name, values)| (*name, values.to_vec()))
        .collect()
}

#[test]
fn operators_follow_falco_semantics() {
    let cases: &[(&str, &[(&'static str, &[&'static str])], bool)] = &[
        ("m.name = abc", &[("m.name", &["abc"])], true),
        ("m.name != abc", &[("m.name", &["abd"])], true),
        ("m.name != abc", &[], false),
        ("m.name contains bc", &[("m.name", &["abc"])], true),
        ("m.name icontains BC", &[("m.name", &["aBc"])], true),
        ("m.name startswith ab", &[("m.name", &["abc"])], true),
        ("m.name endswith bc", &[("m.name", &["abc"])], true),
        ("m.name glob 'a*c'", &[("m.name", &["a/b/c"])], true),
        ("m.name iglob 'A?C'", &[("m.name", &["abc"])], true),
        ("m.name regex 'a[bx]c'", &[("m.name", &["abc"])], true),
        ("m.name regex 'b'", &[("m.name", &["abc"])], false),
        ("m.name bcontains 6263", &[("m.name", &["abc"])], true),
        ("m.name bstartswith 61", &[("m.name", &["abc"])], true),
        ("m.name in (x, abc)", &[("m.name", &["abc"])], true),
        ("m.tags in (a, b)", &[("m.tags", &["a", "b"])], true),
        ("m.tags in (a, b)", &[("m.tags", &["a", "c"])], false),
        ("m.tags intersects (c)", &[("m.tags", &["a", "c"])], true),
        ("m.tags contains c", &[("m.tags", &["a", "xcx"])], true),
        (
            "m.path pmatch (/etc, /var/run)",
            &[("m.path", &["/etc/passwd"])],
            true,
        ),
        ("m.path pmatch (/etc)", &[("m.path", &["/etcetera"])], false),
        ("m.count > 3", &[("m.count", &["4"])], true),
        ("m.count <= 3", &[("m.count", &["4"])], false),
        ("m.count in (1, 0x10)", &[("m.count", &["16"])], true),
        ("m.ip = 10.0.0.0/8", &[("m.ip", &["10.2.3.4"])], true),
        ("m.ip in (192.168.0.0/16, ::1)", &[("m.ip", &["::1"])], true),
        ("m.flag = true", &[("m.flag", &["true"])], true),
        ("m.name exists", &[("m.name", &["x"])], true),
        ("not m.name exists", &[], true),
        ("len(m.tags) = 2", &[("m.tags", &["a", "b"])], true),
        ("tolower(m.name) = abc", &[("m.name", &["ABC"])], true),
        (
            "basename(m.path) = passwd",
            &[("m.path", &["/etc/passwd"])],
            true,
        ),
        (
            "m.name = val(m.path)",
            &[("m.name", &["x"]), ("m.path", &["x"])],
            true,
        ),
        ("m.name = \"a b\\\"c\"", &[("m.name", &["a b\"c"])], true),
    ];
    for (condition, fields, expected) in cases {
        let engine = engine(&rule("r", &format!("'{}'", condition.replace('\'', "''"))));
        let fired = !engine.detect(&event(fields)).is_empty();
        assert_eq!(fired, *expected, "{condition} on {fields:?}");
    }
}

#[test]
fn macros_lists_exceptions_and_outputs_compose() {
    let rules = format!(
        "- list: names\n  items: [abc, '\"quoted\"', inner]\n- list: inner\n  items: [deep]\n\
         - macro: typed\n  condition: m.type in (open, exec)\n\
         {}  exceptions:\n    - name: trusted\n      fields: [m.name, m.tags]\n      comps: [=, intersects]\n      values:\n        - [deep, [safe]]\n",
        rule("r", "typed and m.name in (names)")
    );
    let engine = engine(&rules);
    let fire = |fields: &[(&'static str, &[&'static str])]| engine.detect(&event(fields));
    assert_eq!(
        fire(&[("m.type", &["open"]), ("m.name", &["quoted"])]).len(),
        1
    );
    assert_eq!(
        fire(&[("m.type", &["open"]), ("m.name", &["deep"])]).len(),
        1
    );
    assert!(
        fire(&[
            ("m.type", &["open"]),
            ("m.name", &["deep"]),
            ("m.tags", &["safe"])
        ])
        .is_empty(),
        "the exception applies"
    );
    let detections = fire(&[
        ("m.type", &["exec"]),
        ("m.name", &["abc"]),
        ("m.tags", &["a", "b"]),
    ]);
    assert_eq!(detections[0].output, "n=abc tags=(a,b) missing=<NA>");
    assert_eq!(
        detections[0].output_fields[0],
        ("m.name".to_string(), "abc".to_string())
    );
    assert!(fire(&[("m.type", &["close"]), ("m.name", &["abc"])]).is_empty());
}

#[test]
fn the_index_only_offers_rules_that_can_match() {
    let rules = format!(
        "{}{}{}",
        rule("opens", "m.type = open and m.name exists"),
        rule(
            "execs",
            "(m.type in (exec, execve) or m.type = fork) and m.name exists"
        ),
        rule("any", "not m.type = open")
    );
    let engine = engine(&rules);
    assert_eq!(
        engine.candidate_rules(&event(&[("m.type", &["open"])])),
        ["opens", "any"]
    );
    assert_eq!(
        engine.candidate_rules(&event(&[("m.type", &["fork"])])),
        ["execs", "any"]
    );
    assert_eq!(
        engine.candidate_rules(&event(&[("m.type", &["read"])])),
        ["any"]
    );
    assert_eq!(engine.candidate_rules(&event(&[])), ["any"]);
}

#[test]
fn explanations_name_the_failing_check_and_its_value() {
    let engine = engine(&format!(
        "- macro: typed\n  condition: m.type = open\n{}",
        rule("r", "typed and m.count > 3")
    ));
    let explanation = engine
        .explain("r", &event(&[("m.type", &["open"]), ("m.count", &["2"])]))
        .expect("rule exists");
    assert!(!explanation.matched);
    let text = explanation.lines.join("\n");
    assert!(text.contains("first failing term: m.count > 3"), "{text}");
    assert!(
        text.contains("m.count > 3 is false (m.count = 2)"),
        "{text}"
    );
    assert!(engine.explain("nope", &event(&[])).is_none());
}
