//! Every command the chart renders, run through the real binary's argument parser: flags
//! and values must be ones `palisade` has.

// Shared with chart.rs, which uses the helpers this file does not.
#[allow(dead_code)]
mod common;

use std::process::Command;

use common::{CASES, KUBE_VERSIONS, NAMESPACE, RELEASE, container_args, render_case, tools};
use palisade_deploy::{Manifest, RenderRequest};

/// Runs `palisade ARGS --help` for every container: --help parses every flag and value before
/// it, then stops before running. Returns the refusals that are not pending features, and how
/// many commands were checked.
fn refused_commands(case: &str, manifest: &Manifest) -> (Vec<String>, usize) {
    let binary = palisade_testkit::palisade_binary();
    let parses = |args: &[&String]| {
        Command::new(&binary)
            .args(args)
            .arg("--help")
            .env_clear()
            .output()
            .expect("palisade runs")
    };
    let mut refusals = Vec::new();
    let mut checked = 0;
    for workload in manifest.workloads() {
        let args: Vec<String> = container_args(workload.object)
            .into_iter()
            .map(|arg| arg.replace("$(NODE_NAME)", "node-1"))
            .collect();
        let all: Vec<&String> = args.iter().collect();
        let output = parses(&all);
        checked += 1;
        if output.status.success() {
            continue;
        }
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        refusals.push(format!(
            "{case}: {}: palisade {args:?}:\n{stderr}",
            workload.id()
        ));
    }
    (refusals, checked)
}

#[test]
fn every_rendered_command_is_one_the_palisade_binary_accepts() {
    let tools = tools();
    let mut checked = 0;
    for case in CASES {
        let (refusals, count) =
            refused_commands(case, &render_case(&tools, case, KUBE_VERSIONS[1]));
        assert!(refusals.is_empty(), "{}", refusals.join("\n"));
        checked += count;
    }
    assert!(checked >= 14, "only {checked} commands checked");
}

#[test]
fn a_flag_the_binary_does_not_have_is_caught() {
    let manifest = tools()
        .render(&RenderRequest {
            release: RELEASE,
            namespace: NAMESPACE,
            kube_version: KUBE_VERSIONS[1],
            values_files: Vec::new(),
            set: vec![("agent.extraArgs[0]", "--no-such-flag")],
        })
        .expect("renders");
    let (refusals, _) = refused_commands("extra-args", &manifest);
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(refusals[0].contains("--no-such-flag"), "{}", refusals[0]);
}
