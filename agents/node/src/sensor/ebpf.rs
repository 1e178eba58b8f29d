//! The eBPF sensor: loads the CO-RE programs built from bpf/palisade.bpf.c with aya,
//! attaches them to BTF-typed tracepoints, and reads the ring buffer.
//!
//! When loading fails the error says which capability or kernel feature is missing; the
//! caller can then fall back to the /proc sensor.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use aya::maps::{Array, MapData, PerCpuArray, RingBuf};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};

use super::{RecordSource, SensorStats};
use crate::cgroup::CgroupConfig;
use crate::error::AgentError;
use crate::syscalls;

/// The compiled programs (empty when built with PALISADE_SKIP_BPF_BUILD=1).
static PROGRAMS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/palisade.bpf.o"));

/// Program name and the tracepoint it attaches to.
const ATTACHMENTS: &[(&str, &str)] = &[
    ("pal_exec", "sched_process_exec"),
    ("pal_fork", "sched_process_fork"),
    ("pal_exit", "sched_process_exit"),
    ("pal_cgroup_mkdir", "cgroup_mkdir"),
    ("pal_sys_exit", "sys_exit"),
];

const STAT_RINGBUF_FULL: u32 = 0;
const STAT_EMITTED: u32 = 1;
const STAT_OVERSIZE: u32 = 2;

/// How the sensor is loaded.
#[derive(Debug, Clone)]
pub struct EbpfOptions {
    /// Ring buffer size in bytes (a power of two, at least one page).
    pub ringbuf_bytes: u32,
    /// Process whose events the kernel skips (the agent itself).
    pub skip_tgid: u32,
    /// The cgroup hierarchy that names containers.
    pub cgroup: CgroupConfig,
    /// Syscalls to report on exit, by name; empty means every supported one.
    pub syscalls: Vec<String>,
}

/// The loaded and attached sensor.
pub struct EbpfSensor {
    // Keeps the programs and their links alive.
    _ebpf: Ebpf,
    ring: RingBuf<MapData>,
    stats: PerCpuArray<MapData, u64>,
}

impl std::fmt::Debug for EbpfSensor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("EbpfSensor").finish_non_exhaustive()
    }
}

fn unavailable(reason: impl Into<String>) -> AgentError {
    AgentError::SensorUnavailable {
        reason: reason.into(),
    }
}

/// Effective capabilities of this process, from /proc/self/status.
fn own_capabilities() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Checks what loading needs before trying, so the error names the missing piece.
pub fn preflight() -> Result<(), AgentError> {
    if PROGRAMS.is_empty() {
        return Err(unavailable(
            "this agent was built without its eBPF programs (PALISADE_SKIP_BPF_BUILD=1 or a \
             non-x86_64 target); rebuild with clang, libbpf-dev and bpftool installed",
        ));
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(unavailable(
            "the kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing): CO-RE programs \
             need a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.8 or later)",
        ));
    }
    let capabilities = own_capabilities();
    let cap_sys_admin = 1u64 << 21;
    let cap_perfmon = 1u64 << 38;
    let cap_bpf = 1u64 << 39;
    let has_admin = capabilities & cap_sys_admin != 0;
    let has_bpf_pair = capabilities & cap_bpf != 0 && capabilities & cap_perfmon != 0;
    if !has_admin && !has_bpf_pair {
        return Err(unavailable(format!(
            "missing capabilities: loading tracing programs needs CAP_BPF and CAP_PERFMON \
             (or CAP_SYS_ADMIN); this process has {:#x} ({})",
            capabilities,
            syscalls::capability_names(capabilities).join(",")
        )));
    }
    Ok(())
}

/// Explains a load or attach failure in terms of what the kernel lacks.
fn explain(step: &str, error: &dyn std::error::Error) -> AgentError {
    let mut chain = error.to_string();
    let mut source = error.source();
    let mut permission_denied = false;
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        if let Some(io_error) = cause.downcast_ref::<std::io::Error>()
            && io_error.kind() == std::io::ErrorKind::PermissionDenied
        {
            permission_denied = true;
        }
        source = cause.source();
    }
    let hint = if permission_denied {
        let lockdown = std::fs::read_to_string("/sys/kernel/security/lockdown").unwrap_or_default();
        format!(
            " (the kernel refused with EPERM: check CAP_BPF/CAP_PERFMON or CAP_SYS_ADMIN, \
             kernel.unprivileged_bpf_disabled, a seccomp profile blocking bpf(), and lockdown: {})",
            lockdown.trim()
        )
    } else {
        String::new()
    };
    unavailable(format!("{step}: {chain}{hint}"))
}

impl EbpfSensor {
    /// Loads and attaches every program. Does not touch RLIMIT_MEMLOCK: kernels since 5.11
    /// charge BPF memory to the memory cgroup.
    pub fn load(options: &EbpfOptions) -> Result<Self, AgentError> {
        preflight()?;
        let btf = Btf::from_sys_fs().map_err(|error| explain("reading kernel BTF", &error))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .override_global("agent_tgid", &options.skip_tgid, true)
            .override_global("cgroup_subsys", &options.cgroup.subsys_index, true)
            .override_global("cgroup_hierarchy", &options.cgroup.hierarchy_id, true)
            .map_max_entries("pal_events", options.ringbuf_bytes)
            .load(PROGRAMS)
            .map_err(|error| explain("loading the eBPF object", &error))?;
        for (program_name, tracepoint) in ATTACHMENTS {
            let program: &mut BtfTracePoint = ebpf
                .program_mut(program_name)
                .ok_or_else(|| {
                    unavailable(format!("program {program_name} missing from the object"))
                })?
                .try_into()
                .map_err(|error| explain(program_name, &error))?;
            program.load(tracepoint, &btf).map_err(|error| {
                explain(
                    &format!("loading {program_name} (tp_btf/{tracepoint})"),
                    &error,
                )
            })?;
            program.attach().map_err(|error| {
                explain(
                    &format!("attaching {program_name} to tp_btf/{tracepoint}"),
                    &error,
                )
            })?;
        }
        {
            let interest_map = ebpf
                .map_mut("pal_interest")
                .ok_or_else(|| unavailable("map pal_interest missing from the object"))?;
            let mut interest: Array<&mut MapData, u32> = Array::try_from(interest_map)
                .map_err(|error| explain("opening pal_interest", &error))?;
            for syscall in syscalls::REPORTED {
                let wanted = options.syscalls.is_empty()
                    || options.syscalls.iter().any(|name| name == syscall.name);
                if wanted {
                    interest
                        .set(syscall.number, 1, 0)
                        .map_err(|error| explain("filling pal_interest", &error))?;
                }
            }
        }
        let ring = RingBuf::try_from(
            ebpf.take_map("pal_events")
                .ok_or_else(|| unavailable("map pal_events missing from the object"))?,
        )
        .map_err(|error| explain("opening the ring buffer", &error))?;
        let stats = PerCpuArray::try_from(
            ebpf.take_map("pal_stats")
                .ok_or_else(|| unavailable("map pal_stats missing from the object"))?,
        )
        .map_err(|error| explain("opening pal_stats", &error))?;
        Ok(Self {
            _ebpf: ebpf,
            ring,
            stats,
        })
    }

    fn stat(&self, index: u32) -> u64 {
        self.stats
            .get(&index, 0)
            .map(|values| values.iter().sum())
            .unwrap_or(0)
    }
}

impl RecordSource for EbpfSensor {
    fn next_batch(
        &mut self,
        timeout: Duration,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, AgentError> {
        let mut count = 0;
        while let Some(item) = self.ring.next() {
            sink(&item);
            count += 1;
        }
        if count > 0 {
            return Ok(count);
        }
        let timeout = rustix::event::Timespec::try_from(timeout).ok();
        let mut poll_fds = [rustix::event::PollFd::from_borrowed_fd(
            self.ring.as_fd(),
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut poll_fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(error) => {
                return Err(unavailable(format!("polling the ring buffer: {error}")));
            }
        }
        while let Some(item) = self.ring.next() {
            sink(&item);
            count += 1;
        }
        Ok(count)
    }

    fn stats(&self) -> SensorStats {
        SensorStats {
            emitted: self.stat(STAT_EMITTED),
            ringbuf_full: self.stat(STAT_RINGBUF_FULL),
            oversize: self.stat(STAT_OVERSIZE),
        }
    }

    fn name(&self) -> &'static str {
        "ebpf"
    }
}
