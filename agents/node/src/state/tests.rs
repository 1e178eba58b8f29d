use std::path::PathBuf;

use super::*;
use crate::record::{FileInfo, RecordBuilder, comm_bytes};

fn state_with_container_cgroup() -> (State, Arc<ContainerRegistry>) {
    let config = crate::cgroup::CgroupConfig {
        subsys_index: -1,
        hierarchy_id: 0,
        mount_point: PathBuf::from("/nonexistent"),
    };
    let (registry, _requests) = ContainerRegistry::new(false);
    let mut state = State::new(
        CgroupResolver::new(config),
        Arc::clone(&registry),
        BootClock {
            boot_epoch_ns: 1_000,
        },
    );
    state.cgroups_mut().insert(
        77,
        format!(
            "/kubepods/besteffort/pod0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d/{}",
            "f".repeat(64)
        ),
    );
    (state, registry)
}

fn header(kind_value: u16, pid: u32, ppid: u32, comm: &str) -> Header {
    Header {
        kind: kind_value,
        ts_boot_ns: 5,
        tgid: pid,
        tid: pid,
        ppid,
        cgroup_id: 77,
        syscall_nr: 59,
        comm: comm_bytes(comm),
        ..Header::default()
    }
}

#[test]
fn clone_exec_and_exit_keep_the_process_chain() {
    let (mut state, _registry) = state_with_container_cgroup();
    let shell = RecordBuilder::new(header(kind::EXEC, 10, 1, "sh"))
        .file(FileInfo {
            mode: 0o100755,
            ..FileInfo::default()
        })
        .path("/bin/sh")
        .string("/bin/sh")
        .argv(&["sh", "-c", "cat /etc/shadow"])
        .path("/")
        .finish();
    state
        .apply(&Record::decode(&shell).expect("decodes"))
        .expect("event");
    let mut fork = header(kind::CLONE, 10, 1, "sh");
    fork.args[0] = 11;
    fork.syscall_nr = 56;
    let clone_event = state
        .apply(&Record::decode(&RecordBuilder::new(fork).finish()).expect("decodes"))
        .expect("event");
    assert_eq!(clone_event.event.evt_type, "clone");
    assert_eq!(clone_event.event.process.pid, 11);
    let cat = RecordBuilder::new(header(kind::EXEC, 11, 10, "cat"))
        .file(FileInfo {
            mode: 0o100755,
            ..FileInfo::default()
        })
        .path("/bin/cat")
        .string("/bin/cat")
        .argv(&["cat", "/etc/shadow"])
        .path("/root")
        .finish();
    let exec = state
        .apply(&Record::decode(&cat).expect("decodes"))
        .expect("event")
        .event;
    assert_eq!(exec.process.name, "cat");
    assert_eq!(exec.process.exepath, "/bin/cat");
    assert_eq!(exec.process.cwd, "/root");
    assert_eq!(
        exec.process
            .parent
            .as_ref()
            .map(|parent| parent.name.as_str()),
        Some("sh")
    );
    assert_eq!(exec.container.id, "f".repeat(12));
    assert_eq!(&*exec.process.container_id, "f".repeat(64).as_str());
    let exit = RecordBuilder::new(header(kind::EXIT, 11, 10, "cat")).finish();
    let exit_event = state
        .apply(&Record::decode(&exit).expect("decodes"))
        .expect("event")
        .event;
    assert_eq!(exit_event.evt_type, "procexit");
    assert!(state.processes().get(11).is_none());
    assert!(state.processes().get(10).is_some());
}

#[test]
fn a_new_cgroup_announces_its_container_before_any_process() {
    let (mut state, _registry) = state_with_container_cgroup();
    let mut mkdir = header(kind::CGROUP_MKDIR, 1, 0, "runc");
    mkdir.args[0] = 99;
    let path = format!("/default/{}", "9".repeat(64));
    let record = RecordBuilder::new(mkdir).string(&path).finish();
    assert!(
        state
            .apply(&Record::decode(&record).expect("decodes"))
            .is_none()
    );
    assert_eq!(state.cgroups_mut().path(99), Some(path.as_str()));
}
