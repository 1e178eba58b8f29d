//! The agent's event: one kernel record enriched with its process (and ancestors), the file
//! descriptor it is about and its container and pod. Laid out so that every Falco syscall
//! field (evt.*, proc.*, fd.*, user.*, container.*, k8s.*) is a direct read.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::record::{FileInfo, SockInfo};

/// What kind of kernel record the event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A successful exec.
    Exec,
    /// A new process.
    Clone,
    /// A process exited.
    Exit,
    /// A syscall returned.
    Syscall,
}

/// One event, ready for rules.
#[derive(Debug, Clone)]
pub struct Event {
    /// Agent-wide event number (evt.num).
    pub num: u64,
    /// Wall-clock time of the event in nanoseconds since the epoch.
    pub time_ns: u64,
    /// Record kind.
    pub kind: EventKind,
    /// Name as `evt.type` prints it (execve, openat, connect, clone, procexit ...).
    pub evt_type: &'static str,
    /// Syscall number.
    pub syscall_nr: u32,
    /// Thread that performed it.
    pub tid: u32,
    /// Return value (evt.res / evt.rawres).
    pub ret: i64,
    /// Syscall arguments as the kernel saw them.
    pub args: [u64; 6],
    /// Record flags (record::flag).
    pub flags: u32,
    /// The process, as it is after the event (for exec: the new program).
    pub process: Arc<Process>,
    /// The file descriptor the event is about (opened, connected, accepted, duplicated ...).
    pub fd: Option<FdInfo>,
    /// String arguments, in the order the kernel program pushed them.
    pub strings: Vec<String>,
    /// A socket address read from the syscall's user argument (connect, bind).
    pub sockaddr: Option<SockAddr>,
    /// The container the process runs in (the host has id "host").
    pub container: Arc<Container>,
}

/// A process, with its parent chain.
#[derive(Debug, Clone, Default)]
pub struct Process {
    /// Process id on the host.
    pub pid: u32,
    /// Process id in its pid namespace.
    pub vpid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Command name (the kernel's comm, at most 15 bytes).
    pub name: String,
    /// argv[0].
    pub exe: String,
    /// Full path of the executed file, resolved by the kernel.
    pub exepath: String,
    /// argv[1..].
    pub args: Vec<String>,
    /// Working directory at exec.
    pub cwd: String,
    /// Controlling terminal (0 when none).
    pub tty: u32,
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Audit login uid.
    pub loginuid: u32,
    /// Effective capabilities.
    pub cap_effective: u64,
    /// Permitted capabilities.
    pub cap_permitted: u64,
    /// The executable lives on an overlayfs upper layer (written in the container).
    pub exe_upper_layer: bool,
    /// The executable is a memfd (fileless execution).
    pub exe_from_memfd: bool,
    /// Inode of the executable.
    pub exe_ino: u64,
    /// When the process (or its current program) started, ns since the epoch.
    pub start_time_ns: u64,
    /// Kernfs id of its cgroup.
    pub cgroup_id: u64,
    /// Pid namespace inode.
    pub pidns: u32,
    /// Mount namespace inode.
    pub mntns: u32,
    /// Container id ("host" on the host).
    pub container_id: Arc<str>,
    /// The parent, when known.
    pub parent: Option<Arc<Process>>,
}

impl Process {
    /// `proc.cmdline`: the name followed by the arguments.
    pub fn cmdline(&self) -> String {
        let mut text = self.name.clone();
        for arg in &self.args {
            text.push(' ');
            text.push_str(arg);
        }
        text
    }

    /// `proc.args`: the arguments joined by spaces.
    pub fn args_text(&self) -> String {
        self.args.join(" ")
    }

    /// The `n`th ancestor: 0 is the process itself, 1 its parent ...
    pub fn ancestor(&self, generation: usize) -> Option<&Process> {
        let mut current = self;
        for _ in 0..generation {
            current = current.parent.as_deref()?;
        }
        Some(current)
    }

    /// Ancestors from the parent upwards, bounded so a corrupted chain cannot loop.
    pub fn ancestors(&self) -> impl Iterator<Item = &Process> {
        let mut next = self.parent.as_deref();
        let mut remaining = 64usize;
        std::iter::from_fn(move || {
            if remaining == 0 {
                return None;
            }
            remaining -= 1;
            let current = next?;
            next = current.parent.as_deref();
            Some(current)
        })
    }

    /// Whether the process is a session leader's descendant attached to a terminal.
    pub fn has_tty(&self) -> bool {
        self.tty != 0
    }
}

/// What a file descriptor refers to, with Falco's type character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FdKind {
    /// A regular file or device ('f').
    File,
    /// A directory ('d').
    Directory,
    /// An IPv4 socket ('4').
    Ipv4,
    /// An IPv6 socket ('6').
    Ipv6,
    /// A unix socket ('u').
    Unix,
    /// Another socket family, e.g. packet or netlink ('n' for netlink, 'o' otherwise).
    OtherSocket,
    /// A pipe or FIFO ('p').
    Pipe,
    /// A memfd ('m').
    Memfd,
    /// Anything else ('o').
    Other,
}

impl FdKind {
    /// Falco's `fd.typechar`.
    pub fn typechar(self) -> char {
        match self {
            Self::File => 'f',
            Self::Directory => 'd',
            Self::Ipv4 => '4',
            Self::Ipv6 => '6',
            Self::Unix => 'u',
            Self::OtherSocket | Self::Other => 'o',
            Self::Pipe => 'p',
            Self::Memfd => 'm',
        }
    }

    /// [`Self::typechar`] as text, for field extraction without an allocation per event.
    pub fn typechar_text(self) -> &'static str {
        match self {
            Self::File => "f",
            Self::Directory => "d",
            Self::Ipv4 => "4",
            Self::Ipv6 => "6",
            Self::Unix => "u",
            Self::OtherSocket | Self::Other => "o",
            Self::Pipe => "p",
            Self::Memfd => "m",
        }
    }

    /// Falco's `fd.type`.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Directory => "directory",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Unix => "unix",
            Self::OtherSocket => "socket",
            Self::Pipe => "pipe",
            Self::Memfd => "memfd",
            Self::Other => "other",
        }
    }

    /// Whether this is an IP socket.
    pub fn is_ip(self) -> bool {
        matches!(self, Self::Ipv4 | Self::Ipv6)
    }
}

/// Which end of a connection the process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketRole {
    /// It connected out: local is the client.
    Client,
    /// It accepted, bound or listened: local is the server.
    Server,
}

/// A file descriptor resolved by the kernel.
#[derive(Debug, Clone)]
pub struct FdInfo {
    /// The descriptor number.
    pub num: i64,
    /// Its kind.
    pub kind: FdKind,
    /// `fd.name`: the path, or the connection tuple "cip:cport->sip:sport".
    pub name: String,
    /// Inode facts, when the kernel sent them.
    pub file: Option<FileInfo>,
    /// The socket tuple, for sockets.
    pub sock: Option<SockInfo>,
    /// Local end's role, for IP sockets.
    pub role: Option<SocketRole>,
    /// The path was cut at the kernel's walk bound.
    pub truncated: bool,
}

/// An IP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Address.
    pub ip: IpAddr,
    /// Port.
    pub port: u16,
}

impl FdInfo {
    /// Local endpoint of an IP socket.
    pub fn local(&self) -> Option<Endpoint> {
        let sock = self.sock?;
        Some(Endpoint {
            ip: ip_of(sock.family, &sock.local_addr)?,
            port: sock.local_port,
        })
    }

    /// Remote endpoint of an IP socket.
    pub fn remote(&self) -> Option<Endpoint> {
        let sock = self.sock?;
        Some(Endpoint {
            ip: ip_of(sock.family, &sock.remote_addr)?,
            port: sock.remote_port,
        })
    }

    /// Client end (fd.cip/fd.cport).
    pub fn client(&self) -> Option<Endpoint> {
        match self.role? {
            SocketRole::Client => self.local(),
            SocketRole::Server => self.remote(),
        }
    }

    /// Server end (fd.sip/fd.sport).
    pub fn server(&self) -> Option<Endpoint> {
        match self.role? {
            SocketRole::Client => self.remote(),
            SocketRole::Server => self.local(),
        }
    }

    /// `fd.l4proto`: tcp, udp, raw or icmp.
    pub fn l4proto(&self) -> Option<&'static str> {
        let sock = self.sock?;
        match (sock.sock_type, sock.protocol) {
            (_, 6) | (1, _) => Some("tcp"),
            (_, 17) | (2, _) => Some("udp"),
            (_, 1) | (_, 58) => Some("icmp"),
            (3, _) => Some("raw"),
            _ => None,
        }
    }

    /// `fd.directory`: the path without its last component.
    pub fn directory(&self) -> Option<&str> {
        if !matches!(self.kind, FdKind::File | FdKind::Directory | FdKind::Memfd) {
            return None;
        }
        match self.name.rfind('/') {
            Some(0) => Some("/"),
            Some(index) => Some(&self.name[..index]),
            None => None,
        }
    }

    /// `fd.filename`: the last path component.
    pub fn filename(&self) -> Option<&str> {
        if !matches!(self.kind, FdKind::File | FdKind::Directory | FdKind::Memfd) {
            return None;
        }
        self.name.rsplit('/').next()
    }
}

/// An IP address from a kernel address field.
pub fn ip_of(family: u16, bytes: &[u8; 16]) -> Option<IpAddr> {
    match family {
        2 => Some(IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])),
        10 => Some(IpAddr::from(*bytes)),
        _ => None,
    }
}

/// A socket address from a syscall argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    /// IPv4 or IPv6.
    Ip(Endpoint),
    /// A unix socket path.
    Unix(String),
    /// Another family.
    Other(u16),
}

/// A mount of a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mount {
    /// Host path (or source).
    pub source: String,
    /// Path in the container.
    pub destination: String,
    /// Mount type (bind, proc, tmpfs ...).
    pub mount_type: String,
    /// Read-write.
    pub rw: bool,
    /// Mount options.
    pub options: Vec<String>,
}

/// The Kubernetes pod a container belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pod {
    /// Pod name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Pod uid.
    pub uid: String,
    /// Pod labels.
    pub labels: BTreeMap<String, String>,
}

/// A container, as the runtime describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Container {
    /// Short id (12 characters), or "host".
    pub id: String,
    /// Full id.
    pub full_id: String,
    /// Container name.
    pub name: String,
    /// Full image reference.
    pub image: String,
    /// Image repository (reference without tag and digest).
    pub image_repository: String,
    /// Image tag.
    pub image_tag: String,
    /// Image digest.
    pub image_digest: String,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// Runs privileged.
    pub privileged: bool,
    /// Capabilities granted (bounding set names).
    pub capabilities: Vec<String>,
    /// Mounts.
    pub mounts: Vec<Mount>,
    /// Pod, for Kubernetes containers.
    pub pod: Option<Pod>,
    /// Runtime that runs it: "containerd", "docker", "cri-o", "podman", or "host".
    pub runtime: String,
    /// The runtime answered for it (false while only the cgroup path is known).
    pub metadata_complete: bool,
}

impl Container {
    /// The host "container".
    pub fn host() -> Self {
        Self {
            id: "host".to_string(),
            full_id: "host".to_string(),
            name: "host".to_string(),
            runtime: "host".to_string(),
            metadata_complete: true,
            ..Self::default()
        }
    }

    /// Whether this is the host.
    pub fn is_host(&self) -> bool {
        self.id == "host"
    }

    /// A container known only by its id, until the runtime answers.
    pub fn unresolved(full_id: &str, runtime: &str) -> Self {
        Self {
            id: full_id.chars().take(12).collect(),
            full_id: full_id.to_string(),
            runtime: runtime.to_string(),
            ..Self::default()
        }
    }
}

/// Splits an image reference into repository, tag and digest (docker.io/library/nginx:1.25@sha256:...).
pub fn split_image_reference(reference: &str) -> (String, String, String) {
    let (name_and_tag, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, digest.to_string()),
        None => (reference, String::new()),
    };
    let last_slash = name_and_tag.rfind('/').map_or(0, |index| index + 1);
    match name_and_tag[last_slash..].rfind(':') {
        Some(colon) => {
            let split = last_slash + colon;
            (
                name_and_tag[..split].to_string(),
                name_and_tag[split + 1..].to_string(),
                digest,
            )
        }
        None => (name_and_tag.to_string(), String::new(), digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_repository_tag_and_digest() {
        assert_eq!(
            split_image_reference("docker.io/library/nginx:1.25"),
            (
                "docker.io/library/nginx".into(),
                "1.25".into(),
                String::new()
            )
        );
        assert_eq!(
            split_image_reference("localhost:5000/app@sha256:abc"),
            (
                "localhost:5000/app".into(),
                String::new(),
                "sha256:abc".into()
            )
        );
        assert_eq!(
            split_image_reference("localhost:5000/app:v1@sha256:abc"),
            (
                "localhost:5000/app".into(),
                "v1".into(),
                "sha256:abc".into()
            )
        );
        assert_eq!(
            split_image_reference("busybox"),
            ("busybox".into(), String::new(), String::new())
        );
    }

    #[test]
    fn ancestors_walk_up_the_chain() {
        let grandparent = Arc::new(Process {
            pid: 1,
            name: "containerd-shim".into(),
            ..Process::default()
        });
        let parent = Arc::new(Process {
            pid: 2,
            name: "bash".into(),
            parent: Some(grandparent),
            ..Process::default()
        });
        let child = Process {
            pid: 3,
            name: "cat".into(),
            args: vec!["/etc/shadow".into()],
            parent: Some(parent),
            ..Process::default()
        };
        assert_eq!(child.ancestor(1).map(|p| p.name.as_str()), Some("bash"));
        assert_eq!(
            child.ancestor(2).map(|p| p.name.as_str()),
            Some("containerd-shim")
        );
        assert!(child.ancestor(3).is_none());
        assert_eq!(child.ancestors().count(), 2);
        assert_eq!(child.cmdline(), "cat /etc/shadow");
    }
}
