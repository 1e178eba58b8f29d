//! `evt.arg.NAME` / `evt.arg[N]` / `evt.args`: each syscall's arguments under the names Falco
//! gives them, rendered the way Falco prints them (flags as names, modes as S_I* bits).

use std::borrow::Cow;

use palisade_rules::fields::{FieldArg, Value};

use crate::event::{Event, EventKind};
use crate::syscalls;

/// Argument names of an event type, in Falco's order.
pub fn arg_names(event: &Event) -> &'static [&'static str] {
    match event.kind {
        EventKind::Exec => &[
            "res", "exe", "args", "pid", "ptid", "cwd", "filename", "flags",
        ],
        EventKind::Clone => &["res", "exe", "args", "pid", "ptid"],
        EventKind::Exit => &["status"],
        EventKind::Syscall => match event.evt_type {
            "open" => &["fd", "name", "flags", "mode"],
            "openat" | "openat2" => &["fd", "dirfd", "name", "flags", "mode"],
            "creat" => &["fd", "name", "mode"],
            "connect" => &["res", "tuple", "fd"],
            "accept" | "accept4" => &["fd", "tuple"],
            "bind" => &["res", "addr", "fd"],
            "listen" => &["res", "fd", "backlog"],
            "socket" => &["fd", "domain", "type", "proto"],
            "dup" => &["res", "oldfd"],
            "dup2" | "dup3" => &["res", "oldfd", "newfd"],
            "setuid" => &["res", "uid"],
            "setgid" => &["res", "gid"],
            "setreuid" | "setresuid" => &["res", "ruid", "euid", "suid"],
            "setregid" | "setresgid" => &["res", "rgid", "egid", "sgid"],
            "setfsuid" => &["res", "uid"],
            "setfsgid" => &["res", "gid"],
            "capset" => &["res"],
            "mount" => &["res", "dev", "dir", "type", "flags"],
            "umount2" => &["res", "name", "flags"],
            "init_module" => &["res", "length", "uargs"],
            "finit_module" => &["res", "fd", "uargs", "flags"],
            "delete_module" => &["res", "name", "flags"],
            "ptrace" => &["res", "request", "pid", "addr", "data"],
            "unshare" => &["res", "flags"],
            "setns" => &["res", "fd", "nstype"],
            "memfd_create" => &["fd", "name", "flags"],
            "bpf" => &["res_or_fd", "cmd"],
            "unlink" => &["res", "path"],
            "unlinkat" => &["res", "dirfd", "name", "flags"],
            "rename" => &["res", "oldpath", "newpath"],
            "renameat" | "renameat2" => &["res", "olddirfd", "oldpath", "newdirfd", "newpath"],
            "symlink" => &["res", "target", "linkpath"],
            "symlinkat" => &["res", "target", "linkdirfd", "linkpath"],
            "link" => &["res", "oldpath", "newpath"],
            "linkat" => &["res", "olddir", "oldpath", "newdir", "newpath", "flags"],
            "chroot" => &["res", "path"],
            "pivot_root" => &["res", "new_root", "put_old"],
            "chdir" => &["res", "path"],
            "fchdir" => &["res", "fd"],
            "kill" => &["res", "pid", "sig"],
            "tkill" => &["res", "tid", "sig"],
            "tgkill" => &["res", "pid", "tid", "sig"],
            "userfaultfd" => &["res", "flags"],
            _ => &["res"],
        },
    }
}

fn socket_domain(domain: u64) -> Cow<'static, str> {
    let name = match domain {
        1 => "AF_UNIX",
        2 => "AF_INET",
        10 => "AF_INET6",
        16 => "AF_NETLINK",
        17 => "AF_PACKET",
        other => return Cow::Owned(other.to_string()),
    };
    Cow::Borrowed(name)
}

fn bpf_command(command: u64) -> Cow<'static, str> {
    let name = match command {
        0 => "BPF_MAP_CREATE",
        1 => "BPF_MAP_LOOKUP_ELEM",
        2 => "BPF_MAP_UPDATE_ELEM",
        5 => "BPF_PROG_LOAD",
        8 => "BPF_PROG_ATTACH",
        28 => "BPF_LINK_CREATE",
        other => return Cow::Owned(other.to_string()),
    };
    Cow::Borrowed(name)
}

/// File mode bits as Falco prints them (S_IRUSR|S_IWUSR|S_IXUSR ...).
pub fn mode_text(mode: u64) -> String {
    const BITS: &[(u64, &str)] = &[
        (0o4000, "S_ISUID"),
        (0o2000, "S_ISGID"),
        (0o1000, "S_ISVTX"),
        (0o400, "S_IRUSR"),
        (0o200, "S_IWUSR"),
        (0o100, "S_IXUSR"),
        (0o040, "S_IRGRP"),
        (0o020, "S_IWGRP"),
        (0o010, "S_IXGRP"),
        (0o004, "S_IROTH"),
        (0o002, "S_IWOTH"),
        (0o001, "S_IXOTH"),
    ];
    let names: Vec<&str> = BITS
        .iter()
        .filter(|(bit, _)| mode & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "0".to_string()
    } else {
        names.join("|")
    }
}

fn exe_flags(event: &Event) -> String {
    let mut names = Vec::new();
    if event.process.exe_upper_layer {
        names.push("EXE_UPPER_LAYER");
    }
    if event.process.exe_from_memfd {
        names.push("EXE_FROM_MEMFD");
    }
    if names.is_empty() {
        "0".to_string()
    } else {
        names.join("|")
    }
}

fn string_arg(event: &Event, index: usize) -> Option<Value<'_>> {
    event
        .strings
        .get(index)
        .map(|value| Value::Str(Cow::Borrowed(value.as_str())))
}

fn owned(value: String) -> Option<Value<'static>> {
    Some(Value::Str(Cow::Owned(value)))
}

fn number(value: u64) -> Option<Value<'static>> {
    owned((value as i64).to_string())
}

/// The value of argument `name` of `event`.
pub fn value_of<'event>(event: &'event Event, name: &str) -> Option<Value<'event>> {
    let args = &event.args;
    let fd_name = || {
        event
            .fd
            .as_ref()
            .map(|fd| Value::Str(Cow::Borrowed(fd.name.as_str())))
    };
    match (event.evt_type, name) {
        (_, "res" | "res_or_fd" | "status") => owned(event.ret.to_string()),
        (_, "fd")
            if event.ret >= 0
                && matches!(
                    event.evt_type,
                    "open"
                        | "openat"
                        | "openat2"
                        | "creat"
                        | "accept"
                        | "accept4"
                        | "socket"
                        | "memfd_create"
                ) =>
        {
            owned(event.ret.to_string())
        }
        (_, "fd") => number(args[0]),
        ("execve" | "execveat", "exe") => {
            Some(Value::Str(Cow::Borrowed(event.process.exe.as_str())))
        }
        ("execve" | "execveat", "args") => owned(event.process.args_text()),
        ("execve" | "execveat", "filename") => string_arg(event, 0),
        ("execve" | "execveat", "flags") => owned(exe_flags(event)),
        ("execve" | "execveat", "cwd") => {
            Some(Value::Str(Cow::Borrowed(event.process.cwd.as_str())))
        }
        (_, "pid") if event.kind != EventKind::Syscall => owned(event.process.pid.to_string()),
        (_, "ptid") => owned(event.process.ppid.to_string()),
        ("open" | "openat" | "openat2" | "creat", "name") => {
            fd_name().or_else(|| string_arg(event, 0))
        }
        ("open", "flags") => owned(syscalls::open_flags_text(args[1])),
        ("openat", "flags") => owned(syscalls::open_flags_text(args[2])),
        ("creat", "flags") => owned(syscalls::open_flags_text(0o1101)),
        ("open", "mode") => owned(mode_text(args[2])),
        ("openat", "mode") => owned(mode_text(args[3])),
        ("creat", "mode") => owned(mode_text(args[1])),
        (_, "dirfd" | "olddirfd") => number(args[0]),
        ("connect" | "accept" | "accept4", "tuple") | ("bind", "addr") => fd_name(),
        ("listen", "backlog") => number(args[1]),
        ("socket", "domain") => Some(Value::Str(socket_domain(args[0]))),
        ("socket", "type") => number(args[1]),
        ("socket", "proto") => number(args[2]),
        (_, "oldfd") => number(args[0]),
        (_, "newfd") => owned(event.ret.to_string()),
        ("setuid" | "setfsuid", "uid") | ("setreuid" | "setresuid", "ruid") => number(args[0]),
        ("setgid" | "setfsgid", "gid") | ("setregid" | "setresgid", "rgid") => number(args[0]),
        ("setreuid" | "setresuid", "euid") | ("setregid" | "setresgid", "egid") => number(args[1]),
        ("setresuid", "suid") | ("setresgid", "sgid") => number(args[2]),
        ("mount", "dev") => string_arg(event, 0),
        ("mount", "dir") => string_arg(event, 1),
        ("mount", "type") => string_arg(event, 2),
        ("mount", "flags") => number(args[3]),
        ("umount2", "name") | ("delete_module", "name") => string_arg(event, 0),
        ("init_module", "length") => number(args[1]),
        ("init_module" | "finit_module", "uargs") => string_arg(event, 0),
        ("ptrace", "request") => owned(syscalls::ptrace_request_text(args[0])),
        ("ptrace", "pid") => number(args[1]),
        ("ptrace", "addr") => number(args[2]),
        ("ptrace", "data") => number(args[3]),
        ("unshare", "flags") => owned(syscalls::namespace_flags_text(args[0])),
        ("setns", "nstype") => owned(syscalls::namespace_flags_text(args[1])),
        ("memfd_create", "name") => string_arg(event, 0),
        ("bpf", "cmd") => Some(Value::Str(bpf_command(args[0]))),
        ("unlink" | "chroot" | "chdir", "path") | ("unlinkat", "name") => string_arg(event, 0),
        ("rename" | "renameat" | "renameat2" | "link" | "linkat", "oldpath") => {
            string_arg(event, 0)
        }
        ("rename" | "renameat" | "renameat2" | "link" | "linkat", "newpath") => {
            string_arg(event, 1)
        }
        ("symlink" | "symlinkat", "target") | ("pivot_root", "new_root") => string_arg(event, 0),
        ("symlink" | "symlinkat", "linkpath") | ("pivot_root", "put_old") => string_arg(event, 1),
        ("kill" | "tgkill", "pid") | ("tkill", "tid") => number(args[0]),
        ("tgkill", "tid") => number(args[1]),
        ("kill" | "tkill", "sig") => number(args[1]),
        ("tgkill", "sig") => number(args[2]),
        (_, "flags") => number(args[1]),
        _ => None,
    }
}

/// `evt.arg[N]` or `evt.arg.NAME`.
pub fn named<'event>(event: &'event Event, arg: &FieldArg) -> Option<Value<'event>> {
    match arg {
        FieldArg::Key(name) => value_of(event, name),
        FieldArg::Index(index) => value_of(event, arg_names(event).get(*index)?),
        FieldArg::None => None,
    }
}

/// `evt.args`: every argument as name=value, separated by spaces.
pub fn render_all(event: &Event) -> String {
    arg_names(event)
        .iter()
        .filter_map(|name| value_of(event, name).map(|value| format!("{name}={}", value.render())))
        .collect::<Vec<_>>()
        .join(" ")
}
