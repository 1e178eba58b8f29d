//! The eBPF sensor on this machine's kernel: loads, attaches, and reports what processes do,
//! with paths resolved by the kernel. Needs root (CAP_BPF + CAP_PERFMON or CAP_SYS_ADMIN)
//! and BTF; fails loudly without them.

// Waits on real processes from synchronous tests: std's clock.
#![allow(clippy::disallowed_types)]

use std::time::{Duration, Instant};

use palisade_agent::cgroup::{CgroupConfig, CgroupResolver};
use palisade_agent::container::ContainerRegistry;
use palisade_agent::event::{Event, EventKind, FdKind};
use palisade_agent::record::Record;
use palisade_agent::sensor::RecordSource;
use palisade_agent::sensor::ebpf::{EbpfOptions, EbpfSensor};
use palisade_agent::state::{BootClock, State};

fn load_sensor() -> EbpfSensor {
    let cgroup = CgroupConfig::detect().expect("cgroup layout");
    EbpfSensor::load(&EbpfOptions {
        ringbuf_bytes: 4 << 20,
        skip_tgid: std::process::id(),
        cgroup,
        syscalls: Vec::new(),
    })
    .unwrap_or_else(|error| {
        panic!("the eBPF sensor must load on this machine (run as root): {error}")
    })
}

/// Collects events until `done` is satisfied or the deadline passes.
fn collect(
    sensor: &mut EbpfSensor,
    state: &mut State,
    deadline: Duration,
    mut done: impl FnMut(&[Event]) -> bool,
) -> Vec<Event> {
    let start = Instant::now();
    let mut events = Vec::new();
    while start.elapsed() < deadline {
        sensor
            .next_batch(Duration::from_millis(50), &mut |bytes| {
                let record = Record::decode(bytes).expect("kernel records decode");
                if let Some(enriched) = state.apply(&record) {
                    events.push(enriched.event);
                }
            })
            .expect("ring buffer readable");
        if done(&events) {
            break;
        }
    }
    events
}

#[test]
fn exec_open_connect_and_exit_are_reported_with_kernel_resolved_objects() {
    let mut sensor = load_sensor();
    let cgroup = CgroupConfig::detect().expect("cgroup layout");
    let (registry, _requests) = ContainerRegistry::new(false);
    let mut state = State::new(CgroupResolver::new(cgroup), registry, BootClock::now());
    state.seed();

    let scratch = tempfile::tempdir().expect("tempdir");
    let target = scratch.path().join("secret.txt");
    std::fs::write(&target, "x").expect("write");
    // a symlink: the kernel must report the file it resolves to, not the name asked for
    let link = scratch.path().join("innocent-link");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let script = format!(
        "cat {} >/dev/null; exec 3<>/dev/tcp/127.0.0.1/{port}; exit 0",
        link.display()
    );
    let status = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(scratch.path())
        .status()
        .expect("bash runs");
    assert!(status.success());
    let target_text = target.display().to_string();

    let events = collect(&mut sensor, &mut state, Duration::from_secs(10), |events| {
        events.iter().any(|event| {
            event.evt_type == "connect"
                && event
                    .fd
                    .as_ref()
                    .is_some_and(|fd| fd.name.ends_with(&format!(":{port}")))
        })
    });

    let link_text = link.display().to_string();
    let exec = events
        .iter()
        .find(|event| event.kind == EventKind::Exec && event.process.args == [link_text.clone()])
        .expect("exec of cat reported");
    assert_eq!(exec.evt_type, "execve");
    assert_eq!(exec.process.name, "cat");
    assert!(
        exec.process.exepath.ends_with("/cat"),
        "exepath {}",
        exec.process.exepath
    );
    assert_eq!(exec.process.cwd, scratch.path().display().to_string());
    let parent = exec.process.parent.as_ref().expect("parent known");
    assert_eq!(parent.name, "bash");

    let open = events
        .iter()
        .find(|event| {
            event.process.name == "cat"
                && event.evt_type.starts_with("open")
                && event.fd.as_ref().is_some_and(|fd| fd.name == target_text)
        })
        .unwrap_or_else(|| {
            panic!("open of {target_text} through the symlink reported with the resolved path")
        });
    let fd = open.fd.as_ref().expect("fd");
    assert_eq!(fd.kind, FdKind::File);
    assert_eq!(fd.filename(), Some("secret.txt"));
    assert!(open.ret >= 0);

    // other shells on the machine connect too (to unix sockets, say): pick ours by its port
    let connect = events
        .iter()
        .find(|event| {
            event.evt_type == "connect"
                && event.process.name == "bash"
                && event
                    .fd
                    .as_ref()
                    .is_some_and(|fd| fd.name.ends_with(&format!(":{port}")))
        })
        .expect("connect reported");
    let fd = connect.fd.as_ref().expect("socket fd");
    assert_eq!(fd.kind, FdKind::Ipv4);
    let server = fd.server().expect("server end");
    assert_eq!(server.port, port);
    assert_eq!(server.ip.to_string(), "127.0.0.1");
    assert_eq!(fd.l4proto(), Some("tcp"));

    assert!(events.iter().any(|event| event.kind == EventKind::Clone));
    let stats = sensor.stats();
    assert!(stats.emitted > 0);
    assert_eq!(stats.ringbuf_full, 0, "no drops at this rate");
    drop(listener);
}

#[test]
fn the_agents_own_syscalls_are_skipped_in_the_kernel() {
    let mut sensor = load_sensor();
    let cgroup = CgroupConfig::detect().expect("cgroup layout");
    let (registry, _requests) = ContainerRegistry::new(false);
    let mut state = State::new(CgroupResolver::new(cgroup), registry, BootClock::now());
    let marker = tempfile::NamedTempFile::new().expect("tempfile");
    for _ in 0..20 {
        std::fs::read(marker.path()).expect("read");
    }
    // a child process is not the agent: its open of the same file is reported
    std::process::Command::new("cat")
        .arg(marker.path())
        .output()
        .expect("cat");
    let marker_text = marker.path().display().to_string();
    let events = collect(&mut sensor, &mut state, Duration::from_secs(5), |events| {
        events
            .iter()
            .any(|event| event.fd.as_ref().is_some_and(|fd| fd.name == marker_text))
    });
    let opens: Vec<&Event> = events
        .iter()
        .filter(|event| event.fd.as_ref().is_some_and(|fd| fd.name == marker_text))
        .collect();
    assert!(!opens.is_empty(), "the child's open is reported");
    assert!(
        opens
            .iter()
            .all(|event| event.process.pid != std::process::id()),
        "none of the agent's own opens is reported"
    );
}

#[test]
fn the_proc_fallback_sensor_reports_process_starts_and_exits() {
    use palisade_agent::sensor::procfs::ProcfsSensor;
    let cgroup = CgroupConfig::detect().expect("cgroup layout");
    let mut sensor = ProcfsSensor::new(
        CgroupResolver::new(cgroup.clone()),
        std::process::id(),
        Duration::from_millis(50),
    );
    let (registry, _requests) = ContainerRegistry::new(false);
    let mut state = State::new(CgroupResolver::new(cgroup), registry, BootClock::now());
    // the first scan learns what already runs and reports nothing
    sensor
        .next_batch(Duration::from_millis(10), &mut |_| {})
        .expect("scan");
    let mut child = std::process::Command::new("sleep")
        .arg("0.4")
        .spawn()
        .expect("sleep");
    let child_pid = child.id();
    let mut events = Vec::new();
    let start = Instant::now();
    let mut exited = false;
    while start.elapsed() < Duration::from_secs(5) {
        sensor
            .next_batch(Duration::from_millis(50), &mut |bytes| {
                let record = Record::decode(bytes).expect("decodes");
                if let Some(enriched) = state.apply(&record) {
                    events.push(enriched.event);
                }
            })
            .expect("scan");
        if !exited && child.try_wait().expect("wait").is_some() {
            exited = true;
        }
        if exited
            && events
                .iter()
                .any(|event| event.kind == EventKind::Exit && event.process.pid == child_pid)
        {
            break;
        }
    }
    let _ = child.wait();
    let exec = events
        .iter()
        .find(|event| event.kind == EventKind::Exec && event.process.pid == child_pid)
        .expect("the new process is reported");
    assert_eq!(exec.process.name, "sleep");
    assert!(
        exec.process.exepath.ends_with("/sleep"),
        "{}",
        exec.process.exepath
    );
    assert_eq!(exec.process.args, vec!["0.4".to_string()]);
    assert!(
        events
            .iter()
            .any(|event| event.kind == EventKind::Exit && event.process.pid == child_pid),
        "its exit is reported"
    );
}
