//! Every feed of corpora/vulndb parses; bad records are reported with file and entry.

use std::collections::BTreeMap;

use palisade_testkit::corpus_path;
use palisade_vulndb::import::{CollectingSink, ImportLimits, discover_sources, import_unit};

#[test]
fn every_corpus_feed_parses_without_issues() {
    let root = corpus_path("vulndb");
    let units = discover_sources(std::slice::from_ref(&root)).expect("corpus is readable");
    let mut sink = CollectingSink::default();
    let mut unrecognised = Vec::new();
    for unit in &units {
        let summary = import_unit(unit, &ImportLimits::default(), &mut sink).expect("unit imports");
        if !summary.recognised {
            unrecognised.push(unit.name());
        }
    }
    assert!(
        sink.issues.is_empty(),
        "issues: {:#?}",
        sink.issues.iter().take(20).collect::<Vec<_>>()
    );
    let mut by_prefix: BTreeMap<String, usize> = BTreeMap::new();
    for advisory in &sink.advisories {
        let prefix = advisory.id.split('-').next().unwrap_or("").to_owned();
        *by_prefix.entry(prefix).or_default() += 1;
    }
    eprintln!(
        "{by_prefix:?} vex={} unrecognised={unrecognised:?}",
        sink.vex_statements.len()
    );
    // Only the comparison tables and the provenance note are not vulnerability data.
    for name in &unrecognised {
        assert!(
            name.contains("version-vectors")
                || name.ends_with("PROVENANCE.md")
                || name.ends_with("/vulndb"),
            "{name} was not recognised"
        );
    }
}

/// A tracker JSON large enough to take the typed path (built by repeating the corpus sample's
/// packages under new names, 300 copies) yields the same entries as the generic path.
#[test]
fn large_tracker_json_takes_the_typed_path_with_the_same_result() {
    let sample_path =
        corpus_path("vulndb/debian-security-tracker/samples/tracker-json-sample.json");
    let sample: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sample_path).expect("read")).expect("json");
    let packages = sample.as_object().expect("object");
    let mut large = serde_json::Map::new();
    for copy in 0..300 {
        for (package, cves) in packages {
            large.insert(format!("{package}-{copy}"), cves.clone());
        }
    }
    let bytes = serde_json::to_vec(&large).expect("serialise");
    assert!(
        bytes.len() > 1024 * 1024,
        "{} bytes is below the typed-path threshold",
        bytes.len()
    );
    let directory = tempfile::tempdir().expect("temp dir");
    std::fs::write(directory.path().join("tracker.json"), &bytes).expect("write");
    let units = discover_sources(&[directory.path().to_path_buf()]).expect("discover");
    let mut typed = CollectingSink::default();
    import_unit(&units[0], &ImportLimits::default(), &mut typed).expect("imports");
    let (generic, generic_issues) = palisade_vulndb::import::debian::parse_tracker_json(
        serde_json::Value::Object(large),
        "tracker.json",
    );
    assert!(typed.issues.is_empty() && generic_issues.is_empty());
    assert_eq!(typed.advisories, generic);
    let entries: usize = typed
        .advisories
        .iter()
        .map(|advisory| advisory.affected.len())
        .sum();
    // prototypejs 2 CVEs x 4 releases, txt2man 4, backupninja 4, chromium 5, sope 4 = 25.
    assert_eq!(
        entries,
        300 * 25,
        "25 (package, release) states in the sample, 300 copies"
    );
}
