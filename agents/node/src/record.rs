//! The binary records the kernel programs write to the ring buffer (layout in
//! bpf/palisade.h), decoded without trusting a single length: every size is checked against
//! the record and against fixed bounds, so an arbitrary byte string decodes to a record or to
//! a [`RecordError`] naming what was wrong, never to a panic or an allocation it chose.
//!
//! [`RecordBuilder`] writes the same layout; the /proc sensor, the Tetragon converter, tests
//! and benchmarks use it so that every event goes through the same decoder.

use crate::error::RecordError;

/// Record kinds (PAL_KIND_*).
pub mod kind {
    /// A successful exec (sched_process_exec).
    pub const EXEC: u16 = 1;
    /// A new process (sched_process_fork, threads excluded).
    pub const CLONE: u16 = 2;
    /// The last thread of a process exited.
    pub const EXIT: u16 = 3;
    /// A syscall of interest returned (sys_exit).
    pub const SYSCALL: u16 = 4;
    /// A cgroup was created in the container hierarchy.
    pub const CGROUP_MKDIR: u16 = 5;
}

/// Parameter types (PAL_PARAM_*).
pub mod param {
    /// Bytes of a string, without terminator.
    pub const STR: u8 = 1;
    /// NUL-separated path components, leaf first.
    pub const PATH: u8 = 2;
    /// NUL-separated argv strings.
    pub const ARGV: u8 = 3;
    /// A socket tuple (`struct pal_sock`).
    pub const SOCK: u8 = 4;
    /// Inode facts of a file (`struct pal_file`).
    pub const FILE: u8 = 5;
    /// Raw bytes from user memory (a sockaddr).
    pub const RAW: u8 = 6;
}

/// Header flags (PAL_FLAG_*).
pub mod flag {
    /// A dentry walk stopped at its bound.
    pub const PATH_TRUNCATED: u32 = 0x1;
    /// argv was longer than the kernel copies.
    pub const ARGV_TRUNCATED: u32 = 0x2;
    /// The executed file lives on an overlayfs upper layer.
    pub const EXE_UPPER_LAYER: u32 = 0x4;
    /// The executed file is an unlinked memfd.
    pub const EXE_MEMFD: u32 = 0x8;
    /// Clone created a thread.
    pub const THREAD: u32 = 0x10;
    /// Exit of the last thread.
    pub const GROUP_DEAD: u32 = 0x20;
}

/// File flags in [`FileInfo::flags`] (PAL_FILE_*).
pub mod file_flag {
    /// On an overlayfs upper layer.
    pub const UPPER_LAYER: u32 = 0x1;
    /// An unlinked memfd.
    pub const MEMFD: u32 = 0x2;
}

/// Largest record the kernel writes (PAL_RECORD_MAX).
pub const RECORD_MAX: usize = 16384;
/// Most parameters a record may carry (PAL_MAX_PARAMS).
pub const MAX_PARAMS: usize = 8;
/// Size of `struct pal_header`.
pub const HEADER_LEN: usize = 168;
/// Size of `struct pal_param`.
pub const PARAM_HEADER_LEN: usize = 4;
/// Size of `struct pal_sock`.
pub const SOCK_LEN: usize = 44;
/// Size of `struct pal_file`.
pub const FILE_LEN: usize = 24;

/// The fixed header of a record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    /// Record kind, one of [`kind`].
    pub kind: u16,
    /// Number of parameters that follow.
    pub nparams: u16,
    /// Total length of the record.
    pub len: u32,
    /// Time since boot in nanoseconds (suspend included).
    pub ts_boot_ns: u64,
    /// Process id.
    pub tgid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Process id in its own pid namespace.
    pub vpid: u32,
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Audit login uid (u32::MAX when unset).
    pub loginuid: u32,
    /// Controlling terminal device number, 0 if none.
    pub tty: u32,
    /// Kernfs id of the task's cgroup.
    pub cgroup_id: u64,
    /// Syscall return value.
    pub ret: i64,
    /// Syscall number (x86_64).
    pub syscall_nr: u32,
    /// [`flag`] bits.
    pub flags: u32,
    /// Effective capabilities.
    pub cap_effective: u64,
    /// Permitted capabilities.
    pub cap_permitted: u64,
    /// Mount namespace inode.
    pub mntns: u32,
    /// Pid namespace inode.
    pub pidns: u32,
    /// Syscall arguments, or kind-specific values.
    pub args: [u64; 6],
    /// Task command name, NUL-padded.
    pub comm: [u8; 16],
}

/// One parameter of a record, borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'record> {
    /// Parameter type, one of [`param`].
    pub param_type: u8,
    /// The parameter's bytes.
    pub data: &'record [u8],
}

/// A decoded record: its header and up to [`MAX_PARAMS`] parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'record> {
    /// The header.
    pub header: Header,
    params: [Param<'record>; MAX_PARAMS],
    param_count: usize,
}

/// Inode facts of a file, from `struct pal_file`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// i_mode: file type and permission bits.
    pub mode: u32,
    /// [`file_flag`] bits.
    pub flags: u32,
    /// Inode number.
    pub ino: u64,
    /// Device of the filesystem (kernel encoding).
    pub dev: u32,
    /// Link count.
    pub nlink: u32,
}

/// A socket's addresses, from `struct pal_sock`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockInfo {
    /// Address family (AF_INET = 2, AF_INET6 = 10, AF_UNIX = 1).
    pub family: u16,
    /// Socket type (SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_RAW = 3).
    pub sock_type: u16,
    /// Protocol (IPPROTO_TCP = 6, IPPROTO_UDP = 17).
    pub protocol: u16,
    /// Local port.
    pub local_port: u16,
    /// Remote port.
    pub remote_port: u16,
    /// Local address (IPv4 in the first four bytes).
    pub local_addr: [u8; 16],
    /// Remote address.
    pub remote_addr: [u8; 16],
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut buffer = [0u8; 8];
    buffer.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(buffer)
}

impl Header {
    /// Parses the header from the first [`HEADER_LEN`] bytes; the caller checked the length.
    fn parse(bytes: &[u8]) -> Self {
        debug_assert!(bytes.len() >= HEADER_LEN);
        let mut args = [0u64; 6];
        for (index, arg) in args.iter_mut().enumerate() {
            *arg = read_u64(bytes, 104 + index * 8);
        }
        let mut comm = [0u8; 16];
        comm.copy_from_slice(&bytes[152..168]);
        Self {
            kind: read_u16(bytes, 0),
            nparams: read_u16(bytes, 2),
            len: read_u32(bytes, 4),
            ts_boot_ns: read_u64(bytes, 8),
            tgid: read_u32(bytes, 16),
            tid: read_u32(bytes, 20),
            ppid: read_u32(bytes, 24),
            vpid: read_u32(bytes, 28),
            uid: read_u32(bytes, 32),
            gid: read_u32(bytes, 36),
            euid: read_u32(bytes, 40),
            egid: read_u32(bytes, 44),
            loginuid: read_u32(bytes, 48),
            tty: read_u32(bytes, 52),
            cgroup_id: read_u64(bytes, 56),
            ret: read_u64(bytes, 64) as i64,
            syscall_nr: read_u32(bytes, 72),
            flags: read_u32(bytes, 76),
            cap_effective: read_u64(bytes, 80),
            cap_permitted: read_u64(bytes, 88),
            mntns: read_u32(bytes, 96),
            pidns: read_u32(bytes, 100),
            args,
            comm,
        }
    }

    /// Appends the header's bytes.
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.kind.to_le_bytes());
        out.extend_from_slice(&self.nparams.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.ts_boot_ns.to_le_bytes());
        for value in [
            self.tgid,
            self.tid,
            self.ppid,
            self.vpid,
            self.uid,
            self.gid,
            self.euid,
            self.egid,
            self.loginuid,
            self.tty,
        ] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&self.cgroup_id.to_le_bytes());
        out.extend_from_slice(&self.ret.to_le_bytes());
        out.extend_from_slice(&self.syscall_nr.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.cap_effective.to_le_bytes());
        out.extend_from_slice(&self.cap_permitted.to_le_bytes());
        out.extend_from_slice(&self.mntns.to_le_bytes());
        out.extend_from_slice(&self.pidns.to_le_bytes());
        for arg in self.args {
            out.extend_from_slice(&arg.to_le_bytes());
        }
        out.extend_from_slice(&self.comm);
    }

    /// The command name as text, up to its first NUL.
    pub fn comm(&self) -> String {
        let end = self.comm.iter().position(|&byte| byte == 0).unwrap_or(16);
        String::from_utf8_lossy(&self.comm[..end]).into_owned()
    }
}

impl<'record> Record<'record> {
    /// Decodes one record. Checks the header length, the declared total length, the
    /// parameter count and every parameter's length and type.
    pub fn decode(bytes: &'record [u8]) -> Result<Self, RecordError> {
        if bytes.len() > RECORD_MAX {
            return Err(RecordError::TooLarge { len: bytes.len() });
        }
        if bytes.len() < HEADER_LEN {
            return Err(RecordError::Truncated {
                what: "header",
                needed: HEADER_LEN,
                available: bytes.len(),
            });
        }
        let header = Header::parse(bytes);
        let declared = header.len as usize;
        if declared < HEADER_LEN || declared > bytes.len() {
            return Err(RecordError::BadLength {
                declared,
                available: bytes.len(),
            });
        }
        if !(kind::EXEC..=kind::CGROUP_MKDIR).contains(&header.kind) {
            return Err(RecordError::UnknownKind { kind: header.kind });
        }
        let param_count = usize::from(header.nparams);
        if param_count > MAX_PARAMS {
            return Err(RecordError::TooManyParams { count: param_count });
        }
        let body = &bytes[..declared];
        let empty = Param {
            param_type: 0,
            data: &[],
        };
        let mut params = [empty; MAX_PARAMS];
        let mut offset = HEADER_LEN;
        for (index, slot) in params.iter_mut().enumerate().take(param_count) {
            if body.len() - offset < PARAM_HEADER_LEN {
                return Err(RecordError::Truncated {
                    what: "parameter header",
                    needed: PARAM_HEADER_LEN,
                    available: body.len() - offset,
                });
            }
            let param_type = body[offset];
            let len = usize::from(read_u16(body, offset + 2));
            offset += PARAM_HEADER_LEN;
            if body.len() - offset < len {
                return Err(RecordError::Truncated {
                    what: "parameter data",
                    needed: len,
                    available: body.len() - offset,
                });
            }
            let expected_len = match param_type {
                param::SOCK => Some(SOCK_LEN),
                param::FILE => Some(FILE_LEN),
                param::STR | param::PATH | param::ARGV | param::RAW => None,
                other => {
                    return Err(RecordError::UnknownParam {
                        index,
                        param_type: other,
                    });
                }
            };
            if let Some(expected) = expected_len
                && expected != len
            {
                return Err(RecordError::BadParamLength {
                    index,
                    param_type,
                    len,
                });
            }
            *slot = Param {
                param_type,
                data: &body[offset..offset + len],
            };
            offset += len;
        }
        Ok(Self {
            header,
            params,
            param_count,
        })
    }

    /// The parameters, in order.
    pub fn params(&self) -> &[Param<'record>] {
        &self.params[..self.param_count]
    }

    /// The first parameter of a type, if any.
    pub fn first(&self, param_type: u8) -> Option<&'record [u8]> {
        self.params()
            .iter()
            .find(|param| param.param_type == param_type)
            .map(|param| param.data)
    }

    /// The `nth` parameter of a type (0-based), if any.
    pub fn nth(&self, param_type: u8, nth: usize) -> Option<&'record [u8]> {
        self.params()
            .iter()
            .filter(|param| param.param_type == param_type)
            .nth(nth)
            .map(|param| param.data)
    }

    /// The first FILE parameter.
    pub fn file_info(&self) -> Option<FileInfo> {
        self.first(param::FILE).map(FileInfo::parse)
    }

    /// The first SOCK parameter.
    pub fn sock_info(&self) -> Option<SockInfo> {
        self.first(param::SOCK).map(SockInfo::parse)
    }
}

impl FileInfo {
    fn parse(data: &[u8]) -> Self {
        debug_assert_eq!(data.len(), FILE_LEN);
        Self {
            mode: read_u32(data, 0),
            flags: read_u32(data, 4),
            ino: read_u64(data, 8),
            dev: read_u32(data, 16),
            nlink: read_u32(data, 20),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.mode.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.ino.to_le_bytes());
        out.extend_from_slice(&self.dev.to_le_bytes());
        out.extend_from_slice(&self.nlink.to_le_bytes());
    }
}

impl SockInfo {
    fn parse(data: &[u8]) -> Self {
        debug_assert_eq!(data.len(), SOCK_LEN);
        let mut local_addr = [0u8; 16];
        local_addr.copy_from_slice(&data[12..28]);
        let mut remote_addr = [0u8; 16];
        remote_addr.copy_from_slice(&data[28..44]);
        Self {
            family: read_u16(data, 0),
            sock_type: read_u16(data, 2),
            protocol: read_u16(data, 4),
            local_port: read_u16(data, 6),
            remote_port: read_u16(data, 8),
            local_addr,
            remote_addr,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        for value in [
            self.family,
            self.sock_type,
            self.protocol,
            self.local_port,
            self.remote_port,
            0,
        ] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&self.local_addr);
        out.extend_from_slice(&self.remote_addr);
    }
}

/// Writes records in the kernel's layout.
#[derive(Debug, Clone)]
pub struct RecordBuilder {
    header: Header,
    body: Vec<u8>,
}

impl RecordBuilder {
    /// Starts a record with this header; `nparams` and `len` are filled in by [`Self::finish`].
    pub fn new(header: Header) -> Self {
        Self {
            header,
            body: Vec::with_capacity(256),
        }
    }

    fn push(&mut self, param_type: u8, data: &[u8]) -> &mut Self {
        // Bounded like the kernel: longer data is cut, as the kernel would have cut it.
        let len = data.len().min(usize::from(u16::MAX)).min(4096);
        self.body.push(param_type);
        self.body.push(0);
        self.body
            .extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_le_bytes());
        self.body.extend_from_slice(&data[..len]);
        self.header.nparams += 1;
        self
    }

    /// Adds a string parameter.
    pub fn string(&mut self, text: &str) -> &mut Self {
        self.push(param::STR, text.as_bytes())
    }

    /// Adds an absolute path as kernel-style components, leaf first.
    pub fn path(&mut self, path: &str) -> &mut Self {
        let mut data = Vec::with_capacity(path.len() + 1);
        for component in path.split('/').rev().filter(|part| !part.is_empty()) {
            data.extend_from_slice(component.as_bytes());
            data.push(0);
        }
        self.push(param::PATH, &data)
    }

    /// Adds argv.
    pub fn argv<S: AsRef<str>>(&mut self, argv: &[S]) -> &mut Self {
        let mut data = Vec::new();
        for arg in argv {
            data.extend_from_slice(arg.as_ref().as_bytes());
            data.push(0);
        }
        self.push(param::ARGV, &data)
    }

    /// Adds inode facts.
    pub fn file(&mut self, info: FileInfo) -> &mut Self {
        let mut data = Vec::with_capacity(FILE_LEN);
        info.write(&mut data);
        self.push(param::FILE, &data)
    }

    /// Adds a socket tuple.
    pub fn sock(&mut self, info: SockInfo) -> &mut Self {
        let mut data = Vec::with_capacity(SOCK_LEN);
        info.write(&mut data);
        self.push(param::SOCK, &data)
    }

    /// Adds raw bytes.
    pub fn raw(&mut self, data: &[u8]) -> &mut Self {
        self.push(param::RAW, data)
    }

    /// The finished record.
    pub fn finish(&self) -> Vec<u8> {
        let mut header = self.header;
        header.len = u32::try_from(HEADER_LEN + self.body.len()).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        header.write(&mut out);
        out.extend_from_slice(&self.body);
        out
    }
}

/// Command name bytes for a header.
pub fn comm_bytes(name: &str) -> [u8; 16] {
    let mut comm = [0u8; 16];
    for (slot, byte) in comm.iter_mut().zip(name.bytes().take(15)) {
        *slot = byte;
    }
    comm
}

/// Fuzz entry point: decodes arbitrary bytes as a record and, when that succeeds, turns it
/// into an event. Must never panic.
pub fn fuzz_decode(data: &[u8]) {
    if let Ok(record) = Record::decode(data) {
        let _event = crate::decode::describe_record(&record);
    }
}

#[cfg(test)]
mod tests;
