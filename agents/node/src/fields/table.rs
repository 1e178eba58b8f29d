//! The field table: every field name the syscall source resolves, its type and argument
//! rule. Field ids handed to the engine are positions in [`FIELDS`].

use palisade_rules::fields::{ArgRule, FieldInfo, ValueType};

/// What a field extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Field {
    EvtType,
    EvtNum,
    EvtTime,
    EvtDir,
    EvtRes,
    EvtRawRes,
    EvtFailed,
    EvtArgs,
    EvtArg,
    EvtIsOpenRead,
    EvtIsOpenWrite,
    EvtIsOpenExec,
    EvtHostname,
    EvtSource,
    ProcPid,
    ProcPpid,
    ProcVpid,
    ThreadTid,
    ProcName,
    ProcExe,
    ProcExepath,
    ProcCmdline,
    ProcArgs,
    ProcCwd,
    ProcTty,
    ProcDuration,
    ProcPpidDuration,
    ProcIsExeUpperLayer,
    ProcIsExeFromMemfd,
    ProcExeIno,
    ProcPname,
    ProcPexe,
    ProcPexepath,
    ProcPcmdline,
    ProcAname,
    ProcAexe,
    ProcAexepath,
    ProcApid,
    ProcCaname,
    ProcIsContainer,
    ThreadCapEffective,
    ThreadCapPermitted,
    UserUid,
    UserLoginuid,
    UserName,
    UserLoginname,
    GroupGid,
    GroupName,
    FdNum,
    FdName,
    FdNameraw,
    FdDirectory,
    FdFilename,
    FdType,
    FdTypechar,
    FdTypes,
    FdL4proto,
    FdSockfamily,
    FdConnected,
    FdNameChanged,
    FdRole,
    FdCip,
    FdSip,
    FdRip,
    FdLip,
    FdIp,
    FdCnet,
    FdSnet,
    FdRnet,
    FdLnet,
    FdNet,
    FdCport,
    FdSport,
    FdLport,
    FdRport,
    FdPort,
    ContainerId,
    ContainerFullId,
    ContainerName,
    ContainerImage,
    ContainerImageRepository,
    ContainerImageTag,
    ContainerImageDigest,
    ContainerType,
    ContainerPrivileged,
    ContainerMounts,
    ContainerMountDest,
    ContainerMountSource,
    ContainerLabel,
    K8sNsName,
    K8sPodName,
    K8sPodUid,
    K8sPodLabel,
    K8sPodLabels,
    /// A Falco field this agent has no data for: resolves, never extracts.
    Unavailable,
}

/// Type, list-ness, argument rule and description of a field.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    value_type: ValueType,
    is_list: bool,
    arg: ArgRule,
    description: &'static str,
}

const fn text(description: &'static str) -> Meta {
    Meta {
        value_type: ValueType::String,
        is_list: false,
        arg: ArgRule::None,
        description,
    }
}
const fn number(description: &'static str) -> Meta {
    Meta {
        value_type: ValueType::Int,
        is_list: false,
        arg: ArgRule::None,
        description,
    }
}
const fn boolean(description: &'static str) -> Meta {
    Meta {
        value_type: ValueType::Bool,
        is_list: false,
        arg: ArgRule::None,
        description,
    }
}
const fn ip(description: &'static str) -> Meta {
    Meta {
        value_type: ValueType::Ip,
        is_list: false,
        arg: ArgRule::None,
        description,
    }
}
const fn with_arg(meta: Meta, arg: ArgRule) -> Meta {
    Meta { arg, ..meta }
}
const fn list(meta: Meta) -> Meta {
    Meta {
        is_list: true,
        ..meta
    }
}

/// Every field: name, what it extracts, its metadata.
pub const FIELDS: &[(&str, Field, Meta)] = &[
    (
        "evt.type",
        Field::EvtType,
        text("syscall or event name (execve, openat, connect, procexit ...)"),
    ),
    (
        "evt.num",
        Field::EvtNum,
        number("event number in this agent"),
    ),
    (
        "evt.time",
        Field::EvtTime,
        number("event time, ns since the epoch"),
    ),
    (
        "evt.rawtime",
        Field::EvtTime,
        number("event time, ns since the epoch"),
    ),
    (
        "evt.dir",
        Field::EvtDir,
        text("direction: < (every event is reported on exit)"),
    ),
    (
        "evt.res",
        Field::EvtRes,
        text("SUCCESS or the error name (ENOENT ...)"),
    ),
    (
        "evt.rawres",
        Field::EvtRawRes,
        number("syscall return value"),
    ),
    (
        "evt.failed",
        Field::EvtFailed,
        boolean("the syscall returned an error"),
    ),
    (
        "evt.args",
        Field::EvtArgs,
        text("all arguments as name=value text"),
    ),
    (
        "evt.arg",
        Field::EvtArg,
        with_arg(
            text("one argument by name or position; also evt.arg.NAME"),
            ArgRule::Required,
        ),
    ),
    (
        "evt.is_open_read",
        Field::EvtIsOpenRead,
        boolean("an open for reading"),
    ),
    (
        "evt.is_open_write",
        Field::EvtIsOpenWrite,
        boolean("an open for writing"),
    ),
    (
        "evt.is_open_exec",
        Field::EvtIsOpenExec,
        boolean("an open creating an executable file"),
    ),
    (
        "evt.hostname",
        Field::EvtHostname,
        text("the node's host name"),
    ),
    ("evt.source", Field::EvtSource, text("syscall")),
    (
        "evt.buffer",
        Field::Unavailable,
        text("I/O buffers are not captured"),
    ),
    ("proc.pid", Field::ProcPid, number("process id")),
    ("proc.ppid", Field::ProcPpid, number("parent process id")),
    (
        "proc.vpid",
        Field::ProcVpid,
        number("process id in its pid namespace"),
    ),
    ("thread.tid", Field::ThreadTid, number("thread id")),
    ("proc.name", Field::ProcName, text("command name (comm)")),
    ("proc.exe", Field::ProcExe, text("argv[0]")),
    (
        "proc.exepath",
        Field::ProcExepath,
        text("path of the executed file, resolved by the kernel"),
    ),
    (
        "proc.cmdline",
        Field::ProcCmdline,
        text("name and arguments"),
    ),
    ("proc.args", Field::ProcArgs, text("arguments")),
    ("proc.cwd", Field::ProcCwd, text("working directory")),
    (
        "proc.tty",
        Field::ProcTty,
        number("controlling terminal, 0 if none"),
    ),
    (
        "proc.duration",
        Field::ProcDuration,
        number("ns since the process started"),
    ),
    (
        "proc.ppid.duration",
        Field::ProcPpidDuration,
        number("ns since the parent started"),
    ),
    (
        "proc.is_exe_upper_layer",
        Field::ProcIsExeUpperLayer,
        boolean("the executable was written in the container (overlayfs upper layer)"),
    ),
    (
        "proc.is_exe_from_memfd",
        Field::ProcIsExeFromMemfd,
        boolean("the executable is a memfd"),
    ),
    (
        "proc.exe_ino",
        Field::ProcExeIno,
        number("inode of the executable"),
    ),
    ("proc.pname", Field::ProcPname, text("parent's name")),
    ("proc.pexe", Field::ProcPexe, text("parent's argv[0]")),
    (
        "proc.pexepath",
        Field::ProcPexepath,
        text("parent's executable path"),
    ),
    (
        "proc.pcmdline",
        Field::ProcPcmdline,
        text("parent's command line"),
    ),
    (
        "proc.aname",
        Field::ProcAname,
        with_arg(
            text("ancestor's name: [1] parent, [2] grandparent ...; no argument: every ancestor"),
            ArgRule::Optional,
        ),
    ),
    (
        "proc.aexe",
        Field::ProcAexe,
        with_arg(text("ancestor's argv[0]"), ArgRule::Optional),
    ),
    (
        "proc.aexepath",
        Field::ProcAexepath,
        with_arg(text("ancestor's executable path"), ArgRule::Optional),
    ),
    (
        "proc.apid",
        Field::ProcApid,
        with_arg(number("ancestor's pid"), ArgRule::Optional),
    ),
    (
        "proc.caname",
        Field::ProcCaname,
        with_arg(
            text(
                "ancestor's name within the process's own container (the host counts as one): [n] or every one; stops at the container runtime",
            ),
            ArgRule::Optional,
        ),
    ),
    (
        "proc.is_container",
        Field::ProcIsContainer,
        boolean("the process runs in a container"),
    ),
    (
        "proc.env",
        Field::Unavailable,
        with_arg(text("environment (not captured)"), ArgRule::Optional),
    ),
    (
        "proc.sname",
        Field::Unavailable,
        text("session leader name (not tracked)"),
    ),
    (
        "proc.is_vpgid_leader",
        Field::Unavailable,
        boolean("process group leader (not tracked)"),
    ),
    (
        "proc.vpgid.name",
        Field::Unavailable,
        text("process group leader name (not tracked)"),
    ),
    (
        "proc.vpgid.exe",
        Field::Unavailable,
        text("process group leader exe (not tracked)"),
    ),
    (
        "proc.exe_ino.ctime",
        Field::Unavailable,
        number("executable inode ctime (not captured)"),
    ),
    (
        "proc.exe_ino.mtime",
        Field::Unavailable,
        number("executable inode mtime (not captured)"),
    ),
    (
        "proc.exe_ino.ctime_duration_proc_start",
        Field::Unavailable,
        number("not captured"),
    ),
    (
        "thread.cap_effective",
        Field::ThreadCapEffective,
        text("effective capabilities, names separated by spaces"),
    ),
    (
        "thread.cap_permitted",
        Field::ThreadCapPermitted,
        text("permitted capabilities"),
    ),
    ("user.uid", Field::UserUid, number("effective user id")),
    (
        "user.loginuid",
        Field::UserLoginuid,
        number("audit login uid, -1 if unset"),
    ),
    (
        "user.name",
        Field::UserName,
        text("user name, from the container's /etc/passwd"),
    ),
    (
        "user.loginname",
        Field::UserLoginname,
        text("login user name"),
    ),
    ("group.gid", Field::GroupGid, number("effective group id")),
    ("group.name", Field::GroupName, text("group name")),
    ("fd.num", Field::FdNum, number("descriptor number")),
    (
        "fd.name",
        Field::FdName,
        text("path, or the connection cip:cport->sip:sport"),
    ),
    ("fd.nameraw", Field::FdNameraw, text("same as fd.name")),
    (
        "fd.directory",
        Field::FdDirectory,
        text("directory of a file descriptor"),
    ),
    (
        "fd.filename",
        Field::FdFilename,
        text("last component of a file path"),
    ),
    (
        "fd.type",
        Field::FdType,
        text("file, directory, ipv4, ipv6, unix, pipe, memfd ..."),
    ),
    (
        "fd.typechar",
        Field::FdTypechar,
        text("f, d, 4, 6, u, p, m, o"),
    ),
    (
        "fd.types",
        Field::FdTypes,
        with_arg(
            list(text("types of the event's descriptor")),
            ArgRule::Optional,
        ),
    ),
    ("fd.l4proto", Field::FdL4proto, text("tcp, udp, icmp, raw")),
    ("fd.sockfamily", Field::FdSockfamily, text("ip or unix")),
    (
        "fd.connected",
        Field::FdConnected,
        boolean("the socket has a peer"),
    ),
    (
        "fd.name_changed",
        Field::FdNameChanged,
        boolean("always false: names are resolved by the kernel"),
    ),
    (
        "fd.role",
        Field::FdRole,
        text("client when the process connected out, server when it accepted, bound or listened"),
    ),
    ("fd.cip", Field::FdCip, ip("client address")),
    ("fd.sip", Field::FdSip, ip("server address")),
    ("fd.rip", Field::FdRip, ip("remote address")),
    ("fd.lip", Field::FdLip, ip("local address")),
    ("fd.ip", Field::FdIp, ip("client or server address")),
    (
        "fd.cnet",
        Field::FdCnet,
        ip("client address, for CIDR comparisons"),
    ),
    (
        "fd.snet",
        Field::FdSnet,
        ip("server address, for CIDR comparisons"),
    ),
    (
        "fd.rnet",
        Field::FdRnet,
        ip("remote address, for CIDR comparisons"),
    ),
    (
        "fd.lnet",
        Field::FdLnet,
        ip("local address, for CIDR comparisons"),
    ),
    (
        "fd.net",
        Field::FdNet,
        ip("client or server address, for CIDR comparisons"),
    ),
    ("fd.cport", Field::FdCport, number("client port")),
    ("fd.sport", Field::FdSport, number("server port")),
    ("fd.lport", Field::FdLport, number("local port")),
    ("fd.rport", Field::FdRport, number("remote port")),
    ("fd.port", Field::FdPort, number("client or server port")),
    (
        "fd.cip.name",
        Field::Unavailable,
        text("DNS name of the client (not resolved)"),
    ),
    (
        "fd.sip.name",
        Field::Unavailable,
        text("DNS name of the server (not resolved)"),
    ),
    (
        "fd.rip.name",
        Field::Unavailable,
        text("DNS name of the remote end (not resolved)"),
    ),
    (
        "fd.lip.name",
        Field::Unavailable,
        text("DNS name of the local end (not resolved)"),
    ),
    (
        "container.id",
        Field::ContainerId,
        text("container id (12 characters) or host"),
    ),
    (
        "container.full_id",
        Field::ContainerFullId,
        text("full container id"),
    ),
    (
        "container.name",
        Field::ContainerName,
        text("container name"),
    ),
    (
        "container.image",
        Field::ContainerImage,
        text("image reference"),
    ),
    (
        "container.image.repository",
        Field::ContainerImageRepository,
        text("image repository"),
    ),
    (
        "container.image.tag",
        Field::ContainerImageTag,
        text("image tag"),
    ),
    (
        "container.image.digest",
        Field::ContainerImageDigest,
        text("image digest"),
    ),
    (
        "container.type",
        Field::ContainerType,
        text("runtime: containerd, docker, cri-o, podman, host"),
    ),
    (
        "container.privileged",
        Field::ContainerPrivileged,
        boolean("runs privileged"),
    ),
    (
        "container.mounts",
        Field::ContainerMounts,
        text("mounts as source:dest:mode:rw:propagation, comma-separated"),
    ),
    (
        "container.mount.dest",
        Field::ContainerMountDest,
        with_arg(
            text("source of the mount whose destination matches the glob argument, N/A if none"),
            ArgRule::Required,
        ),
    ),
    (
        "container.mount.source",
        Field::ContainerMountSource,
        with_arg(
            text("source of the mount whose source matches the glob argument, N/A if none"),
            ArgRule::Required,
        ),
    ),
    (
        "container.label",
        Field::ContainerLabel,
        with_arg(text("a container label"), ArgRule::Required),
    ),
    (
        "container.start_ts",
        Field::Unavailable,
        number("container start time (not tracked)"),
    ),
    ("k8s.ns.name", Field::K8sNsName, text("pod namespace")),
    ("k8s.pod.name", Field::K8sPodName, text("pod name")),
    ("k8s.pod.uid", Field::K8sPodUid, text("pod uid")),
    (
        "k8s.pod.label",
        Field::K8sPodLabel,
        with_arg(text("a pod label"), ArgRule::Required),
    ),
    (
        "k8s.pod.labels",
        Field::K8sPodLabels,
        list(text("pod labels as key:value")),
    ),
];

/// The [`FieldInfo`] of the field at `position`.
pub fn field_info(position: usize) -> Option<FieldInfo> {
    let (name, _, meta) = FIELDS.get(position)?;
    Some(FieldInfo {
        name,
        value_type: meta.value_type,
        is_list: meta.is_list,
        arg: meta.arg,
        description: meta.description,
    })
}
