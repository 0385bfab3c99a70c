// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: mlock_count: the deferred path must not isolate what it
 * cannot move.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static long mlocked_kb(void)
{
	return read_key("/proc/meminfo", "Mlocked:");
}

/*
 * A's shmem is mlocked by two tasks, in C1 and C2, so each folio's
 * mlock_count is 2.  A is removed and B reads the file: mlocked folios
 * cannot be moved, and isolating one from the LRU and putting it back
 * resets its mlock_count to 0.  Then C1 munlocks: with the count intact
 * the pages stay mlocked (C2 still holds them); with a reset count they
 * are unlocked although C2's mlock() still covers them.  Whatever the
 * sysctl, Mlocked must not drop.
 */
int case_mlock_count(void)
{
	char *parent = mkparent("mlock_count"), *a = NULL, *b = NULL;
	char *c1 = NULL, *c2 = NULL, path[PATH_MAX];
	struct agent g1 = { .pid = -1 }, g2 = { .pid = -1 }, gb = { .pid = -1 };
	struct rh_counters before, d;
	long len = RH_MB(4), s1, s2, m0, m1;
	int ret = RH_FAIL;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	c1 = parent ? mkchild(parent, "C1") : NULL;
	c2 = parent ? mkchild(parent, "C2") : NULL;
	if (!a || !b || !c1 || !c2)
		goto out;
	snprintf(path, sizeof(path), "%s/rh_mlockcnt_%d", shmem_dir, getpid());
	if (populate(a, path, len, false, false))
		goto out;
	if (agent_start(&g1, c1) || agent_start(&g2, c2) || agent_start(&gb, b))
		goto out;
	s1 = agent_do(&g1, AG_MAP, path, 0, len, AGF_POPULATE);
	s2 = agent_do(&g2, AG_MAP, path, 0, len, AGF_POPULATE);
	if (s1 < 0 || s2 < 0 || agent_do(&g1, AG_MLOCK, NULL, s1, 0, 0) < 0 ||
	    agent_do(&g2, AG_MLOCK, NULL, s2, 0, 0) < 0) {
		ret = rh_fail("mlock: %s", strerror(errno));
		goto out;
	}
	rh_counters_read(&before);
	if (cg_rmdir(a))
		goto out;
	m0 = mlocked_kb();
	/* B's reads reach the deferred path several times over. */
	if (agent_do(&gb, AG_READ, path, 0, len, 0) != len)
		goto out;
	sleep_ms(settle_ms / 2);
	if (agent_do(&gb, AG_READ, path, 0, len, 0) != len)
		goto out;
	sleep_ms(settle_ms / 2);
	if (agent_do(&g1, AG_MUNLOCK, NULL, s1, 0, 0) < 0)
		goto out;
	sleep_ms(500);
	m1 = mlocked_kb();
	rh_counters_diag("mlock_count", &before, &d);
	ktap_diag("mlock_count: Mlocked %ld KB before C1's munlock, %ld KB after (C2 still locks %ld KB)",
		  m0, m1, len >> 10);
	if (m1 < m0 - (len >> 10) / 2) {
		ret = rh_fail("C1's munlock unlocked %ld KB that C2 still has mlocked: their mlock_count was lost",
			      m0 - m1);
		goto out;
	}
	ret = RH_PASS;
out:
	agent_kill(&g1);
	agent_kill(&g2);
	agent_kill(&gb);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&c1);
	cg_destroy_free(&c2);
	cg_destroy_free(&parent);
	return ret;
}
