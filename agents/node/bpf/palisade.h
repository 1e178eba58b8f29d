/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The record format between the kernel programs and the agent. Every record is
 * `struct pal_header` followed by `header.nparams` parameters, each a
 * `struct pal_param` followed by `len` bytes. All integers are little-endian.
 *
 * agents/node/src/record.rs decodes this layout; a unit test there reads this file
 * and checks that every PAL_* constant below has the same value on both sides.
 */
#ifndef PALISADE_H
#define PALISADE_H

/* Record kinds. */
#define PAL_KIND_EXEC 1
#define PAL_KIND_CLONE 2
#define PAL_KIND_EXIT 3
#define PAL_KIND_SYSCALL 4
#define PAL_KIND_CGROUP_MKDIR 5

/* Parameter types. */
#define PAL_PARAM_STR 1        /* bytes, not NUL-terminated */
#define PAL_PARAM_PATH 2       /* NUL-separated path components, leaf first */
#define PAL_PARAM_ARGV 3       /* NUL-separated argv strings, in order */
#define PAL_PARAM_SOCK 4       /* struct pal_sock */
#define PAL_PARAM_FILE 5       /* struct pal_file */
#define PAL_PARAM_RAW 6        /* raw bytes copied from user memory (sockaddr) */

/* Header flags. */
#define PAL_FLAG_PATH_TRUNCATED 0x1  /* a dentry walk hit its depth or size bound */
#define PAL_FLAG_ARGV_TRUNCATED 0x2  /* argv was longer than PAL_ARGV_MAX */
#define PAL_FLAG_EXE_UPPER_LAYER 0x4 /* the executed file lives on an overlayfs upper layer */
#define PAL_FLAG_EXE_MEMFD 0x8       /* the executed file is an unlinked memfd */
#define PAL_FLAG_THREAD 0x10         /* clone created a thread, not a process */
#define PAL_FLAG_GROUP_DEAD 0x20     /* exit of the last thread of the process */

/* File flags in struct pal_file. */
#define PAL_FILE_UPPER_LAYER 0x1
#define PAL_FILE_MEMFD 0x2

/* Bounds. */
#define PAL_ARGV_MAX 4095
#define PAL_STR_MAX 4095
#define PAL_NAME_MAX 255
#define PAL_PATH_DEPTH 40
#define PAL_RECORD_MAX 16384
#define PAL_MAX_PARAMS 8
#define PAL_COMM_LEN 16

struct pal_header {
	__u16 kind;
	__u16 nparams;
	__u32 len;           /* total bytes of the record, header included */
	__u64 ts_boot_ns;    /* bpf_ktime_get_boot_ns() */
	__u32 tgid;
	__u32 tid;
	__u32 ppid;          /* real parent's tgid */
	__u32 vpid;          /* tgid in the task's own pid namespace */
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 egid;
	__u32 loginuid;
	__u32 tty;           /* encoded device number of the controlling tty, 0 if none */
	__u64 cgroup_id;     /* kernfs id of the task's cgroup in the configured hierarchy */
	__s64 ret;           /* syscall return value */
	__u32 syscall_nr;
	__u32 flags;         /* PAL_FLAG_* */
	__u64 cap_effective;
	__u64 cap_permitted;
	__u32 mntns;
	__u32 pidns;
	__u64 args[6];       /* syscall arguments, or kind-specific values */
	char comm[PAL_COMM_LEN];
};

struct pal_param {
	__u8 type;
	__u8 reserved;
	__u16 len;
};

struct pal_sock {
	__u16 family;        /* AF_INET, AF_INET6, AF_UNIX ... */
	__u16 type;          /* SOCK_STREAM, SOCK_DGRAM ... */
	__u16 protocol;      /* IPPROTO_TCP ... */
	__u16 local_port;    /* host order */
	__u16 remote_port;   /* host order */
	__u16 reserved;
	__u8 local_addr[16]; /* IPv4 in the first 4 bytes */
	__u8 remote_addr[16];
};

struct pal_file {
	__u32 mode;          /* inode i_mode: file type and permissions */
	__u32 flags;         /* PAL_FILE_* */
	__u64 ino;
	__u32 dev;
	__u32 nlink;
};

#endif
