//! Turning record parameters into text and typed values: kernel path components into paths,
//! argv blobs into arguments, socket tuples and sockaddrs into endpoints, and file
//! descriptors into [`FdInfo`]. Stateless; the process and container state is in `state`.

use std::net::IpAddr;

use crate::event::{Endpoint, FdInfo, FdKind, SockAddr, SocketRole, ip_of};
use crate::record::{FileInfo, Record, SockInfo, flag, kind, param};
use crate::syscalls;

/// Most argv entries kept; the kernel already bounds the blob to 4095 bytes.
const MAX_ARGS: usize = 512;

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;

/// Appends `bytes` as text, invalid UTF-8 replaced. Kernel strings are nearly always valid,
/// and validating them (word-at-a-time for ASCII) is cheaper than the lossy decoder's walk.
fn push_text(text: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(valid) => text.push_str(valid),
        Err(_) => text.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// Joins leaf-first NUL-separated components into an absolute path.
pub fn path_from_components(data: &[u8]) -> String {
    let mut path = String::with_capacity(data.len() + 1);
    for component in data
        .rsplit(|&byte| byte == 0)
        .filter(|component| !component.is_empty())
    {
        path.push('/');
        push_text(&mut path, component);
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// Splits a NUL-separated argv blob.
pub fn argv_from_blob(data: &[u8]) -> Vec<String> {
    let trimmed = data.strip_suffix(&[0]).unwrap_or(data);
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .split(|&byte| byte == 0)
        .take(MAX_ARGS)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// Text of a STR parameter.
pub fn text(data: &[u8]) -> String {
    let end = data
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(data.len());
    let mut text = String::with_capacity(end);
    push_text(&mut text, &data[..end]);
    text
}

/// Parses a user-memory sockaddr (sockaddr_in, sockaddr_in6, sockaddr_un).
pub fn sockaddr_from_raw(data: &[u8]) -> Option<SockAddr> {
    if data.len() < 2 {
        return None;
    }
    let family = u16::from_le_bytes([data[0], data[1]]);
    match family {
        2 if data.len() >= 8 => Some(SockAddr::Ip(Endpoint {
            port: u16::from_be_bytes([data[2], data[3]]),
            ip: IpAddr::from([data[4], data[5], data[6], data[7]]),
        })),
        10 if data.len() >= 24 => {
            let mut address = [0u8; 16];
            address.copy_from_slice(&data[8..24]);
            Some(SockAddr::Ip(Endpoint {
                port: u16::from_be_bytes([data[2], data[3]]),
                ip: IpAddr::from(address),
            }))
        }
        1 => Some(SockAddr::Unix(text(&data[2..]))),
        // an IP sockaddr shorter than its family's size
        2 | 10 => None,
        other => Some(SockAddr::Other(other)),
    }
}

fn fd_kind(file: Option<&FileInfo>, sock: Option<&SockInfo>) -> FdKind {
    if let Some(sock) = sock {
        return match sock.family {
            2 => FdKind::Ipv4,
            10 => FdKind::Ipv6,
            1 => FdKind::Unix,
            _ => FdKind::OtherSocket,
        };
    }
    let Some(file) = file else {
        return FdKind::Other;
    };
    if file.flags & crate::record::file_flag::MEMFD != 0 {
        return FdKind::Memfd;
    }
    match file.mode & S_IFMT {
        S_IFDIR => FdKind::Directory,
        S_IFIFO => FdKind::Pipe,
        S_IFSOCK => FdKind::OtherSocket,
        0 => FdKind::Other,
        _ => FdKind::File,
    }
}

fn endpoint_text(ip: Option<IpAddr>, port: u16) -> String {
    match ip {
        Some(IpAddr::V6(address)) => format!("{address}:{port}"),
        Some(address) => format!("{address}:{port}"),
        None => format!("?:{port}"),
    }
}

/// The role of the local end, from the syscall that produced the descriptor.
fn role_for(evt_type: &str, sock: &SockInfo) -> SocketRole {
    match evt_type {
        "accept" | "accept4" | "bind" | "listen" => SocketRole::Server,
        "connect" => SocketRole::Client,
        // a duplicated socket: a connected socket whose remote port is a well-known one is
        // a client; an accepted one has the well-known port locally
        _ if sock.remote_port != 0 && sock.local_port > sock.remote_port => SocketRole::Client,
        _ if sock.remote_port == 0 => SocketRole::Server,
        _ => SocketRole::Server,
    }
}

/// The descriptor a record is about: FILE plus PATH or SOCK parameters, at `fd_num`.
pub fn fd_info(record: &Record<'_>, evt_type: &str, fd_num: i64) -> Option<FdInfo> {
    let file = record.file_info();
    let sock = record.sock_info();
    if file.is_none() && sock.is_none() {
        return None;
    }
    let kind = fd_kind(file.as_ref(), sock.as_ref());
    let truncated = record.header.flags & flag::PATH_TRUNCATED != 0;
    let (name, role) = match sock {
        Some(sock) if kind.is_ip() => {
            let role = role_for(evt_type, &sock);
            let local = endpoint_text(ip_of(sock.family, &sock.local_addr), sock.local_port);
            let remote = endpoint_text(ip_of(sock.family, &sock.remote_addr), sock.remote_port);
            let name = match role {
                SocketRole::Client => format!("{local}->{remote}"),
                SocketRole::Server if sock.remote_port == 0 => local,
                SocketRole::Server => format!("{remote}->{local}"),
            };
            (name, Some(role))
        }
        Some(_) => (String::new(), None),
        None => {
            let path = record
                .first(param::PATH)
                .map(path_from_components)
                .unwrap_or_default();
            let name = match (kind, file) {
                (FdKind::Pipe, Some(file)) if path == "/" => format!("pipe:[{}]", file.ino),
                (FdKind::Memfd, _) => path.trim_start_matches('/').to_string(),
                _ => path,
            };
            (name, None)
        }
    };
    Some(FdInfo {
        num: fd_num,
        kind,
        name,
        file,
        sock,
        role,
        truncated,
    })
}

/// A connect that failed (or is in progress) may leave the socket without its peer: take
/// the peer from the address the caller passed, so the attempt is still attributed.
pub fn fill_peer_from_sockaddr(fd: &mut FdInfo, sockaddr: Option<&SockAddr>) {
    let (Some(sock), Some(SockAddr::Ip(endpoint))) = (fd.sock.as_mut(), sockaddr) else {
        return;
    };
    if sock.remote_port != 0 {
        return;
    }
    sock.remote_port = endpoint.port;
    match endpoint.ip {
        IpAddr::V4(address) if sock.family == 2 => {
            sock.remote_addr[..4].copy_from_slice(&address.octets())
        }
        IpAddr::V6(address) if sock.family == 10 => sock.remote_addr = address.octets(),
        _ => return,
    }
    let local = endpoint_text(ip_of(sock.family, &sock.local_addr), sock.local_port);
    fd.name = format!(
        "{local}->{}",
        endpoint_text(Some(endpoint.ip), endpoint.port)
    );
    fd.role = Some(SocketRole::Client);
}

/// Sets the local end's role of an IP socket and renders its name for that role.
pub fn set_socket_role(fd: &mut FdInfo, role: SocketRole) {
    let Some(sock) = fd.sock else {
        return;
    };
    if !fd.kind.is_ip() {
        return;
    }
    let local = endpoint_text(ip_of(sock.family, &sock.local_addr), sock.local_port);
    let remote = endpoint_text(ip_of(sock.family, &sock.remote_addr), sock.remote_port);
    fd.name = match role {
        SocketRole::Client => format!("{local}->{remote}"),
        SocketRole::Server if sock.remote_port == 0 => local,
        SocketRole::Server => format!("{remote}->{local}"),
    };
    fd.role = Some(role);
}

/// The descriptor number a syscall record is about.
pub fn fd_number(evt_type: &str, ret: i64, args: &[u64; 6]) -> i64 {
    match evt_type {
        "open" | "openat" | "openat2" | "creat" | "accept" | "accept4" | "dup" | "dup2"
        | "dup3" => ret,
        _ => args[0] as i64,
    }
}

/// The `evt.type` name of a record.
pub fn evt_type_of(record: &Record<'_>) -> &'static str {
    match record.header.kind {
        kind::EXEC => syscalls::exec_name(record.header.syscall_nr),
        kind::CLONE => syscalls::clone_name(record.header.syscall_nr),
        kind::EXIT => "procexit",
        kind::CGROUP_MKDIR => "cgroup_mkdir",
        _ => syscalls::name_of(record.header.syscall_nr),
    }
}

/// A stateless rendering of a record: its type and every parameter decoded. Used by the
/// fuzz target and by `--record` dumps; exercises every parameter decoder.
pub fn describe_record(record: &Record<'_>) -> String {
    let evt_type = evt_type_of(record);
    let mut parts = vec![format!(
        "{} pid={} tid={} comm={} ret={}",
        evt_type,
        record.header.tgid,
        record.header.tid,
        record.header.comm(),
        record.header.ret
    )];
    for item in record.params() {
        let rendered = match item.param_type {
            param::STR => format!("str={}", text(item.data)),
            param::PATH => format!("path={}", path_from_components(item.data)),
            param::ARGV => format!("argv={:?}", argv_from_blob(item.data)),
            param::RAW => format!("sockaddr={:?}", sockaddr_from_raw(item.data)),
            param::SOCK | param::FILE => String::new(),
            other => format!("param{other}"),
        };
        if !rendered.is_empty() {
            parts.push(rendered);
        }
    }
    let fd_num = fd_number(evt_type, record.header.ret, &record.header.args);
    if let Some(fd) = fd_info(record, evt_type, fd_num) {
        parts.push(format!(
            "fd={} type={} name={}",
            fd.num,
            fd.kind.type_name(),
            fd.name
        ));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_components_join_into_an_absolute_path() {
        assert_eq!(path_from_components(b"shadow\0etc\0"), "/etc/shadow");
        assert_eq!(path_from_components(b""), "/");
        assert_eq!(path_from_components(b"tmp\0"), "/tmp");
        assert_eq!(path_from_components(b"\0\0"), "/");
        assert_eq!(path_from_components(b"c\0\0b\0a"), "/a/b/c");
    }

    #[test]
    fn invalid_utf8_in_kernel_strings_is_replaced_not_dropped() {
        assert_eq!(path_from_components(b"f\xff\0etc\0"), "/etc/f\u{fffd}");
        assert_eq!(text(b"/tmp/\xc3\0rest"), "/tmp/\u{fffd}");
        assert_eq!(text(b"/etc/hostname\0\0"), "/etc/hostname");
        assert_eq!(text(b"no-terminator"), "no-terminator");
    }

    #[test]
    fn argv_blobs_split_on_nul() {
        assert_eq!(
            argv_from_blob(b"cat\0/etc/shadow\0"),
            vec!["cat".to_string(), "/etc/shadow".to_string()]
        );
        assert!(argv_from_blob(b"").is_empty());
        assert_eq!(argv_from_blob(b"sh\0-c\0\0x"), vec!["sh", "-c", "", "x"]);
    }

    #[test]
    fn sockaddrs_parse_per_family() {
        let mut v4 = vec![2u8, 0, 0x1f, 0x90, 10, 0, 0, 1];
        v4.extend_from_slice(&[0; 8]);
        assert_eq!(
            sockaddr_from_raw(&v4),
            Some(SockAddr::Ip(Endpoint {
                ip: IpAddr::from([10, 0, 0, 1]),
                port: 8080
            }))
        );
        let mut unix = vec![1u8, 0];
        unix.extend_from_slice(b"/run/containerd/containerd.sock\0");
        assert_eq!(
            sockaddr_from_raw(&unix),
            Some(SockAddr::Unix("/run/containerd/containerd.sock".into()))
        );
        assert_eq!(sockaddr_from_raw(&[10, 0, 1]), None);
        assert_eq!(sockaddr_from_raw(&[1]), None);
    }
}
