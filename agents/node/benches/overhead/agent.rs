//! The agent under test, run as its own process the way a node runs it: eBPF sensor only
//! (no fallback to /proc, so a sensor that cannot load fails the benchmark), the default
//! rule pack, alerts to stdout.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Counters from the agent's status file.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    /// Kernel records the agent has read.
    pub records: u64,
    /// Records the kernel lost (ring buffer full or oversize).
    pub kernel_drops: u64,
}

pub struct Agent {
    child: Child,
    status_path: PathBuf,
    stderr_path: PathBuf,
}

impl Agent {
    /// Starts the agent and waits until its pipeline runs. Panics, with the agent's own
    /// error output, if the agent exits or does not come up: a benchmark of an agent whose
    /// sensor did not load would time the workload alone.
    pub fn start(directory: &Path) -> Self {
        let status_path = directory.join("status.json");
        let stderr_path = directory.join("agent.stderr");
        let _ = std::fs::remove_file(&status_path);
        let stderr = std::fs::File::create(&stderr_path).expect("agent stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_palisade-node-agent"))
            .args(["--sensor", "ebpf", "--stdout"])
            .arg("--status-file")
            .arg(&status_path)
            .arg("--spool-dir")
            .arg(directory.join("spool"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the agent binary starts");
        let mut agent = Self {
            child,
            status_path,
            stderr_path,
        };
        let start = Instant::now();
        while !agent.status_path.exists() {
            agent.assert_running();
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the agent did not write its status within 60 s; its output:\n{}",
                agent.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(exit) = self.child.try_wait().expect("agent status") {
            panic!(
                "the agent exited ({exit}); the benchmark needs the eBPF sensor (root, BTF, \
                 tracepoints). Its output:\n{}",
                self.output()
            );
        }
    }

    /// Counters from a status file written after this call: the agent rewrites it every
    /// second, after the records read so far have been counted.
    pub fn fresh_status(&mut self) -> Status {
        let asked = SystemTime::now();
        let start = Instant::now();
        loop {
            self.assert_running();
            let written = std::fs::metadata(&self.status_path).and_then(|meta| meta.modified());
            if written.is_ok_and(|written| written > asked) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the agent stopped refreshing {}",
                self.status_path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&self.status_path).expect("agent status file");
        let value: serde_json::Value = serde_json::from_str(&text).expect("agent status is JSON");
        let counter = |pointer: &str| {
            value
                .pointer(pointer)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or_else(|| panic!("agent status has no {pointer}: {text}"))
        };
        Status {
            records: counter("/records"),
            kernel_drops: counter("/drops/kernel_ringbuf_full"),
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
