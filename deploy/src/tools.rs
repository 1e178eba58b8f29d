//! The real tools: `helm template` renders the chart, `kubernetes-validate --strict` checks
//! every rendered object against the Kubernetes OpenAPI schemas. Both are installed by
//! scripts/install-deploy-tools.sh into target/deploy-tools (or PALISADE_DEPLOY_TOOLS).

use std::path::PathBuf;
use std::process::Command;

use crate::error::DeployError;
use crate::manifest::Manifest;

/// Names the directory scripts/install-deploy-tools.sh installs into.
pub const TOOLS_ENV: &str = "PALISADE_DEPLOY_TOOLS";

/// The directory holding this crate (deploy/): the chart is at `helm/palisade` under it.
pub fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    deploy_dir().join("helm").join("palisade")
}

fn tools_dir() -> PathBuf {
    match std::env::var_os(TOOLS_ENV) {
        Some(explicit) => PathBuf::from(explicit),
        None => deploy_dir().join("..").join("target").join("deploy-tools"),
    }
}

/// The installed helm and schema validator.
#[derive(Debug, Clone)]
pub struct Tools {
    helm: PathBuf,
    validator: PathBuf,
}

/// One `helm template` run: release, namespace, values files and `--set` pairs.
#[derive(Debug, Clone)]
pub struct RenderRequest<'a> {
    /// Release name.
    pub release: &'a str,
    /// Namespace the release is rendered for.
    pub namespace: &'a str,
    /// Kubernetes version helm renders for (the chart's kubeVersion is checked against it).
    pub kube_version: &'a str,
    /// `--values` files, in order.
    pub values_files: Vec<PathBuf>,
    /// `--set KEY=VALUE` pairs, after the files.
    pub set: Vec<(&'a str, &'a str)>,
}

impl Tools {
    /// Finds both tools, or says where they were looked for.
    pub fn locate() -> Result<Tools, DeployError> {
        let directory = tools_dir();
        let helm = directory.join("bin").join("helm");
        let validator = directory
            .join("venv")
            .join("bin")
            .join("kubernetes-validate");
        for (tool, path) in [("helm", &helm), ("kubernetes-validate", &validator)] {
            if !path.is_file() {
                return Err(DeployError::ToolMissing {
                    tool,
                    looked_at: path.display().to_string(),
                });
            }
        }
        Ok(Tools { helm, validator })
    }

    /// `helm template` of the chart; the rendered text, parsed.
    pub fn render(&self, request: &RenderRequest<'_>) -> Result<Manifest, DeployError> {
        let mut command = Command::new(&self.helm);
        command
            .arg("template")
            .arg(request.release)
            .arg(chart_dir())
            .args(["--namespace", request.namespace])
            .args(["--kube-version", request.kube_version]);
        for file in &request.values_files {
            command.arg("--values").arg(file);
        }
        for (key, value) in &request.set {
            command.arg("--set").arg(format!("{key}={value}"));
        }
        let text = run("helm", &mut command)?;
        Manifest::parse(&text)
    }

    /// `helm lint --strict` of the chart with these values files.
    pub fn lint(&self, values_files: &[PathBuf]) -> Result<String, DeployError> {
        let mut command = Command::new(&self.helm);
        command.arg("lint").arg("--strict").arg(chart_dir());
        for file in values_files {
            command.arg("--values").arg(file);
        }
        run("helm", &mut command)
    }

    /// Validates every object against the schemas of `kube_version` (e.g. "1.30.0"), rejecting
    /// unknown fields.
    pub fn validate(&self, manifest: &Manifest, kube_version: &str) -> Result<(), DeployError> {
        let directory = tempfile::tempdir().map_err(|error| DeployError::io("tempdir", error))?;
        let file = directory.path().join("rendered.yaml");
        std::fs::write(&file, manifest.text()).map_err(|error| DeployError::io(&file, error))?;
        let mut command = Command::new(&self.validator);
        command
            .args(["--strict", "--quiet", "--kubernetes-version", kube_version])
            .arg(&file);
        match run("kubernetes-validate", &mut command) {
            Ok(_) => Ok(()),
            Err(DeployError::ToolFailed { output, .. }) => Err(DeployError::SchemaInvalid {
                kube_version: kube_version.to_string(),
                report: output,
            }),
            Err(other) => Err(other),
        }
    }
}

/// Runs a command; its stdout when it succeeds, else an error with everything it printed.
fn run(tool: &'static str, command: &mut Command) -> Result<String, DeployError> {
    let description = format!("{command:?}");
    let output = command
        .output()
        .map_err(|error| DeployError::io(command.get_program(), error))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    Err(DeployError::ToolFailed {
        tool,
        command: description,
        status: output.status.to_string(),
        output: format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
    })
}
