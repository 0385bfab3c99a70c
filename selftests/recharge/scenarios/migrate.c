// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: anon_migrate: anonymous memory of a task that moved to another memcg
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

/* --------------------------------------------------------- anon migrate */

int case_anon_migrate(void)
{
	char *parent = mkparent("anon"), *a = NULL, *b = NULL;
	struct agent ag = { .pid = -1 };
	struct stat_probe sp;
	struct residual_probe rp;
	struct rh_counters before;
	long v, base, t0, slot;
	int ret = RH_FAIL;

	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !b)
		goto out;
	if (agent_start(&ag, a))
		goto out;
	slot = agent_do(&ag, AG_ANON, NULL, 0, size,
			AGF_POPULATE | AGF_NOHUGE);
	if (slot < 0) {
		ret = rh_fail("anon mmap: %s", strerror(-slot));
		goto out;
	}
	sp.cg = a;
	sp.key = "anon";
	if (!rh_poll(probe_stat, &sp, rh_ge, size, timeout_ms, rh_step_ms,
		     &v)) {
		ret = rh_fail("A anon=%ld, expected >= %ld", v, size);
		goto out;
	}
	if (cg_enter(b, ag.pid)) {
		ret = rh_fail("moving the task to B: %s", strerror(errno));
		goto out;
	}
	base = cg_stat(b, "anon");
	ktap_diag("anon: A anon=%ld MB, task moved to B (anon=%ld KB)",
		  mbf(cg_stat(a, "anon")), base >> 10);
	rh_counters_read(&before);
	if (cg_rmdir(a)) {
		ret = rh_fail("rmdir A: %s", strerror(errno));
		goto out;
	}
	t0 = now_ms();
	ret = check_owner("anon", parent, b, "anon", base, size, t0);
	if (ret == RH_FAIL && expect) {
		/* Tell which part was missing. */
		rp.parent = parent;
		rp.key = "anon";
		rp.live[0] = b;
		rp.live[1] = NULL;
		ktap_diag("anon: B anon=%ld, dead A anon=%ld",
			  cg_stat(b, "anon"), probe_residual(&rp));
	}
	rh_counters_diag("anon", &before, NULL);
	if (ret == RH_PASS && agent_do(&ag, AG_TOUCH_READ, NULL, slot, 0, 0))
		ret = rh_fail("the task cannot read its memory any more");
out:
	agent_kill(&ag);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}
