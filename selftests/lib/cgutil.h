/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Minimal cgroup v2 / KTAP / polling helpers for the recharge selftests.
 * Runs inside the guest only: everything here assumes root and cgroup v2.
 */
#ifndef RH_CGUTIL_H
#define RH_CGUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define RH_PAGE		4096L
#define RH_MB(x)	((long)(x) << 20)

#define RH_SYSCTL	"/proc/sys/vm/recharge_offline_memcgs"

/* ---------------------------------------------------------------- KTAP */

enum { RH_PASS = 0, RH_FAIL = 1, RH_SKIP = 4 };

void ktap_header(int nr_cases);
/* Prints "ok N name", "not ok N name" or "ok N name # SKIP reason". */
void ktap_result(const char *name, int result, const char *skip_reason);
void ktap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 0 if nothing failed, 1 if something failed, 4 if everything skipped. */
int ktap_exit_code(void);

/* A case's skip reason (set by the case before returning RH_SKIP). */
extern char rh_skip_reason[256];
int rh_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "# FAIL: ..." and returns RH_FAIL. */
int rh_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------------------------------------------------------- plain files */

long now_ms(void);
void sleep_ms(long ms);
ssize_t read_str(const char *path, char *buf, size_t len);
int write_str(const char *path, const char *str);
long read_long(const char *path);	/* -1 on error */
/* Value of "key value" line in a flat keyed file (memory.stat, vmstat). */
long read_key(const char *path, const char *key);	/* -1 if absent */

/* The sysctl: -1 if missing, else its value. */
int rh_sysctl_get(void);
int rh_sysctl_set(int val);
/* A /proc/vmstat counter, -1 if the kernel has no such counter. */
long rh_vmstat(const char *name);

struct rh_counters {
	long scanned, moved, cancelled;
	bool present;
};
void rh_counters_read(struct rh_counters *c);
/* Prints "# <tag>: scanned +x moved +y cancelled +z" relative to @before. */
void rh_counters_diag(const char *tag, const struct rh_counters *before,
		      struct rh_counters *delta_out);

/* -------------------------------------------------------------- cgroups */

/* Path of the cgroup v2 mount, NULL if cgroup v2 is not mounted. */
const char *cg_root(void);
/* malloc'ed "parent/name". */
char *cg_join(const char *parent, const char *name);
int cg_create(const char *cg);
/* Kills every process in @cg and removes it; 0 if it is gone. */
int cg_destroy(const char *cg);
/* cg_destroy(*cg), free(*cg), *cg = NULL; a NULL *cg is fine */
void cg_destroy_free(char **cg);
/* Removes a cgroup that has no processes (no kill); 0 on success. */
int cg_rmdir(const char *cg);
long cg_read_long(const char *cg, const char *file);
long cg_read_key(const char *cg, const char *file, const char *key);
int cg_write(const char *cg, const char *file, const char *val);
int cg_write_long(const char *cg, const char *file, long val);
int cg_enable_memory(const char *cg);
int cg_enter(const char *cg, pid_t pid);
/* As in the kernel's cgroup_util.h: */
int cg_enter_current(const char *cg);
/* Reads @file of @cg into @buf (NUL-terminated); 0 or -1. */
int cg_read(const char *cg, const char *file, char *buf, size_t len);
int cg_nr_procs(const char *cg);
/* Number of dying descendants from cgroup.stat, -1 on error. */
long cg_nr_dying(const char *cg);
long cg_stat(const char *cg, const char *key);	/* memory.stat key */

/*
 * Removal log: every cgroup that cg_rmdir() (and so cg_destroy()) removes
 * is recorded, by forked children too once cg_rmlog_init() has set up the
 * shared log (before the first fork).  A leak check names these as the
 * memcgs that may be the ones still dying.
 */
int cg_rmlog_init(void);
int cg_rmlog_renew(void);
void cg_rmlog_reset(void);
long cg_rmlog_count(void);		/* removals since the last reset */
const char *cg_rmlog_path(long i);	/* NULL beyond what the log holds */

/*
 * Leak check: waits until @top's nr_dying_descendants is back to at most
 * @baseline, reclaiming @top's subtree (dead memcgs included) with
 * memory.reclaim, syncing, checkpointing the scratch disk's journal
 * (cg_checkpoint_scratch()) and dropping clean caches between polls, for up
 * to @timeout_ms (longer, at most 4x, while the count keeps falling).  A
 * memcg still dying after that is pinned by a reference, not by memory.
 * Returns true if the count came back; *left: the last count.
 */
/*
 * Filesystem metadata (inode tables, bitmaps, extent and directory blocks:
 * the block device's page cache) is charged to whichever memcg reads it
 * first, which depends on what earlier cases left cached.  Nobody owns it,
 * so recharging leaves it alone: a block-filesystem case allows this much
 * of it where it expects none of a memcg's "file", and reports it.
 */
#define FS_METADATA_SLACK	(16 * RH_PAGE)

/* Where the harness mounts its ext4 scratch disk */
#define RH_SCRATCH_DIR	"/mnt/rhscratch"
/* Checkpoints the scratch disk's journal (a freeze and a thaw); else nothing */
void cg_checkpoint_scratch(void);
/* Has every CPU's per-CPU charge caches switch to a cgroup never removed. */
void cg_drain_percpu_caches(void);
bool cg_drain_dying(const char *top, long baseline, long timeout_ms,
		    long *left, int *passes);

/*
 * The leak invariant after a test case whose cgroups all lived below
 * @top: removes what the case left below @top, then cg_drain_dying(@top,
 * @baseline, @timeout_ms).  On failure prints "# leak: <name>: ..."
 * diagnostics: how many memcgs stay dying, the dead subtree's memory, and
 * the memcgs the case removed (cg_rmlog_*()), among which the culprits
 * are.  Returns true when nothing leaked.
 */
/*
 * With recharging off (or absent) the kernel legitimately keeps a removed
 * memcg pinned by memory reclaim cannot free (filesystem metadata waiting
 * for a journal checkpoint, say): then survivors that still hold memory
 * are reported, not failed.  A survivor holding nothing is a leaked
 * reference either way.
 */
extern bool cg_leak_lenient;
bool cg_leak_check(const char *name, const char *top, long baseline,
		   long timeout_ms);

/* Checks that the memory controller can be used below the root. */
int cg_setup_root(char *why, size_t len);

/* Runs fn(arg) in a child attached to @cg and waits for it. */
int cg_run(const char *cg, int (*fn)(void *arg), void *arg);

/* --------------------------------------------------------------- polling */

/*
 * Polls probe() every @step_ms until cond(value) holds or the deadline
 * passes.  While the probed value keeps changing the deadline is pushed
 * back (at most to 4 x @timeout_ms), so slow but steady progress under
 * emulation is not mistaken for a hang.  Returns true if the condition was
 * met; *last is the last value seen.
 */
typedef long (*rh_probe_t)(void *ctx);
bool rh_poll(rh_probe_t probe, void *ctx, bool (*cond)(long v, long arg),
	     long arg, long timeout_ms, long step_ms, long *last);
bool rh_ge(long v, long arg);
bool rh_le(long v, long arg);
bool rh_eq(long v, long arg);

/* Default polling budget (ms), from $RH_TIMEOUT_MS or 20000. */
long rh_timeout_ms(void);
extern long rh_step_ms;

/*
 * The guest's speed: median of 3 runs (ms) of a forked child that writes
 * @len bytes to a memfd, maps it with MAP_POPULATE, touches and re-reads
 * every page, and exits.  -1 if that cannot be done.
 */
long rh_calibrate_ms(long len);
/*
 * The window for checks that something must NOT happen: @factor x
 * @calib_ms, at least @floor_ms, at most @cap_ms (a @calib_ms < 0 gives
 * @floor_ms).
 */
long rh_scaled_window(long floor_ms, long calib_ms, long factor, long cap_ms);

/* ----------------------------------------------------------- kernel log */

/* Opens /dev/kmsg positioned at its end (-1 if unavailable). */
int kmsg_open(void);
/*
 * Reads the records added since the last call, prints suspicious ones
 * (BUG, WARNING, Oops, lockdep, KASAN, ...) as diagnostics and returns
 * how many there were.
 */
int kmsg_scan(int fd, const char *tag);
/* True if a kernel log message is one kmsg_scan() reports. */
bool kmsg_suspicious(const char *msg);
/*
 * Calls @fn on the text of each record added since the last call (for a
 * scan that must judge records in context, e.g. tell an expected memcg
 * OOM report from others); returns how many there were.
 */
int kmsg_read(int fd, void (*fn)(const char *msg, void *ctx), void *ctx);

/* ---------------------------------------------------------------- agents */

/*
 * An agent is a child process living in a cgroup that performs memory
 * operations on request, so one scenario can drive a process through
 * several phases (map, touch, mlock, move to another cgroup, exit...).
 */
struct agent {
	pid_t pid;
	int cmd_fd;
	int resp_fd;
};

enum agent_op {
	AG_MAP = 1,	/* map a file: path, len, flags */
	AG_ANON,	/* anonymous mapping: len, flags */
	AG_TOUCH_READ,	/* load one byte per page of slot */
	AG_TOUCH_WRITE,	/* store one byte per page of slot */
	AG_MLOCK,
	AG_MUNLOCK,
	AG_UNMAP,
	AG_READ,	/* read(2) path from off, len bytes */
	AG_WRITE,	/* write(2) path from off, len bytes */
	AG_FSYNC,
	AG_POPULATE,	/* madvise(MADV_POPULATE_READ) the slot: GUP touch */
	AG_EXIT,
};

#define AGF_POPULATE	0x1
#define AGF_WRITE	0x2
#define AGF_HUGE	0x4	/* MADV_HUGEPAGE */
#define AGF_NOHUGE	0x8	/* MADV_NOHUGEPAGE */
#define AGF_CREATE	0x10	/* AG_WRITE: create/truncate the file */
#define AGF_SYNC	0x20	/* AG_WRITE: fsync() before and after */
#define AGF_ALIGN	0x40	/* 2 MB-aligned anonymous mapping */

/* Starts an agent in @cg (NULL: stay in the caller's cgroup). */
int agent_start(struct agent *ag, const char *cg);
/* Returns the op's result (slot number for maps), negative errno on error. */
long agent_do(struct agent *ag, int op, const char *path, long off, long len,
	      int flags);
/* Asks the agent to exit and reaps it. */
int agent_stop(struct agent *ag);
/* SIGKILLs and reaps the agent (safe on a stopped agent). */
void agent_kill(struct agent *ag);
bool agent_alive(struct agent *ag);

/* ----------------------------------------------------------------- files */

/* Writes @len bytes (non-zero pattern) to @path with write(2). */
int fill_file(const char *path, long len, bool do_fsync);
int fallocate_file(const char *path, long len);
/* True if @path is on a mount of type @fstype. */
bool on_fstype(const char *path, const char *fstype);

#endif
