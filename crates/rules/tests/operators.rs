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

/// Field values an event is built from.
type Fields = &'static [(&'static str, &'static [&'static str])];

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
    let cases: &[(&str, Fields, bool)] = &[
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

/// Comparisons random conditions are built from; they recur across rules and macros, so the
/// rule sets share sub-conditions the way real ones do.
const ATOMS: &[&str] = &[
    "m.type = open",
    "m.type in (open, exec)",
    "m.type != exec",
    "m.name = abc",
    "m.name in (abc, x)",
    "m.name startswith ab",
    "m.name contains b",
    "tolower(m.name) = abc",
    "m.name = val(m.path)",
    "m.name exists",
    "m.path pmatch (/etc)",
    "m.path glob '/etc/*'",
    "m.tags in (a, b)",
    "m.tags intersects (c)",
    "len(m.tags) = 2",
    "m.count > 3",
    "m.count in (1, 4)",
    "m.ip = 10.0.0.0/8",
    "m.flag = true",
    "shared_a",
    "shared_b",
];

/// Values random events are built from, per field.
const VALUES: &[(&str, &[&str])] = &[
    ("m.type", &["open", "exec", "close"]),
    ("m.name", &["abc", "ABC", "x", "/etc/passwd"]),
    ("m.path", &["/etc/passwd", "/etcetera", "x"]),
    ("m.tags", &["a", "b", "c"]),
    ("m.count", &["1", "4", "9"]),
    ("m.ip", &["10.1.2.3", "192.168.1.1"]),
    ("m.flag", &["true", "false"]),
];

fn condition_strategy() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let atom = (0..ATOMS.len()).prop_map(|index| ATOMS[index].to_string());
    atom.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4)
                .prop_map(|terms| format!("({})", terms.join(" and "))),
            proptest::collection::vec(inner.clone(), 2..4)
                .prop_map(|terms| format!("({})", terms.join(" or "))),
            inner.prop_map(|term| format!("not {term}")),
        ]
    })
}

fn event_strategy() -> impl proptest::strategy::Strategy<Value = Event> {
    use proptest::prelude::*;
    let fields: Vec<_> = VALUES
        .iter()
        .map(|(name, values)| {
            let maximum = if *name == "m.tags" { 3 } else { 1 };
            proptest::sample::subsequence(values.to_vec(), 0..=maximum)
                .prop_map(move |chosen| (*name, chosen))
        })
        .collect();
    fields.prop_map(|fields| {
        fields
            .into_iter()
            .filter(|(_, values)| !values.is_empty())
            .collect()
    })
}

proptest::proptest! {
    /// Sub-conditions shared across rules are evaluated once per event through memo cells; on
    /// every (event, rule) pair the result equals the rule's own condition evaluated alone, and
    /// the explanation of the tree as written; a batch evaluated on one context fires the same
    /// rules on the same events.
    #[test]
    fn shared_evaluation_equals_independent_evaluation_on_every_event_and_rule(
        macro_a in condition_strategy(),
        macro_b in condition_strategy(),
        conditions in proptest::collection::vec(condition_strategy(), 1..8),
        events in proptest::collection::vec(event_strategy(), 1..12),
    ) {
        let mut rules = format!(
            "- macro: shared_a\n  condition: '{}'\n- macro: shared_b\n  condition: '{}'\n",
            macro_a.replace("shared_a", "m.flag = false").replace("shared_b", "m.count > 1").replace('\'', "''"),
            macro_b.replace("shared_a", "m.name exists").replace("shared_b", "m.count < 9").replace('\'', "''"),
        );
        for (index, condition) in conditions.iter().enumerate() {
            rules.push_str(&rule(&format!("r{index}"), &format!("'{}'", condition.replace('\'', "''"))));
        }
        let engine = engine(&rules);
        let names: Vec<String> = engine.compiled().rules().iter().map(|rule| rule.name.clone()).collect();
        // one scratch for all events: buffers reused from event to event must start clean
        let mut scratch = palisade_rules::EvalScratch::new();
        let mut expected_in_batch = Vec::new();
        for (position, event) in events.iter().enumerate() {
            let shared = engine.verdicts_shared(event, &mut scratch);
            let independent = engine.verdicts_independent(event);
            proptest::prop_assert_eq!(&shared, &independent, "event {:?}", event);
            for (name, verdict) in names.iter().zip(&shared) {
                let explanation = engine.explain(name, event).expect("rule exists");
                proptest::prop_assert_eq!(explanation.matched, *verdict, "{} on {:?}", name, event);
            }
            let mut detections = Vec::new();
            engine.detect_with(event, &mut scratch, &mut detections);
            let fired: Vec<&str> = detections.iter().map(|detection| detection.rule.name.as_str()).collect();
            let expected: Vec<&str> = names
                .iter()
                .zip(&shared)
                .filter(|(_, verdict)| **verdict)
                .map(|(name, _)| name.as_str())
                .collect();
            proptest::prop_assert_eq!(&fired, &expected);
            expected_in_batch.extend(expected.iter().map(|name| (position, name.to_string())));
        }
        // the whole stream as one batch on one context: the same detections, event by event
        let mut batch = Vec::new();
        engine.detect_batch(&events, &mut scratch, &mut batch);
        let fired: Vec<(usize, String)> = batch
            .iter()
            .map(|(position, detection)| (*position, detection.rule.name.clone()))
            .collect();
        proptest::prop_assert_eq!(fired, expected_in_batch);
    }
}
