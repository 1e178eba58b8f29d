// SPDX-License-Identifier: GPL-2.0
/*
 * Palisade's kernel sensor: CO-RE programs on BTF-typed tracepoints only (no kprobes,
 * fentry or LSM, which the kernels Palisade targets may refuse). Every record goes
 * through one ring buffer; every record that cannot be reserved is counted.
 *
 * Objects are resolved from kernel structures after the syscall, not from user memory
 * read at syscall entry: the executed file comes from linux_binprm, opened paths from
 * the new file descriptor, socket addresses from the socket. This is what defeats the
 * symlink and argument-swap bypasses of entry-time string capture.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "palisade.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
const volatile __u32 agent_tgid = 0;
/* cgroup subsystem whose hierarchy names containers; -1 for the unified hierarchy. */
const volatile __s32 cgroup_subsys = -1;
/* hierarchy id of that hierarchy (0 for the unified one), for cgroup_mkdir. */
const volatile __s32 cgroup_hierarchy = 0;

/* Size is set by the loader (--ringbuf-bytes); this is the default. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} pal_events SEC(".maps");

struct pal_scratch {
	__u8 buf[PAL_RECORD_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pal_scratch);
} pal_scratch_map SEC(".maps");

/* Index 0: ring buffer full. Index 1: records emitted. Index 2: records too large. */
#define PAL_STAT_RINGBUF_FULL 0
#define PAL_STAT_EMITTED 1
#define PAL_STAT_OVERSIZE 2
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} pal_stats SEC(".maps");

/* Syscalls userspace wants, by number: non-zero means emit. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u32);
} pal_interest SEC(".maps");

/* Offsets stay below this before each bounded write, so that header + param + data
 * always fits PAL_RECORD_MAX; the mask makes the bound visible to the verifier. */
/* Pending bytes in the ring buffer past which the reader is woken. */
#define PAL_WAKEUP_BYTES (256 * 1024)

#define PAL_OFF_MASK 8191
#define PAL_OFF_LIMIT 8000

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define AF_INET 2
#define AF_INET6 10
#define AT_FDCWD -100

/* x86_64 syscall numbers. */
#define NR_open 2
#define NR_creat 85
#define NR_openat 257
#define NR_openat2 437
#define NR_connect 42
#define NR_accept 43
#define NR_bind 49
#define NR_listen 50
#define NR_accept4 288
#define NR_dup 32
#define NR_dup2 33
#define NR_dup3 292
#define NR_mount 165
#define NR_umount2 166
#define NR_init_module 175
#define NR_finit_module 313
#define NR_setns 308
#define NR_memfd_create 319
#define NR_unlink 87
#define NR_unlinkat 263
#define NR_rename 82
#define NR_renameat 264
#define NR_renameat2 316
#define NR_symlink 88
#define NR_symlinkat 266
#define NR_link 86
#define NR_linkat 265
#define NR_chroot 161
#define NR_pivot_root 155
#define NR_fchdir 81
#define NR_chdir 80

static __always_inline void stat_inc(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&pal_stats, &index);
	if (value)
		*value += 1;
}

static __always_inline int is_agent(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == agent_tgid;
}

/* `task` must be a BTF pointer; see fill_header. */
static __always_inline __u64 task_cgroup_id(struct task_struct *task)
{
	struct css_set *cgroups = task->cgroups;
	if (!cgroups)
		return 0;
	if (cgroup_subsys < 0)
		return cgroups->dfl_cgrp->kn->id;
	__s32 index = cgroup_subsys;
	if (index >= 16)
		return 0;
	struct cgroup_subsys_state *css = NULL;
	bpf_probe_read_kernel(&css, sizeof(css), &cgroups->subsys[index & 15]);
	if (!css)
		return 0;
	return BPF_CORE_READ(css, cgroup, kn, id);
}

static __always_inline __u32 task_tty(struct task_struct *task)
{
	struct tty_struct *tty = task->signal->tty;
	if (!tty)
		return 0;
	__u32 index = tty->index;
	__u32 major = tty->driver->major;
	__u32 minor = tty->driver->minor_start + index;
	/* new_encode_dev, the form /proc/<pid>/stat prints as tty_nr */
	return (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
}

/*
 * `task` must be a BTF pointer (a tp_btf argument or bpf_get_current_task_btf()): its fields
 * are read with plain loads, which the verifier turns into fault-handling loads, instead of
 * one bpf_probe_read_kernel call per field. This runs for every record, so the calls were
 * most of the program's cost. The pid namespace entry and a cgroup v1 controller's state are
 * read with helpers because they are indexed by a runtime value, which direct access does not
 * allow; what they point to is then a plain address, not a BTF pointer, and is read with
 * helpers too.
 */
static __always_inline void fill_header(struct pal_header *header, struct task_struct *task,
					__u16 kind)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	header->kind = kind;
	header->nparams = 0;
	header->len = sizeof(*header);
	header->ts_boot_ns = bpf_ktime_get_boot_ns();
	header->tgid = pid_tgid >> 32;
	header->tid = (__u32)pid_tgid;
	header->ppid = task->real_parent->tgid;

	struct pid *thread_pid = task->group_leader->thread_pid;
	__u32 level = thread_pid->level;
	struct upid upid = {};
	bpf_probe_read_kernel(&upid, sizeof(upid), &thread_pid->numbers[level & 31]);
	header->vpid = upid.nr;
	header->pidns = BPF_CORE_READ(upid.ns, ns.inum);
	header->mntns = task->nsproxy->mnt_ns->ns.inum;

	const struct cred *cred = task->cred;
	header->uid = cred->uid.val;
	header->gid = cred->gid.val;
	header->euid = cred->euid.val;
	header->egid = cred->egid.val;
	header->cap_effective = cred->cap_effective.val;
	header->cap_permitted = cred->cap_permitted.val;
	header->loginuid = task->loginuid.val;
	header->tty = task_tty(task);
	header->cgroup_id = task_cgroup_id(task);
	header->ret = 0;
	header->syscall_nr = 0;
	header->flags = 0;
	for (int i = 0; i < 6; i++)
		header->args[i] = 0;
	bpf_get_current_comm(header->comm, sizeof(header->comm));
}

static __always_inline struct pal_scratch *scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&pal_scratch_map, &zero);
}

static __always_inline void submit(struct pal_scratch *s, __u32 off)
{
	struct pal_header *header = (struct pal_header *)s->buf;
	if (off > PAL_RECORD_MAX) {
		stat_inc(PAL_STAT_OVERSIZE);
		return;
	}
	header->len = off;
	/* Waking the reader for every record costs the traced task an IPI and a context
	 * switch; the reader polls with a short timeout instead, and is woken when the backlog
	 * crosses a multiple of PAL_WAKEUP_BYTES. Only on crossing: a forced wake-up is a
	 * self-IPI (a VM exit on a virtual machine), and raising one for every record while
	 * the backlog stays above the mark made each record of an open storm pay for one.
	 * The reader sleeps only on an empty buffer, so a backlog it sleeps through reaches
	 * the first mark by crossing it; a crossing that two CPUs race past is caught at the
	 * next mark, or by the poll timeout. */
	__u64 pending = bpf_ringbuf_query(&pal_events, BPF_RB_AVAIL_DATA);
	__u64 wakeup = BPF_RB_NO_WAKEUP;
	if (pending / PAL_WAKEUP_BYTES != (pending + off) / PAL_WAKEUP_BYTES)
		wakeup = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&pal_events, s->buf, off & (PAL_RECORD_MAX - 1), wakeup) != 0) {
		stat_inc(PAL_STAT_RINGBUF_FULL);
		return;
	}
	stat_inc(PAL_STAT_EMITTED);
}

/* Writes a param header at `param_off`; data has already been written after it. */
static __always_inline void close_param(struct pal_scratch *s, __u32 param_off, __u8 type,
					__u32 len)
{
	struct pal_param param = { .type = type, .reserved = 0, .len = len };
	__u32 at = param_off & PAL_OFF_MASK;
	__builtin_memcpy(&s->buf[at], &param, sizeof(param));
	struct pal_header *header = (struct pal_header *)s->buf;
	header->nparams += 1;
}

static __noinline __u32 push_user_str(struct pal_scratch *s, __u32 off, const char *user_ptr)
{
	if (off > PAL_OFF_LIMIT || !s)
		return off;
	__u32 data_off = (off + sizeof(struct pal_param)) & PAL_OFF_MASK;
	long copied = bpf_probe_read_user_str(&s->buf[data_off], PAL_STR_MAX, user_ptr);
	if (copied <= 0)
		copied = 1;
	/* drop the terminating NUL */
	__u32 len = (__u32)copied - 1;
	close_param(s, off, PAL_PARAM_STR, len);
	return off + sizeof(struct pal_param) + len;
}

static __noinline __u32 push_kernel_str(struct pal_scratch *s, __u32 off, const char *kernel_ptr)
{
	if (off > PAL_OFF_LIMIT || !s)
		return off;
	__u32 data_off = (off + sizeof(struct pal_param)) & PAL_OFF_MASK;
	long copied = bpf_probe_read_kernel_str(&s->buf[data_off], PAL_STR_MAX, kernel_ptr);
	if (copied <= 0)
		copied = 1;
	__u32 len = (__u32)copied - 1;
	close_param(s, off, PAL_PARAM_STR, len);
	return off + sizeof(struct pal_param) + len;
}

static __noinline __u32 push_user_bytes(struct pal_scratch *s, __u32 off, const void *user_ptr,
					__u32 len)
{
	if (off > PAL_OFF_LIMIT || !s || !user_ptr)
		return off;
	if (len > 128)
		len = 128;
	/* keep the compiler from dropping the mask the verifier needs */
	barrier_var(len);
	len &= 255;
	if (len == 0)
		return off;
	__u32 data_off = (off + sizeof(struct pal_param)) & PAL_OFF_MASK;
	if (bpf_probe_read_user(&s->buf[data_off], len, user_ptr) != 0)
		return off;
	close_param(s, off, PAL_PARAM_RAW, len);
	return off + sizeof(struct pal_param) + len;
}

/*
 * Objects reached through a plain address (a file from the fd table, what it points to) cannot
 * be read with plain loads: that needs a BTF pointer, and the kfunc that makes one
 * (bpf_rdonly_cast) is not something aya 0.14 can load (it rejects the object's .ksyms
 * section). Each bpf_probe_read_kernel call costs more than the bytes it copies, so the fields
 * a record needs from one object are read with one call over the span of the object that
 * holds them, from field `first` to the end of field `last`, into `window`, and SPAN_FIELD
 * picks a field out of the copy. Offsets and sizes are CO-RE relocations, constants once
 * loaded, so the verifier checks the copy's size and each field's stack offset as constants.
 * The span starts on an 8-byte boundary so that every field in the copy is aligned as in the
 * object. A span that does not fit the window (a kernel whose layout spreads these fields
 * further apart) leaves the window zeroed, and the record those fields as 0.
 */
#define SPAN_START(type, first) (bpf_core_field_offset(type, first) & ~7U)
#define SPAN_END(type, last) (bpf_core_field_offset(type, last) + bpf_core_field_size(type, last))
#define SPAN_READ(window, object, type, first, last)                                             \
	({                                                                                       \
		__u32 span_start = SPAN_START(type, first);                                      \
		__u32 span_end = SPAN_END(type, last);                                           \
		__builtin_memset(&(window), 0, sizeof(window));                                  \
		if (span_end > span_start && span_end - span_start <= sizeof(window))            \
			bpf_probe_read_kernel(&(window), span_end - span_start,                   \
					      (void *)(object) + span_start);                     \
	})
#define SPAN_FIELD(window, type, first, field)                                                   \
	({                                                                                       \
		__u64 span_value = 0;                                                            \
		__u32 span_size = bpf_core_field_size(type, field);                              \
		__u64 span_delta = bpf_core_field_offset(type, field) - SPAN_START(type, first); \
		/* added to the stack pointer as one constant: the verifier refuses a        \
		 * subtraction from it */                                                    \
		barrier_var(span_delta);                                                         \
		void *span_at = (void *)&(window) + span_delta;                                  \
		if (span_delta + span_size <= sizeof(window)) {                                  \
			if (span_size == 1)                                                      \
				span_value = *(__u8 *)span_at;                                   \
			else if (span_size == 2)                                                 \
				span_value = *(__u16 *)span_at;                                  \
			else if (span_size == 4)                                                 \
				span_value = *(__u32 *)span_at;                                  \
			else if (span_size == 8)                                                 \
				span_value = *(__u64 *)span_at;                                  \
		}                                                                                \
		span_value;                                                                      \
	})

struct path_walk {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	/* vfsmnt's mnt_root, read once per mount the walk is in */
	struct dentry *mnt_root;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u64 mount_offset;
	__u32 cursor;
	__u32 complete;
};

/* One step of the walk. A bpf_loop callback, so the verifier checks it once instead of
 * once per iteration and per path shape. Returns 1 to stop. */
static long path_walk_step(__u32 index, struct path_walk *walk)
{
	struct pal_scratch *s = scratch();
	if (!s)
		return 1;
	struct dentry *dentry = walk->dentry;
	struct vfsmount *vfsmnt = walk->vfsmnt;
	if (dentry == walk->root_dentry && vfsmnt == walk->root_mnt) {
		walk->complete = 1;
		return 1;
	}
	if (dentry == walk->mnt_root) {
		struct mount *mnt = (struct mount *)((void *)vfsmnt - walk->mount_offset);
		__u64 mount_window[4];
		SPAN_READ(mount_window, mnt, struct mount, mnt_parent, mnt_mountpoint);
		struct mount *parent = (struct mount *)SPAN_FIELD(mount_window, struct mount,
								   mnt_parent, mnt_parent);
		if (parent == mnt) {
			walk->complete = 1;
			return 1;
		}
		walk->dentry = (struct dentry *)SPAN_FIELD(mount_window, struct mount, mnt_parent,
							   mnt_mountpoint);
		struct vfsmount *parent_vfsmnt =
			(struct vfsmount *)((void *)parent + walk->mount_offset);
		walk->vfsmnt = parent_vfsmnt;
		walk->mnt_root = BPF_CORE_READ(parent_vfsmnt, mnt_root);
		return 0;
	}
	if (walk->cursor > PAL_OFF_LIMIT)
		return 1;
	__u64 dentry_window[4];
	SPAN_READ(dentry_window, dentry, struct dentry, d_parent, d_name.name);
	struct dentry *parent_dentry =
		(struct dentry *)SPAN_FIELD(dentry_window, struct dentry, d_parent, d_parent);
	const unsigned char *name = (const unsigned char *)SPAN_FIELD(
		dentry_window, struct dentry, d_parent, d_name.name);
	long copied = bpf_probe_read_kernel_str(&s->buf[walk->cursor & PAL_OFF_MASK],
						PAL_NAME_MAX + 1, name);
	if (copied > 0)
		walk->cursor += copied;
	if (dentry == parent_dentry) {
		/* an unmounted pseudo file (pipe, socket, anon inode): its own name */
		walk->complete = 1;
		return 1;
	}
	walk->dentry = parent_dentry;
	return 0;
}

/*
 * Writes the components of (dentry, vfsmount) up to the task's root, leaf first, crossing
 * mount points. Bounded by PAL_PATH_DEPTH steps and the record size; a path cut short
 * sets PAL_FLAG_PATH_TRUNCATED.
 */
static __noinline __u32 push_path(struct pal_scratch *s, __u32 off, struct dentry *dentry,
				  struct vfsmount *vfsmnt)
{
	if (off > PAL_OFF_LIMIT || !s)
		return off;
	struct task_struct *task = bpf_get_current_task_btf();
	struct path_walk walk = {
		.dentry = dentry,
		.vfsmnt = vfsmnt,
		.mnt_root = BPF_CORE_READ(vfsmnt, mnt_root),
		.root_dentry = task->fs->root.dentry,
		.root_mnt = task->fs->root.mnt,
		.mount_offset = bpf_core_field_offset(struct mount, mnt),
		.cursor = off + sizeof(struct pal_param),
		.complete = 0,
	};
	bpf_loop(PAL_PATH_DEPTH, path_walk_step, &walk, 0);
	struct pal_header *header = (struct pal_header *)s->buf;
	if (!walk.complete)
		header->flags |= PAL_FLAG_PATH_TRUNCATED;
	__u32 end = walk.cursor;
	if (end > PAL_OFF_LIMIT + PAL_NAME_MAX + 1)
		return off;
	close_param(s, off, PAL_PARAM_PATH, end - (off + sizeof(struct pal_param)));
	return end;
}

/* `task` must be a BTF pointer: the table is reached with plain loads, and only the entry,
 * indexed by the fd, with a helper. */
static __always_inline struct file *task_fd_file(struct task_struct *task, long fd)
{
	if (fd < 0)
		return NULL;
	struct fdtable *fdt = task->files->fdt;
	if ((__u64)fd >= fdt->max_fds)
		return NULL;
	struct file **fds = fdt->fd;
	struct file *file = NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

/* What a record says about an inode: struct pal_file, and its file system's magic number. */
struct inode_facts {
	struct pal_file file;
	__u64 magic;
};

/* Two reads: the inode's span from i_mode to __i_nlink, and its super block's from s_dev to
 * s_magic. The flags need more only for overlayfs and unlinked files. */
static __noinline void read_inode_facts(struct inode_facts *facts, struct inode *inode,
					struct dentry *dentry)
{
	__u64 inode_window[12];
	SPAN_READ(inode_window, inode, struct inode, i_mode, __i_nlink);
	facts->file.mode = SPAN_FIELD(inode_window, struct inode, i_mode, i_mode);
	facts->file.ino = SPAN_FIELD(inode_window, struct inode, i_mode, i_ino);
	facts->file.nlink = SPAN_FIELD(inode_window, struct inode, i_mode, __i_nlink);
	struct super_block *sb =
		(struct super_block *)SPAN_FIELD(inode_window, struct inode, i_mode, i_sb);
	__u64 sb_window[12];
	SPAN_READ(sb_window, sb, struct super_block, s_dev, s_magic);
	facts->file.dev = SPAN_FIELD(sb_window, struct super_block, s_dev, s_dev);
	facts->magic = SPAN_FIELD(sb_window, struct super_block, s_dev, s_magic);
	facts->file.flags = 0;
	if (facts->magic == OVERLAYFS_SUPER_MAGIC && bpf_core_type_exists(struct ovl_inode)) {
		__u32 vfs_offset = bpf_core_field_offset(struct ovl_inode, vfs_inode);
		struct ovl_inode *ovl = (struct ovl_inode *)((void *)inode - vfs_offset);
		struct dentry *upper = BPF_CORE_READ(ovl, __upperdentry);
		if (upper)
			facts->file.flags |= PAL_FILE_UPPER_LAYER;
	}
	if (facts->file.nlink == 0) {
		char prefix[6] = {};
		const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
		bpf_probe_read_kernel(prefix, sizeof(prefix), name);
		if (prefix[0] == 'm' && prefix[1] == 'e' && prefix[2] == 'm' && prefix[3] == 'f' &&
		    prefix[4] == 'd' && prefix[5] == ':')
			facts->file.flags |= PAL_FILE_MEMFD;
	}
}

static __noinline __u32 push_file_info(struct pal_scratch *s, __u32 off,
				       const struct inode_facts *facts)
{
	if (off > PAL_OFF_LIMIT || !s)
		return off;
	__u32 data_off = (off + sizeof(struct pal_param)) & PAL_OFF_MASK;
	__builtin_memcpy(&s->buf[data_off], &facts->file, sizeof(facts->file));
	close_param(s, off, PAL_PARAM_FILE, sizeof(facts->file));
	return off + sizeof(struct pal_param) + sizeof(facts->file);
}

static __noinline __u32 push_sock(struct pal_scratch *s, __u32 off, struct socket *socket)
{
	if (off > PAL_OFF_LIMIT || !s || !socket)
		return off;
	struct sock *sk = BPF_CORE_READ(socket, sk);
	if (!sk)
		return off;
	struct pal_sock info = {};
	info.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	info.type = BPF_CORE_READ(sk, sk_type);
	info.protocol = BPF_CORE_READ(sk, sk_protocol);
	info.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	info.remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (info.family == AF_INET) {
		__u32 local = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 remote = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(info.local_addr, &local, 4);
		__builtin_memcpy(info.remote_addr, &remote, 4);
	} else if (info.family == AF_INET6) {
		BPF_CORE_READ_INTO(&info.local_addr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&info.remote_addr, sk, __sk_common.skc_v6_daddr);
	}
	__u32 data_off = (off + sizeof(struct pal_param)) & PAL_OFF_MASK;
	__builtin_memcpy(&s->buf[data_off], &info, sizeof(info));
	close_param(s, off, PAL_PARAM_SOCK, sizeof(info));
	return off + sizeof(struct pal_param) + sizeof(info);
}

/* FILE, then SOCK for sockets or PATH for everything else. */
static __always_inline __u32 push_fd(struct pal_scratch *s, __u32 off, struct task_struct *task,
				     long fd)
{
	struct file *file = task_fd_file(task, fd);
	if (!file)
		return off;
	__u64 file_window[8];
	SPAN_READ(file_window, file, struct file, private_data, f_path);
	struct inode *inode =
		(struct inode *)SPAN_FIELD(file_window, struct file, private_data, f_inode);
	struct dentry *dentry =
		(struct dentry *)SPAN_FIELD(file_window, struct file, private_data, f_path.dentry);
	struct inode_facts facts = {};
	if (inode) {
		read_inode_facts(&facts, inode, dentry);
		off = push_file_info(s, off, &facts);
	}
	if ((facts.file.mode & S_IFMT) == S_IFSOCK) {
		struct socket *socket = (struct socket *)SPAN_FIELD(file_window, struct file,
								    private_data, private_data);
		return push_sock(s, off, socket);
	}
	struct vfsmount *vfsmnt =
		(struct vfsmount *)SPAN_FIELD(file_window, struct file, private_data, f_path.mnt);
	return push_path(s, off, dentry, vfsmnt);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(pal_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if (is_agent())
		return 0;
	struct pal_scratch *s = scratch();
	if (!s)
		return 0;
	struct pal_header *header = (struct pal_header *)s->buf;
	fill_header(header, task, PAL_KIND_EXEC);
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	header->syscall_nr = regs->orig_ax;
	header->args[0] = old_pid;

	/* bprm and task are BTF pointers: plain loads */
	struct file *file = bprm->file;
	struct inode *inode = file->f_inode;
	struct dentry *dentry = file->f_path.dentry;
	__u32 off = sizeof(*header);
	/* param 0: the executed file's inode, param 1: its path */
	if (inode) {
		struct inode_facts facts;
		read_inode_facts(&facts, inode, dentry);
		off = push_file_info(s, off, &facts);
		if (facts.file.flags & PAL_FILE_UPPER_LAYER)
			header->flags |= PAL_FLAG_EXE_UPPER_LAYER;
		if (facts.file.flags & PAL_FILE_MEMFD)
			header->flags |= PAL_FLAG_EXE_MEMFD;
	}
	off = push_path(s, off, dentry, file->f_path.mnt);
	/* param 2: the name the caller asked for (may be a symlink or relative) */
	off = push_kernel_str(s, off, bprm->filename);

	/* param 3: argv, as the new program sees it */
	if (off <= PAL_OFF_LIMIT) {
		struct mm_struct *mm = task->mm;
		unsigned long arg_start = mm->arg_start;
		unsigned long arg_end = mm->arg_end;
		__u32 len = arg_end > arg_start ? arg_end - arg_start : 0;
		if (len > PAL_ARGV_MAX) {
			len = PAL_ARGV_MAX;
			header->flags |= PAL_FLAG_ARGV_TRUNCATED;
		}
		__u32 data_off = (off + sizeof(struct pal_param)) & PAL_OFF_MASK;
		len &= PAL_ARGV_MAX;
		if (len == 0 || bpf_probe_read_user(&s->buf[data_off], len, (void *)arg_start) != 0)
			len = 0;
		close_param(s, off, PAL_PARAM_ARGV, len);
		off += sizeof(struct pal_param) + len;
	}
	/* param 4: working directory */
	off = push_path(s, off, task->fs->pwd.dentry, task->fs->pwd.mnt);
	submit(s, off);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(pal_fork, struct task_struct *parent, struct task_struct *child)
{
	if (is_agent())
		return 0;
	__u32 child_tgid = child->tgid;
	__u32 child_pid = child->pid;
	/* threads do not change the process tree */
	if (child_tgid != child_pid)
		return 0;
	struct pal_scratch *s = scratch();
	if (!s)
		return 0;
	struct pal_header *header = (struct pal_header *)s->buf;
	/* the parent is the current task */
	fill_header(header, parent, PAL_KIND_CLONE);
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(parent);
	header->syscall_nr = regs->orig_ax;
	header->ret = child_tgid;
	header->args[0] = child_tgid;
	header->args[1] = child_pid;
	header->args[2] = regs->di;
	submit(s, sizeof(*header));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(pal_exit, struct task_struct *task, bool group_dead)
{
	if (is_agent() || !group_dead)
		return 0;
	struct pal_scratch *s = scratch();
	if (!s)
		return 0;
	struct pal_header *header = (struct pal_header *)s->buf;
	fill_header(header, task, PAL_KIND_EXIT);
	header->flags |= PAL_FLAG_GROUP_DEAD;
	header->args[0] = task->exit_code;
	submit(s, sizeof(*header));
	return 0;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(pal_cgroup_mkdir, struct cgroup *cgroup, const char *path)
{
	__s32 hierarchy = cgroup->root->hierarchy_id;
	if (hierarchy != cgroup_hierarchy)
		return 0;
	struct pal_scratch *s = scratch();
	if (!s)
		return 0;
	struct pal_header *header = (struct pal_header *)s->buf;
	struct task_struct *task = bpf_get_current_task_btf();
	fill_header(header, task, PAL_KIND_CGROUP_MKDIR);
	header->args[0] = cgroup->kn->id;
	header->args[1] = hierarchy;
	__u32 off = push_kernel_str(s, sizeof(*header), path);
	submit(s, off);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(pal_sys_exit, struct pt_regs *regs, long ret)
{
	/* runs on every syscall of the machine: a plain load, not a helper call */
	__u32 nr = regs->orig_ax;
	__u32 *wanted = bpf_map_lookup_elem(&pal_interest, &nr);
	if (!wanted || !*wanted)
		return 0;
	if (is_agent())
		return 0;
	struct pal_scratch *s = scratch();
	if (!s)
		return 0;
	struct pal_header *header = (struct pal_header *)s->buf;
	struct task_struct *task = bpf_get_current_task_btf();
	fill_header(header, task, PAL_KIND_SYSCALL);
	header->syscall_nr = nr;
	header->ret = ret;
	__u64 args[6];
	args[0] = regs->di;
	args[1] = regs->si;
	args[2] = regs->dx;
	args[3] = regs->r10;
	args[4] = regs->r8;
	args[5] = regs->r9;
	for (int i = 0; i < 6; i++)
		header->args[i] = args[i];

	__u32 off = sizeof(*header);
	switch (nr) {
	case NR_open:
	case NR_creat:
		if (ret >= 0)
			off = push_fd(s, off, task, ret);
		else
			off = push_user_str(s, off, (const char *)args[0]);
		break;
	case NR_openat:
	case NR_openat2:
		if (ret >= 0)
			off = push_fd(s, off, task, ret);
		else
			off = push_user_str(s, off, (const char *)args[1]);
		break;
	case NR_connect:
	case NR_bind:
		off = push_fd(s, off, task, args[0]);
		off = push_user_bytes(s, off, (const void *)args[1], args[2]);
		break;
	case NR_listen:
	case NR_fchdir:
		off = push_fd(s, off, task, args[0]);
		break;
	case NR_accept:
	case NR_accept4:
	case NR_dup:
	case NR_dup2:
	case NR_dup3:
		if (ret >= 0)
			off = push_fd(s, off, task, ret);
		break;
	case NR_finit_module:
		off = push_fd(s, off, task, args[0]);
		off = push_user_str(s, off, (const char *)args[1]);
		break;
	case NR_setns:
		off = push_fd(s, off, task, args[0]);
		break;
	case NR_mount:
		off = push_user_str(s, off, (const char *)args[0]);
		off = push_user_str(s, off, (const char *)args[1]);
		off = push_user_str(s, off, (const char *)args[2]);
		break;
	case NR_init_module:
		off = push_user_str(s, off, (const char *)args[2]);
		break;
	case NR_umount2:
	case NR_memfd_create:
	case NR_unlink:
	case NR_chroot:
	case NR_chdir:
		off = push_user_str(s, off, (const char *)args[0]);
		break;
	case NR_unlinkat:
		off = push_user_str(s, off, (const char *)args[1]);
		break;
	case NR_rename:
	case NR_symlink:
	case NR_link:
	case NR_pivot_root:
		off = push_user_str(s, off, (const char *)args[0]);
		off = push_user_str(s, off, (const char *)args[1]);
		break;
	case NR_renameat:
	case NR_renameat2:
	case NR_linkat:
		off = push_user_str(s, off, (const char *)args[1]);
		off = push_user_str(s, off, (const char *)args[3]);
		break;
	case NR_symlinkat:
		off = push_user_str(s, off, (const char *)args[0]);
		off = push_user_str(s, off, (const char *)args[2]);
		break;
	default:
		break;
	}
	submit(s, off);
	return 0;
}
