// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: kernel_writeback, kernel_exit: kernel-context accesses never pick an owner
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* --------------------------------------------------------- kernel context */

/*
 * Dead A's pages are dirty; the flusher (a kernel thread) writes them back.
 * Neither root nor the unrelated memcg U may end up with them.
 *
 * Catches a recharge from kernel context (writeback's folio_mark_dirty()/
 * folio_clear_dirty paths run by a kworker): U's file stat must not grow
 * and dead A must keep its pages (they did not go to root either).
 * Preconditions, checked (FAIL if unmet, since without them the case
 * tests nothing): A's pages are dirty when A dies (memory.stat
 * file_dirty >= half the file), and writeback completes (file_dirty and
 * file_writeback of the subtree reach 0) before the negative window.
 * The baselines are taken from live A before its removal: no sleep.
 */
int case_kernel_writeback(void)
{
	char *parent = NULL, *a = NULL, *u = NULL, f[PATH_MAX], g[PATH_MAX];
	struct residual_probe rp = { 0 };
	struct stat_probe sp;
	struct rh_counters before, d;
	long u0, dead0, dirty, v, t0;
	int ret = RH_FAIL;

	if (!have_scratch)
		return rh_skip("no block filesystem at %s (run guest-setup.sh)",
			       SCRATCH_DIR);
	snprintf(f, sizeof(f), "%s/rh_kwb_%d_f", SCRATCH_DIR, getpid());
	snprintf(g, sizeof(g), "%s/rh_kwb_%d_g", SCRATCH_DIR, getpid());
	parent = mkparent("kernel_writeback");
	a = parent ? mkchild(parent, "A") : NULL;
	u = parent ? mkchild(parent, "U") : NULL;
	if (!a || !u)
		goto out;
	/* U has page cache of its own, A leaves dirty pages behind. */
	if (populate(u, g, size / 4, true, false) ||
	    populate(a, f, size, true, true)) {
		ret = rh_fail("populating files");
		goto out;
	}
	rp.parent = parent;
	rp.key = "file";
	rp.live[0] = u;
	dirty = cg_stat(a, "file_dirty");
	dead0 = cg_stat(a, "file");
	u0 = cg_stat(u, "file");
	ktap_diag("kernel_writeback: A file=%ld KB file_dirty=%ld KB, U file=%ld KB; /proc/meminfo Dirty=%ld KB",
		  dead0 >> 10, dirty >> 10, u0 >> 10,
		  read_key("/proc/meminfo", "Dirty:"));
	if (dirty < size / 2) {
		ret = rh_fail("precondition: A's file is not dirty (file_dirty %ld KB of %ld KB written; vm.dirty_background_bytes=%ld ratio=%ld, dirty_expire_centisecs=%ld)",
			      dirty >> 10, size >> 10,
			      read_long("/proc/sys/vm/dirty_background_bytes"),
			      read_long("/proc/sys/vm/dirty_background_ratio"),
			      read_long("/proc/sys/vm/dirty_expire_centisecs"));
		goto out;
	}
	rh_counters_read(&before);
	if (cg_rmdir(a))
		goto out;
	t0 = now_ms();
	v = cg_stat(parent, "file_dirty");
	if (v < size / 2) {
		ret = rh_fail("precondition: dead A's pages were cleaned before the flusher was asked (subtree file_dirty %ld KB right after rmdir)",
			      v >> 10);
		goto out;
	}

	/* sync(2) hands the work to the flusher threads and waits. */
	sync();
	sp.cg = parent;
	sp.key = "file_dirty";
	if (!rh_poll(probe_stat, &sp, rh_le, 0, timeout_ms, rh_step_ms, &v)) {
		ret = rh_fail("precondition: writeback did not happen: subtree file_dirty %ld KB %ld ms after sync()",
			      v >> 10, now_ms() - t0);
		goto out;
	}
	sp.key = "file_writeback";
	if (!rh_poll(probe_stat, &sp, rh_le, 0, timeout_ms, rh_step_ms, &v)) {
		ret = rh_fail("precondition: writeback did not complete: subtree file_writeback %ld KB %ld ms after sync()",
			      v >> 10, now_ms() - t0);
		goto out;
	}
	ktap_diag("kernel_writeback: %ld KB written back within %ld ms",
		  dirty >> 10, now_ms() - t0);

	/* Give a wrong recharge every chance to show. */
	sp.cg = u;
	sp.key = "file";
	rh_poll(probe_stat, &sp, rh_ge, u0 + size / 10, settle_ms, rh_step_ms,
		&v);
	rh_counters_diag("kernel_writeback", &before, &d);
	ktap_diag("kernel_writeback: U file %ld->%ld KB, dead A file %ld->%ld KB",
		  u0 >> 10, v >> 10, dead0 >> 10, probe_residual(&rp) >> 10);
	if (v > u0 + RH_MB(1)) {
		ret = rh_fail("the unrelated memcg U was charged for A's pages");
		goto out;
	}
	if (probe_residual(&rp) < dead0 - RH_MB(1)) {
		ret = rh_fail("A's pages left the dead memcg (to root?)");
		goto out;
	}
	/* recharge_pgs_moved is global: a diagnostic only (printed above). */
	ret = RH_PASS;
out:
	unlink(f);
	unlink(g);
	cg_destroy_free(&a);
	cg_destroy_free(&u);
	cg_destroy_free(&parent);
	return ret;
}

/*
 * A task maps dead A's shmem pages with plain read faults (young PTEs, no
 * folio_mark_accessed()) and exits: the zap at exit sees young PTEs, but an
 * exiting task must not become the owner.
 */
int case_kernel_exit(void)
{
	char *parent = mkparent("kernel_exit"), *a = NULL, *u = NULL;
	char path[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct residual_probe rp = { 0 };
	struct stat_probe sp;
	struct rh_counters before;
	long v, slot, wait_ms, w0 = settle_ms / 3 > 1000 ? settle_ms / 3 : 1000;
	int ret = RH_FAIL, attempt;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	snprintf(path, sizeof(path), "%s/rh_kexit_%d", shmem_dir, getpid());
	/* Both waits scale with the guest's speed (settle_ms), >= 1 s. */
	for (attempt = 0, wait_ms = w0; attempt < 3; attempt++, wait_ms *= 4) {
		cg_destroy_free(&a);
		cg_destroy_free(&u);
		a = parent ? mkchild(parent, "A") : NULL;
		u = parent ? mkchild(parent, "U") : NULL;
		if (!a || !u)
			goto out;
		if (populate(a, path, size, false, false))
			goto out;
		rh_counters_read(&before);
		if (cg_rmdir(a))
			goto out;
		/*
		 * Let the offline worker finish with A (nothing is mapped, so
		 * it has nothing to do) before anyone maps the file: a mapper
		 * present during the walk would legitimately get the pages.
		 */
		sleep_ms(wait_ms);
		if (agent_start(&ag, u))
			goto out;
		slot = agent_do(&ag, AG_MAP, path, 0, size, 0);
		if (slot < 0 || agent_do(&ag, AG_TOUCH_READ, NULL, slot, 0, 0))
			goto out;
		sp.cg = u;
		sp.key = "shmem";
		if (!rh_poll(probe_stat, &sp, rh_ge, size / 10, w0,
			     rh_step_ms, &v))
			break;
		ktap_diag("kernel_exit: precondition: U got %ld KB while merely mapping (attempt %d); retrying with a longer wait",
			  v >> 10, attempt + 1);
		agent_kill(&ag);
		unlink(path);
	}
	if (attempt == 3) {
		ret = rh_fail("read faults alone recharged the pages");
		goto out;
	}
	/* Exit with the young PTEs still mapped. */
	agent_stop(&ag);
	rh_poll(probe_stat, &sp, rh_ge, size / 10, settle_ms, rh_step_ms, &v);
	rp.parent = parent;
	rp.key = "shmem";
	rp.live[0] = u;
	ktap_diag("kernel_exit: after the exit U shmem=%ld KB, dead A shmem=%ld KB",
		  v >> 10, probe_residual(&rp) >> 10);
	rh_counters_diag("kernel_exit", &before, NULL);
	if (v > size / 10) {
		ret = rh_fail("the exiting task's memcg was charged");
		goto out;
	}
	if (probe_residual(&rp) < size * 9 / 10) {
		ret = rh_fail("the pages left the dead memcg");
		goto out;
	}
	ret = RH_PASS;
out:
	agent_kill(&ag);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&u);
	cg_destroy_free(&parent);
	return ret;
}
