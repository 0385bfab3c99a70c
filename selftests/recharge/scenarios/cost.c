// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: lru_hold, stuck_zombies: the offline worker's work is bounded
 * per lru_lock hold and does not grow with zombies it cannot help.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "common.h"

#define RH_DEBUGFS	"/sys/kernel/debug/memcg_recharge"

long rh_debugfs(const char *name)
{
	char path[128];

	if (access(RH_DEBUGFS, F_OK))
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	snprintf(path, sizeof(path), RH_DEBUGFS "/%s", name);
	return read_long(path);
}

static int rh_debugfs_write(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), RH_DEBUGFS "/%s", name);
	return write_str(path, val);
}

/* The kernel's cap on folios examined per lru_lock hold (SWAP_CLUSTER_MAX). */
#define LRU_HOLD_CAP	32

/*
 * A zombie with 256 MB of unmapped, clean page cache and 1 MB that a live
 * memcg maps: the offline worker must walk A's LRU to find the mapped
 * folios, and it does so with interrupts off under lru_lock.  Under TCG a
 * time is no verdict, so the kernel reports the largest number of folios
 * examined under one hold (debugfs memcg_recharge/lru_hold_max); it must
 * stay within the cap, and the mapped megabyte must still move.
 */
int case_lru_hold(void)
{
	char *parent = NULL, *a = NULL, *l = NULL, big[PATH_MAX], small[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct rh_counters before, d;
	long hold, t0, bigsz = RH_MB(256), smallsz = RH_MB(1);
	int ret = RH_FAIL;

	if (!have_scratch)
		return rh_skip("no block filesystem at %s", SCRATCH_DIR);
	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	if (rh_debugfs("lru_hold_max") < 0)
		return sysctl < 0 ? rh_skip("the kernel has no recharging") :
				    rh_fail("no memcg_recharge/lru_hold_max in debugfs");
	parent = mkparent("lru_hold");
	a = parent ? mkchild(parent, "A") : NULL;
	l = parent ? mkchild(parent, "L") : NULL;
	if (!a || !l)
		goto out;
	snprintf(big, sizeof(big), "%s/rh_lruhold_%d", SCRATCH_DIR, getpid());
	snprintf(small, sizeof(small), "%s/rh_lruhold_%d", shmem_dir, getpid());
	if (populate(a, small, smallsz, false, false) ||
	    populate(a, big, bigsz, true, false))
		goto out;
	if (agent_start(&ag, l) ||
	    agent_do(&ag, AG_MAP, small, 0, smallsz, AGF_POPULATE) < 0)
		goto out;
	rh_debugfs_write("lru_hold_max", "0");
	rh_counters_read(&before);
	t0 = now_ms();
	if (cg_rmdir(a))
		goto out;
	ret = check_owner("lru_hold", parent, l, "shmem", 0, smallsz, t0);
	rh_counters_diag("lru_hold", &before, &d);
	hold = rh_debugfs("lru_hold_max");
	ktap_diag("lru_hold: at most %ld folios examined under one lru_lock hold (cap %d)",
		  hold, LRU_HOLD_CAP);
	if (ret == RH_PASS && hold > LRU_HOLD_CAP)
		ret = rh_fail("%ld folios examined under one lru_lock hold with interrupts off; the cap is %d",
			      hold, LRU_HOLD_CAP);
	if (ret == RH_PASS && expect && hold == 0)
		ret = rh_fail("the worker examined nothing: the case proves nothing");
out:
	agent_kill(&ag);
	unlink(big);
	unlink(small);
	cg_destroy_free(&a);
	cg_destroy_free(&l);
	cg_destroy_free(&parent);
	return ret;
}

struct zgroup {
	char **cg;
	int n;
};

/*
 * @n zombies-to-be under @parent, each with one page of shmem mapped by
 * @mapper; then, if @limit_cg, @limit_cg is put at its limit; then all
 * are removed.
 */
static int zgroup_make(struct zgroup *zg, const char *parent, const char *tag,
		       int n, struct agent *mapper, const char *limit_cg)
{
	char name[32], path[PATH_MAX];
	long cur;
	int i;

	zg->cg = calloc(n, sizeof(*zg->cg));
	zg->n = n;
	if (!zg->cg)
		return -1;
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%d", tag, i);
		snprintf(path, sizeof(path), "%s/rh_stuck_%d_%s", shmem_dir,
			 getpid(), name);
		zg->cg[i] = mkchild(parent, name);
		if (!zg->cg[i] || populate(zg->cg[i], path, RH_PAGE, false, false) ||
		    agent_do(mapper, AG_MAP, path, 0, RH_PAGE, AGF_POPULATE) < 0)
			return -1;
	}
	if (limit_cg) {
		cur = cg_read_long(limit_cg, "memory.current");
		if (cur < 0 || cg_write_long(limit_cg, "memory.max", cur))
			return -1;
	}
	for (i = 0; i < n; i++)
		if (cg_rmdir(zg->cg[i]))
			return -1;
	return 0;
}

static void zgroup_free(struct zgroup *zg, const char *tag)
{
	char name[32], path[PATH_MAX];
	int i;

	for (i = 0; zg->cg && i < zg->n; i++) {
		snprintf(name, sizeof(name), "%s%d", tag, i);
		snprintf(path, sizeof(path), "%s/rh_stuck_%d_%s", shmem_dir,
			 getpid(), name);
		unlink(path);
		cg_destroy_free(&zg->cg[i]);
	}
	free(zg->cg);
	zg->cg = NULL;
}

/* Waits until the worker_isolated counter has not moved for @quiet_ms. */
static long isolated_settle(long quiet_ms)
{
	long v = rh_debugfs("worker_isolated"), last = v, since = now_ms();
	long deadline = now_ms() + 4 * timeout_ms;

	while (now_ms() - since < quiet_ms && now_ms() < deadline) {
		sleep_ms(rh_step_ms);
		v = rh_debugfs("worker_isolated");
		if (v != last) {
			last = v;
			since = now_ms();
		}
	}
	return v;
}

#define STUCK_ZOMBIES	200
#define PROBE_ZOMBIES	50

/*
 * The offline worker's cost per rmdir must not grow with zombies it cannot
 * help.  Phase 1: 50 memcgs, each with a page mapped by live L (which has
 * room), are removed: the worker isolates about 50 folios.  Phase 2: 200
 * memcgs whose pages are mapped only by C, at its limit, are removed: they
 * stay, unmovable.  Phase 3: phase 1 again.  The folios the worker
 * isolates in phase 3 must be within 2x phase 1's: it must not walk, and
 * isolate and put back, the 200 stuck folios again on every rmdir.
 */
int case_stuck_zombies(void)
{
	char *parent = NULL, *l = NULL, *c = NULL;
	struct agent al = { .pid = -1 }, ac = { .pid = -1 };
	struct zgroup p1 = { 0 }, p2 = { 0 }, p3 = { 0 };
	long i0, i1, i2, i3, d1, d3, quiet = 2 * settle_ms;
	int ret = RH_FAIL;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	if (rh_debugfs("worker_isolated") < 0)
		return sysctl < 0 ? rh_skip("the kernel has no recharging") :
				    rh_fail("no memcg_recharge/worker_isolated in debugfs");
	parent = mkparent("stuck_zombies");
	l = parent ? mkchild(parent, "L") : NULL;
	c = parent ? mkchild(parent, "C") : NULL;
	if (!l || !c || agent_start(&al, l) || agent_start(&ac, c))
		goto out;

	i0 = isolated_settle(quiet);
	if (zgroup_make(&p1, parent, "p", PROBE_ZOMBIES, &al, NULL))
		goto setup;
	i1 = isolated_settle(quiet);
	if (zgroup_make(&p2, parent, "s", STUCK_ZOMBIES, &ac, c))
		goto setup;
	i2 = isolated_settle(quiet);
	if (zgroup_make(&p3, parent, "q", PROBE_ZOMBIES, &al, NULL))
		goto setup;
	i3 = isolated_settle(quiet);
	d1 = i1 - i0;
	d3 = i3 - i2;
	ktap_diag("stuck_zombies: folios isolated: %ld for %d rmdirs, %ld for %d stuck zombies, %ld for %d rmdirs among them; L holds %ld KB",
		  d1, PROBE_ZOMBIES, i2 - i1, STUCK_ZOMBIES, d3, PROBE_ZOMBIES,
		  cg_stat(l, "shmem") >> 10);
	if (!expect) {
		if (i3 != i0) {
			ret = rh_fail("recharging is off, yet the worker isolated %ld folios",
				      i3 - i0);
			goto out;
		}
		ret = RH_PASS;
		goto out;
	}
	if (d1 < PROBE_ZOMBIES) {
		ret = rh_fail("only %ld folios isolated for %d movable zombies",
			      d1, PROBE_ZOMBIES);
		goto out;
	}
	if (cg_stat(l, "shmem") < 2 * PROBE_ZOMBIES * RH_PAGE) {
		ret = rh_fail("L holds %ld KB, expected the %d movable pages",
			      cg_stat(l, "shmem") >> 10, 2 * PROBE_ZOMBIES);
		goto out;
	}
	if (d3 > 2 * d1) {
		ret = rh_fail("%ld folios isolated for %d rmdirs among %d stuck zombies, %ld without them: more than 2x",
			      d3, PROBE_ZOMBIES, STUCK_ZOMBIES, d1);
		goto out;
	}
	ret = RH_PASS;
	goto out;
setup:
	ret = rh_fail("setting up the zombies: %s", strerror(errno));
out:
	agent_kill(&al);
	agent_kill(&ac);
	zgroup_free(&p1, "p");
	zgroup_free(&p2, "s");
	zgroup_free(&p3, "q");
	cg_destroy_free(&l);
	cg_destroy_free(&c);
	cg_destroy_free(&parent);
	return ret;
}
