// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: limit_max, limit_high: the new owner is at its limit
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

/* --------------------------------------------------------- at the limit */

/*
 * Dead A's shmem (--size-mb) is mapped by B, whose @knob is a quarter of
 * that.  B's room is its limit minus what it already uses (cur0: page
 * tables, its task's own pages), measured before A dies.  At sysctl 1:
 *
 * - the part that fits moved: B's shmem >= room - tol, and
 *   recharge_pgs_moved grew by as much; catches a recharge that gives up
 *   on the first refusal, or refuses everything when the target has a
 *   limit at all (the case used to pass when nothing moved);
 * - the part that does not fit stayed: B's shmem <= limit, dead A keeps
 *   >= size - limit; catches charging past memory.max/high;
 * - every page that stayed was refused at least once:
 *   recharge_pgs_cancelled grew by >= the pages that stayed (- tol);
 *   catches refusals that are not counted, or pages never attempted;
 * - no OOM, no kill, B's task alive: recharging never reclaims or OOMs.
 *
 * tol = max(1 MB, limit / 8) covers the small allocations of B's task
 * after cur0 was taken, plus B's per-CPU charge stock (64 pages per CPU,
 * counted in its usage, so not room for recharged pages).
 * At sysctl 0 nothing moves and the counters stay still.
 */
static int limit_case(const char *knob)
{
	char *parent = mkparent(knob + 7), *a = NULL, *b = NULL;
	char path[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct rh_counters before, d;
	struct stat_probe sp;
	long limit = size / 4, oom0, kill0, v, t0, cur, got, dead, slot;
	long cur0, room, tol = limit / 8 > RH_MB(1) ? limit / 8 : RH_MB(1);
	long swap0, swapped;
	/* each CPU may hold a charge batch of B's: 64 pages */
	long stock = sysconf(_SC_NPROCESSORS_ONLN) * 64 * RH_PAGE;

	tol += stock;
	int ret = RH_FAIL, passes;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	snprintf(path, sizeof(path), "%s/rh_limit_%d", shmem_dir, getpid());
	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !b)
		goto out;
	if (populate(a, path, size, false, false)) {
		ret = rh_fail("populating %s", path);
		goto out;
	}
	if (cg_write_long(b, knob, limit)) {
		ret = rh_fail("setting %s: %s", knob, strerror(errno));
		goto out;
	}
	if (agent_start(&ag, b))
		goto out;
	/* Mapped before offline (offline walk), read after (deferred). */
	slot = agent_do(&ag, AG_MAP, path, 0, size, AGF_POPULATE);
	if (slot < 0) {
		ret = rh_fail("mapping: %s", strerror(-slot));
		goto out;
	}
	cur0 = cg_read_long(b, "memory.current");
	room = limit - cur0;
	ktap_diag("%s: %s=%ld KB, owner uses %ld KB before A dies: room for %ld KB of A's %ld KB",
		  knob + 7, knob, limit >> 10, cur0 >> 10, room >> 10,
		  size >> 10);
	if (cur0 < 0) {
		ret = rh_fail("cannot read the owner's memory.current");
		goto out;
	}
	if (room < 2 * tol) {
		ret = rh_skip("--size-mb too small: the owner has room for %ld KB only (%s %ld KB, tolerance %ld KB)",
			      room >> 10, knob, limit >> 10, tol >> 10);
		goto out;
	}
	oom0 = cg_read_key(b, "memory.events", "oom");
	kill0 = cg_read_key(b, "memory.events", "oom_kill");
	swap0 = cg_read_long(b, "memory.swap.current");
	rh_counters_read(&before);
	if (cg_rmdir(a))
		goto out;
	t0 = now_ms();
	/* Three read passes: the deferred path gets its chances too. */
	access_until(&ag, AG_READ, path, 0, size, b, "shmem", size, 3,
		     &passes);

	sp.cg = b;
	sp.key = "shmem";
	if (expect) {
		/* Wait until the owner is full, then for things to settle. */
		rh_poll(probe_stat, &sp, rh_ge, room - tol, timeout_ms,
			rh_step_ms, &v);
		rh_poll(probe_stat, &sp, rh_ge, limit + 1, settle_ms,
			rh_step_ms, &v);
	} else {
		rh_poll(probe_stat, &sp, rh_ge, size / 10, settle_ms,
			rh_step_ms, &v);
	}
	rh_counters_diag(knob, &before, &d);
	cur = cg_read_long(b, "memory.current");
	got = cg_stat(b, "shmem");
	dead = cg_stat(parent, "shmem") - got;
	/*
	 * The owner at its limit reclaims: shmem it was given may go to swap
	 * (still charged to it), which makes room for more to move.
	 */
	swapped = cg_read_long(b, "memory.swap.current");
	swapped = swap0 >= 0 && swapped > swap0 ? swapped - swap0 : 0;
	ktap_diag("%s: %s=%ld MB, owner memory.current=%ld KB shmem=%ld KB, %ld KB stay with the dead memcg (after %ld ms)",
		  knob + 7, knob, mbf(limit), cur >> 10, got >> 10, dead >> 10,
		  now_ms() - t0);
	ktap_diag("%s: owner swap +%ld KB", knob + 7, swapped >> 10);
	ktap_diag("%s: owner memory.events: oom %ld->%ld oom_kill %ld->%ld max %ld high %ld",
		  knob + 7, oom0, cg_read_key(b, "memory.events", "oom"), kill0,
		  cg_read_key(b, "memory.events", "oom_kill"),
		  cg_read_key(b, "memory.events", "max"),
		  cg_read_key(b, "memory.events", "high"));

	if (cg_read_key(b, "memory.events", "oom") != oom0 ||
	    cg_read_key(b, "memory.events", "oom_kill") != kill0) {
		ret = rh_fail("recharging into a full memcg triggered the OOM killer");
		goto out;
	}
	if (agent_do(&ag, AG_TOUCH_READ, NULL, slot, 0, 0)) {
		ret = rh_fail("the owner's task is gone");
		goto out;
	}
	if (got > limit) {
		ret = rh_fail("owner shmem %ld exceeds %s %ld", got, knob,
			      limit);
		goto out;
	}
	if (expect) {
		if (got < room - tol) {
			ret = rh_fail("the part that fits did not move: owner shmem %ld KB, room %ld KB (tolerance %ld KB)",
				      got >> 10, room >> 10, tol >> 10);
			goto out;
		}
		if (dead + swapped < size - limit) {
			ret = rh_fail("only %ld KB stay with the dead memcg (the owner swapped %ld KB), expected >= %ld KB",
				      dead >> 10, swapped >> 10,
				      (size - limit) >> 10);
			goto out;
		}
		if (d.present && d.moved * RH_PAGE < got - tol) {
			ret = rh_fail("recharge_pgs_moved +%ld pages (%ld KB), but the owner got %ld KB",
				      d.moved, d.moved * RH_PAGE >> 10,
				      got >> 10);
			goto out;
		}
		if (d.present && d.cancelled * RH_PAGE < dead - tol) {
			ret = rh_fail("recharge_pgs_cancelled +%ld pages (%ld KB), but %ld KB did not fit",
				      d.cancelled, d.cancelled * RH_PAGE >> 10,
				      dead >> 10);
			goto out;
		}
		if (!d.present) {
			ret = rh_fail("recharge_pgs_* missing from /proc/vmstat at sysctl 1");
			goto out;
		}
	} else {
		if (got > size / 10 || dead < size * 9 / 10) {
			ret = rh_fail("recharging is off, yet the owner got %ld KB",
				      got >> 10);
			goto out;
		}
		if (d.present && (d.moved || d.cancelled)) {
			ret = rh_fail("recharging is off, yet counters moved");
			goto out;
		}
	}
	ret = RH_PASS;
out:
	agent_kill(&ag);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}

int case_limit_max(void)
{
	return limit_case("memory.max");
}

int case_limit_high(void)
{
	return limit_case("memory.high");
}
