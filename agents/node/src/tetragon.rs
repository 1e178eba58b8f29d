//! Tetragon's JSON events (process_exec, process_exit, process_connect) converted into this
//! agent's records, with their pod and container metadata registered as if the runtime had
//! answered, so recorded Tetragon streams can drive Palisade's rules.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::Value;

use crate::cgroup::CgroupResolver;
use crate::container::ContainerRegistry;
use crate::error::AgentError;
use crate::event::{Container, Pod, split_image_reference};
use crate::record::{FileInfo, Header, RecordBuilder, SockInfo, comm_bytes, flag, kind};
use crate::syscalls;

/// Converts a stream of Tetragon events; remembers containers and pids across events.
#[derive(Debug, Default)]
pub struct TetragonConverter {
    cgroup_ids: HashMap<String, u64>,
    next_cgroup_id: u64,
    /// Pids that are a container's first process (pid 1 in the container).
    entrypoints: std::collections::HashSet<u32>,
    /// Containers seen with every capability.
    privileged: std::collections::HashSet<String>,
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn number(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn time_ns(text: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|time| time.timestamp_nanos_opt())
        .and_then(|ns| u64::try_from(ns).ok())
        .unwrap_or(0)
}

fn capabilities(process: &Value) -> u64 {
    process
        .get("cap")
        .and_then(|cap| cap.get("effective"))
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .filter_map(syscalls::capability_bit)
                .fold(0u64, |bits, bit| bits | (1u64 << bit))
        })
        .unwrap_or(0)
}

/// Splits Tetragon's `arguments` string on spaces, keeping double-quoted parts together.
fn split_arguments(arguments: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for character in arguments.chars() {
        match character {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            other => current.push(other),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl TetragonConverter {
    /// A converter.
    pub fn new() -> Self {
        Self {
            cgroup_ids: HashMap::new(),
            next_cgroup_id: 1000,
            entrypoints: std::collections::HashSet::new(),
            privileged: std::collections::HashSet::new(),
        }
    }

    /// Registers the event's container (if any) and returns the cgroup id standing for it.
    fn container_cgroup(
        &mut self,
        process: &Value,
        registry: &ContainerRegistry,
        cgroups: &mut CgroupResolver,
    ) -> u64 {
        let Some(pod) = process.get("pod") else {
            return 1;
        };
        let container = pod.get("container").cloned().unwrap_or(Value::Null);
        let raw_id = text(&container, "id");
        let full_id = raw_id.rsplit("://").next().unwrap_or(raw_id).to_string();
        let capability_bits = capabilities(process);
        // Tetragon does not report the privileged flag; every capability is its mark
        let privileged = capability_bits & (1 << 21) != 0 && capability_bits.count_ones() >= 38;
        if let Some(id) = self.cgroup_ids.get(&full_id)
            && (!privileged || self.privileged.contains(&full_id))
        {
            return *id;
        }
        if privileged {
            self.privileged.insert(full_id.clone());
        }
        let image = container.get("image").cloned().unwrap_or(Value::Null);
        let image_name = text(&image, "name");
        let (repository, tag, _) = split_image_reference(image_name);
        let image_id = text(&image, "id");
        let labels = pod
            .get("pod_labels")
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .map(|(key, value)| {
                        (key.clone(), value.as_str().unwrap_or_default().to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        registry.insert(Container {
            id: full_id.chars().take(12).collect(),
            full_id: full_id.clone(),
            name: text(&container, "name").to_string(),
            image: image_name.to_string(),
            image_repository: repository,
            image_tag: tag,
            image_digest: image_id.rsplit('@').next().unwrap_or_default().to_string(),
            labels: Default::default(),
            privileged,
            capabilities: syscalls::capability_names(capability_bits)
                .into_iter()
                .map(str::to_string)
                .collect(),
            mounts: Vec::new(),
            pod: Some(Pod {
                name: text(pod, "name").to_string(),
                namespace: text(pod, "namespace").to_string(),
                uid: String::new(),
                labels,
            }),
            runtime: raw_id
                .split("://")
                .next()
                .unwrap_or("containerd")
                .to_string(),
            metadata_complete: true,
        });
        if let Some(id) = self.cgroup_ids.get(&full_id) {
            return *id;
        }
        self.next_cgroup_id += 1;
        let cgroup_id = self.next_cgroup_id;
        cgroups.insert(cgroup_id, format!("/kubepods/tetragon/{full_id}"));
        self.cgroup_ids.insert(full_id, cgroup_id);
        cgroup_id
    }

    fn header(
        &mut self,
        record_kind: u16,
        event: &Value,
        process: &Value,
        parent: &Value,
        registry: &ContainerRegistry,
        cgroups: &mut CgroupResolver,
    ) -> Header {
        let pid = u32::try_from(number(process, "pid")).unwrap_or(0);
        let binary = text(process, "binary");
        let comm = binary.rsplit('/').next().unwrap_or(binary);
        let uid = u32::try_from(number(process, "uid")).unwrap_or(0);
        let capability_bits = capabilities(process);
        let parent_binary = text(parent, "binary");
        // a process started by the shim is the container's pid 1, and stays so across execs
        let started_by_shim = parent_binary.ends_with("containerd-shim")
            || parent_binary.ends_with("containerd-shim-runc-v2");
        if started_by_shim {
            self.entrypoints.insert(pid);
        }
        let is_entrypoint = self.entrypoints.contains(&pid);
        Header {
            kind: record_kind,
            ts_boot_ns: time_ns(text(event, "time")),
            tgid: pid,
            tid: pid,
            ppid: u32::try_from(number(parent, "pid")).unwrap_or(0),
            vpid: if is_entrypoint { 1 } else { pid },
            uid,
            euid: uid,
            loginuid: u32::try_from(number(process, "auid")).unwrap_or(u32::MAX),
            cgroup_id: self.container_cgroup(process, registry, cgroups),
            syscall_nr: 59,
            cap_effective: capability_bits,
            cap_permitted: capability_bits,
            comm: comm_bytes(comm),
            ..Header::default()
        }
    }

    /// The records one Tetragon event becomes: for an exec, the parent's exec first when the
    /// parent is not known yet, so process ancestry is there for the rules.
    pub fn convert(
        &mut self,
        event: &Value,
        registry: &ContainerRegistry,
        cgroups: &mut CgroupResolver,
        known_pids: &mut std::collections::HashSet<u32>,
    ) -> Result<Vec<Vec<u8>>, AgentError> {
        let (event_kind, body) = event
            .as_object()
            .and_then(|object| object.iter().find(|(key, _)| key.starts_with("process_")))
            .ok_or_else(|| AgentError::Config {
                source_name: "tetragon event".into(),
                message: "no process_* member".into(),
            })?;
        let process = body.get("process").cloned().unwrap_or(Value::Null);
        let parent = body.get("parent").cloned().unwrap_or(Value::Null);
        let mut records = Vec::new();
        match event_kind.as_str() {
            "process_exec" => {
                let parent_pid = u32::try_from(number(&parent, "pid")).unwrap_or(0);
                if parent_pid != 0 && !known_pids.contains(&parent_pid) {
                    let grandparent = Value::Null;
                    let header =
                        self.header(kind::EXEC, event, &parent, &grandparent, registry, cgroups);
                    records.push(exec_record(header, &parent));
                    known_pids.insert(parent_pid);
                }
                let header = self.header(kind::EXEC, event, &process, &parent, registry, cgroups);
                records.push(exec_record(header, &process));
                known_pids.insert(header.tgid);
            }
            "process_exit" => {
                let mut header =
                    self.header(kind::EXIT, event, &process, &parent, registry, cgroups);
                header.flags |= flag::GROUP_DEAD;
                header.args[0] = number(body, "status");
                records.push(RecordBuilder::new(header).finish());
            }
            "process_connect" => {
                let mut header =
                    self.header(kind::SYSCALL, event, &process, &parent, registry, cgroups);
                header.syscall_nr = 42;
                let source: Option<IpAddr> = text(body, "source_ip").parse().ok();
                let destination: Option<IpAddr> = text(body, "destination_ip").parse().ok();
                let mut sock = SockInfo {
                    family: if matches!(destination, Some(IpAddr::V6(_))) {
                        10
                    } else {
                        2
                    },
                    sock_type: 1,
                    protocol: if text(body, "protocol") == "UDP" {
                        17
                    } else {
                        6
                    },
                    local_port: u16::try_from(number(body, "source_port")).unwrap_or(0),
                    remote_port: u16::try_from(number(body, "destination_port")).unwrap_or(0),
                    ..SockInfo::default()
                };
                for (address, slot) in [
                    (source, &mut sock.local_addr),
                    (destination, &mut sock.remote_addr),
                ] {
                    match address {
                        Some(IpAddr::V4(v4)) => slot[..4].copy_from_slice(&v4.octets()),
                        Some(IpAddr::V6(v6)) => *slot = v6.octets(),
                        None => {}
                    }
                }
                records.push(
                    RecordBuilder::new(header)
                        .file(FileInfo {
                            mode: 0o140777,
                            ..FileInfo::default()
                        })
                        .sock(sock)
                        .finish(),
                );
            }
            _ => {}
        }
        Ok(records)
    }
}

fn exec_record(header: Header, process: &Value) -> Vec<u8> {
    let binary = text(process, "binary");
    let mut argv = vec![binary.to_string()];
    argv.extend(split_arguments(text(process, "arguments")));
    RecordBuilder::new(header)
        .file(FileInfo {
            mode: 0o100755,
            ..FileInfo::default()
        })
        .path(binary)
        .string(binary)
        .argv(&argv)
        .path(text(process, "cwd"))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tetragon_arguments_keep_quoted_parts() {
        assert_eq!(
            split_arguments("-g \"daemon off;\""),
            vec!["-g", "daemon off;"]
        );
        assert_eq!(
            split_arguments("-t 1 -m bash"),
            vec!["-t", "1", "-m", "bash"]
        );
    }
}
