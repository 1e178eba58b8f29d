//! Overhead of the running agent on syscall-heavy workloads: an open storm, a connect storm
//! and an exec storm, each timed without the agent and with the agent (eBPF sensor, Palisade
//! pack) running, plus a workload paced at 10,000 events/s whose own CPU time is compared.
//! Reports slowdown ratios, the agent's CPU and memory, and kernel drops. Needs root.
//!
//! `cargo bench -p palisade-agent --bench overhead`

// A synchronous benchmark: wall-clock timing with std's clock.
#![allow(clippy::disallowed_types)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn cpu_seconds(pid: u32) -> f64 {
    let ticks = procfs::ticks_per_second() as f64;
    procfs::process::Process::new(pid as i32)
        .and_then(|process| process.stat())
        .map(|stat| (stat.utime + stat.stime) as f64 / ticks)
        .unwrap_or(0.0)
}

fn rss_mib(pid: u32) -> f64 {
    procfs::process::Process::new(pid as i32)
        .and_then(|process| process.status())
        .map(|status| status.vmrss.unwrap_or(0) as f64 / 1024.0)
        .unwrap_or(0.0)
}

fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id())
}

fn open_storm(count: usize, file: &Path) -> Duration {
    let start = Instant::now();
    for _ in 0..count {
        let _ = std::fs::File::open(file);
    }
    start.elapsed()
}

fn connect_storm(count: usize) -> Duration {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let address = listener.local_addr().expect("address");
    let acceptor = std::thread::spawn(move || {
        for _ in 0..count {
            if listener.accept().is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    for _ in 0..count {
        let _ = std::net::TcpStream::connect(address);
    }
    let elapsed = start.elapsed();
    let _ = acceptor.join();
    elapsed
}

fn exec_storm(count: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..count {
        let _ = Command::new("/bin/true").status();
    }
    start.elapsed()
}

/// Opens at `rate` per second for `seconds`; returns the CPU seconds this process used.
fn paced_opens(rate: u64, seconds: u64, file: &Path) -> f64 {
    let before = own_cpu_seconds();
    let start = Instant::now();
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let total = rate * seconds;
    for index in 0..total {
        let due = start + interval * index as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let _ = std::fs::File::open(file);
    }
    own_cpu_seconds() - before
}

struct Agent {
    child: Child,
    status: std::path::PathBuf,
}

impl Agent {
    fn start(directory: &Path) -> Self {
        let status = directory.join("status.json");
        let agent = env!("CARGO_BIN_EXE_palisade-node-agent");
        let child = Command::new(agent)
            .args(["--sensor", "ebpf", "--stdout"])
            .arg("--status-file")
            .arg(&status)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("agent starts");
        let start = Instant::now();
        while !status.exists() && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(status.exists(), "the agent did not start");
        Self { child, status }
    }

    fn drops(&self) -> u64 {
        std::fs::read_to_string(&self.status)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|value| value["drops"]["kernel_ringbuf_full"].as_u64())
            .unwrap_or(u64::MAX)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("target.txt");
    std::fs::write(&file, "x").expect("file");
    let opens = 200_000;
    let connects = 5_000;
    let execs = 1_000;

    let run_storms = || {
        (
            open_storm(opens, &file),
            connect_storm(connects),
            exec_storm(execs),
            paced_opens(10_000, 3, &file),
        )
    };
    // warm up caches, then the baseline
    let _ = open_storm(opens / 10, &file);
    let baseline = run_storms();

    let agent = Agent::start(scratch.path());
    std::thread::sleep(Duration::from_secs(1));
    let agent_pid = agent.child.id();
    let cpu_before = cpu_seconds(agent_pid);
    let wall = Instant::now();
    let with_agent = run_storms();
    let agent_cpu = cpu_seconds(agent_pid) - cpu_before;
    let elapsed = wall.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(1500));
    let drops = agent.drops();
    let rss = rss_mib(agent_pid);

    let ratio = |with: Duration, without: Duration| with.as_secs_f64() / without.as_secs_f64();
    println!("overhead benchmark (agent: eBPF sensor + Palisade pack)");
    println!(
        "  open storm    {opens:>7} opens:    {:>8.3}s -> {:>8.3}s  slowdown x{:.3}",
        baseline.0.as_secs_f64(),
        with_agent.0.as_secs_f64(),
        ratio(with_agent.0, baseline.0)
    );
    println!(
        "  connect storm {connects:>7} connects: {:>8.3}s -> {:>8.3}s  slowdown x{:.3}",
        baseline.1.as_secs_f64(),
        with_agent.1.as_secs_f64(),
        ratio(with_agent.1, baseline.1)
    );
    println!(
        "  exec storm    {execs:>7} execs:    {:>8.3}s -> {:>8.3}s  slowdown x{:.3}",
        baseline.2.as_secs_f64(),
        with_agent.2.as_secs_f64(),
        ratio(with_agent.2, baseline.2)
    );
    println!(
        "  paced 10,000 opens/s for 3 s: workload CPU {:.3}s -> {:.3}s  ratio x{:.3}",
        baseline.3,
        with_agent.3,
        if baseline.3 > 0.0 {
            with_agent.3 / baseline.3
        } else {
            f64::NAN
        }
    );
    println!(
        "  agent CPU during the storms: {agent_cpu:.2}s over {elapsed:.2}s wall ({:.1}% of one core); RSS {rss:.1} MiB; kernel drops {drops}",
        100.0 * agent_cpu / elapsed
    );
}
