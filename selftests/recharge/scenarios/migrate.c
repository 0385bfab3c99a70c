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

/* ----------------------------------------------------- compaction_owner */

static int compact_all(void *arg)
{
	(void)arg;
	return write_str("/proc/sys/vm/compact_memory", "1") ? 1 : 0;
}

/*
 * compaction_owner: migration is not a use. A's task dirties anonymous
 * memory and moves to B, which is at its limit, so the memory stays with
 * dead A. A task in C then compacts memory: migrating a folio copies its
 * page table entries' dirty bits with folio_mark_dirty(), from C's task.
 * C must not become the owner of memory it never touched, and queueing
 * the folio (a reference) while it is being migrated must not make the
 * migration fail. Checked over several compactions: C's anon stays at
 * what it charged itself.
 */
int case_compaction_owner(void)
{
	char *parent = mkparent("compaction_owner"), *a = NULL, *b = NULL,
	     *c = NULL;
	struct agent ag = { .pid = -1 };
	long slot, c0, c1, fail0, fail1, mig0, mig1, dead;
	struct residual_probe rp = { 0 };
	int i, ret = RH_FAIL;

	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	c = parent ? mkchild(parent, "C") : NULL;
	if (!a || !b || !c)
		goto out;
	if (cg_write(b, "memory.max", "4M")) {
		ret = rh_fail("setting B's memory.max: %s", strerror(errno));
		goto out;
	}
	if (agent_start(&ag, a))
		goto out;
	slot = agent_do(&ag, AG_ANON, NULL, 0, size,
			AGF_POPULATE | AGF_WRITE | AGF_NOHUGE);
	if (slot < 0) {
		ret = rh_fail("anon mmap: %s", strerror(-slot));
		goto out;
	}
	if (cg_enter(b, ag.pid)) {
		ret = rh_fail("moving the task to B: %s", strerror(errno));
		goto out;
	}
	if (cg_rmdir(a)) {
		ret = rh_fail("rmdir A: %s", strerror(errno));
		goto out;
	}
	/* Let the offline worker try B, which refuses. */
	usleep(settle_ms * 1000);
	rp.parent = parent;
	rp.key = "anon";
	rp.live[0] = b;
	rp.live[1] = c;
	dead = probe_residual(&rp);
	if (dead < size / 2) {
		ret = rh_skip("only %ld KB of %ld KB stayed with dead A (B anon=%ld KB): nothing for compaction to find",
			      dead >> 10, size >> 10, cg_stat(b, "anon") >> 10);
		goto out;
	}
	c0 = cg_stat(c, "anon");
	mig0 = rh_vmstat("pgmigrate_success");
	fail0 = rh_vmstat("pgmigrate_fail");
	for (i = 0; i < 3; i++) {
		if (cg_run(c, compact_all, NULL)) {
			ret = rh_skip("cannot compact memory from C (no CONFIG_COMPACTION?)");
			goto out;
		}
		usleep(settle_ms * 1000);
	}
	c1 = cg_stat(c, "anon");
	mig1 = rh_vmstat("pgmigrate_success");
	fail1 = rh_vmstat("pgmigrate_fail");
	ktap_diag("compaction_owner: dead A anon=%ld KB before; after 3 compactions from C: C anon %ld -> %ld KB, dead A anon=%ld KB, pgmigrate_success +%ld, pgmigrate_fail +%ld",
		  dead >> 10, c0 >> 10, c1 >> 10, probe_residual(&rp) >> 10,
		  mig1 - mig0, fail1 - fail0);
	if (c1 - c0 > 64 * RH_PAGE)
		ret = rh_fail("C, which only compacted memory, was charged %ld KB of dead A's anon",
			      (c1 - c0) >> 10);
	else
		ret = RH_PASS;
	if (ret == RH_PASS && agent_do(&ag, AG_TOUCH_READ, NULL, slot, 0, 0))
		ret = rh_fail("the task cannot read its memory any more");
out:
	agent_kill(&ag);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&c);
	cg_destroy_free(&parent);
	return ret;
}
