//! A private containerd for tests: Debian's containerd and runc, on a socket and state
//! directory of the test's own, stopped when dropped.

// Waits on real processes from synchronous tests: std's clock.
#![allow(clippy::disallowed_types)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PrivateContainerd {
    child: Child,
    pub socket: PathBuf,
    pub namespace: String,
}

fn require(binary: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).exists()))
        .unwrap_or(false);
    assert!(
        found,
        "{binary} is missing: install Debian's {package} (apt-get install {package})"
    );
}

impl PrivateContainerd {
    /// Starts containerd under `directory`.
    pub fn start(directory: &Path) -> Self {
        require("containerd", "containerd");
        require("ctr", "containerd");
        require("runc", "runc");
        require("containerd-shim-runc-v2", "containerd");
        let socket = directory.join("containerd.sock");
        let config = directory.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{socket}\"\n[ttrpc]\n  address = \"{socket}.ttrpc\"\n",
                root = directory.join("root").display(),
                state = directory.join("state").display(),
                socket = socket.display(),
            ),
        )
        .expect("containerd config");
        let log = std::fs::File::create(directory.join("containerd.log")).expect("log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("containerd starts");
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "containerd did not open {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let namespace = format!("palisade-test-{}", std::process::id());
        let daemon = Self {
            child,
            socket,
            namespace,
        };
        // the API answers once a namespace can be listed
        let start = Instant::now();
        while !daemon.ctr(&["namespaces", "ls"]).status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "containerd does not answer"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        daemon
    }

    /// Runs ctr against this containerd in the test namespace.
    pub fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", &self.namespace])
            .args(args)
            .output()
            .expect("ctr runs")
    }

    /// Runs ctr and requires success.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let output = self.ctr(args);
        assert!(
            output.status.success(),
            "ctr {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for PrivateContainerd {
    fn drop(&mut self) {
        for container in self
            .ctr(&["containers", "ls", "-q"])
            .stdout
            .split(|&byte| byte == b'\n')
        {
            let id = String::from_utf8_lossy(container).trim().to_string();
            if id.is_empty() {
                continue;
            }
            let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", &id]);
            std::thread::sleep(Duration::from_millis(100));
            let _ = self.ctr(&["tasks", "delete", "-f", &id]);
            let _ = self.ctr(&["containers", "delete", &id]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
