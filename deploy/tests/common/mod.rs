//! What the chart tests share: the tools, the values sets, rendering.

use std::path::PathBuf;

use palisade_deploy::tools::chart_dir;
use palisade_deploy::{Manifest, RenderRequest, Tools};
use serde_json::Value;

/// The chart's kubeVersion floor, and the newest version helm and the validator know.
pub const KUBE_VERSIONS: [&str; 2] = ["1.30.0", "1.35.0"];
pub const RELEASE: &str = "sec";
pub const NAMESPACE: &str = "palisade-system";

pub fn tools() -> Tools {
    Tools::locate().unwrap_or_else(|error| panic!("{error}"))
}

/// A set of values: `default` has no file, the others are helm/palisade/ci/NAME-values.yaml.
pub fn values_files(case: &str) -> Vec<PathBuf> {
    if case == "default" {
        return Vec::new();
    }
    let file = chart_dir().join("ci").join(format!("{case}-values.yaml"));
    assert!(file.is_file(), "values file {} is missing", file.display());
    vec![file]
}

pub const CASES: [&str; 5] = [
    "default",
    "distributed",
    "enrollment",
    "custom",
    "control-plane-only",
];

pub fn render_case(tools: &Tools, case: &str, kube_version: &str) -> Manifest {
    tools
        .render(&RenderRequest {
            release: RELEASE,
            namespace: NAMESPACE,
            kube_version,
            values_files: values_files(case),
            set: Vec::new(),
        })
        .unwrap_or_else(|error| panic!("values set {case}: {error}"))
}

pub fn names_of(manifest: &Manifest, kind: &str) -> Vec<String> {
    let mut names: Vec<String> = manifest
        .of_kind(kind)
        .filter_map(|object| object["metadata"]["name"].as_str())
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

pub fn container_args(workload: &Value) -> Vec<String> {
    workload["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("the container has args")
        .iter()
        .map(|arg| arg.as_str().expect("string args").to_string())
        .collect()
}
