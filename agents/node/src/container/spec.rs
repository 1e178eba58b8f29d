//! What a container's OCI runtime spec says about its privileges: capabilities, mounts, and
//! whether it is privileged.

use serde::Deserialize;

use crate::event::Mount;

/// The parts of an OCI runtime spec the agent reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RuntimeSpec {
    /// The container's process.
    pub process: Option<SpecProcess>,
    /// Mounts.
    pub mounts: Vec<SpecMount>,
    /// Linux-specific settings.
    pub linux: Option<SpecLinux>,
    /// Annotations (CRI puts the pod sandbox id and names here).
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// `process` of the spec.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SpecProcess {
    /// Capability sets.
    pub capabilities: Option<SpecCapabilities>,
}

/// `process.capabilities`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SpecCapabilities {
    /// Bounding set.
    pub bounding: Vec<String>,
    /// Effective set.
    pub effective: Vec<String>,
}

/// One `mounts` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SpecMount {
    /// Path in the container.
    pub destination: String,
    /// Mount type.
    #[serde(rename = "type")]
    pub mount_type: String,
    /// Source (host path for binds).
    pub source: String,
    /// Options.
    pub options: Vec<String>,
}

/// `linux` of the spec.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SpecLinux {
    /// Paths hidden from the container (empty for privileged containers).
    pub masked_paths: Vec<String>,
    /// Paths mounted read-only (empty for privileged containers).
    pub readonly_paths: Vec<String>,
}

/// Number of capabilities a kernel of the agent's generation knows; a bounding set this
/// large is "all capabilities".
const ALL_CAPABILITIES: usize = 38;

impl RuntimeSpec {
    /// Parses the JSON spec a runtime stores.
    pub fn parse(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// The bounding capability set.
    pub fn capabilities(&self) -> Vec<String> {
        self.process
            .as_ref()
            .and_then(|process| process.capabilities.as_ref())
            .map(|capabilities| capabilities.bounding.clone())
            .unwrap_or_default()
    }

    /// Privileged the way `--privileged` and Kubernetes `privileged: true` make it: every
    /// capability, and no masked or read-only /proc and /sys paths.
    pub fn is_privileged(&self) -> bool {
        let capabilities = self.capabilities();
        let has_all = capabilities.len() >= ALL_CAPABILITIES
            && capabilities.iter().any(|name| name == "CAP_SYS_ADMIN");
        let unmasked = self
            .linux
            .as_ref()
            .is_none_or(|linux| linux.masked_paths.is_empty() && linux.readonly_paths.is_empty());
        has_all && unmasked
    }

    /// The mounts, as the agent reports them.
    pub fn mounts(&self) -> Vec<Mount> {
        self.mounts
            .iter()
            .map(|mount| Mount {
                source: mount.source.clone(),
                destination: mount.destination.clone(),
                mount_type: if mount.mount_type.is_empty() {
                    "bind".to_string()
                } else {
                    mount.mount_type.clone()
                },
                rw: !mount.options.iter().any(|option| option == "ro"),
                options: mount.options.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileged_needs_every_capability_and_no_masks() {
        let all: Vec<String> = crate::syscalls::CAPABILITY_NAMES
            .iter()
            .map(|name| name.to_string())
            .collect();
        let privileged = serde_json::json!({
            "process": {"capabilities": {"bounding": all, "effective": all}},
            "mounts": [{"destination": "/host", "type": "bind", "source": "/", "options": ["rbind", "rw"]}],
            "linux": {"maskedPaths": [], "readonlyPaths": []}
        });
        let spec = RuntimeSpec::parse(privileged.to_string().as_bytes()).expect("spec");
        assert!(spec.is_privileged());
        assert_eq!(spec.mounts()[0].source, "/");
        assert!(spec.mounts()[0].rw);

        let ordinary = serde_json::json!({
            "process": {"capabilities": {"bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]}},
            "linux": {"maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]}
        });
        let spec = RuntimeSpec::parse(ordinary.to_string().as_bytes()).expect("spec");
        assert!(!spec.is_privileged());
        assert_eq!(spec.capabilities().len(), 2);
    }
}
