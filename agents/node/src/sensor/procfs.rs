//! The fallback sensor for hosts where eBPF cannot load: polls /proc for processes that
//! appeared or disappeared since the last scan and writes exec and exit records for them.
//! It sees processes that live at least one poll interval, and no file, network or
//! privilege syscalls: rules on those stay silent under it, which the agent says at start.

use std::collections::HashMap;
use std::time::Duration;

use super::{RecordSource, SensorStats};
use crate::cgroup::CgroupResolver;
use crate::error::AgentError;
use crate::record::{FileInfo, Header, RecordBuilder, comm_bytes, kind};

/// The /proc polling sensor.
#[derive(Debug)]
pub struct ProcfsSensor {
    cgroups: CgroupResolver,
    known: HashMap<u32, u64>,
    skip_tgid: u32,
    interval: Duration,
    emitted: u64,
    first_scan_done: bool,
    boot_ns_at_start: u64,
}

fn boot_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

impl ProcfsSensor {
    /// A sensor polling every `interval`. Processes alive at start are not reported (the
    /// process table is seeded from /proc separately).
    pub fn new(cgroups: CgroupResolver, skip_tgid: u32, interval: Duration) -> Self {
        Self {
            cgroups,
            known: HashMap::new(),
            skip_tgid,
            interval,
            emitted: 0,
            first_scan_done: false,
            boot_ns_at_start: boot_ns(),
        }
    }

    fn exec_record(&mut self, entry: &procfs::process::Process) -> Option<Vec<u8>> {
        let stat = entry.stat().ok()?;
        let status = entry.status().ok()?;
        let pid = u32::try_from(stat.pid).ok()?;
        let ticks = procfs::ticks_per_second().max(1);
        let cgroup_path = self.cgroups.path_of_pid(pid);
        let cgroup_id = cgroup_path
            .as_deref()
            .and_then(|path| self.cgroups.id_of_path(path))
            .unwrap_or(0);
        if let Some(path) = cgroup_path {
            self.cgroups.insert(cgroup_id, path);
        }
        let header = Header {
            kind: kind::EXEC,
            ts_boot_ns: stat.starttime.saturating_mul(1_000_000_000) / ticks,
            tgid: pid,
            tid: pid,
            ppid: u32::try_from(stat.ppid).unwrap_or(0),
            vpid: status
                .nspid
                .as_ref()
                .and_then(|pids| pids.last().copied())
                .and_then(|vpid| u32::try_from(vpid).ok())
                .unwrap_or(pid),
            uid: status.ruid,
            gid: status.rgid,
            euid: status.euid,
            egid: status.egid,
            loginuid: u32::MAX,
            tty: u32::try_from(stat.tty_nr).unwrap_or(0),
            cgroup_id,
            syscall_nr: 59,
            cap_effective: status.capeff,
            cap_permitted: status.capprm,
            comm: comm_bytes(&stat.comm),
            ..Header::default()
        };
        let exe = entry
            .exe()
            .map(|path| path.to_string_lossy().into_owned())
            .unwrap_or_default();
        let argv = entry.cmdline().unwrap_or_default();
        let cwd = entry
            .cwd()
            .map(|path| path.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut builder = RecordBuilder::new(header);
        builder
            .file(FileInfo {
                mode: 0o100755,
                ..FileInfo::default()
            })
            .path(&exe)
            .string(&exe)
            .argv(&argv)
            .path(&cwd);
        Some(builder.finish())
    }

    fn exit_record(pid: u32, boot_ns_now: u64) -> Vec<u8> {
        let header = Header {
            kind: kind::EXIT,
            ts_boot_ns: boot_ns_now,
            tgid: pid,
            tid: pid,
            flags: crate::record::flag::GROUP_DEAD,
            ..Header::default()
        };
        RecordBuilder::new(header).finish()
    }
}

impl RecordSource for ProcfsSensor {
    fn next_batch(
        &mut self,
        timeout: Duration,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, AgentError> {
        if self.first_scan_done {
            std::thread::sleep(timeout.min(self.interval));
        }
        let all =
            procfs::process::all_processes().map_err(|error| AgentError::SensorUnavailable {
                reason: format!("reading /proc: {error}"),
            })?;
        let mut seen = HashMap::with_capacity(self.known.len() + 16);
        let mut count = 0;
        for entry in all.flatten() {
            let Ok(stat) = entry.stat() else {
                continue;
            };
            let Ok(pid) = u32::try_from(stat.pid) else {
                continue;
            };
            if pid == self.skip_tgid {
                continue;
            }
            seen.insert(pid, stat.starttime);
            let is_new = self.known.get(&pid) != Some(&stat.starttime);
            if is_new
                && self.first_scan_done
                && let Some(record) = self.exec_record(&entry)
            {
                sink(&record);
                count += 1;
            }
        }
        let now = boot_ns().max(self.boot_ns_at_start);
        let gone: Vec<u32> = self
            .known
            .keys()
            .filter(|pid| !seen.contains_key(pid))
            .copied()
            .collect();
        if self.first_scan_done {
            for pid in gone {
                sink(&Self::exit_record(pid, now));
                count += 1;
            }
        }
        self.known = seen;
        self.first_scan_done = true;
        self.emitted += count as u64;
        Ok(count)
    }

    fn stats(&self) -> SensorStats {
        SensorStats {
            emitted: self.emitted,
            ..SensorStats::default()
        }
    }

    fn name(&self) -> &'static str {
        "procfs"
    }
}
