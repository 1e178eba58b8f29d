use super::*;

fn parsed(text: &str) -> Node {
    parse(text, &ParseLimits::default()).unwrap_or_else(|error| panic!("{text:?}: {error}"))
}

fn error(text: &str) -> QueryError {
    match parse(text, &ParseLimits::default()) {
        Ok(node) => panic!("{text:?} parsed as {node:?}"),
        Err(error) => error,
    }
}

fn field(name: &str, value: MatchValue, column: usize) -> Node {
    Node::Match(Match {
        field: Some(name.into()),
        column,
        value,
    })
}

fn text(value: &str, column: usize) -> Node {
    Node::Match(Match {
        field: None,
        column,
        value: MatchValue::Term(value.into()),
    })
}

#[test]
fn empty_and_star_match_everything() {
    assert_eq!(parsed(""), Node::All);
    assert_eq!(parsed("  * "), Node::All);
}

#[test]
fn and_binds_tighter_than_or_and_adjacent_clauses_are_anded() {
    assert_eq!(
        parsed("a b OR c AND d"),
        Node::Or(vec![
            Node::And(vec![text("a", 1), text("b", 3)]),
            Node::And(vec![text("c", 8), text("d", 14)]),
        ])
    );
    assert_eq!(
        parsed("(a OR b) -c"),
        Node::And(vec![
            Node::Or(vec![text("a", 2), text("b", 7)]),
            Node::Not(Box::new(text("c", 11))),
        ])
    );
    assert_eq!(parsed("NOT a"), Node::Not(Box::new(text("a", 5))));
    assert_eq!(
        parsed("a && !b"),
        Node::And(vec![text("a", 1), Node::Not(Box::new(text("b", 7)))])
    );
}

#[test]
fn field_values_may_hold_colons_phrases_wildcards_ranges_and_comparisons() {
    assert_eq!(
        parsed("image:nginx:1.25"),
        field("image", MatchValue::Term("nginx:1.25".into()), 1)
    );
    assert_eq!(
        parsed("rule:\"Terminal shell\""),
        field("rule", MatchValue::Phrase("Terminal shell".into()), 1)
    );
    assert_eq!(
        parsed("proc.name:ba*"),
        field(
            "proc.name",
            MatchValue::Wildcard(vec![
                GlobToken::Literal('b'),
                GlobToken::Literal('a'),
                GlobToken::AnyRun
            ]),
            1
        )
    );
    assert_eq!(
        parsed("priority:>=warning"),
        field(
            "priority",
            MatchValue::Compare(Comparison::GreaterOrEqual, "warning".into()),
            1
        )
    );
    assert_eq!(
        parsed("time:[2026-11-01 TO now}"),
        field(
            "time",
            MatchValue::Range {
                lower: RangeBound {
                    value: Some("2026-11-01".into()),
                    inclusive: true
                },
                upper: RangeBound {
                    value: Some("now".into()),
                    inclusive: false
                },
            },
            1
        )
    );
    assert_eq!(
        parsed("k8s.pod.name:*"),
        field("k8s.pod.name", MatchValue::Exists, 1)
    );
    assert_eq!(
        parsed(r"fd.name:a\*b"),
        field("fd.name", MatchValue::Term("a*b".into()), 1)
    );
}

#[test]
fn a_field_group_applies_the_field_inside() {
    assert_eq!(
        parsed("k8s.ns.name:(prod OR dev)"),
        Node::Or(vec![
            field("k8s.ns.name", MatchValue::Term("prod".into()), 1),
            field("k8s.ns.name", MatchValue::Term("dev".into()), 1),
        ])
    );
}

#[test]
fn errors_name_the_column_and_what_was_expected() {
    let missing_value = error("proc.name: AND x");
    assert_eq!(missing_value.column, 11);
    assert!(
        missing_value
            .message
            .contains("expected a value after \"proc.name:\""),
        "{missing_value}"
    );

    let unclosed = error("(a OR b");
    assert_eq!(unclosed.column, 8);
    assert!(
        unclosed
            .message
            .contains("expected ')' to close the '(' at column 1"),
        "{unclosed}"
    );
    assert!(unclosed.message.contains("end of query"), "{unclosed}");

    let stray = error("a)");
    assert_eq!(stray.column, 2);
    assert!(stray.message.contains("closes nothing"));

    let phrase = error("rule:\"shell");
    assert_eq!(phrase.column, 6);
    assert!(phrase.message.contains("unterminated phrase"));

    let range = error("time:[now-1h now]");
    assert_eq!(range.column, 14);
    assert!(range.message.contains("expected 'TO'"), "{range}");

    let dangling = error("a OR");
    assert!(
        dangling.message.contains("expected a clause after OR"),
        "{dangling}"
    );
    let dangling_not = error("a AND NOT");
    assert!(dangling_not.message.contains("negation"), "{dangling_not}");
    assert_eq!(error("a AND").column, 6);
    assert!(error("x:").message.contains("expected a value"));
    assert!(error("time:[a TO b").message.contains("']' or '}'"));
}

#[test]
fn limits_bound_length_clauses_and_depth() {
    let limits = ParseLimits::default();
    let long = "a".repeat(limits.max_bytes + 1);
    assert!(error(&long).message.contains("bytes long"));
    let many = vec!["x"; limits.max_clauses + 1].join(" ");
    assert!(error(&many).message.contains("clauses"));
    let deep = format!("{}a{}", "(".repeat(40), ")".repeat(40));
    assert!(error(&deep).message.contains("nests deeper"));
    let negations = format!("{}a", "NOT ".repeat(40));
    assert!(error(&negations).message.contains("nests deeper"));
    // Within the limits, the same shapes parse.
    parsed(&format!("{}a{}", "(".repeat(20), ")".repeat(20)));
}

#[test]
fn fuzz_logic_accepts_hostile_inputs_without_panicking() {
    for input in [
        &b"\xff\xfe(((((("[..],
        b"\"\\",
        b"a:\\",
        b"[[[{{{ TO",
        b"time:[* TO *]",
        b"-",
        b"!!!",
        b"::::",
        b"a:(b:(c))",
        b"|| && OR AND NOT",
    ] {
        crate::query::fuzz_query_text(input);
    }
}
