// SPDX-License-Identifier: GPL-2.0
/* The mbx guard: BPF LSM programs that confine every task of a sandbox.
 *
 * A task belongs to a sandbox when it carries a mark in task local storage;
 * mbx marks the sandbox's init (through its pidfd) once the init has set up
 * its mounts, before the command runs, and lsm/task_alloc gives every new
 * task its parent's mark (failing the fork if it cannot: fail closed). For a
 * marked task the hooks below deny with -EPERM, and report through the ring
 * buffer: writes to anything but the sandbox's own superblocks (its FUSE view,
 * its tmpfs mounts), what lies beneath its --bind roots and a short allowlist
 * (pipes, sockets, anonymous inodes, ptys, /dev/null and friends) -- also
 * through descriptors opened before the mark or received later; the mount
 * family; ptrace of and signals to tasks of other sandboxes or none; kernel
 * modules (also the ones the kernel would autoload for it), kexec, bpf() and
 * perf_event_open; exec of what --exec-allow/--exec-deny exclude; connect,
 * bind and sendto outside --net. Every exec is audited with its argv.
 * Unmarked tasks are never affected. The guard only denies. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "guard.h"

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1
#define FMODE_WRITE 0x2
#define MAY_WRITE 0x2
#define MAY_APPEND 0x8

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFCHR 0020000
#define S_IFIFO 0010000

#define PIPEFS_MAGIC 0x50495045
#define SOCKFS_MAGIC 0x534F434B
#define ANON_INODE_FS_MAGIC 0x09041934
#define DEVPTS_SUPER_MAGIC 0x1cd1

#define MKDEV(ma, mi) (((ma) << 20) | (mi))

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct mbx_guard_mark);
} marks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MBX_GUARD_MAX_SANDBOXES);
    __type(key, __u32);
    __type(value, struct mbx_guard_policy);
} policies SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MBX_GUARD_MAX_BINDS);
    __type(key, struct mbx_guard_bind_key);
    __type(value, __u8);
} bind_roots SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MBX_GUARD_MAX_EXEC);
    __type(key, struct mbx_guard_exec_key);
    __type(value, __u8);
} exec_rules SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 20);
} events SEC(".maps");

static __always_inline __u32 sandbox_of(struct task_struct *t)
{
    struct mbx_guard_mark *m = bpf_task_storage_get(&marks, t, 0, 0);
    return m ? m->sandbox : 0;
}

static __always_inline __u32 current_sandbox(void)
{
    return sandbox_of(bpf_get_current_task_btf());
}

/* An event with what every program type may learn of the current task (the
 * cgroup sock_addr programs cannot reach its task_struct: no ppid). */
static __always_inline struct mbx_guard_event *new_bare_event(__u32 sandbox, enum mbx_guard_hook hook, int error)
{
    struct mbx_guard_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0;
    e->time_ns = bpf_ktime_get_boot_ns();
    e->sandbox = sandbox;
    e->hook = hook;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->ppid = 0;
    e->uid = (__u32)bpf_get_current_uid_gid();
    e->error = error;
    e->dev = 0;
    e->ino = 0;
    e->target_pid = 0;
    e->path[0] = 0;
    e->args_len = 0;
    e->family = 0;
    e->port = 0;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    return e;
}

static __always_inline struct mbx_guard_event *new_event(__u32 sandbox, enum mbx_guard_hook hook, int error)
{
    struct mbx_guard_event *e = new_bare_event(sandbox, hook, error);
    if (e)
        e->ppid = BPF_CORE_READ(bpf_get_current_task_btf(), real_parent, tgid);
    return e;
}

/* What a denial returns once it is logged: -EPERM, or 0 for a sandbox in
 * complain mode (--guard complain: every would-be denial is logged, none is
 * enforced). */
static __always_inline int refusal(__u32 sandbox)
{
    struct mbx_guard_policy *p = bpf_map_lookup_elem(&policies, &sandbox);
    return p && (p->flags & MBX_POLICY_COMPLAIN) ? 0 : -EPERM;
}

/* Reports a denial with the object's name (a dentry's last component). */
static __always_inline int deny_dentry(__u32 sandbox, enum mbx_guard_hook hook, struct dentry *d)
{
    struct mbx_guard_event *e = new_event(sandbox, hook, -EPERM);
    if (e) {
        if (d) {
            const unsigned char *name = BPF_CORE_READ(d, d_name.name);
            bpf_probe_read_kernel_str(e->path, sizeof(e->path), name);
            struct inode *i = BPF_CORE_READ(d, d_inode);
            if (i) {
                e->dev = BPF_CORE_READ(i, i_sb, s_dev);
                e->ino = BPF_CORE_READ(i, i_ino);
            }
        }
        bpf_ringbuf_submit(e, 0);
    }
    return refusal(sandbox);
}

static __always_inline int deny(__u32 sandbox, enum mbx_guard_hook hook, int target_pid)
{
    struct mbx_guard_event *e = new_event(sandbox, hook, -EPERM);
    if (e) {
        e->target_pid = target_pid;
        bpf_ringbuf_submit(e, 0);
    }
    return refusal(sandbox);
}

/* For the hooks that refuse a marked task outright. */
static __always_inline int deny_if_marked(enum mbx_guard_hook hook)
{
    __u32 sb = current_sandbox();
    return sb ? deny(sb, hook, 0) : 0;
}

static __always_inline bool policy_allows(__u32 sandbox, __u32 dev, __u64 ino)
{
    struct mbx_guard_policy *p = bpf_map_lookup_elem(&policies, &sandbox);
    if (!p)
        return false; /* a mark without a policy: deny */
    for (int i = 0; i < MBX_GUARD_MAX_DEVS; i++) {
        if (i >= p->n_writable)
            break;
        if (p->writable_dev[i] == dev)
            return true;
    }
    for (int i = 0; i < MBX_GUARD_MAX_FILES; i++) {
        if (i >= p->n_files)
            break;
        if (p->writable_file[i].dev == dev && p->writable_file[i].ino == ino)
            return true;
    }
    return false;
}

/* Is d (or a directory above it, up to MBX_GUARD_BIND_DEPTH levels) one of
 * the sandbox's bind roots? Deeper paths are refused: fail closed. */
static __always_inline bool beneath_bind(__u32 sandbox, struct dentry *d)
{
    struct mbx_guard_bind_key k = {.sandbox = sandbox};
    for (int i = 0; i < MBX_GUARD_BIND_DEPTH && d; i++) {
        struct inode *in = BPF_CORE_READ(d, d_inode);
        if (in) {
            k.dev = BPF_CORE_READ(in, i_sb, s_dev);
            k.ino = BPF_CORE_READ(in, i_ino);
            if (bpf_map_lookup_elem(&bind_roots, &k))
                return true;
        }
        struct dentry *parent = BPF_CORE_READ(d, d_parent);
        if (parent == d)
            return false; /* the file system's root */
        d = parent;
    }
    return false;
}

/* Its own superblocks, single files, or beneath a bind root (d: the dentry
 * the object was reached through, for the walk up). */
static __always_inline bool sandbox_owns(__u32 sandbox, struct inode *inode, struct dentry *d)
{
    if (inode && policy_allows(sandbox, BPF_CORE_READ(inode, i_sb, s_dev), BPF_CORE_READ(inode, i_ino)))
        return true;
    struct mbx_guard_policy *p = bpf_map_lookup_elem(&policies, &sandbox);
    return p && (p->flags & MBX_POLICY_BINDS) && beneath_bind(sandbox, d);
}

/* May the sandbox change this inode (its data, or its entries if a
 * directory)? d: the dentry it was reached through. */
static __always_inline bool inode_writable(__u32 sandbox, struct inode *inode, struct dentry *d)
{
    if (!inode)
        return false;
    umode_t mode = BPF_CORE_READ(inode, i_mode);
    if ((mode & S_IFMT) == S_IFIFO || (mode & S_IFMT) == S_IFSOCK)
        return true;
    unsigned long magic = BPF_CORE_READ(inode, i_sb, s_magic);
    if (magic == PIPEFS_MAGIC || magic == SOCKFS_MAGIC || magic == ANON_INODE_FS_MAGIC ||
        magic == DEVPTS_SUPER_MAGIC)
        return true;
    if ((mode & S_IFMT) == S_IFCHR) {
        __u32 rdev = BPF_CORE_READ(inode, i_rdev);
        /* null, zero, full, random, urandom, tty, ptmx */
        if (rdev == MKDEV(1, 3) || rdev == MKDEV(1, 5) || rdev == MKDEV(1, 7) || rdev == MKDEV(1, 8) ||
            rdev == MKDEV(1, 9) || rdev == MKDEV(5, 0) || rdev == MKDEV(5, 2))
            return true;
    }
    return sandbox_owns(sandbox, inode, d);
}

/* d: the entry being made or removed in dir (the walk starts at dir). */
static __always_inline int check_dir(enum mbx_guard_hook hook, struct inode *dir, struct dentry *d)
{
    __u32 sb = current_sandbox();
    if (!sb || inode_writable(sb, dir, BPF_CORE_READ(d, d_parent)))
        return 0;
    return deny_dentry(sb, hook, d);
}

static __always_inline int check_dentry(enum mbx_guard_hook hook, struct dentry *d)
{
    __u32 sb = current_sandbox();
    if (!sb || inode_writable(sb, BPF_CORE_READ(d, d_inode), d))
        return 0;
    return deny_dentry(sb, hook, d);
}

/* Owner, mode, times, xattrs: only on the sandbox's own file systems and
 * files (not on the allowlisted devices, which are the host's nodes). */
static __always_inline int check_metadata(enum mbx_guard_hook hook, struct dentry *d)
{
    __u32 sb = current_sandbox();
    if (!sb)
        return 0;
    if (sandbox_owns(sb, BPF_CORE_READ(d, d_inode), d))
        return 0;
    return deny_dentry(sb, hook, d);
}

SEC("lsm/file_open")
int BPF_PROG(file_open, struct file *file)
{
    if (!(file->f_mode & FMODE_WRITE))
        return 0;
    __u32 sb = current_sandbox();
    if (!sb || inode_writable(sb, file->f_inode, file->f_path.dentry))
        return 0;
    struct mbx_guard_event *e = new_event(sb, MBX_HOOK_FILE_OPEN, -EPERM);
    if (e) {
        e->dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
        e->ino = BPF_CORE_READ(file, f_inode, i_ino);
        /* The whole path: bpf_d_path is allowed in this hook. */
        bpf_d_path((struct path *)&file->f_path, e->path, sizeof(e->path));
        bpf_ringbuf_submit(e, 0);
    }
    return refusal(sb);
}

/* ---- membership */

SEC("lsm/task_alloc")
int BPF_PROG(task_alloc, struct task_struct *task, unsigned long clone_flags)
{
    __u32 sb = current_sandbox();
    if (!sb)
        return 0;
    struct mbx_guard_mark *m = bpf_task_storage_get(&marks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!m)
        return -EPERM; /* no unmarked child */
    m->sandbox = sb;
    return 0;
}

/* Marks follow forks also where only tracing programs load (the fallback
 * guard's exec audit, without lsm/task_alloc). The tracepoint fires before
 * the child first runs. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
    __u32 sb = sandbox_of(parent);
    if (!sb)
        return 0;
    struct mbx_guard_mark *m = bpf_task_storage_get(&marks, child, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (m)
        m->sandbox = sb;
    return 0;
}

/* ---- files */

/* Every read and write: catches writes through descriptors opened before the
 * mark, inherited or received over a socket. */
SEC("lsm/file_permission")
int BPF_PROG(file_permission, struct file *file, int mask)
{
    if (!(mask & (MAY_WRITE | MAY_APPEND)))
        return 0;
    return check_dentry(MBX_HOOK_FILE_WRITE, BPF_CORE_READ(file, f_path.dentry));
}

#define PROT_WRITE 0x2
#define MAP_SHARED 0x01
#define VM_SHARED 0x8

/* A shared writable mapping writes without file_permission. */
SEC("lsm/mmap_file")
int BPF_PROG(mmap_file, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags)
{
    if (!file || !(prot & PROT_WRITE) || !(flags & MAP_SHARED))
        return 0;
    return check_dentry(MBX_HOOK_MMAP, BPF_CORE_READ(file, f_path.dentry));
}

SEC("lsm/file_mprotect")
int BPF_PROG(file_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot)
{
    struct file *file = BPF_CORE_READ(vma, vm_file);
    if (!file || !(prot & PROT_WRITE) || !(BPF_CORE_READ(vma, vm_flags) & VM_SHARED))
        return 0;
    return check_dentry(MBX_HOOK_MMAP, BPF_CORE_READ(file, f_path.dentry));
}

SEC("lsm/inode_create")
int BPF_PROG(inode_create, struct inode *dir, struct dentry *dentry, umode_t mode)
{
    return check_dir(MBX_HOOK_INODE_CREATE, dir, dentry);
}

SEC("lsm/inode_link")
int BPF_PROG(inode_link, struct dentry *old_dentry, struct inode *dir, struct dentry *new_dentry)
{
    return check_dir(MBX_HOOK_INODE_LINK, dir, new_dentry);
}

SEC("lsm/inode_unlink")
int BPF_PROG(inode_unlink, struct inode *dir, struct dentry *dentry)
{
    return check_dir(MBX_HOOK_INODE_UNLINK, dir, dentry);
}

SEC("lsm/inode_symlink")
int BPF_PROG(inode_symlink, struct inode *dir, struct dentry *dentry, const char *old_name)
{
    return check_dir(MBX_HOOK_INODE_SYMLINK, dir, dentry);
}

SEC("lsm/inode_mkdir")
int BPF_PROG(inode_mkdir, struct inode *dir, struct dentry *dentry, umode_t mode)
{
    return check_dir(MBX_HOOK_INODE_MKDIR, dir, dentry);
}

SEC("lsm/inode_rmdir")
int BPF_PROG(inode_rmdir, struct inode *dir, struct dentry *dentry)
{
    return check_dir(MBX_HOOK_INODE_RMDIR, dir, dentry);
}

SEC("lsm/inode_mknod")
int BPF_PROG(inode_mknod, struct inode *dir, struct dentry *dentry, umode_t mode, dev_t dev)
{
    return check_dir(MBX_HOOK_INODE_MKNOD, dir, dentry);
}

SEC("lsm/inode_rename")
int BPF_PROG(inode_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
             struct dentry *new_dentry)
{
    int r = check_dir(MBX_HOOK_INODE_RENAME, old_dir, old_dentry);
    return r ? r : check_dir(MBX_HOOK_INODE_RENAME, new_dir, new_dentry);
}

/* The dentry is the first argument before Linux 6.3 and the second since
 * (an idmap comes first): CO-RE picks the position when the program loads. */
static __always_inline struct dentry *setattr_dentry(unsigned long long *ctx)
{
    if (bpf_core_type_exists(struct mnt_idmap))
        return (struct dentry *)ctx[1];
    return (struct dentry *)ctx[0];
}

SEC("lsm/inode_setattr")
int inode_setattr(unsigned long long *ctx)
{
    return check_metadata(MBX_HOOK_INODE_SETATTR, setattr_dentry(ctx));
}

SEC("lsm/inode_setxattr")
int BPF_PROG(inode_setxattr, void *userns_or_idmap, struct dentry *dentry)
{
    return check_metadata(MBX_HOOK_INODE_SETXATTR, dentry);
}

SEC("lsm/inode_removexattr")
int BPF_PROG(inode_removexattr, void *userns_or_idmap, struct dentry *dentry)
{
    return check_metadata(MBX_HOOK_INODE_REMOVEXATTR, dentry);
}

/* ---- mounts: the sandbox's are made before the mark; none after */

SEC("lsm/sb_mount")
int BPF_PROG(sb_mount, const char *dev_name, const struct path *path)
{
    return deny_if_marked(MBX_HOOK_MOUNT);
}

SEC("lsm/sb_umount")
int BPF_PROG(sb_umount, struct vfsmount *mnt, int flags)
{
    return deny_if_marked(MBX_HOOK_UMOUNT);
}

SEC("lsm/move_mount")
int BPF_PROG(move_mount, const struct path *from_path, const struct path *to_path)
{
    return deny_if_marked(MBX_HOOK_MOVE_MOUNT);
}

SEC("lsm/sb_pivotroot")
int BPF_PROG(sb_pivotroot, const struct path *old_path, const struct path *new_path)
{
    return deny_if_marked(MBX_HOOK_PIVOT_ROOT);
}

/* ---- other tasks */

SEC("lsm/ptrace_access_check")
int BPF_PROG(ptrace_access_check, struct task_struct *child, unsigned int mode)
{
    __u32 sb = current_sandbox();
    if (!sb || sandbox_of(child) == sb)
        return 0;
    return deny(sb, MBX_HOOK_PTRACE, child->tgid);
}

SEC("lsm/ptrace_traceme")
int BPF_PROG(ptrace_traceme, struct task_struct *parent)
{
    __u32 sb = current_sandbox();
    if (!sb || sandbox_of(parent) == sb)
        return 0;
    return deny(sb, MBX_HOOK_PTRACE, parent->tgid);
}

SEC("lsm/task_kill")
int BPF_PROG(task_kill, struct task_struct *p, struct kernel_siginfo *info, int sig, const struct cred *cred)
{
    __u32 sb = current_sandbox();
    if (!sb || sig == 0 || sandbox_of(p) == sb)
        return 0;
    return deny(sb, MBX_HOOK_KILL, p->tgid);
}

/* ---- the kernel itself */

/* A module the kernel would load on the sandbox's behalf (a socket of an
 * unloaded protocol family, say): the usual way in for a kernel exploit. */
SEC("lsm/kernel_module_request")
int BPF_PROG(kernel_module_request, char *kmod_name)
{
    __u32 sb = current_sandbox();
    if (!sb)
        return 0;
    struct mbx_guard_event *e = new_event(sb, MBX_HOOK_MODULE, -EPERM);
    if (e) {
        bpf_probe_read_kernel_str(e->path, sizeof(e->path), kmod_name);
        bpf_ringbuf_submit(e, 0);
    }
    return refusal(sb);
}

SEC("lsm/kernel_read_file")
int BPF_PROG(kernel_read_file, struct file *file, enum kernel_read_file_id id, bool contents)
{
    __u32 sb = current_sandbox();
    if (!sb)
        return 0;
    return deny(sb, id == READING_MODULE ? MBX_HOOK_MODULE : MBX_HOOK_KEXEC, 0);
}

SEC("lsm/kernel_load_data")
int BPF_PROG(kernel_load_data, enum kernel_load_data_id id, bool contents)
{
    __u32 sb = current_sandbox();
    if (!sb)
        return 0;
    return deny(sb, id == LOADING_MODULE ? MBX_HOOK_MODULE : MBX_HOOK_KEXEC, 0);
}

SEC("lsm/bpf")
int BPF_PROG(bpf, int cmd, union bpf_attr *attr, unsigned int size)
{
    return deny_if_marked(MBX_HOOK_BPF);
}

SEC("lsm/perf_event_open")
int BPF_PROG(perf_event_open, struct perf_event_attr *attr, int type)
{
    return deny_if_marked(MBX_HOOK_PERF);
}

/* ---- exec policy: the executable's path as the sandbox sees it (symlinks
 * resolved: bprm->file is what runs; a script and then its interpreter each
 * come here). Sleepable: bpf_d_path is allowed in this hook only so. */

/* The directory rules over an exec'd file's path (MBX_EXEC_DIR_RULES): a
 * rule "DIR/" + "**" covers everything beneath DIR, "DIR/" + "*" the files in
 * DIR. dir_step walks the path back from its end, one byte per call (through
 * bpf_loop, so that the verifier checks one step, not 254): at each slash
 * everything after it is zero, so the stars can be written behind it for one
 * lookup and taken away again. The key is left zeroed. */
struct dir_walk {
    struct mbx_guard_exec_key key;
    long n;      /* bytes of the path, with its NUL */
    __u8 bits;   /* the rules found */
    bool last;   /* the next slash is the last one of the path */
};

static long dir_step(__u32 idx, void *data)
{
    struct dir_walk *w = data;
    if (idx > MBX_GUARD_PATH_LEN - 3)
        return 1;
    /* The mask tells the verifier what the check above already ensures (the
     * barrier keeps the compiler from dropping it as redundant). */
    __u32 i = MBX_GUARD_PATH_LEN - 3 - idx;
    asm volatile("" : "+r"(i));
    i &= 0xff;
    if ((long)i >= w->n - 1)
        return 0;
    if (w->key.path[i] == '/') {
        w->key.path[i + 1] = '*';
        w->key.path[i + 2] = '*';
        __u8 *r = bpf_map_lookup_elem(&exec_rules, &w->key);
        if (r)
            w->bits |= *r;
        if (w->last) {
            w->key.path[i + 2] = 0;
            r = bpf_map_lookup_elem(&exec_rules, &w->key);
            if (r)
                w->bits |= *r;
            w->last = false;
        }
        w->key.path[i + 1] = 0;
        w->key.path[i + 2] = 0;
    }
    w->key.path[i] = 0;
    return 0;
}

/* Is the current task's descriptor fd a socket? */
static __always_inline bool fd_is_socket(int fd)
{
    struct task_struct *t = bpf_get_current_task_btf();
    struct file **fds = BPF_CORE_READ(t, files, fdt, fd);
    unsigned int max = BPF_CORE_READ(t, files, fdt, max_fds);
    if (!fds || (unsigned int)fd >= max)
        return false;
    struct file *f = 0;
    bpf_probe_read_kernel(&f, sizeof f, &fds[fd]);
    if (!f)
        return false;
    umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
    return (mode & S_IFMT) == S_IFSOCK;
}

/* 0 if the exec may go on, else the hook its denial is logged as. w->bits:
 * the exact rule's; w->key is consumed by the directory rules. */
static __always_inline enum mbx_guard_hook exec_verdict(__u32 mode, struct dir_walk *w)
{
    if ((mode & MBX_EXEC_DIR_RULES) && w->n > 0) {
        w->last = true;
        bpf_loop(MBX_GUARD_PATH_LEN - 2, dir_step, w, 0);
    }
    __u8 bits = w->bits;
    if (bits & MBX_EXEC_DENY)
        return MBX_HOOK_EXEC_DENIED;
    if ((mode & MBX_EXEC_ALLOWLIST) && !(bits & MBX_EXEC_ALLOW))
        return MBX_HOOK_EXEC_DENIED;
    if ((mode & MBX_EXEC_NO_SOCKET_INTERPRETER) && (bits & MBX_EXEC_INTERPRETER) &&
        (fd_is_socket(0) || fd_is_socket(1)))
        return MBX_HOOK_EXEC_ON_SOCKET;
    return 0;
}

SEC("lsm.s/bprm_check_security")
int BPF_PROG(bprm_check_security, struct linux_binprm *bprm)
{
    __u32 sb = current_sandbox();
    if (!sb)
        return 0;
    struct mbx_guard_policy *p = bpf_map_lookup_elem(&policies, &sb);
    if (!p)
        return -EPERM;
    __u32 mode = p->exec_mode;
    if (!mode)
        return 0;
    struct dir_walk w;
    __builtin_memset(&w, 0, sizeof w);
    w.key.sandbox = sb;
    long n = bpf_d_path((struct path *)&bprm->file->f_path, w.key.path, sizeof w.key.path);
    /* d_path builds the name at the end of the buffer and moves it to the
     * front: what follows its NUL is left over, and the key must be padded. */
    for (int i = 0; i < MBX_GUARD_PATH_LEN; i++)
        if (i >= n)
            w.key.path[i] = 0;
    w.n = n;
    __u8 *rule = n > 0 ? bpf_map_lookup_elem(&exec_rules, &w.key) : 0;
    w.bits = rule ? *rule : 0;
    /* The record of a denial is reserved first: the verdict uses up the path. */
    struct mbx_guard_event *e = new_event(sb, MBX_HOOK_EXEC_DENIED, -EPERM);
    if (!e)
        return exec_verdict(mode, &w) ? -EPERM : 0;
    if (n > 0)
        __builtin_memcpy(e->path, w.key.path, sizeof e->path);
    else
        bpf_probe_read_kernel_str(e->path, sizeof(e->path), bprm->filename);
    enum mbx_guard_hook hook = exec_verdict(mode, &w);
    if (!hook) {
        bpf_ringbuf_discard(e, 0);
        return 0;
    }
    e->hook = hook;
    bpf_ringbuf_submit(e, 0);
    return refusal(sb);
}

/* ---- audit: every exec, with its argv (after the new image is set up: the
 * arguments are on its stack by then) */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
    __u32 sb = current_sandbox();
    if (!sb)
        return 0;
    struct mbx_guard_event *e = new_event(sb, MBX_HOOK_EXEC, 0);
    if (!e)
        return 0;
    bpf_probe_read_kernel_str(e->path, sizeof(e->path), BPF_CORE_READ(bprm, filename));
    struct mm_struct *mm = BPF_CORE_READ(p, mm);
    unsigned long start = BPF_CORE_READ(mm, arg_start), end = BPF_CORE_READ(mm, arg_end);
    __u64 len = end - start;
    if (len > sizeof(e->args))
        len = sizeof(e->args);
    if (bpf_probe_read_user(e->args, len, (void *)start) == 0)
        e->args_len = len;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

/* ---- network: connect, bind and sendto addresses by policy */

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

static __always_inline bool prefix_match(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
    for (int i = 0; i < 16; i++) {
        if (prefix >= 8) {
            if (a[i] != b[i])
                return false;
            prefix -= 8;
        } else {
            if (prefix && ((a[i] ^ b[i]) & (0xff << (8 - prefix)) & 0xff))
                return false;
            return true;
        }
    }
    return true;
}

static __always_inline bool is_loopback(unsigned short family, const unsigned char *a)
{
    if (family == AF_INET)
        return a[0] == 127;
    for (int i = 0; i < 15; i++)
        if (a[i])
            return false;
    return a[15] == 1;
}

/* --monitor: each address a sandbox was allowed is recorded once (per hook). */
struct seen_key {
    __u32 sandbox;
    __u16 hook;
    __u16 port;
    __u16 family;
    __u16 pad;
    unsigned char addr[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct seen_key);
    __type(value, __u8);
} monitor_seen SEC(".maps");

/* Is this the first time sandbox sb used (hook) this address? */
static __always_inline bool first_sight(__u32 sb, enum mbx_guard_hook hook, unsigned short family,
                                        const unsigned char *addr, unsigned short port)
{
    struct seen_key k = {.sandbox = sb, .hook = hook, .port = port, .family = family};
    __builtin_memcpy(k.addr, addr, 16);
    __u8 one = 1;
    return bpf_map_update_elem(&monitor_seen, &k, &one, BPF_NOEXIST) == 0;
}

static __always_inline void submit_address(struct mbx_guard_event *e, unsigned short family,
                                           const unsigned char *addr, unsigned short port)
{
    e->family = family;
    e->port = port;
    __builtin_memcpy(e->addr, addr, 16);
    bpf_ringbuf_submit(e, 0);
}

static __always_inline int allowed(__u32 sb, struct mbx_guard_policy *p, enum mbx_guard_hook hook,
                                   unsigned short family, const unsigned char *addr, unsigned short port)
{
    if (!p || !(p->flags & MBX_POLICY_MONITOR) || !first_sight(sb, hook, family, addr, port))
        return 0;
    struct mbx_guard_event *e = new_event(sb, hook, 0);
    if (e)
        submit_address(e, family, addr, port);
    return 0;
}

/* The address and port (host order) of an IPv4 or IPv6 socket address;
 * false for other families and short addresses. */
static __always_inline bool read_ip(struct sockaddr *address, int addrlen, unsigned short family,
                                    unsigned char *addr, unsigned short *port)
{
    __u16 p = 0;
    if (family == AF_INET && addrlen >= (int)sizeof(struct sockaddr_in)) {
        struct sockaddr_in *in = (struct sockaddr_in *)address;
        bpf_probe_read_kernel(addr, 4, &in->sin_addr);
        bpf_probe_read_kernel(&p, 2, &in->sin_port);
    } else if (family == AF_INET6 && addrlen >= (int)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)address;
        bpf_probe_read_kernel(addr, 16, &in6->sin6_addr);
        bpf_probe_read_kernel(&p, 2, &in6->sin6_port);
    } else {
        return false;
    }
    *port = bpf_ntohs(p);
    return true;
}

/* Checks a socket address against the sandbox's network policy. */
static __always_inline int check_address(enum mbx_guard_hook hook, struct sockaddr *address, int addrlen)
{
    __u32 sb = current_sandbox();
    if (!sb || !address)
        return 0;
    struct mbx_guard_policy *p = bpf_map_lookup_elem(&policies, &sb);
    unsigned short family = 0;
    bpf_probe_read_kernel(&family, sizeof family, &address->sa_family);
    if (family == AF_UNIX)
        return 0;
    /* Listen rules decide every bind of an IP socket, in every mode. */
    bool listen_rules = false;
    if (p && hook == MBX_HOOK_BIND) {
        for (int i = 0; i < MBX_GUARD_MAX_NET_RULES; i++) {
            if (i >= p->n_net_rules)
                break;
            if (p->net_rules[i].family == MBX_NET_LISTEN_FAMILY)
                listen_rules = true;
        }
    }
    bool host = p && p->net_mode == MBX_NET_HOST && !listen_rules;
    if (host && p && !(p->flags & MBX_POLICY_MONITOR))
        return 0;
    unsigned char addr[16] = {};
    unsigned short port = 0;
    bool ip = read_ip(address, addrlen, family, addr, &port);
    if (host)
        return ip ? allowed(sb, p, hook, family, addr, port) : 0;
    /* Other families (netlink, packet, ...) and short addresses: only with the host's network. */
    if (!ip)
        goto deny;
    if (listen_rules && p) {
        for (int i = 0; i < MBX_GUARD_MAX_NET_RULES; i++) {
            if (i >= p->n_net_rules)
                break;
            struct mbx_guard_net_rule *r = &p->net_rules[i];
            if (r->family == MBX_NET_LISTEN_FAMILY && port >= r->port_lo && port <= r->port_hi)
                return allowed(sb, p, hook, family, addr, port);
        }
        goto deny;
    }
    if (p && p->net_mode == MBX_NET_LOOPBACK && is_loopback(family, addr))
        return allowed(sb, p, hook, family, addr, port);
    if (p && p->net_mode == MBX_NET_ALLOW) {
        for (int i = 0; i < MBX_GUARD_MAX_NET_RULES; i++) {
            if (i >= p->n_net_rules)
                break;
            struct mbx_guard_net_rule *r = &p->net_rules[i];
            if (r->family == family && port >= r->port_lo && port <= r->port_hi &&
                prefix_match(addr, r->addr, r->prefix))
                return allowed(sb, p, hook, family, addr, port);
        }
    }
deny:;
    struct mbx_guard_event *e = new_event(sb, hook, -EPERM);
    if (e)
        submit_address(e, family, addr, port);
    return refusal(sb);
}

SEC("lsm/socket_connect")
int BPF_PROG(socket_connect, struct socket *sock, struct sockaddr *address, int addrlen)
{
    return check_address(MBX_HOOK_CONNECT, address, addrlen);
}

SEC("lsm/socket_bind")
int BPF_PROG(socket_bind, struct socket *sock, struct sockaddr *address, int addrlen)
{
    return check_address(MBX_HOOK_BIND, address, addrlen);
}

/* A datagram with its own destination (sendto); a connected socket was
 * checked when it connected. */
SEC("lsm/socket_sendmsg")
int BPF_PROG(socket_sendmsg, struct socket *sock, struct msghdr *msg, int size)
{
    void *name = BPF_CORE_READ(msg, msg_name);
    int len = BPF_CORE_READ(msg, msg_namelen);
    if (!name)
        return 0;
    return check_address(MBX_HOOK_SENDMSG, (struct sockaddr *)name, len);
}

/* --monitor where BPF LSM does not load (the host fallback, as root): cgroup
 * sock_addr programs, attached by mbx to the sandbox's own cgroup, record each
 * address its processes connect, send to or bind, once. They deny nothing
 * (the Landlock fallback does that, before these run). A process is the
 * sandbox's when its cgroup or one above it is in net_cgroups. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MBX_GUARD_MAX_SANDBOXES);
    __type(key, __u64); /* cgroup id */
    __type(value, __u32); /* sandbox */
} net_cgroups SEC(".maps");

static __always_inline __u32 cgroup_sandbox(void)
{
    __u64 id = bpf_get_current_cgroup_id();
    __u32 *sb = bpf_map_lookup_elem(&net_cgroups, &id);
    if (sb)
        return *sb;
    for (int level = 1; level < 16; level++) { /* a cgroup made beneath the sandbox's */
        id = bpf_get_current_ancestor_cgroup_id(level);
        if (!id)
            break;
        sb = bpf_map_lookup_elem(&net_cgroups, &id);
        if (sb)
            return *sb;
    }
    return 0;
}

/* Records the address of a sock_addr program once; allows it. */
static __always_inline int record_sock_addr(__u32 sb, enum mbx_guard_hook hook, unsigned short family,
                                            const unsigned char *addr, __u32 user_port)
{
    unsigned short port = bpf_ntohs(user_port);
    if (!sb || !first_sight(sb, hook, family, addr, port))
        return 1;
    struct mbx_guard_event *e = new_bare_event(sb, hook, 0);
    if (e)
        submit_address(e, family, addr, port);
    return 1;
}

/* One program per family: the verifier wants each context field read on
 * its own (no computed offsets into the context). */
static __always_inline int record4(struct bpf_sock_addr *ctx, enum mbx_guard_hook hook)
{
    __u32 sb = cgroup_sandbox();
    unsigned char addr[16] = {};
    __u32 a = ctx->user_ip4;
    __builtin_memcpy(addr, &a, 4);
    return record_sock_addr(sb, hook, AF_INET, addr, ctx->user_port);
}

static __always_inline int record6(struct bpf_sock_addr *ctx, enum mbx_guard_hook hook)
{
    __u32 sb = cgroup_sandbox();
    __u32 a[4];
    a[0] = ctx->user_ip6[0];
    a[1] = ctx->user_ip6[1];
    a[2] = ctx->user_ip6[2];
    a[3] = ctx->user_ip6[3];
    return record_sock_addr(sb, hook, AF_INET6, (const unsigned char *)a, ctx->user_port);
}

SEC("cgroup/connect4")
int cgroup_connect4(struct bpf_sock_addr *ctx) { return record4(ctx, MBX_HOOK_CONNECT); }

SEC("cgroup/connect6")
int cgroup_connect6(struct bpf_sock_addr *ctx) { return record6(ctx, MBX_HOOK_CONNECT); }

SEC("cgroup/sendmsg4")
int cgroup_sendmsg4(struct bpf_sock_addr *ctx) { return record4(ctx, MBX_HOOK_SENDMSG); }

SEC("cgroup/sendmsg6")
int cgroup_sendmsg6(struct bpf_sock_addr *ctx) { return record6(ctx, MBX_HOOK_SENDMSG); }

SEC("cgroup/bind4")
int cgroup_bind4(struct bpf_sock_addr *ctx) { return record4(ctx, MBX_HOOK_BIND); }

SEC("cgroup/bind6")
int cgroup_bind6(struct bpf_sock_addr *ctx) { return record6(ctx, MBX_HOOK_BIND); }
