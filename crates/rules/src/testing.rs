//! `rules test`: which rules fire on which events, and for a named rule why it did not.

use std::collections::BTreeMap;
use std::io::Write;

use palisade_proto::PriorityExt;

use crate::check::ExitStatus;
use crate::engine::{RuleEngine, RuleStatus};
use crate::error::RulesError;
use crate::fields::FieldSource;

/// Arguments of `palisade rules test` other than the rules and events.
#[derive(Debug, Clone, Default)]
pub struct TestArgs {
    /// Explain this rule on every event it does not fire on.
    pub explain_rule: Option<String>,
    /// Print the rendered output of each detection.
    pub show_output: bool,
}

/// One event to test, labelled for the report (file and line), or why it could not be decoded.
#[derive(Debug)]
pub struct TestEvent<E> {
    /// Where the event comes from, e.g. `events.json:3`.
    pub label: String,
    /// The decoded event or the decoding error.
    pub event: Result<E, String>,
}

/// What `rules test` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestReport {
    /// Events decoded and evaluated.
    pub events: usize,
    /// Events that could not be decoded.
    pub undecodable: usize,
    /// Detections per rule.
    pub fired: BTreeMap<String, usize>,
    /// Events on which the explained rule fired.
    pub explained_rule_fired: usize,
}

/// Runs `events` through `engine`, writing what fired (and why the named rule did not) to `out`.
pub fn run_tests<S: FieldSource>(
    engine: &RuleEngine<S>,
    events: impl IntoIterator<Item = TestEvent<S::Event>>,
    args: &TestArgs,
    out: &mut dyn Write,
) -> Result<(TestReport, ExitStatus), RulesError> {
    let mut status = ExitStatus::Success;
    if let Some(name) = &args.explain_rule {
        let compiled = engine.compiled();
        match compiled.statuses().iter().find(|(rule, _)| rule == name) {
            None => {
                writeln!(out, "rule {name:?} is not defined in the loaded files")?;
                return Err(RulesError::NoSuchRule(name.clone()));
            }
            Some((_, RuleStatus::Skipped(reason))) => {
                writeln!(out, "rule {name:?} was not loaded: {reason}")?;
                status = ExitStatus::Failure;
            }
            Some((_, RuleStatus::OtherSource(source))) => {
                writeln!(
                    out,
                    "rule {name:?} is for source {source:?}, these events are {}",
                    compiled.source()
                )?;
                status = ExitStatus::Failure;
            }
            Some(_) => {}
        }
    }
    let mut report = TestReport::default();
    for test_event in events {
        let event = match test_event.event {
            Ok(event) => event,
            Err(reason) => {
                report.undecodable += 1;
                status = ExitStatus::Failure;
                writeln!(out, "{}: not evaluated: {reason}", test_event.label)?;
                continue;
            }
        };
        report.events += 1;
        let detections = engine.detect(&event);
        if detections.is_empty() {
            writeln!(out, "{}: no rule fired", test_event.label)?;
        } else {
            let names: Vec<String> = detections
                .iter()
                .map(|detection| {
                    format!(
                        "{} ({})",
                        detection.rule.name,
                        detection.rule.priority.falco_name()
                    )
                })
                .collect();
            writeln!(out, "{}: fired: {}", test_event.label, names.join(", "))?;
        }
        for detection in &detections {
            *report.fired.entry(detection.rule.name.clone()).or_default() += 1;
            if args.show_output {
                writeln!(out, "    {}: {}", detection.rule.name, detection.output)?;
            }
        }
        if let Some(name) = &args.explain_rule
            && let Some(explanation) = engine.explain(name, &event)
        {
            if explanation.matched {
                report.explained_rule_fired += 1;
            } else {
                writeln!(out, "  why {name:?} did not fire:")?;
                for line in &explanation.lines {
                    writeln!(out, "  {line}")?;
                }
            }
        }
    }
    writeln!(
        out,
        "{} event(s) evaluated, {} not decodable, {} detection(s)",
        report.events,
        report.undecodable,
        report.fired.values().sum::<usize>()
    )?;
    for (rule, count) in &report.fired {
        writeln!(out, "  {count:>5}  {rule}")?;
    }
    Ok((report, status))
}
