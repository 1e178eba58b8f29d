//! The agent's view of the host: applies each decoded record to the process table and the
//! cgroup map, and returns the event enriched with its process chain, descriptor and
//! container. Single-threaded by design: it is the only writer of the process table, and
//! records arrive in the kernel's order.

use std::sync::Arc;

use crate::cgroup::{CgroupResolver, container_from_cgroup_path};
use crate::container::{ContainerRegistry, Lookup};
use crate::decode::{
    argv_from_blob, evt_type_of, fd_info, fd_number, fill_peer_from_sockaddr, path_from_components,
    set_socket_role, sockaddr_from_raw, text,
};
use crate::event::{Container, Event, EventKind, FdInfo, Process, SocketRole};
use crate::process::ProcessTable;
use crate::record::{Header, Record, flag, kind, param};

/// Converts the kernel's boot-time clock into wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct BootClock {
    /// Wall-clock time of boot, ns since the epoch.
    pub boot_epoch_ns: u64,
}

impl BootClock {
    /// Reads both clocks now.
    pub fn now() -> Self {
        let realtime = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        let boottime = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let to_ns = |time: rustix::time::Timespec| {
            (time.tv_sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(time.tv_nsec as u64)
        };
        Self {
            boot_epoch_ns: to_ns(realtime).saturating_sub(to_ns(boottime)),
        }
    }

    /// Wall-clock ns of a boot-time ns.
    pub fn wall_ns(&self, boot_ns: u64) -> u64 {
        self.boot_epoch_ns.saturating_add(boot_ns)
    }
}

/// An enriched event, and whether its container's metadata is still being fetched.
#[derive(Debug)]
pub struct Enriched {
    /// The event.
    pub event: Event,
    /// True when the runtime has not answered for the event's container yet.
    pub container_pending: bool,
}

/// Process table, cgroup map and container registry, applied record by record.
#[derive(Debug)]
pub struct State {
    processes: ProcessTable,
    cgroups: CgroupResolver,
    containers: Arc<ContainerRegistry>,
    clock: BootClock,
    next_num: u64,
    /// Cgroup ids the resolver did not know and /proc could not name.
    pub unknown_cgroups: u64,
    /// Which end each socket (by inode) is, learnt from connect and accept, so that a
    /// duplicated socket keeps its role.
    socket_roles: std::collections::HashMap<u64, SocketRole>,
    /// The last cgroup resolved: consecutive events mostly come from the same cgroup.
    last_cgroup: Option<(u64, Option<(String, &'static str)>)>,
}

/// Most socket roles remembered; the map is cleared when full.
const SOCKET_ROLES_LIMIT: usize = 1 << 16;

impl State {
    /// A state over these parts.
    pub fn new(
        cgroups: CgroupResolver,
        containers: Arc<ContainerRegistry>,
        clock: BootClock,
    ) -> Self {
        Self {
            processes: ProcessTable::new(),
            cgroups,
            containers,
            clock,
            next_num: 1,
            unknown_cgroups: 0,
            socket_roles: std::collections::HashMap::new(),
            last_cgroup: None,
        }
    }

    /// Scans the cgroup hierarchy and /proc, so events of processes that started before the
    /// agent have their chain and container. Returns (cgroups, processes) found.
    pub fn seed(&mut self) -> (usize, usize) {
        let cgroups = self.cgroups.scan();
        let boot = self.clock.boot_epoch_ns;
        let mut processes = ProcessTable::new();
        let resolver = &self.cgroups;
        let containers = &self.containers;
        let host = processes.host_container();
        let count = processes.seed_from_proc(boot, &mut |pid| {
            let Some(path) = resolver.path_of_pid(pid) else {
                return (0, Arc::clone(&host));
            };
            let cgroup_id = resolver.id_of_path(&path).unwrap_or(0);
            match container_from_cgroup_path(&path) {
                Some(found) => {
                    containers.request(&found.full_id);
                    (cgroup_id, Arc::from(found.full_id.as_str()))
                }
                None => (cgroup_id, Arc::clone(&host)),
            }
        });
        self.processes = processes;
        (cgroups, count)
    }

    /// The process table.
    pub fn processes(&self) -> &ProcessTable {
        &self.processes
    }

    /// The container registry.
    pub fn containers(&self) -> &Arc<ContainerRegistry> {
        &self.containers
    }

    /// The cgroup map.
    pub fn cgroups_mut(&mut self) -> &mut CgroupResolver {
        &mut self.cgroups
    }

    /// The container id (full) and runtime of a cgroup, learning unknown ids from /proc.
    fn container_of_cgroup(&mut self, cgroup_id: u64, tgid: u32) -> Option<(String, &'static str)> {
        if let Some((cached_id, cached)) = &self.last_cgroup
            && *cached_id == cgroup_id
        {
            return cached.clone();
        }
        if self.cgroups.path(cgroup_id).is_none() && cgroup_id != 0 {
            match self.cgroups.path_of_pid(tgid) {
                Some(path) => self.cgroups.insert(cgroup_id, path),
                None => {
                    // remembered as the host's until a cgroup_mkdir or /proc names it, so an
                    // unknown id costs one /proc read, not one per event
                    self.unknown_cgroups += 1;
                    self.cgroups.insert(cgroup_id, "/".to_string());
                }
            }
        }
        let found = self
            .cgroups
            .path(cgroup_id)
            .and_then(container_from_cgroup_path)
            .map(|found| (found.full_id, found.runtime));
        self.last_cgroup = Some((cgroup_id, found.clone()));
        found
    }

    fn resolve_container(&mut self, header: &Header) -> (Arc<str>, Arc<Container>, bool) {
        match self.container_of_cgroup(header.cgroup_id, header.tgid) {
            None => (
                self.processes.host_container(),
                self.containers.host(),
                false,
            ),
            Some((full_id, runtime)) => match self.containers.lookup(&full_id, runtime) {
                Lookup::Ready(container) => (Arc::from(full_id.as_str()), container, false),
                Lookup::Pending(container) => (Arc::from(full_id.as_str()), container, true),
            },
        }
    }

    fn process_from_header(&self, header: &Header, container_id: Arc<str>) -> Process {
        let parent = self.processes.get(header.ppid).cloned();
        let known = self.processes.get(header.tgid);
        let mut process = match known {
            Some(existing) => (**existing).clone(),
            None => Process {
                pid: header.tgid,
                name: header.comm(),
                start_time_ns: self.clock.wall_ns(header.ts_boot_ns),
                parent,
                ..Process::default()
            },
        };
        process.ppid = header.ppid;
        process.vpid = header.vpid;
        process.uid = header.uid;
        process.gid = header.gid;
        process.euid = header.euid;
        process.egid = header.egid;
        process.loginuid = header.loginuid;
        process.tty = header.tty;
        process.cap_effective = header.cap_effective;
        process.cap_permitted = header.cap_permitted;
        process.cgroup_id = header.cgroup_id;
        process.pidns = header.pidns;
        process.mntns = header.mntns;
        process.container_id = container_id;
        process
    }

    fn syscall_event(
        &mut self,
        record: &Record<'_>,
        evt_type: &'static str,
        time_ns: u64,
        process: Arc<Process>,
        container: Arc<Container>,
    ) -> Event {
        let header = record.header;
        let fd_num = fd_number(evt_type, header.ret, &header.args);
        let strings = record
            .params()
            .iter()
            .filter(|item| item.param_type == param::STR)
            .map(|item| text(item.data))
            .collect();
        let sockaddr = record.first(param::RAW).and_then(sockaddr_from_raw);
        let mut fd = fd_info(record, evt_type, fd_num);
        if let Some(descriptor) = fd.as_mut() {
            if evt_type == "connect" {
                fill_peer_from_sockaddr(descriptor, sockaddr.as_ref());
            }
            self.track_socket_role(evt_type, descriptor);
        }
        Event {
            num: self.next_num(),
            time_ns,
            kind: EventKind::Syscall,
            evt_type,
            syscall_nr: header.syscall_nr,
            tid: header.tid,
            ret: header.ret,
            args: header.args,
            flags: header.flags,
            process,
            fd,
            strings,
            sockaddr,
            container,
        }
    }

    /// Remembers the role of sockets made by connect/accept/bind/listen and gives it back to
    /// the same socket when it is duplicated.
    fn track_socket_role(&mut self, evt_type: &str, fd: &mut FdInfo) {
        let Some(ino) = fd.file.map(|file| file.ino) else {
            return;
        };
        if !fd.kind.is_ip() {
            return;
        }
        let role = match evt_type {
            "connect" => Some(SocketRole::Client),
            "accept" | "accept4" | "bind" | "listen" => Some(SocketRole::Server),
            _ => None,
        };
        match role {
            Some(role) => {
                if self.socket_roles.len() >= SOCKET_ROLES_LIMIT {
                    self.socket_roles.clear();
                }
                self.socket_roles.insert(ino, role);
            }
            None => {
                if let Some(known) = self.socket_roles.get(&ino) {
                    set_socket_role(fd, *known);
                }
            }
        }
    }

    fn next_num(&mut self) -> u64 {
        let num = self.next_num;
        self.next_num += 1;
        num
    }

    /// Applies one record. Returns the event it makes, or `None` for records that only
    /// update state (cgroup creation).
    pub fn apply(&mut self, record: &Record<'_>) -> Option<Enriched> {
        let header = record.header;
        if header.kind == kind::CGROUP_MKDIR {
            self.last_cgroup = None;
            let path = record.first(param::STR).map(text).unwrap_or_default();
            if let Some(found) = container_from_cgroup_path(&path) {
                self.containers.request(&found.full_id);
            }
            self.cgroups.insert(header.args[0], path);
            return None;
        }
        let (container_id, container, container_pending) = self.resolve_container(&header);
        let evt_type = evt_type_of(record);
        let time_ns = self.clock.wall_ns(header.ts_boot_ns);
        if header.kind == kind::SYSCALL
            && !matches!(evt_type, "chdir" | "fchdir")
            && let Some(known) = self.processes.get(header.tgid)
            && matches_header(known, &header, &container_id)
        {
            // the hot path: nothing about the process changed, share it
            let process = Arc::clone(known);
            let event = self.syscall_event(record, evt_type, time_ns, process, container);
            return Some(Enriched {
                event,
                container_pending,
            });
        }
        let mut process = self.process_from_header(&header, container_id);
        let mut fd = None;
        let mut strings = Vec::new();
        let mut sockaddr = None;
        let event_kind;
        match header.kind {
            kind::EXEC => {
                event_kind = EventKind::Exec;
                let argv = record
                    .first(param::ARGV)
                    .map(argv_from_blob)
                    .unwrap_or_default();
                process.name = header.comm();
                process.exe = argv.first().cloned().unwrap_or_default();
                process.args = argv.into_iter().skip(1).collect();
                process.exepath = record
                    .nth(param::PATH, 0)
                    .map(path_from_components)
                    .unwrap_or_default();
                process.cwd = record
                    .nth(param::PATH, 1)
                    .map(path_from_components)
                    .unwrap_or_default();
                process.exe_upper_layer = header.flags & flag::EXE_UPPER_LAYER != 0;
                process.exe_from_memfd = header.flags & flag::EXE_MEMFD != 0;
                process.exe_ino = record.file_info().map(|file| file.ino).unwrap_or(0);
                process.start_time_ns = time_ns;
                if let Some(requested) = record.first(param::STR) {
                    strings.push(text(requested));
                }
                if process.parent.is_none() {
                    process.parent = self.processes.get(header.ppid).cloned();
                }
            }
            kind::CLONE => {
                event_kind = EventKind::Clone;
                let parent = Arc::new(process.clone());
                self.processes.insert(Arc::clone(&parent));
                let child_pid = u32::try_from(header.args[0]).unwrap_or(0);
                let mut child = process.clone();
                child.pid = child_pid;
                child.ppid = header.tgid;
                child.vpid = 0;
                child.start_time_ns = time_ns;
                child.parent = Some(parent);
                process = child;
            }
            kind::EXIT => {
                event_kind = EventKind::Exit;
            }
            _ => {
                event_kind = EventKind::Syscall;
                let fd_num = fd_number(evt_type, header.ret, &header.args);
                fd = fd_info(record, evt_type, fd_num);
                for item in record.params() {
                    if item.param_type == param::STR {
                        strings.push(text(item.data));
                    }
                }
                sockaddr = record.first(param::RAW).and_then(sockaddr_from_raw);
                if let Some(descriptor) = fd.as_mut() {
                    if evt_type == "connect" {
                        fill_peer_from_sockaddr(descriptor, sockaddr.as_ref());
                    }
                    self.track_socket_role(evt_type, descriptor);
                }
                if header.ret == 0 && matches!(evt_type, "chdir" | "fchdir") {
                    match (evt_type, &fd, strings.first()) {
                        ("fchdir", Some(directory), _) => process.cwd = directory.name.clone(),
                        ("chdir", _, Some(path)) if path.starts_with('/') => {
                            process.cwd = path.clone()
                        }
                        _ => {}
                    }
                }
            }
        }
        let process = Arc::new(process);
        match event_kind {
            EventKind::Exit => {
                self.processes.remove(header.tgid);
            }
            EventKind::Syscall | EventKind::Exec | EventKind::Clone => {
                self.processes.insert(Arc::clone(&process));
            }
        }
        let event = Event {
            num: self.next_num(),
            time_ns,
            kind: event_kind,
            evt_type,
            syscall_nr: header.syscall_nr,
            tid: header.tid,
            ret: header.ret,
            args: header.args,
            flags: header.flags,
            process,
            fd,
            strings,
            sockaddr,
            container,
        };
        Some(Enriched {
            event,
            container_pending,
        })
    }
}

/// Whether a known process already has everything a record's header says about it.
fn matches_header(known: &Process, header: &Header, container_id: &Arc<str>) -> bool {
    known.ppid == header.ppid
        && known.uid == header.uid
        && known.gid == header.gid
        && known.euid == header.euid
        && known.egid == header.egid
        && known.cap_effective == header.cap_effective
        && known.cap_permitted == header.cap_permitted
        && known.tty == header.tty
        && known.cgroup_id == header.cgroup_id
        && known.loginuid == header.loginuid
        && (known.vpid == header.vpid || header.vpid == 0)
        && known.container_id == *container_id
}

#[cfg(test)]
mod tests;
