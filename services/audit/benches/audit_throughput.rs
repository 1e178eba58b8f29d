//! Audit events per second on one core: decoding plus evaluation with Falco's k8s_audit rules
//! and Palisade's pack loaded, against parsing the same events with serde_json alone (the
//! limit). Events are Falco's real captured audit events, one JSON document each.
//!
//! Run: cargo bench -p palisade-audit --bench audit_throughput

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_audit::{AuditAlert, DecodeLimits, K8sAuditSource, builtin_rules, decode_document};
use palisade_rules::{CompileOptions, MatchMode, RuleEngine, RulesLoader};

const TARGET_EVENTS: usize = 20_000;
const ROUNDS: usize = 7;

fn corpus() -> Vec<Vec<u8>> {
    let directory = palisade_testkit::corpus_path("audit/falco-legacy-tests/trace_files");
    let mut files: Vec<_> = std::fs::read_dir(directory)
        .expect("trace files")
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read(&file).expect("readable");
        for line in text.split(|byte| *byte == b'\n') {
            let line = line.trim_ascii();
            let is_event = serde_json::from_slice::<serde_json::Value>(line)
                .map(|value| value.get("auditID").is_some())
                .unwrap_or(false);
            if is_event {
                lines.push(line.to_vec());
            }
        }
    }
    let base = lines.len();
    let mut events = Vec::with_capacity(TARGET_EVENTS);
    while events.len() < TARGET_EVENTS {
        events.push(lines[events.len() % base].clone());
    }
    events
}

fn measure(events: &[Vec<u8>], mut work: impl FnMut(&[u8]) -> usize) -> (f64, usize) {
    let mut best = Duration::MAX;
    let mut produced = 0;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        produced = 0;
        for event in events {
            produced += work(black_box(event));
        }
        best = best.min(start.elapsed());
    }
    (events.len() as f64 / best.as_secs_f64(), produced)
}

fn main() {
    let events = corpus();
    let bytes: usize = events.iter().map(Vec::len).sum();
    let mut loader = RulesLoader::new();
    loader
        .add_file(&palisade_testkit::corpus_path(
            "audit/falco-k8saudit-rules/k8s_audit_rules.yaml",
        ))
        .expect("falco rules");
    for (name, text) in builtin_rules() {
        loader.add_text(&name, &text);
    }
    let engine = RuleEngine::new(
        Arc::new(K8sAuditSource),
        &loader.finish(),
        CompileOptions {
            match_mode: MatchMode::All,
        },
    );
    let summary = engine.compiled().summary().clone();
    let limits = DecodeLimits::default();

    let (raw_rate, _) = measure(&events, |event| {
        let value: serde_json::Value = serde_json::from_slice(event).expect("json");
        usize::from(black_box(value).is_object())
    });
    let (palisade_rate, alerts) = measure(&events, |event| {
        let decoded = decode_document(event, &limits).expect("json");
        let mut alerts = 0;
        for audit_event in &decoded.events {
            for detection in engine.detect(audit_event) {
                black_box(AuditAlert::from_detection(&detection, audit_event, "bench"));
                alerts += 1;
            }
        }
        alerts
    });
    println!(
        "events: {} ({} bytes, {:.0} bytes/event), rules: {summary}",
        events.len(),
        bytes,
        bytes as f64 / events.len() as f64
    );
    println!("serde_json parse only      : {raw_rate:>10.0} events/s");
    println!(
        "palisade decode + evaluate : {palisade_rate:>10.0} events/s ({alerts} alerts per round)"
    );
    println!(
        "ratio palisade / raw parse : {:.2} (target >= 0.50)",
        palisade_rate / raw_rate
    );
}
