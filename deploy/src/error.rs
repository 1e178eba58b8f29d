//! The one error type of the deployment checks.

use std::path::PathBuf;

/// What went wrong rendering or validating the deployment files.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A tool the checks run (helm, kubernetes-validate) is not installed.
    #[error(
        "{tool} not found (looked at {looked_at}); install it with scripts/install-deploy-tools.sh"
    )]
    ToolMissing {
        tool: &'static str,
        looked_at: String,
    },
    /// A tool ran and failed.
    #[error("{tool} failed ({status}) running `{command}`:\n{output}")]
    ToolFailed {
        tool: &'static str,
        command: String,
        status: String,
        output: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// helm printed something that is not YAML.
    #[error("rendered document {index} is not valid YAML: {message}")]
    Yaml { index: usize, message: String },
    /// Rendered objects do not match the Kubernetes OpenAPI schemas.
    #[error("rendered objects do not validate against Kubernetes {kube_version}:\n{report}")]
    SchemaInvalid {
        kube_version: String,
        report: String,
    },
}

impl DeployError {
    /// A stable reason users and CI logs can search for.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ToolMissing { .. } => "deploy_tool_missing",
            Self::ToolFailed { .. } => "deploy_tool_failed",
            Self::Io { .. } => "deploy_io",
            Self::Yaml { .. } => "deploy_manifest_yaml",
            Self::SchemaInvalid { .. } => "deploy_schema_invalid",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
