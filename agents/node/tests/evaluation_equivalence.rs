//! Rules are evaluated in an optimized form (macros dropped, cheap terms first, constants
//! folded) while explanations walk the tree as written. Both must agree: for every event of a
//! stream and every rule of Falco's stable set and Palisade's pack, the rule fires exactly when
//! its explanation says it matches. Two streams: Tetragon's real events converted to records,
//! and a live stream the eBPF sensor records from a workload on this machine (root required).
//!
//! Rules also share sub-conditions: the engine evaluates a sub-condition several rules hold in
//! common once per event and reuses its truth value. On every (event, rule) pair of both
//! streams that shared evaluation must equal the rule's condition evaluated alone.

// Waits on real processes from a synchronous test: std's clock.
#![allow(clippy::disallowed_types)]

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_agent::cgroup::{CgroupConfig, CgroupResolver};
use palisade_agent::container::ContainerRegistry;
use palisade_agent::engine::{BUILTIN_PACK, BUILTIN_PACK_NAME, Evaluator};
use palisade_agent::event::Event;
use palisade_agent::record::Record;
use palisade_agent::sensor::RecordSource;
use palisade_agent::sensor::ebpf::{EbpfOptions, EbpfSensor};
use palisade_agent::state::{BootClock, State};
use palisade_agent::tetragon::TetragonConverter;
use palisade_rules::RulesLoader;

fn pack_and_falco_stable() -> Evaluator {
    let mut loader = RulesLoader::new();
    loader
        .add_file(&palisade_testkit::corpus_path(
            "runtime/falco-rules/falco_rules.yaml",
        ))
        .expect("falco rules");
    loader.add_text(BUILTIN_PACK_NAME, BUILTIN_PACK);
    Evaluator::from_loader(loader, "equivalence-node")
}

/// (event index, rule name) pairs.
type Matches = BTreeSet<(usize, String)>;

/// (event index, rule) pairs that fire, by the optimized evaluation and by explanation.
fn matches_both_ways(evaluator: &Evaluator, events: &[Event]) -> (Matches, Matches) {
    let engine = evaluator.engine();
    let rule_names: Vec<String> = engine
        .compiled()
        .rules()
        .iter()
        .map(|rule| rule.name.clone())
        .collect();
    let mut optimized = BTreeSet::new();
    let mut explained = BTreeSet::new();
    for (index, event) in events.iter().enumerate() {
        for detection in engine.detect(event) {
            optimized.insert((index, detection.rule.name.clone()));
        }
        for name in &rule_names {
            let explanation = engine.explain(name, event).expect("rule exists");
            if explanation.matched {
                explained.insert((index, name.clone()));
            }
        }
    }
    (optimized, explained)
}

/// Asserts shared and independent evaluation agree on every (event, rule) pair; returns how
/// many pairs held.
fn assert_shared_equals_independent(evaluator: &Evaluator, events: &[Event]) -> usize {
    let engine = evaluator.engine();
    assert!(
        engine.compiled().program().memo_cells() > 0,
        "Falco's rules and the pack share sub-conditions"
    );
    let rule_names: Vec<&str> = engine
        .compiled()
        .rules()
        .iter()
        .map(|rule| rule.name.as_str())
        .collect();
    let mut scratch = palisade_rules::EvalScratch::new();
    let mut held = 0;
    for (index, event) in events.iter().enumerate() {
        let shared = engine.verdicts_shared(event, &mut scratch);
        let independent = engine.verdicts_independent(event);
        for ((name, shared), independent) in rule_names.iter().zip(&shared).zip(&independent) {
            assert_eq!(
                shared,
                independent,
                "rule {name:?} on event {index} ({} {:?})",
                event.evt_type,
                event.fd.as_ref().map(|fd| &fd.name)
            );
        }
        held += shared.iter().filter(|verdict| **verdict).count();
    }
    held
}

fn json_files(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![directory.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).expect("corpus dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files
}

fn tetragon_stream() -> Vec<Event> {
    let mut documents: Vec<serde_json::Value> = Vec::new();
    for path in json_files(&palisade_testkit::corpus_path("runtime/tetragon-events")) {
        let text = std::fs::read_to_string(&path).expect("read");
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            if let Ok(document) = serde_json::from_str::<serde_json::Value>(line) {
                documents.push(document);
            }
        }
        if let Ok(document) = serde_json::from_str::<serde_json::Value>(&text) {
            documents.push(document);
        }
    }
    documents.sort_by(|left, right| left["time"].as_str().cmp(&right["time"].as_str()));
    let config = CgroupConfig {
        subsys_index: -1,
        hierarchy_id: 0,
        mount_point: PathBuf::from("/nonexistent"),
    };
    let (registry, _requests) = ContainerRegistry::new(false);
    let mut state = State::new(
        CgroupResolver::new(config),
        Arc::clone(&registry),
        BootClock { boot_epoch_ns: 0 },
    );
    let mut converter = TetragonConverter::new();
    let mut known = HashSet::new();
    let mut events = Vec::new();
    for document in documents {
        let Ok(records) = converter.convert(&document, &registry, state.cgroups_mut(), &mut known)
        else {
            continue;
        };
        for bytes in records {
            let record = Record::decode(&bytes).expect("converted records decode");
            if let Some(enriched) = state.apply(&record) {
                events.push(enriched.event);
            }
        }
    }
    events
}

#[test]
fn optimized_evaluation_matches_explanations_on_tetragon_events() {
    let evaluator = pack_and_falco_stable();
    let events = tetragon_stream();
    assert!(events.len() >= 40, "only {} events", events.len());
    let (optimized, explained) = matches_both_ways(&evaluator, &events);
    assert!(!optimized.is_empty(), "the corpus must raise detections");
    assert_eq!(optimized, explained);
    assert!(assert_shared_equals_independent(&evaluator, &events) > 0);
}

#[test]
fn optimized_evaluation_matches_explanations_on_a_live_kernel_stream() {
    let cgroup = CgroupConfig::detect().expect("cgroup layout");
    let mut sensor = EbpfSensor::load(&EbpfOptions {
        ringbuf_bytes: 16 << 20,
        skip_tgid: std::process::id(),
        cgroup: cgroup.clone(),
        syscalls: Vec::new(),
    })
    .unwrap_or_else(|error| {
        panic!("the eBPF sensor must load on this machine (run as root): {error}")
    });
    let (registry, _requests) = ContainerRegistry::new(false);
    let mut state = State::new(CgroupResolver::new(cgroup), registry, BootClock::now());
    state.seed();
    let scratch = tempfile::tempdir().expect("tempdir");
    // reads of sensitive and ordinary files, shells, writes, renames, deletes, a connect
    let script = format!(
        "for i in 1 2 3 4 5; do cat /etc/shadow /etc/passwd /etc/hostname >/dev/null; \
         ls /usr/bin >/dev/null; grep -q root /etc/group; sh -c \"echo x > {dir}/f$i\"; \
         mv {dir}/f$i {dir}/g$i; rm -f {dir}/g$i; \
         bash -c 'exec 3<>/dev/tcp/127.0.0.1/9 2>/dev/null' 2>/dev/null; done; true",
        dir = scratch.path().display()
    );
    let mut workload = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .spawn()
        .expect("workload starts");
    let mut events = Vec::new();
    let start = Instant::now();
    let mut finished_at = None;
    while start.elapsed() < Duration::from_secs(30) {
        sensor
            .next_batch(Duration::from_millis(50), &mut |bytes| {
                let record = Record::decode(bytes).expect("kernel records decode");
                if let Some(enriched) = state.apply(&record) {
                    events.push(enriched.event);
                }
            })
            .expect("ring buffer readable");
        if finished_at.is_none() && workload.try_wait().expect("wait").is_some() {
            finished_at = Some(Instant::now());
        }
        if finished_at.is_some_and(|at| at.elapsed() > Duration::from_millis(300)) {
            break;
        }
    }
    if finished_at.is_none() {
        let _ = workload.kill();
    }
    let _ = workload.wait();
    assert!(finished_at.is_some(), "the workload did not finish");
    assert!(events.len() >= 100, "only {} events", events.len());
    let evaluator = pack_and_falco_stable();
    let (optimized, explained) = matches_both_ways(&evaluator, &events);
    assert!(
        !optimized.is_empty(),
        "reading /etc/shadow must raise detections"
    );
    assert_eq!(optimized, explained);
    assert!(assert_shared_equals_independent(&evaluator, &events) > 0);
}
