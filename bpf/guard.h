/* What the guard's BPF programs and mbx share: the per-sandbox policy kept in
 * maps, and the audit events sent through the ring buffer. Plain C, fixed-size
 * types only: included by bpf/guard.bpf.c and by src/guard.cpp. */
#ifndef MBX_GUARD_H
#define MBX_GUARD_H

#define MBX_GUARD_MAX_SANDBOXES 1024
#define MBX_GUARD_MAX_DEVS 16      /* writable superblocks per sandbox */
#define MBX_GUARD_MAX_FILES 8      /* single writable files per sandbox */
#define MBX_GUARD_MAX_NET_RULES 16 /* --net allow= entries */
#define MBX_GUARD_MAX_BINDS 1024   /* bind roots, all sandboxes together */
#define MBX_GUARD_BIND_DEPTH 64    /* directories walked up to find a bind root */
#define MBX_GUARD_MAX_EXEC 4096    /* exec rules, all sandboxes together */

enum mbx_guard_net_mode {
    MBX_NET_HOST = 0,     /* no checks */
    MBX_NET_NONE = 1,     /* no address but AF_UNIX may be connected, bound or sent to */
    MBX_NET_LOOPBACK = 2, /* 127.0.0.0/8 and ::1 only */
    MBX_NET_ALLOW = 3,    /* the rules only */
};

/* A net_rules entry of this family is not an address rule but a range of
 * ports the sandbox may bind (a profile's net.listen): with one, a bind to any
 * other port is denied, whatever the mode. */
#define MBX_NET_LISTEN_FAMILY 0xffff

/* An address range and port range (host order; 0-65535 for any port). */
struct mbx_guard_net_rule {
    unsigned short family; /* AF_INET or AF_INET6 */
    unsigned short prefix; /* bits of addr that must match */
    unsigned short port_lo, port_hi;
    unsigned char addr[16]; /* network order; IPv4 in the first 4 bytes */
};
#define MBX_GUARD_PATH_LEN 256
#define MBX_GUARD_ARGS_LEN 256

/* Policy of one sandbox (key: its id, a u32 chosen by the loader). */
struct mbx_guard_policy {
    /* Superblocks (s_dev, kernel encoding: major << 20 | minor) the sandbox may
     * write: its FUSE view and its private tmpfs mounts. */
    unsigned int writable_dev[MBX_GUARD_MAX_DEVS];
    unsigned int n_writable;
    /* Single files it may write wherever they are: what its standard input,
     * output and error were when it started (mbx run > log). */
    struct {
        unsigned int dev;
        unsigned int pad;
        unsigned long long ino;
    } writable_file[MBX_GUARD_MAX_FILES];
    unsigned int n_files;
    /* MBX_POLICY_*: has the sandbox bind roots (a subtree of a host file
     * system it may write, in the bind_roots map)? Is it in complain mode? */
    unsigned int flags;
    /* Exec rules (exec_rules map): MBX_EXEC_* bits. */
    unsigned int exec_mode;
    unsigned int net_mode; /* enum mbx_guard_net_mode */
    unsigned int n_net_rules;
    struct mbx_guard_net_rule net_rules[MBX_GUARD_MAX_NET_RULES];
};

/* A directory (or file) of a host file system that a sandbox may write
 * beneath (--bind): it shares its superblock with the rest of the host, so
 * the whole superblock is not writable, only what lies under this root. */
struct mbx_guard_bind_key {
    unsigned int sandbox;
    unsigned int dev; /* kernel encoding */
    unsigned long long ino;
};

#define MBX_POLICY_BINDS 1    /* it has bind roots */
#define MBX_POLICY_COMPLAIN 2 /* denials are logged, not enforced (--guard complain) */
#define MBX_POLICY_MONITOR 4  /* allowed addresses are logged too, once each (--monitor) */

enum mbx_guard_exec_mode {
    MBX_EXEC_DENYLIST = 1,  /* some paths are denied (value MBX_EXEC_DENY) */
    MBX_EXEC_ALLOWLIST = 2, /* only paths with value MBX_EXEC_ALLOW run */
    MBX_EXEC_DIR_RULES = 4, /* some rules are for a directory: its files, or all beneath it */
    MBX_EXEC_NO_SOCKET_INTERPRETER = 8, /* MBX_EXEC_INTERPRETER files may not run with fd 0 or 1 a socket */
};
/* Bits of an exec_rules value. */
#define MBX_EXEC_ALLOW 1
#define MBX_EXEC_DENY 2
#define MBX_EXEC_INTERPRETER 4 /* a shell or script interpreter (the reverse-shell rule) */

/* An executable's path as the sandbox sees it, symlinks resolved, NUL-padded. */
struct mbx_guard_exec_key {
    unsigned int sandbox;
    char path[MBX_GUARD_PATH_LEN];
};

/* Per task: which sandbox it belongs to (0: none). Inherited by children. */
struct mbx_guard_mark {
    unsigned int sandbox;
};

enum mbx_guard_hook {
    MBX_HOOK_EXEC = 1,       /* not a denial: the audit of an exec */
    MBX_HOOK_FILE_OPEN,
    MBX_HOOK_FILE_WRITE,     /* a write through an fd (also one opened before) */
    MBX_HOOK_INODE_CREATE,
    MBX_HOOK_INODE_LINK,
    MBX_HOOK_INODE_UNLINK,
    MBX_HOOK_INODE_SYMLINK,
    MBX_HOOK_INODE_MKDIR,
    MBX_HOOK_INODE_RMDIR,
    MBX_HOOK_INODE_MKNOD,
    MBX_HOOK_INODE_RENAME,
    MBX_HOOK_INODE_SETATTR,
    MBX_HOOK_INODE_SETXATTR,
    MBX_HOOK_MOUNT,
    MBX_HOOK_UMOUNT,
    MBX_HOOK_MOVE_MOUNT,
    MBX_HOOK_PIVOT_ROOT,
    MBX_HOOK_PTRACE,
    MBX_HOOK_KILL,
    MBX_HOOK_MODULE,
    MBX_HOOK_KEXEC,
    MBX_HOOK_BPF,
    MBX_HOOK_PERF,
    MBX_HOOK_INODE_REMOVEXATTR,
    MBX_HOOK_MMAP,           /* a shared writable mapping */
    MBX_HOOK_CONNECT,
    MBX_HOOK_BIND,
    MBX_HOOK_SENDMSG,
    MBX_HOOK_EXEC_DENIED,    /* an exec refused by --exec-allow / --exec-deny */
    MBX_HOOK_KEYCTL,         /* keyctl, add_key, request_key (the fallback guard) */
    MBX_HOOK_SOCKET,         /* an IP socket other than TCP, or io_uring (the fallback's --net) */
    MBX_HOOK_EXEC_ON_SOCKET, /* a shell or interpreter exec'd with a socket as stdin or stdout */
};

struct mbx_guard_event {
    unsigned long long time_ns; /* CLOCK_BOOTTIME */
    unsigned int sandbox;
    unsigned int hook;          /* enum mbx_guard_hook */
    int pid, ppid;
    unsigned int uid;
    int error;                  /* 0 for audit records, -EPERM for denials */
    unsigned int dev;           /* the object's superblock, where there is one */
    unsigned long long ino;
    int target_pid;             /* ptrace, kill */
    char comm[16];
    char path[MBX_GUARD_PATH_LEN]; /* a name: the dentry's, or the exec'd file's */
    char args[MBX_GUARD_ARGS_LEN]; /* exec: argv, NUL-separated */
    unsigned int args_len;
    unsigned short family;      /* network hooks: the address */
    unsigned short port;        /* host order */
    unsigned char addr[16];
};

#endif
