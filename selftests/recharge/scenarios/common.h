/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared state and helpers of the scenarios program (see main.c for the
 * list of cases).  One file per theme holds the cases.
 */
#ifndef RH_SCENARIOS_COMMON_H
#define RH_SCENARIOS_COMMON_H

#include <stdbool.h>

#include "../../lib/cgutil.h"
#include "../../lib/observe.h"

#define SCRATCH_DIR	RH_SCRATCH_DIR
#define SHMEM_DIR	"/run/rhtmp"
#define LRU_GEN		"/sys/kernel/mm/lru_gen/enabled"
#define THP_ENABLED	"/sys/kernel/mm/transparent_hugepage/enabled"

/* ------------------------------------------------------ options (main.c) */

extern long size;		/* --size-mb: memory per scenario */
extern int nr_zombies;		/* --zombies */
extern long zombie_size;	/* --zombie-mb */
extern long zombie_timeout_ms;	/* --zombie-timeout */
extern int stress_seconds;	/* --stress-seconds */
extern long timeout_ms;		/* --timeout: polling budget per wait */
/*
 * Window for checks that something must NOT happen: the larger of
 * settle_floor_ms (--settle) and a multiple of the guest's speed measured
 * at start (rh_calibrate_ms()), raised when a recharge in this run took
 * long (note_recharge_ms()); at most SETTLE_CAP_MS unless --settle is more.
 */
extern long settle_ms;
extern long settle_floor_ms;	/* --settle */
#define SETTLE_FACTOR	8	/* x the calibration time */
#define SETTLE_CAP_MS	60000
extern long leak_timeout_ms;	/* --leak-timeout */
#define ONE_ACCESS_MAX	4
extern long one_access_mb[ONE_ACCESS_MAX];	/* --one-access-mb */
extern int nr_one_access;

/* ------------------------------------------------------------ run state */

extern int sysctl;		/* value at start, -1 if missing */
extern bool expect;		/* recharging expected */
/*
 * The kernel has no sysctl (6.12 as released, upstream kernels that
 * reparent instead): cases run their actions and print "# observe" lines;
 * the runner reports SKIP whatever the case's checks said.
 */
extern bool observing;
/* The case the runner is running (for "# observe" lines). */
extern const char *cur_case;
#define OBS_SKIP_REASON "the kernel has no vm.recharge_offline_memcgs; observed only"
extern char shmem_dir[128];	/* tmpfs for shmem cases ("" if none) */
extern bool have_scratch;	/* block filesystem at SCRATCH_DIR */
/*
 * The run's top cgroup: every case's parent (mkparent()) lives below it, so
 * that the runner's leak check sees every memcg a case removed, parent
 * included.  NULL before the runner has created it.
 */
extern char *sc_top;

/* --------------------------------------------------------------- helpers */

/* Mounts a private tmpfs with @opts; returns its path or NULL. */
const char *private_tmpfs(const char *tag, const char *opts);
/* Unmounts what private_tmpfs() mounted. */
void release_tmpfs(void);
/* Finds or mounts the tmpfs for shmem cases, looks for SCRATCH_DIR. */
void prepare_dirs(void);

/* A per-case parent cgroup below sc_top, memory enabled. */
char *mkparent(const char *tag);
char *mkchild(const char *parent, const char *name);

/*
 * Writes @len bytes of @path from a process in @cg, which then exits.  On a
 * block filesystem the blocks are reserved beforehand from outside the
 * cgroup and the data is synced, so the cgroup is charged for clean page
 * cache only.  @keep_dirty: write without syncing (pages stay dirty).
 */
int populate(const char *cg, const char *path, long len, bool blockfs,
	     bool keep_dirty);

struct stat_probe {
	const char *cg;
	const char *key;
};
/* memory.stat key of a cgroup (ctx: struct stat_probe). */
long probe_stat(void *ctx);

struct residual_probe {
	const char *parent;
	const char *key;
	const char *live[4];	/* NULL-terminated */
};
/* Memory of @key charged to dead descendants of @parent. */
long probe_residual(void *ctx);
/* nr_dying_descendants (ctx: the cgroup path). */
long probe_dying(void *ctx);

static inline long mbf(long bytes)
{
	return bytes >> 20;
}

bool access_until(struct agent *ag, int op, const char *path, long slot,
		  long len, const char *owner, const char *key, long target,
		  int max_passes, int *passes);
int check_owner(const char *what, const char *parent, const char *owner,
		const char *key, long base, long target, long t0);
bool drain_dying(const char *tag, const char *parent, long timeout_ms_,
		 long *left);
/* A positive recharge took @ms: widen settle_ms to 2 x @ms if larger. */
void note_recharge_ms(const char *what, long ms);
/* thp_shmem and mglru_*: B maps f0 before A dies, reads f1 after. */
int two_file_case(const char *tag, const char *dir, bool huge);

/*
 * Large folios.  thp_compact(): compacts memory before allocating huge
 * pages.  thp_none(): when a case configured for THP got none.  A SKIP is
 * legitimate only when the kernel tried and failed for lack of free 2 MB
 * blocks (vmstat @fallback grew since @fb0, after compaction): that is the
 * guest's memory, not the series.  Otherwise (no attempt recorded) it is
 * a FAIL: the kernel is configured for THP (the caller checked), so a huge
 * page was expected.
 */
void thp_compact(void);
int thp_none(const char *what, const char *kind, const char *fallback,
	     long fb0);

/*
 * A counter of the series in debugfs (memcg_recharge/@name), mounting
 * debugfs if needed; -1 if the kernel has none.  cost.c
 */
long rh_debugfs(const char *name);

/* ------------------------------------------------------------------ cases */

int case_zombie_shmem(void);		/* zombie.c */
int case_zombie_file(void);
int case_offline_churn(void);
int case_anon_migrate(void);		/* migrate.c */
int case_compaction_owner(void);
int case_limit_max(void);		/* limits.c */
int case_limit_high(void);
int case_thp_shmem(void);		/* thp.c */
int case_thp_anon(void);
int case_mglru_on(void);		/* lru.c */
int case_mglru_off(void);
int case_mlock(void);
int case_kernel_writeback(void);	/* kernel.c */
int case_kernel_exit(void);
int case_root_mapper(void);		/* root.c */
int case_root_accessor(void);
int case_toggle(void);			/* toggle.c */
int case_stress(void);			/* stress.c */
int case_root_pass_leak(void);		/* refcount.c */
int case_truncated_pinned(void);	/* pagecache.c */
int case_write_dirty_file(void);
int case_write_dirty_shmem(void);
int case_bdev_metadata(void);
int case_many_sources(void);
int case_ancestor_read(void);		/* ancestor.c */
int case_ancestor_map(void);
int case_refuse_backoff(void);
int case_lru_hold(void);		/* cost.c */
int case_stuck_zombies(void);
int case_mlock_count(void);		/* isolation.c */
int case_one_access(void);		/* oneaccess.c */

#endif
