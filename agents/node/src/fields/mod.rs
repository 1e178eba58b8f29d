//! The syscall field source for palisade-rules: Falco's evt.*, proc.*, thread.*, fd.*,
//! user.*, group.*, container.* and k8s.* fields, extracted from [`Event`] by direct reads.
//!
//! A field Falco has but this agent cannot know (proc.env, fd.*.name DNS names, inode
//! times) resolves, so rules using it load, and extracts nothing, so comparisons on it are
//! false, as Falco does for a field without a value.

mod args;
mod table;
mod users;

use std::borrow::Cow;
use std::net::IpAddr;

use palisade_rules::fields::{
    FieldArg, FieldError, FieldInfo, FieldSchema, FieldSource, FieldSpec, Value, check_argument,
    parse_index_or_key,
};

use crate::event::{Event, FdKind, Process};
use crate::syscalls;
pub use table::Field;
use table::{FIELDS, field_info};

/// The syscall source.
#[derive(Debug, Default)]
pub struct SyscallSource {
    users: users::UserNames,
    hostname: String,
}

impl SyscallSource {
    /// A source; `hostname` is what `evt.hostname` returns.
    pub fn new(hostname: impl Into<String>) -> Self {
        Self {
            users: users::UserNames::default(),
            hostname: hostname.into(),
        }
    }
}

impl FieldSchema for SyscallSource {
    fn source_name(&self) -> &str {
        "syscall"
    }

    fn resolve(&self, name: &str, arg: Option<&str>) -> Result<FieldSpec, FieldError> {
        // evt.arg.NAME is the named form of evt.arg[NAME]
        if let Some(argument) = name.strip_prefix("evt.arg.") {
            let position = FIELDS
                .iter()
                .position(|(field_name, _, _)| *field_name == "evt.arg")
                .ok_or(FieldError::Unknown)?;
            let info = field_info(position).ok_or(FieldError::Unknown)?;
            return Ok(FieldSpec {
                id: u32::try_from(position).map_err(|_| FieldError::Unknown)?,
                arg: parse_index_or_key(Some(argument)),
                value_type: info.value_type,
                is_list: info.is_list,
            });
        }
        let position = FIELDS
            .iter()
            .position(|(field_name, _, _)| *field_name == name)
            .ok_or(FieldError::Unknown)?;
        let info = field_info(position).ok_or(FieldError::Unknown)?;
        let parsed = check_argument(info.arg, arg)?;
        Ok(FieldSpec {
            id: u32::try_from(position).map_err(|_| FieldError::Unknown)?,
            arg: parsed,
            value_type: info.value_type,
            is_list: info.is_list,
        })
    }

    fn index_fields(&self) -> &[&'static str] {
        &["evt.type"]
    }

    fn fields(&self) -> Vec<FieldInfo> {
        (0..FIELDS.len()).filter_map(field_info).collect()
    }
}

fn text<'event>(value: &'event str) -> Value<'event> {
    Value::Str(Cow::Borrowed(value))
}

fn owned<'event>(value: String) -> Value<'event> {
    Value::Str(Cow::Owned(value))
}

fn int<'event>(value: impl TryInto<i64>) -> Value<'event> {
    Value::Int(value.try_into().unwrap_or(i64::MAX))
}

/// Ancestors selected by a field argument: `[n]` the nth (1 = parent), none = all.
fn ancestors<'event>(process: &'event Process, arg: &FieldArg) -> Vec<&'event Process> {
    match arg {
        FieldArg::Index(generation) => process.ancestor(*generation).into_iter().collect(),
        _ => process.ancestors().collect(),
    }
}

/// Falco's error names for the common errnos.
fn errno_name(ret: i64) -> Cow<'static, str> {
    let name = match -ret {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        4 => "EINTR",
        5 => "EIO",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        24 => "EMFILE",
        28 => "ENOSPC",
        38 => "ENOSYS",
        95 => "EOPNOTSUPP",
        98 => "EADDRINUSE",
        101 => "ENETUNREACH",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        115 => "EINPROGRESS",
        other => return Cow::Owned(format!("E{other}")),
    };
    Cow::Borrowed(name)
}

fn is_open(event: &Event) -> bool {
    matches!(event.evt_type, "open" | "openat" | "openat2" | "creat")
}

fn open_flags(event: &Event) -> u64 {
    match event.evt_type {
        "open" => event.args[1],
        "openat" => event.args[2],
        // openat2 passes a struct open_how; creat is O_CREAT|O_WRONLY|O_TRUNC
        "creat" => 0o1101,
        _ => 0,
    }
}

fn open_mode(event: &Event) -> u64 {
    match event.evt_type {
        "open" => event.args[2],
        "openat" => event.args[3],
        "creat" => event.args[1],
        _ => 0,
    }
}

fn ip_in_net(ip: IpAddr) -> Value<'static> {
    Value::Ip(ip)
}

impl FieldSource for SyscallSource {
    type Event = Event;

    fn extract<'event>(
        &self,
        spec: &FieldSpec,
        event: &'event Event,
        values: &mut Vec<Value<'event>>,
    ) {
        let Some((_, field, _)) = FIELDS.get(spec.id as usize) else {
            return;
        };
        let process = event.process.as_ref();
        let fd = event.fd.as_ref();
        let container = event.container.as_ref();
        match field {
            Field::EvtType => values.push(text(event.evt_type)),
            Field::EvtNum => values.push(int(event.num)),
            Field::EvtTime => values.push(int(event.time_ns)),
            Field::EvtDir => values.push(text("<")),
            Field::EvtRes => values.push(if event.ret >= 0 {
                text("SUCCESS")
            } else {
                Value::Str(errno_name(event.ret))
            }),
            Field::EvtRawRes => values.push(int(event.ret)),
            Field::EvtFailed => values.push(Value::Bool(event.ret < 0)),
            Field::EvtArgs => values.push(owned(args::render_all(event))),
            Field::EvtArg => {
                if let Some(value) = args::named(event, &spec.arg) {
                    values.push(value);
                }
            }
            Field::EvtIsOpenRead => {
                if is_open(event) {
                    values.push(Value::Bool(open_flags(event) & 0o3 != 1));
                }
            }
            Field::EvtIsOpenWrite => {
                if is_open(event) {
                    values.push(Value::Bool(open_flags(event) & 0o3 != 0));
                }
            }
            Field::EvtIsOpenExec => {
                if is_open(event) {
                    let creates = open_flags(event) & 0o100 != 0;
                    values.push(Value::Bool(creates && open_mode(event) & 0o111 != 0));
                }
            }
            Field::EvtHostname => values.push(owned(self.hostname.clone())),
            Field::EvtSource => values.push(text("syscall")),
            Field::ProcPid => values.push(int(process.pid)),
            Field::ProcPpid => values.push(int(process.ppid)),
            Field::ProcVpid => values.push(int(process.vpid)),
            Field::ThreadTid => values.push(int(event.tid)),
            Field::ProcName => values.push(text(&process.name)),
            Field::ProcExe => values.push(text(&process.exe)),
            Field::ProcExepath => values.push(text(&process.exepath)),
            Field::ProcCmdline => values.push(owned(process.cmdline())),
            Field::ProcArgs => values.push(owned(process.args_text())),
            Field::ProcCwd => values.push(text(&process.cwd)),
            Field::ProcTty => values.push(int(process.tty)),
            Field::ProcDuration => {
                values.push(int(event.time_ns.saturating_sub(process.start_time_ns)));
            }
            Field::ProcPpidDuration => {
                if let Some(parent) = process.parent.as_deref() {
                    values.push(int(event.time_ns.saturating_sub(parent.start_time_ns)));
                }
            }
            Field::ProcIsExeUpperLayer => values.push(Value::Bool(process.exe_upper_layer)),
            Field::ProcIsExeFromMemfd => values.push(Value::Bool(process.exe_from_memfd)),
            Field::ProcExeIno => values.push(int(process.exe_ino)),
            Field::ProcPname => {
                values.extend(process.parent.as_deref().map(|parent| text(&parent.name)))
            }
            Field::ProcPexe => {
                values.extend(process.parent.as_deref().map(|parent| text(&parent.exe)))
            }
            Field::ProcPexepath => {
                values.extend(
                    process
                        .parent
                        .as_deref()
                        .map(|parent| text(&parent.exepath)),
                );
            }
            Field::ProcPcmdline => {
                values.extend(
                    process
                        .parent
                        .as_deref()
                        .map(|parent| owned(parent.cmdline())),
                );
            }
            Field::ProcAname => {
                for ancestor in ancestors(process, &spec.arg) {
                    values.push(text(&ancestor.name));
                }
            }
            Field::ProcAexe => {
                for ancestor in ancestors(process, &spec.arg) {
                    values.push(text(&ancestor.exe));
                }
            }
            Field::ProcAexepath => {
                for ancestor in ancestors(process, &spec.arg) {
                    values.push(text(&ancestor.exepath));
                }
            }
            Field::ProcCaname => {
                let same_container =
                    |ancestor: &&Process| ancestor.container_id == process.container_id;
                match &spec.arg {
                    FieldArg::Index(generation) => {
                        let in_container: Vec<&Process> =
                            process.ancestors().take_while(same_container).collect();
                        if let Some(ancestor) = generation
                            .checked_sub(1)
                            .and_then(|index| in_container.get(index))
                        {
                            values.push(text(&ancestor.name));
                        }
                    }
                    _ => {
                        for ancestor in process.ancestors().take_while(same_container) {
                            values.push(text(&ancestor.name));
                        }
                    }
                }
            }
            Field::ProcApid => {
                for ancestor in ancestors(process, &spec.arg) {
                    values.push(int(ancestor.pid));
                }
            }
            Field::ThreadCapEffective => {
                values.push(owned(
                    syscalls::capability_names(process.cap_effective).join(" "),
                ));
            }
            Field::ThreadCapPermitted => {
                values.push(owned(
                    syscalls::capability_names(process.cap_permitted).join(" "),
                ));
            }
            Field::UserUid => values.push(int(process.euid)),
            Field::UserLoginuid => values.push(int(i64::from(process.loginuid as i32))),
            Field::UserName => values.push(owned(self.users.user_name(process, process.euid))),
            Field::UserLoginname => {
                if process.loginuid != u32::MAX {
                    values.push(owned(self.users.user_name(process, process.loginuid)));
                }
            }
            Field::GroupGid => values.push(int(process.egid)),
            Field::GroupName => values.push(owned(self.users.group_name(process, process.egid))),
            Field::FdNum => values.extend(fd.map(|fd| int(fd.num))),
            Field::FdName | Field::FdNameraw => values.extend(fd.map(|fd| text(&fd.name))),
            Field::FdDirectory => values.extend(fd.and_then(|fd| fd.directory()).map(text)),
            Field::FdFilename => values.extend(fd.and_then(|fd| fd.filename()).map(text)),
            Field::FdType => values.extend(fd.map(|fd| text(fd.kind.type_name()))),
            Field::FdTypechar => values.extend(fd.map(|fd| text(fd.kind.typechar_text()))),
            Field::FdTypes => values.extend(fd.map(|fd| text(fd.kind.type_name()))),
            Field::FdL4proto => values.extend(fd.and_then(|fd| fd.l4proto()).map(text)),
            Field::FdSockfamily => values.extend(fd.and_then(|fd| match fd.kind {
                FdKind::Ipv4 | FdKind::Ipv6 => Some(text("ip")),
                FdKind::Unix => Some(text("unix")),
                _ => None,
            })),
            Field::FdConnected => values.extend(
                fd.and_then(|fd| fd.sock)
                    .map(|sock| Value::Bool(sock.remote_port != 0)),
            ),
            Field::FdRole => values.extend(fd.and_then(|fd| fd.role).map(|role| match role {
                crate::event::SocketRole::Client => text("client"),
                crate::event::SocketRole::Server => text("server"),
            })),
            Field::FdNameChanged => values.extend(fd.map(|_| Value::Bool(false))),
            Field::FdCip | Field::FdCnet => {
                values.extend(fd.and_then(|fd| fd.client()).map(|end| ip_in_net(end.ip)));
            }
            Field::FdSip | Field::FdSnet => {
                values.extend(fd.and_then(|fd| fd.server()).map(|end| ip_in_net(end.ip)));
            }
            Field::FdRip | Field::FdRnet => {
                values.extend(fd.and_then(|fd| fd.remote()).map(|end| ip_in_net(end.ip)));
            }
            Field::FdLip | Field::FdLnet => {
                values.extend(fd.and_then(|fd| fd.local()).map(|end| ip_in_net(end.ip)));
            }
            Field::FdIp | Field::FdNet => {
                if let Some(fd) = fd {
                    values.extend(fd.client().map(|end| ip_in_net(end.ip)));
                    values.extend(fd.server().map(|end| ip_in_net(end.ip)));
                }
            }
            Field::FdCport => values.extend(fd.and_then(|fd| fd.client()).map(|end| int(end.port))),
            Field::FdSport => values.extend(fd.and_then(|fd| fd.server()).map(|end| int(end.port))),
            Field::FdLport => values.extend(fd.and_then(|fd| fd.local()).map(|end| int(end.port))),
            Field::FdRport => values.extend(fd.and_then(|fd| fd.remote()).map(|end| int(end.port))),
            Field::FdPort => {
                if let Some(fd) = fd {
                    values.extend(fd.client().map(|end| int(end.port)));
                    values.extend(fd.server().map(|end| int(end.port)));
                }
            }
            Field::ContainerId => values.push(text(&container.id)),
            Field::ContainerFullId => values.push(text(&container.full_id)),
            Field::ContainerName => values.push(text(&container.name)),
            Field::ContainerImage => values.push(text(&container.image)),
            Field::ContainerImageRepository => values.push(text(&container.image_repository)),
            Field::ContainerImageTag => values.push(text(&container.image_tag)),
            Field::ContainerImageDigest => values.push(text(&container.image_digest)),
            Field::ContainerType => values.push(text(&container.runtime)),
            Field::ContainerPrivileged => {
                if !container.is_host() {
                    values.push(Value::Bool(container.privileged));
                }
            }
            Field::ContainerMounts => {
                if !container.is_host() {
                    values.push(owned(
                        container
                            .mounts
                            .iter()
                            .map(|mount| {
                                format!(
                                    "{}:{}:{}:{}:private",
                                    mount.source,
                                    mount.destination,
                                    if mount.rw { "" } else { "ro" },
                                    if mount.rw { "true" } else { "false" }
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(","),
                    ));
                }
            }
            Field::ContainerMountDest | Field::ContainerMountSource => {
                if container.is_host() {
                    return;
                }
                let FieldArg::Key(pattern) = &spec.arg else {
                    if let FieldArg::Index(index) = spec.arg {
                        values.extend(container.mounts.get(index).map(|mount| {
                            if *field == Field::ContainerMountDest {
                                text(&mount.destination)
                            } else {
                                text(&mount.source)
                            }
                        }));
                    }
                    return;
                };
                let matched = container.mounts.iter().find(|mount| {
                    let path = if *field == Field::ContainerMountDest {
                        &mount.destination
                    } else {
                        &mount.source
                    };
                    glob::Pattern::new(pattern).is_ok_and(|glob| glob.matches(path))
                });
                values.push(match matched {
                    Some(mount) => text(&mount.source),
                    None => text("N/A"),
                });
            }
            Field::ContainerLabel => {
                if let FieldArg::Key(key) = &spec.arg {
                    values.extend(container.labels.get(key).map(|value| text(value)));
                }
            }
            Field::K8sNsName => {
                values.extend(container.pod.as_ref().map(|pod| text(&pod.namespace)))
            }
            Field::K8sPodName => values.extend(container.pod.as_ref().map(|pod| text(&pod.name))),
            Field::K8sPodUid => values.extend(container.pod.as_ref().map(|pod| text(&pod.uid))),
            Field::K8sPodLabel => {
                if let (Some(pod), FieldArg::Key(key)) = (container.pod.as_ref(), &spec.arg) {
                    values.extend(pod.labels.get(key).map(|value| text(value)));
                }
            }
            Field::K8sPodLabels => {
                if let Some(pod) = container.pod.as_ref() {
                    for (key, value) in &pod.labels {
                        values.push(owned(format!("{key}:{value}")));
                    }
                }
            }
            Field::ProcIsContainer => values.push(Value::Bool(!container.is_host())),
            Field::Unavailable => {}
        }
    }
}

#[cfg(test)]
mod tests;
