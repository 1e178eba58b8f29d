//! Clocks and counters read around each workload. CPU times come from the scheduler's
//! nanosecond accounting (the process CPU clock, /proc/<pid>/task/*/schedstat), not from
//! 10 ms ticks, so that a 5 % difference is visible in a window of a few seconds.

use std::path::Path;
use std::time::Duration;

/// CPU time used so far by every thread of this process, to the nanosecond.
pub fn own_cpu() -> Duration {
    let spec = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(spec.tv_sec as u64, spec.tv_nsec as u32)
}

/// CPU time of this process's reaped children (`cutime + cstime` in /proc/self/stat).
///
/// The kernel adds each reaped child's exact runtime to these sums and converts to clock
/// ticks only when they are read, so the error is at most two ticks over the whole sum, not
/// a tick per child.
pub fn reaped_children_cpu() -> Duration {
    let stat = procfs::process::Process::myself()
        .and_then(|process| process.stat())
        .expect("/proc/self/stat is readable");
    let ticks = u64::try_from(stat.cutime + stat.cstime).expect("child CPU time is positive");
    Duration::from_nanos(ticks * 1_000_000_000 / procfs::ticks_per_second())
}

/// CPU time of this process and its reaped children.
pub fn workload_cpu() -> Duration {
    own_cpu() + reaped_children_cpu()
}

/// CPU time of every live thread of `pid`, from the first field of each thread's schedstat
/// (sum_exec_runtime in nanoseconds). Threads that exited are not counted; the agent's
/// threads live as long as it does.
pub fn process_cpu(pid: u32) -> Duration {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    let entries = std::fs::read_dir(&tasks)
        .unwrap_or_else(|error| panic!("reading {}: {error}", tasks.display()));
    let mut total_ns = 0u64;
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue; // the thread exited between the listing and the read
        };
        let runtime_ns = text
            .split_whitespace()
            .next()
            .and_then(|field| field.parse::<u64>().ok())
            .expect("schedstat starts with the runtime in nanoseconds");
        total_ns += runtime_ns;
    }
    Duration::from_nanos(total_ns)
}

/// Resident memory of `pid` in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = procfs::process::Process::new(pid as i32)
        .and_then(|process| process.status())
        .expect("/proc/<pid>/status is readable");
    status.vmrss.unwrap_or(0) as f64 / 1024.0
}

/// Busy CPU time of the whole machine, all CPUs, from /proc/stat (ticks: 10 ms per CPU).
/// Includes every other process on the machine; a cross-check, not the headline figure.
pub fn machine_busy() -> Duration {
    use procfs::CurrentSI;
    let stat = procfs::KernelStats::current().expect("/proc/stat is readable");
    let total = stat.total;
    let ticks = total.user
        + total.nice
        + total.system
        + total.irq.unwrap_or(0)
        + total.softirq.unwrap_or(0);
    Duration::from_nanos(ticks * 1_000_000_000 / procfs::ticks_per_second())
}

/// Value at quantile `q` (0..=1) of `sorted`, nearest rank.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    debug_assert!(sorted.windows(2).all(|pair| pair[0] <= pair[1]));
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
