//! From a task's cgroup to its container: which cgroup hierarchy names containers on this
//! host, the kernfs id -> path map of that hierarchy (warmed by cgroup_mkdir records before a
//! container's first process runs, and by a walk of the hierarchy at start), and the
//! container id in a cgroup path for each runtime's naming scheme.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::AgentError;

/// Which hierarchy the kernel programs read the cgroup of a task from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupConfig {
    /// Index of the controller in the kernel's subsystem array, or -1 for the unified
    /// (v2) hierarchy.
    pub subsys_index: i32,
    /// Hierarchy id (0 for the unified hierarchy).
    pub hierarchy_id: i32,
    /// Where that hierarchy is mounted.
    pub mount_point: PathBuf,
}

impl CgroupConfig {
    /// Detects the layout from /proc/mounts and /proc/cgroups: the unified hierarchy when
    /// /sys/fs/cgroup is cgroup2, else the v1 memory controller (what runc always joins).
    pub fn detect() -> Result<Self, AgentError> {
        let mounts = std::fs::read_to_string("/proc/mounts")
            .map_err(|error| AgentError::io("/proc/mounts", error))?;
        let controllers = std::fs::read_to_string("/proc/cgroups")
            .map_err(|error| AgentError::io("/proc/cgroups", error))?;
        Self::from_tables(&mounts, &controllers)
    }

    /// Chooses the hierarchy from the text of /proc/mounts and /proc/cgroups.
    pub fn from_tables(mounts: &str, controllers: &str) -> Result<Self, AgentError> {
        let mut unified_mount = None;
        let mut memory_mount = None;
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 4 {
                continue;
            }
            match fields[2] {
                "cgroup2" if unified_mount.is_none() || fields[1] == "/sys/fs/cgroup" => {
                    unified_mount = Some(fields[1].to_string());
                }
                "cgroup" if fields[3].split(',').any(|option| option == "memory") => {
                    memory_mount = Some(fields[1].to_string());
                }
                _ => {}
            }
        }
        if let Some(mount) = memory_mount {
            // /proc/cgroups lists controllers in subsystem-id order; the index is the id
            for (index, line) in controllers
                .lines()
                .filter(|line| !line.starts_with('#'))
                .enumerate()
            {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.first() == Some(&"memory") && fields.len() >= 2 {
                    let hierarchy_id =
                        fields[1].parse::<i32>().map_err(|_| AgentError::Config {
                            source_name: "/proc/cgroups".into(),
                            message: format!("memory line has a bad hierarchy id: {line:?}"),
                        })?;
                    return Ok(Self {
                        subsys_index: i32::try_from(index).unwrap_or(i32::MAX),
                        hierarchy_id,
                        mount_point: PathBuf::from(mount),
                    });
                }
            }
        }
        match unified_mount {
            Some(mount) => Ok(Self {
                subsys_index: -1,
                hierarchy_id: 0,
                mount_point: PathBuf::from(mount),
            }),
            None => Err(AgentError::Config {
                source_name: "/proc/mounts".into(),
                message: "no cgroup2 mount and no cgroup v1 memory controller mount".into(),
            }),
        }
    }
}

/// The kernfs id -> path map of one hierarchy.
#[derive(Debug)]
pub struct CgroupResolver {
    config: CgroupConfig,
    paths: HashMap<u64, String>,
    /// Bound on entries; a walk that finds more keeps the first ones.
    capacity: usize,
}

impl CgroupResolver {
    /// An empty resolver for this hierarchy.
    pub fn new(config: CgroupConfig) -> Self {
        Self {
            config,
            paths: HashMap::new(),
            capacity: 1 << 18,
        }
    }

    /// The hierarchy.
    pub fn config(&self) -> &CgroupConfig {
        &self.config
    }

    /// Records a cgroup's path (from a cgroup_mkdir record or a walk).
    pub fn insert(&mut self, id: u64, path: String) {
        if self.paths.len() < self.capacity || self.paths.contains_key(&id) {
            self.paths.insert(id, path);
        }
    }

    /// The path of a cgroup id, if known.
    pub fn path(&self, id: u64) -> Option<&str> {
        self.paths.get(&id).map(String::as_str)
    }

    /// Walks the hierarchy's mount and records every cgroup directory (its inode number is
    /// its kernfs id). Depth-bounded.
    pub fn scan(&mut self) -> usize {
        let root = self.config.mount_point.clone();
        let mut found = 0;
        let mut stack = vec![(root.clone(), 0usize)];
        while let Some((directory, depth)) = stack.pop() {
            let Ok(metadata) = std::fs::metadata(&directory) else {
                continue;
            };
            let relative = directory
                .strip_prefix(&root)
                .map(|path| format!("/{}", path.display()))
                .unwrap_or_else(|_| "/".to_string());
            let relative = if relative == "/" {
                relative
            } else {
                relative.trim_end_matches('/').to_string()
            };
            self.insert(metadata.ino(), relative);
            found += 1;
            if depth >= 16 {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&directory) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    stack.push((entry.path(), depth + 1));
                }
            }
        }
        found
    }

    /// The cgroup path of a live process in this hierarchy, from /proc/<pid>/cgroup.
    pub fn path_of_pid(&self, pid: u32) -> Option<String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        path_for_hierarchy(&text, &self.config)
    }

    /// The kernfs id of a cgroup path in this hierarchy.
    pub fn id_of_path(&self, path: &str) -> Option<u64> {
        let full = self.config.mount_point.join(path.trim_start_matches('/'));
        std::fs::metadata(full).ok().map(|metadata| metadata.ino())
    }

    /// Number of known cgroups.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether no cgroup is known.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// The path in `hierarchy` from the text of /proc/<pid>/cgroup.
pub fn path_for_hierarchy(proc_cgroup: &str, config: &CgroupConfig) -> Option<String> {
    for line in proc_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let matches = if config.subsys_index < 0 {
            id == "0" && controllers.is_empty()
        } else {
            id.parse::<i32>().ok() == Some(config.hierarchy_id)
        };
        if matches {
            return Some(path.to_string());
        }
    }
    None
}

/// A container id found in a cgroup path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupContainer {
    /// Full container id.
    pub full_id: String,
    /// Runtime the naming scheme belongs to.
    pub runtime: &'static str,
    /// Pod uid, when the path has a kubepods pod component.
    pub pod_uid: Option<String>,
}

fn is_hex_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The container a cgroup path belongs to, for the naming schemes of containerd (CRI and
/// ctr), Docker, CRI-O and Podman, with cgroupfs and systemd drivers. `None` for the host.
pub fn container_from_cgroup_path(path: &str) -> Option<CgroupContainer> {
    let components: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    let pod_uid = components
        .iter()
        .find_map(|component| pod_uid_of(component));
    // innermost container-looking component wins (a container's sub-cgroups stay in it)
    for component in components.iter().rev() {
        let name = component.strip_suffix(".scope").unwrap_or(component);
        let prefixed = [
            ("cri-containerd-", "containerd"),
            ("docker-", "docker"),
            ("crio-", "cri-o"),
            ("libpod-", "podman"),
        ];
        for (prefix, runtime) in prefixed {
            if let Some(id) = name.strip_prefix(prefix)
                && is_hex_id(id)
            {
                return Some(CgroupContainer {
                    full_id: id.to_string(),
                    runtime,
                    pod_uid: pod_uid.clone(),
                });
            }
        }
        if is_hex_id(name) {
            let runtime = if components.first() == Some(&"docker") {
                "docker"
            } else {
                "containerd"
            };
            return Some(CgroupContainer {
                full_id: name.to_string(),
                runtime,
                pod_uid: pod_uid.clone(),
            });
        }
    }
    None
}

fn pod_uid_of(component: &str) -> Option<String> {
    // cgroupfs: pod<uid>; systemd: kubepods-besteffort-pod<uid_with_underscores>.slice
    let name = component.strip_suffix(".slice").unwrap_or(component);
    let start = name.rfind("pod")?;
    let uid = &name[start + 3..];
    if uid.len() == 36
        && uid
            .bytes()
            .all(|byte| byte.is_ascii_hexdigit() || byte == b'-' || byte == b'_')
    {
        Some(uid.replace('_', "-"))
    } else {
        None
    }
}

/// Whether a path is inside `root` (for tests and tools).
pub fn is_under(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f9d2b6a1c3e5f7a9b0c2d4e6f8a0b1c3d5e7f9a1b2c3d4e5f6a7b8c9d0e1f2a";

    #[test]
    fn container_ids_come_from_every_runtime_naming_scheme() {
        let cases = [
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b2c3d_4e5f_6a7b_8c9d_0e1f2a3b4c5d.slice/cri-containerd-{ID}.scope"
                ),
                "containerd",
                Some("0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"),
            ),
            (
                format!("/kubepods/besteffort/pod0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d/{ID}"),
                "containerd",
                Some("0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"),
            ),
            (format!("/system.slice/docker-{ID}.scope"), "docker", None),
            (format!("/docker/{ID}"), "docker", None),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                "podman",
                None,
            ),
            (format!("/kubepods.slice/crio-{ID}.scope"), "cri-o", None),
            (format!("/default/{ID}"), "containerd", None),
        ];
        for (path, runtime, pod) in cases {
            let found = container_from_cgroup_path(&path).expect(&path);
            assert_eq!(found.full_id, ID, "{path}");
            assert_eq!(found.runtime, runtime, "{path}");
            assert_eq!(found.pod_uid.as_deref(), pod, "{path}");
        }
    }

    #[test]
    fn host_cgroups_have_no_container() {
        for path in [
            "/",
            "/user.slice/user-0.slice/session-1.scope",
            "/system.slice/containerd.service",
            &format!("/kubepods.slice/crio-conmon-{ID}.scope"),
        ] {
            assert_eq!(container_from_cgroup_path(path), None, "{path}");
        }
    }

    #[test]
    fn v1_memory_hierarchy_is_chosen_on_hybrid_hosts() {
        let mounts = "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
        let controllers = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                           cpuset\t3\t1\t1\ncpu\t1\t1\t1\ncpuacct\t2\t1\t1\nblkio\t7\t1\t1\nmemory\t4\t9\t1\n";
        let config = CgroupConfig::from_tables(mounts, controllers).expect("config");
        assert_eq!(config.subsys_index, 4);
        assert_eq!(config.hierarchy_id, 4);
        assert_eq!(config.mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        let proc_cgroup = "5:devices:/\n4:memory:/default/abc\n0::/\n";
        assert_eq!(
            path_for_hierarchy(proc_cgroup, &config).as_deref(),
            Some("/default/abc")
        );
    }

    #[test]
    fn unified_hierarchy_is_chosen_on_v2_hosts() {
        let mounts = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
        let config = CgroupConfig::from_tables(mounts, "#subsys_name\n").expect("config");
        assert_eq!(config.subsys_index, -1);
        assert_eq!(
            path_for_hierarchy("0::/k8s/x\n", &config).as_deref(),
            Some("/k8s/x")
        );
    }

    #[test]
    fn a_host_without_cgroups_is_a_named_error() {
        let error =
            CgroupConfig::from_tables("proc /proc proc rw 0 0\n", "").expect_err("no cgroup mount");
        assert_eq!(error.code(), "config_error");
    }
}
