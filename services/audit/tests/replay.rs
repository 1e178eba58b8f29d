//! `audit replay` over Falco's real captured events: Falco-format JSON alerts on one writer,
//! a summary on the other, the same alert ids on every run.

use std::path::PathBuf;

use palisade_audit::{AnomalyConfig, ReplayArgs, ReplayFormat, replay};
use palisade_rules::ExitStatus;

fn trace_files() -> Vec<PathBuf> {
    let directory = palisade_testkit::corpus_path("audit/falco-legacy-tests/trace_files");
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .expect("trace files")
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn replay_writes_falco_json_alerts_and_a_summary() -> anyhow::Result<()> {
    let args = ReplayArgs {
        files: trace_files(),
        rules: vec![palisade_testkit::corpus_path(
            "audit/falco-k8saudit-rules/k8s_audit_rules.yaml",
        )],
        hostname: Some("replay-test".into()),
        ..ReplayArgs::default()
    };
    let mut alerts = Vec::new();
    let mut summary_text = Vec::new();
    let (summary, status) = replay(&args, &mut alerts, &mut summary_text)?;
    assert_eq!(status, ExitStatus::Success);
    assert_eq!(summary.files, 47);
    assert!(summary.decode.decoded >= 50, "{summary:?}");
    assert_eq!(
        summary.decode.skipped.get("not_audit_event"),
        Some(&1),
        "fal_01_003 is not an audit event"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(alerts.clone())?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len() as u64, summary.alerts.values().sum::<u64>());
    assert!(lines.len() > 40);
    for line in &lines {
        for key in [
            "hostname",
            "output",
            "priority",
            "rule",
            "source",
            "tags",
            "time",
            "output_fields",
        ] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
        assert_eq!(line["source"], "k8s_audit");
        assert_eq!(line["hostname"], "replay-test");
    }
    let summary_text = String::from_utf8(summary_text)?;
    assert!(summary_text.contains("47 file(s)"), "{summary_text}");
    assert!(
        summary_text.contains("Create Privileged Pod"),
        "{summary_text}"
    );

    let mut again = Vec::new();
    replay(&args, &mut again, &mut Vec::new())?;
    assert_eq!(alerts, again, "a replay is deterministic");
    Ok(())
}

#[test]
fn replay_with_the_builtin_pack_as_a_table_and_anomalies() -> anyhow::Result<()> {
    let args = ReplayArgs {
        files: trace_files(),
        format: ReplayFormat::Table,
        anomaly: Some(AnomalyConfig::default()),
        ..ReplayArgs::default()
    };
    let mut alerts = Vec::new();
    let (summary, status) = replay(&args, &mut alerts, &mut Vec::new())?;
    assert_eq!(status, ExitStatus::Success);
    assert!(summary.rules.loaded >= 40);
    let table = String::from_utf8(alerts)?;
    assert!(table.starts_with("time"), "{table}");
    assert!(
        table.contains("Palisade Privileged Container Created"),
        "{table}"
    );
    Ok(())
}

#[test]
fn unreadable_inputs_fail_the_replay_with_their_name() -> anyhow::Result<()> {
    let args = ReplayArgs {
        files: vec![PathBuf::from("/nonexistent/audit.log")],
        ..ReplayArgs::default()
    };
    let mut summary = Vec::new();
    let (_, status) = replay(&args, &mut Vec::new(), &mut summary)?;
    assert_eq!(status, ExitStatus::Failure);
    assert!(String::from_utf8(summary)?.contains("/nonexistent/audit.log"));
    Ok(())
}
