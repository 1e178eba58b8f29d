use std::sync::Arc;

use palisade_rules::{CompileOptions, RuleEngine, RulesLoader, Severity};

use super::*;
use crate::event::{Container, EventKind, FdInfo, Mount, Pod, SocketRole};
use crate::record::SockInfo;

pub(crate) fn container() -> Arc<Container> {
    let mut container = Container::unresolved(&"e".repeat(64), "containerd");
    container.name = "web".into();
    container.image = "registry.local/shop/web:1.4".into();
    container.image_repository = "registry.local/shop/web".into();
    container.image_tag = "1.4".into();
    container.privileged = true;
    container.mounts = vec![Mount {
        source: "/".into(),
        destination: "/host".into(),
        mount_type: "bind".into(),
        rw: true,
        options: vec![],
    }];
    container.pod = Some(Pod {
        name: "web-1".into(),
        namespace: "shop".into(),
        uid: "u-1".into(),
        labels: [("app".to_string(), "web".to_string())]
            .into_iter()
            .collect(),
    });
    container.metadata_complete = true;
    Arc::new(container)
}

pub(crate) fn exec_event(name: &str, exepath: &str, args: &[&str], parent: &str) -> Event {
    let grandparent = Arc::new(Process {
        pid: 1,
        name: "containerd-shim".into(),
        ..Process::default()
    });
    let parent = Arc::new(Process {
        pid: 10,
        name: parent.into(),
        exe: parent.into(),
        exepath: format!("/bin/{parent}"),
        parent: Some(grandparent),
        ..Process::default()
    });
    Event {
        num: 1,
        time_ns: 1_700_000_000_000_000_000,
        kind: EventKind::Exec,
        evt_type: "execve",
        syscall_nr: 59,
        tid: 11,
        ret: 0,
        args: [0; 6],
        flags: 0,
        process: Arc::new(Process {
            pid: 11,
            ppid: 10,
            name: name.into(),
            exe: name.into(),
            exepath: exepath.into(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            tty: 34816,
            parent: Some(parent),
            container_id: Arc::from("e".repeat(64).as_str()),
            ..Process::default()
        }),
        fd: None,
        strings: vec![exepath.into()],
        sockaddr: None,
        container: container(),
    }
}

fn values_of(source: &SyscallSource, field: &str, event: &Event) -> Vec<String> {
    let (name, arg) = match field.split_once('[') {
        Some((name, rest)) => (name, Some(rest.trim_end_matches(']'))),
        None => (field, None),
    };
    let spec = source
        .resolve(name, arg)
        .unwrap_or_else(|error| panic!("{field}: {error}"));
    let mut values = Vec::new();
    source.extract(&spec, event, &mut values);
    values
        .iter()
        .map(|value| value.render().into_owned())
        .collect()
}

#[test]
fn process_container_and_pod_fields_are_direct_reads() {
    let source = SyscallSource::new("node-1");
    let event = exec_event("cat", "/usr/bin/cat", &["/etc/shadow"], "bash");
    let one = |field: &str| values_of(&source, field, &event).join(",");
    assert_eq!(one("evt.type"), "execve");
    assert_eq!(one("proc.name"), "cat");
    assert_eq!(one("proc.cmdline"), "cat /etc/shadow");
    assert_eq!(one("proc.pname"), "bash");
    assert_eq!(one("proc.aname[2]"), "containerd-shim");
    assert_eq!(one("proc.aname"), "bash,containerd-shim");
    assert_eq!(one("proc.exepath"), "/usr/bin/cat");
    assert_eq!(one("evt.arg.filename"), "/usr/bin/cat");
    assert_eq!(one("container.id"), "e".repeat(12));
    assert_eq!(one("container.image.repository"), "registry.local/shop/web");
    assert_eq!(one("container.privileged"), "true");
    assert_eq!(one("container.mount.dest[/host*]"), "/");
    assert_eq!(one("container.mount.dest[/var/run/docker.sock]"), "N/A");
    assert_eq!(one("k8s.pod.name"), "web-1");
    assert_eq!(one("k8s.ns.name"), "shop");
    assert_eq!(one("k8s.pod.label[app]"), "web");
    assert_eq!(one("evt.hostname"), "node-1");
    assert_eq!(one("proc.tty"), "34816");
    // a field without data extracts nothing
    assert!(values_of(&source, "proc.env", &event).is_empty());
}

#[test]
fn socket_fields_follow_the_connection_roles() {
    let source = SyscallSource::new("node-1");
    let mut event = exec_event("nc", "/bin/nc", &["10.0.0.9", "4444"], "sh");
    event.kind = EventKind::Syscall;
    event.evt_type = "connect";
    let mut sock = SockInfo {
        family: 2,
        sock_type: 1,
        protocol: 6,
        local_port: 40000,
        remote_port: 4444,
        ..SockInfo::default()
    };
    sock.local_addr[..4].copy_from_slice(&[172, 17, 0, 2]);
    sock.remote_addr[..4].copy_from_slice(&[10, 0, 0, 9]);
    event.fd = Some(FdInfo {
        num: 3,
        kind: FdKind::Ipv4,
        name: "172.17.0.2:40000->10.0.0.9:4444".into(),
        file: None,
        sock: Some(sock),
        role: Some(SocketRole::Client),
        truncated: false,
    });
    let one = |field: &str| values_of(&source, field, &event).join(",");
    assert_eq!(one("fd.sip"), "10.0.0.9");
    assert_eq!(one("fd.sport"), "4444");
    assert_eq!(one("fd.cip"), "172.17.0.2");
    assert_eq!(one("fd.rport"), "4444");
    assert_eq!(one("fd.lport"), "40000");
    assert_eq!(one("fd.typechar"), "4");
    assert_eq!(one("fd.l4proto"), "tcp");
    assert_eq!(one("evt.arg.tuple"), "172.17.0.2:40000->10.0.0.9:4444");
}

fn falco_rule_files() -> Vec<std::path::PathBuf> {
    [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ]
    .iter()
    .map(|file| palisade_testkit::corpus_path(format!("runtime/falco-rules/{file}")))
    .collect()
}

#[test]
fn falcos_syscall_rules_load_unchanged_against_this_source() {
    let mut loader = RulesLoader::new();
    for file in falco_rule_files() {
        loader.add_file(&file).expect("corpus file loads");
    }
    let loaded = loader.finish();
    let engine = RuleEngine::new(
        Arc::new(SyscallSource::new("node")),
        &loaded,
        CompileOptions::default(),
    );
    let summary = engine.compiled().summary().clone();
    let errors: Vec<String> = engine
        .compiled()
        .diagnostics()
        .iter()
        .filter(|diagnostic| diagnostic.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(summary.skipped, 0, "{summary}");
    // 25 stable + 31 incubating + 37 sandbox
    assert_eq!(summary.loaded + summary.disabled, 93, "{summary}");
}

#[test]
fn falco_terminal_shell_rule_fires_on_a_shell_with_a_tty_in_a_container() {
    let mut loader = RulesLoader::new();
    loader
        .add_file(&palisade_testkit::corpus_path(
            "runtime/falco-rules/falco_rules.yaml",
        ))
        .expect("loads");
    let engine = RuleEngine::new(
        Arc::new(SyscallSource::new("node")),
        &loader.finish(),
        CompileOptions::default(),
    );
    let shell = exec_event("bash", "/bin/bash", &[], "runc");
    let fired: Vec<String> = engine
        .detect(&shell)
        .iter()
        .map(|detection| detection.rule.name.clone())
        .collect();
    assert!(
        fired.contains(&"Terminal shell in container".to_string()),
        "{fired:?}"
    );
    let reader = exec_event("cat", "/usr/bin/cat", &["/etc/hostname"], "bash");
    let fired: Vec<String> = engine
        .detect(&reader)
        .iter()
        .map(|detection| detection.rule.name.clone())
        .collect();
    assert!(
        !fired.contains(&"Terminal shell in container".to_string()),
        "{fired:?}"
    );
}
