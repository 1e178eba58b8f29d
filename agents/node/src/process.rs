//! The process table: every live process with its parent chain, seeded from /proc at start
//! and kept current by exec, clone and exit records.

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::Process;

/// Most processes tracked; past it, entries of processes that no longer exist in /proc are
/// swept before a new one is added.
const DEFAULT_CAPACITY: usize = 1 << 20;

/// Live processes by pid.
#[derive(Debug)]
pub struct ProcessTable {
    processes: HashMap<u32, Arc<Process>>,
    capacity: usize,
    host_container: Arc<str>,
}

impl Default for ProcessTable {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessTable {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            processes: HashMap::new(),
            capacity: DEFAULT_CAPACITY,
            host_container: Arc::from("host"),
        }
    }

    /// A process by pid.
    pub fn get(&self, pid: u32) -> Option<&Arc<Process>> {
        self.processes.get(&pid)
    }

    /// Adds or replaces a process.
    pub fn insert(&mut self, process: Arc<Process>) {
        if self.processes.len() >= self.capacity && !self.processes.contains_key(&process.pid) {
            self.sweep_dead();
        }
        self.processes.insert(process.pid, process);
    }

    /// Removes a process that exited.
    pub fn remove(&mut self, pid: u32) -> Option<Arc<Process>> {
        self.processes.remove(&pid)
    }

    /// Number of processes.
    pub fn len(&self) -> usize {
        self.processes.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    /// Removes entries whose process is gone (their exit record was lost).
    pub fn sweep_dead(&mut self) -> usize {
        let before = self.processes.len();
        self.processes
            .retain(|pid, _| std::path::Path::new(&format!("/proc/{pid}")).exists());
        before - self.processes.len()
    }

    /// The shared "host" container id string.
    pub fn host_container(&self) -> Arc<str> {
        Arc::clone(&self.host_container)
    }

    /// Seeds the table from /proc. `container_of` maps a pid to (cgroup id, container id).
    /// Parents are linked after every process is read, so the order of /proc does not matter.
    pub fn seed_from_proc(
        &mut self,
        boot_epoch_ns: u64,
        container_of: &mut dyn FnMut(u32) -> (u64, Arc<str>),
    ) -> usize {
        let Ok(all) = procfs::process::all_processes() else {
            return 0;
        };
        let ticks_per_second = procfs::ticks_per_second().max(1);
        let mut flat: HashMap<u32, Process> = HashMap::new();
        for entry in all.flatten() {
            if let Some(process) = read_proc(&entry, boot_epoch_ns, ticks_per_second, container_of)
            {
                flat.insert(process.pid, process);
            }
        }
        let pids: Vec<u32> = flat.keys().copied().collect();
        let mut linked: HashMap<u32, Arc<Process>> = HashMap::new();
        for pid in pids {
            link(pid, &flat, &mut linked, 0);
        }
        let count = linked.len();
        for (_, process) in linked {
            self.insert(process);
        }
        count
    }
}

fn link(
    pid: u32,
    flat: &HashMap<u32, Process>,
    linked: &mut HashMap<u32, Arc<Process>>,
    depth: usize,
) -> Option<Arc<Process>> {
    if let Some(done) = linked.get(&pid) {
        return Some(Arc::clone(done));
    }
    let process = flat.get(&pid)?;
    let parent = if depth < 128 && process.ppid != 0 && process.ppid != pid {
        link(process.ppid, flat, linked, depth + 1)
    } else {
        None
    };
    let mut owned = process.clone();
    owned.parent = parent;
    let shared = Arc::new(owned);
    linked.insert(pid, Arc::clone(&shared));
    Some(shared)
}

fn read_proc(
    entry: &procfs::process::Process,
    boot_epoch_ns: u64,
    ticks_per_second: u64,
    container_of: &mut dyn FnMut(u32) -> (u64, Arc<str>),
) -> Option<Process> {
    let stat = entry.stat().ok()?;
    let pid = u32::try_from(stat.pid).ok()?;
    let status = entry.status().ok();
    let argv = entry.cmdline().unwrap_or_default();
    let exepath = entry
        .exe()
        .map(|path| path.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cwd = entry
        .cwd()
        .map(|path| path.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (cgroup_id, container_id) = container_of(pid);
    let namespace_inode = |name: &str| -> u32 {
        std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
            .ok()
            .and_then(|target| {
                let text = target.to_string_lossy().into_owned();
                let start = text.find('[')? + 1;
                let end = text.find(']')?;
                text.get(start..end)?.parse::<u32>().ok()
            })
            .unwrap_or(0)
    };
    let (uid, euid, gid, egid, cap_effective, cap_permitted, vpid) = match &status {
        Some(status) => (
            status.ruid,
            status.euid,
            status.rgid,
            status.egid,
            status.capeff,
            status.capprm,
            status
                .nspid
                .as_ref()
                .and_then(|pids| pids.last().copied())
                .and_then(|vpid| u32::try_from(vpid).ok())
                .unwrap_or(pid),
        ),
        None => (0, 0, 0, 0, 0, 0, pid),
    };
    let start_time_ns = boot_epoch_ns
        .saturating_add(stat.starttime.saturating_mul(1_000_000_000) / ticks_per_second);
    let loginuid = std::fs::read_to_string(format!("/proc/{pid}/loginuid"))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .unwrap_or(u32::MAX);
    Some(Process {
        pid,
        vpid,
        ppid: u32::try_from(stat.ppid).unwrap_or(0),
        name: stat.comm.clone(),
        exe: argv.first().cloned().unwrap_or_default(),
        exepath,
        args: argv.into_iter().skip(1).collect(),
        cwd,
        tty: u32::try_from(stat.tty_nr).unwrap_or(0),
        uid,
        gid,
        euid,
        egid,
        loginuid,
        cap_effective,
        cap_permitted,
        exe_upper_layer: false,
        exe_from_memfd: false,
        exe_ino: 0,
        start_time_ns,
        cgroup_id,
        pidns: namespace_inode("pid"),
        mntns: namespace_inode("mnt"),
        container_id,
        parent: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_finds_this_process_and_links_its_parent() {
        let mut table = ProcessTable::new();
        let host: Arc<str> = Arc::from("host");
        let count = table.seed_from_proc(0, &mut |_| (0, Arc::clone(&host)));
        assert!(count > 1, "only {count} processes read from /proc");
        let own = table.get(std::process::id()).expect("own process seeded");
        assert!(!own.exepath.is_empty());
        let parent = own.parent.as_ref().expect("parent linked");
        assert_eq!(parent.pid, own.ppid);
    }
}
