//! `palisade graph analyze|query` on BishopFox's badPods manifests, checked against the
//! expectations written from the badPods READMEs (corpora k8s/badpods/EXPECTED.json).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use palisade_testkit::{corpus_path, palisade_binary};

fn yaml_files(directory: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|extension| extension == "yaml")
            {
                files.push(path);
            }
        }
    }
    files
}

/// Manifests per badPods category, and whether its README says the category escapes to the node.
fn categories() -> BTreeMap<String, (usize, bool)> {
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(corpus_path("k8s/badpods/EXPECTED.json")).expect("EXPECTED.json"),
    )
    .expect("json");
    let mut categories = BTreeMap::new();
    for (category, expectation) in expected["categories"].as_object().expect("categories") {
        let escapes = expectation["expected_kubehound_techniques"]
            .as_array()
            .is_some_and(|techniques| !techniques.is_empty());
        let manifests = yaml_files(&corpus_path("k8s/badpods/manifests").join(category)).len();
        categories.insert(category.clone(), (manifests, escapes));
    }
    categories
}

/// The badPods category of a container (containers are named after their category).
fn category_of<'a>(name: &str, categories: &'a BTreeMap<String, (usize, bool)>) -> &'a str {
    categories
        .keys()
        .filter(|category| name.starts_with(&format!("{category}-")))
        .max_by_key(|category| category.len())
        .unwrap_or_else(|| panic!("container {name} is in no badPods category"))
}

#[test]
fn the_containers_that_escape_are_those_badpods_says_escape() {
    let categories = categories();
    let output = Command::new(palisade_binary())
        .args([
            "graph",
            "query",
            "container where escapes_to_node",
            "--format",
            "json",
            "--manifests",
        ])
        .arg(corpus_path("k8s/badpods/manifests"))
        .output()
        .expect("cli");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let mut found: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for row in result["rows"].as_array().expect("rows") {
        let id = row["entity"]["id"].as_str().expect("id");
        assert!(ids.insert(id.to_string()), "{id} listed twice");
        let name = row["entity"]["name"].as_str().expect("name");
        *found.entry(category_of(name, &categories)).or_default() += 1;
    }
    let expected: BTreeMap<&str, usize> = categories
        .iter()
        .filter(|(_, (_, escapes))| *escapes)
        .map(|(category, (manifests, _))| (category.as_str(), *manifests))
        .collect();
    assert_eq!(found, expected);
    assert_eq!(result["total"], expected.values().sum::<usize>());
}

#[test]
fn analyze_gates_on_attack_paths_and_explains_bad_input() {
    let escaping = Command::new(palisade_binary())
        .args([
            "graph",
            "analyze",
            "--fail-on-attack-paths",
            "--format",
            "json",
            "--manifests",
        ])
        .arg(corpus_path("k8s/badpods/manifests/priv"))
        .output()
        .expect("cli");
    assert_eq!(escaping.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&escaping.stdout).expect("json");
    assert!(!report["attack_paths"].as_array().expect("paths").is_empty());

    let harmless = Command::new(palisade_binary())
        .args(["graph", "analyze", "--fail-on-attack-paths", "--manifests"])
        .arg(corpus_path("k8s/badpods/manifests/nothing-allowed"))
        .output()
        .expect("cli");
    assert!(
        harmless.status.success(),
        "{}",
        String::from_utf8_lossy(&harmless.stdout)
    );

    let temp = tempfile::tempdir().expect("temp");
    let broken = temp.path().join("broken.yaml");
    std::fs::write(&broken, "kind: Pod\nmetadata: [unclosed\n").expect("write");
    let output = Command::new(palisade_binary())
        .args(["graph", "analyze", "--manifests"])
        .arg(&broken)
        .output()
        .expect("cli");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.yaml") && stderr.contains("invalid YAML"),
        "{stderr}"
    );

    let bad_query = Command::new(palisade_binary())
        .args(["graph", "query", "pod where (", "--manifests"])
        .arg(&broken)
        .output()
        .expect("cli");
    assert!(!bad_query.status.success());
    assert!(
        String::from_utf8_lossy(&bad_query.stderr).contains("byte"),
        "{}",
        String::from_utf8_lossy(&bad_query.stderr)
    );
}
