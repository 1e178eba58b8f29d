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
