//! The syscalls the sensor reports, by their x86_64 numbers, under the names Falco rules use
//! in `evt.type`.

/// A syscall the kernel program can report on exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscall {
    /// x86_64 number.
    pub number: u32,
    /// Name as `evt.type` prints it.
    pub name: &'static str,
}

const fn syscall(number: u32, name: &'static str) -> Syscall {
    Syscall { number, name }
}

/// Every syscall the sys_exit program reports when userspace asks for it.
pub const REPORTED: &[Syscall] = &[
    syscall(2, "open"),
    syscall(85, "creat"),
    syscall(257, "openat"),
    syscall(437, "openat2"),
    syscall(41, "socket"),
    syscall(42, "connect"),
    syscall(43, "accept"),
    syscall(288, "accept4"),
    syscall(49, "bind"),
    syscall(50, "listen"),
    syscall(32, "dup"),
    syscall(33, "dup2"),
    syscall(292, "dup3"),
    syscall(105, "setuid"),
    syscall(106, "setgid"),
    syscall(113, "setreuid"),
    syscall(114, "setregid"),
    syscall(117, "setresuid"),
    syscall(119, "setresgid"),
    syscall(122, "setfsuid"),
    syscall(123, "setfsgid"),
    syscall(126, "capset"),
    syscall(165, "mount"),
    syscall(166, "umount2"),
    syscall(175, "init_module"),
    syscall(313, "finit_module"),
    syscall(176, "delete_module"),
    syscall(101, "ptrace"),
    syscall(272, "unshare"),
    syscall(308, "setns"),
    syscall(319, "memfd_create"),
    syscall(321, "bpf"),
    syscall(87, "unlink"),
    syscall(263, "unlinkat"),
    syscall(82, "rename"),
    syscall(264, "renameat"),
    syscall(316, "renameat2"),
    syscall(88, "symlink"),
    syscall(266, "symlinkat"),
    syscall(86, "link"),
    syscall(265, "linkat"),
    syscall(161, "chroot"),
    syscall(155, "pivot_root"),
    syscall(62, "kill"),
    syscall(200, "tkill"),
    syscall(234, "tgkill"),
    syscall(323, "userfaultfd"),
    syscall(80, "chdir"),
    syscall(81, "fchdir"),
];

/// Name of a reported syscall, or "syscall_N" for one outside the table.
pub fn name_of(number: u32) -> &'static str {
    match REPORTED.iter().find(|syscall| syscall.number == number) {
        Some(syscall) => syscall.name,
        None => match number {
            59 => "execve",
            322 => "execveat",
            56 => "clone",
            57 => "fork",
            58 => "vfork",
            435 => "clone3",
            _ => "unknown",
        },
    }
}

/// Number of a reported syscall by name.
pub fn number_of(name: &str) -> Option<u32> {
    REPORTED
        .iter()
        .find(|syscall| syscall.name == name)
        .map(|syscall| syscall.number)
}

/// The name of the syscall that performed an exec (execve or execveat).
pub fn exec_name(number: u32) -> &'static str {
    if number == 322 { "execveat" } else { "execve" }
}

/// The name of the syscall that created a process.
pub fn clone_name(number: u32) -> &'static str {
    match number {
        57 => "fork",
        58 => "vfork",
        435 => "clone3",
        _ => "clone",
    }
}

/// Open flags as Falco prints them in `evt.arg.flags` (O_RDONLY|O_CREAT ...).
pub fn open_flags_text(flags: u64) -> String {
    const NAMED: &[(u64, &str)] = &[
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o200000, "O_DIRECTORY"),
        (0o2000000, "O_CLOEXEC"),
        (0o20000000, "O_TMPFILE"),
    ];
    let access = match flags & 0o3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        _ => "O_RDWR",
    };
    let mut text = String::from(access);
    for (bit, name) in NAMED {
        if flags & bit != 0 {
            text.push('|');
            text.push_str(name);
        }
    }
    text
}

/// The ptrace request name Falco prints (PTRACE_ATTACH ...).
pub fn ptrace_request_text(request: u64) -> String {
    let name = match request {
        0 => "PTRACE_TRACEME",
        1 => "PTRACE_PEEKTEXT",
        2 => "PTRACE_PEEKDATA",
        3 => "PTRACE_PEEKUSR",
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        6 => "PTRACE_POKEUSR",
        7 => "PTRACE_CONT",
        8 => "PTRACE_KILL",
        9 => "PTRACE_SINGLESTEP",
        12 => "PTRACE_GETREGS",
        13 => "PTRACE_SETREGS",
        16 => "PTRACE_ATTACH",
        17 => "PTRACE_DETACH",
        24 => "PTRACE_SYSCALL",
        0x4200 => "PTRACE_SETOPTIONS",
        0x4206 => "PTRACE_SEIZE",
        0x4207 => "PTRACE_INTERRUPT",
        _ => return request.to_string(),
    };
    name.to_string()
}

/// Namespace flags as Falco prints them for unshare/setns (CLONE_NEWNS|CLONE_NEWPID ...).
pub fn namespace_flags_text(flags: u64) -> String {
    const NAMED: &[(u64, &str)] = &[
        (0x0002_0000, "CLONE_NEWNS"),
        (0x0200_0000, "CLONE_NEWCGROUP"),
        (0x0400_0000, "CLONE_NEWUTS"),
        (0x0800_0000, "CLONE_NEWIPC"),
        (0x1000_0000, "CLONE_NEWUSER"),
        (0x2000_0000, "CLONE_NEWPID"),
        (0x4000_0000, "CLONE_NEWNET"),
        (0x0000_0080, "CLONE_NEWTIME"),
    ];
    let names: Vec<&str> = NAMED
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "0".to_string()
    } else {
        names.join("|")
    }
}

/// Linux capability names by bit, as Falco prints them.
pub const CAPABILITY_NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Capability names of a capability bit set.
pub fn capability_names(bits: u64) -> Vec<&'static str> {
    CAPABILITY_NAMES
        .iter()
        .enumerate()
        .filter(|(bit, _)| bits & (1u64 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// The capability bit of a name (with or without the CAP_ prefix, any case).
pub fn capability_bit(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let wanted = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAPABILITY_NAMES
        .iter()
        .position(|candidate| *candidate == wanted)
        .and_then(|bit| u32::try_from(bit).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for syscall in REPORTED {
            assert_eq!(name_of(syscall.number), syscall.name);
            assert_eq!(number_of(syscall.name), Some(syscall.number));
        }
        assert_eq!(exec_name(322), "execveat");
        assert_eq!(clone_name(435), "clone3");
    }

    #[test]
    fn flags_render_like_falco() {
        assert_eq!(open_flags_text(0), "O_RDONLY");
        assert_eq!(open_flags_text(0o1101), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(ptrace_request_text(16), "PTRACE_ATTACH");
        assert_eq!(
            namespace_flags_text(0x2002_0000),
            "CLONE_NEWNS|CLONE_NEWPID"
        );
        assert_eq!(capability_bit("sys_admin"), Some(21));
        assert_eq!(
            capability_names(1 << 21 | 1),
            vec!["CAP_CHOWN", "CAP_SYS_ADMIN"]
        );
    }
}
