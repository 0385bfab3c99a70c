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

static int limit_case(const char *knob)
{
	char *parent = mkparent(knob + 7), *a = NULL, *b = NULL;
	char path[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct rh_counters before, d;
	struct stat_probe sp;
	long limit = size / 4, oom0, kill0, v, t0, cur, got, dead, slot;
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
	oom0 = cg_read_key(b, "memory.events", "oom");
	kill0 = cg_read_key(b, "memory.events", "oom_kill");
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
		rh_poll(probe_stat, &sp, rh_ge, limit - RH_MB(2), timeout_ms,
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
	ktap_diag("%s: %s=%ld MB, owner memory.current=%ld KB shmem=%ld KB, %ld KB stay with the dead memcg (after %ld ms)",
		  knob + 7, knob, mbf(limit), cur >> 10, got >> 10, dead >> 10,
		  now_ms() - t0);
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
		if (d.present && d.cancelled <= 0) {
			ret = rh_fail("no recharge_pgs_cancelled although %ld KB did not fit",
				      dead >> 10);
			goto out;
		}
		if (dead < size - limit) {
			ret = rh_fail("only %ld KB stay with the dead memcg, expected >= %ld KB",
				      dead >> 10, (size - limit) >> 10);
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
