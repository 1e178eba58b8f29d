//! Tetragon's real events (the "Security Observability with eBPF" walk-through: a privileged
//! pod, a shell in it, nsenter into the host's namespaces, then a C2 agent) converted to
//! this agent's records drive the rules: the escape chain must raise the escape detections,
//! attributed to the pod, its container and image.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use palisade_agent::cgroup::{CgroupConfig, CgroupResolver};
use palisade_agent::container::ContainerRegistry;
use palisade_agent::engine::{BUILTIN_PACK, BUILTIN_PACK_NAME, Evaluator};
use palisade_agent::record::Record;
use palisade_agent::state::{BootClock, State};
use palisade_agent::tetragon::TetragonConverter;
use palisade_rules::RulesLoader;

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

/// Runs every event of the directory through state and rules, in event time order; returns
/// rule names per event file.
fn replay(
    directory: &Path,
    evaluator: &Evaluator,
) -> BTreeMap<String, Vec<(String, serde_json::Value)>> {
    let mut events: Vec<(String, serde_json::Value)> = json_files(directory)
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read");
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or_default()
                .to_string();
            (name, serde_json::from_str(&text).expect("tetragon JSON"))
        })
        .collect();
    events.sort_by(|left, right| left.1["time"].as_str().cmp(&right.1["time"].as_str()));
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
    let mut fired = BTreeMap::new();
    for (name, event) in events {
        let records = converter
            .convert(&event, &registry, state.cgroups_mut(), &mut known)
            .expect("converts");
        let mut found = Vec::new();
        for bytes in records {
            let record = Record::decode(&bytes).expect("decodes");
            if let Some(enriched) = state.apply(&record) {
                assert!(!enriched.container_pending);
                let mut detections = Vec::new();
                evaluator.evaluate(&enriched.event, &mut detections);
                for detection in detections {
                    let fields = serde_json::to_value(&detection.output_fields).expect("fields");
                    found.push((detection.rule, fields));
                }
            }
        }
        fired.insert(name, found);
    }
    fired
}

fn pack_and_falco_stable() -> Evaluator {
    let mut loader = RulesLoader::new();
    loader
        .add_file(&palisade_testkit::corpus_path(
            "runtime/falco-rules/falco_rules.yaml",
        ))
        .expect("falco rules");
    loader.add_text(BUILTIN_PACK_NAME, BUILTIN_PACK);
    Evaluator::from_loader(loader, "minikube")
}

#[test]
fn the_privileged_pod_to_host_escape_chain_raises_escape_detections() {
    let directory = palisade_testkit::corpus_path(
        "runtime/tetragon-events/security-observability-with-ebpf/03_chapter/03_security_observability_events/01_reaching_the_host_namespace",
    );
    let evaluator = pack_and_falco_stable();
    let fired = replay(&directory, &evaluator);
    let rules_of = |file: &str| -> Vec<String> {
        fired
            .get(file)
            .map(|found| found.iter().map(|(rule, _)| rule.clone()).collect())
            .unwrap_or_default()
    };
    assert!(
        rules_of("privileged-pod-init.json").contains(&"Privileged container started".to_string()),
        "{fired:#?}"
    );
    assert!(
        rules_of("privileged-pod-bash.json").contains(&"Shell exec into container".to_string()),
        "{fired:#?}"
    );
    assert!(
        rules_of("privileged-pod-bash.json")
            .contains(&"Command run in privileged container".to_string()),
        "{fired:#?}"
    );
    assert!(
        rules_of("privileged-pod-nsenter.json")
            .contains(&"Host namespace entered with nsenter".to_string()),
        "{fired:#?}"
    );
    // nginx replacing the entrypoint (still pid 1) raises nothing but the start itself
    assert!(
        rules_of("nginx-execution.json")
            .iter()
            .all(|rule| rule == "Privileged container started"),
        "{fired:#?}"
    );
    for (rule, fields) in fired.values().flatten() {
        if rule.starts_with("Privileged")
            || rule.starts_with("Host namespace")
            || rule.starts_with("Shell exec")
        {
            assert_eq!(fields["container.id"], "85f791fd8dfa", "{rule}");
            assert_eq!(fields["k8s.pod.name"], "privileged-pod", "{rule}");
            assert_eq!(fields["k8s.ns.name"], "default", "{rule}");
            assert_eq!(fields["container.image.repository"], "nginx", "{rule}");
        }
    }
}

#[test]
fn the_whole_walk_through_converts_and_evaluates() {
    let directory = palisade_testkit::corpus_path(
        "runtime/tetragon-events/security-observability-with-ebpf/03_chapter/03_security_observability_events",
    );
    let evaluator = pack_and_falco_stable();
    let fired = replay(&directory, &evaluator);
    assert!(
        fired.len() >= 25,
        "every event file converted: {}",
        fired.len()
    );
    let all: Vec<&str> = fired
        .values()
        .flatten()
        .map(|(rule, _)| rule.as_str())
        .collect();
    assert!(all.contains(&"Host namespace entered with nsenter"));
}
