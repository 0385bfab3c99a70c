// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: toggle: switching vm.recharge_offline_memcgs at run time
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

/* ----------------------------------------------------------------- toggle */

int case_toggle(void)
{
	char *parent = NULL, *a = NULL, *a2 = NULL, *b = NULL;
	char f[PATH_MAX], f2[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct stat_probe sp;
	struct residual_probe rp = { 0 };
	struct rh_counters before;
	long half = size / 2, v, at_stop, t0, slot;
	int ret = RH_FAIL, orig = rh_sysctl_get(), passes;

	if (orig < 0)
		return rh_skip("vm.recharge_offline_memcgs is missing");
	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	snprintf(f, sizeof(f), "%s/rh_toggle_%d_f", shmem_dir, getpid());
	snprintf(f2, sizeof(f2), "%s/rh_toggle_%d_f2", shmem_dir, getpid());
	parent = mkparent("toggle");
	a = parent ? mkchild(parent, "A") : NULL;
	a2 = parent ? mkchild(parent, "A2") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !a2 || !b)
		goto out;
	if (populate(a, f, size, false, false) ||
	    populate(a2, f2, half, false, false))
		goto out;
	if (agent_start(&ag, b))
		goto out;
	sp.cg = b;
	sp.key = "shmem";
	rp.parent = parent;
	rp.key = "shmem";
	rp.live[0] = b;
	rp.live[1] = a2;
	rh_counters_read(&before);

	/* 1. Deferred path: on for the first half, off for the second. */
	if (rh_sysctl_set(1) || cg_rmdir(a))
		goto out;
	t0 = now_ms();
	if (!access_until(&ag, AG_READ, f, 0, half, b, "shmem", half, 0,
			  &passes)) {
		ret = rh_fail("at 1: owner shmem=%ld after reading %ld (%d passes)",
			      cg_stat(b, "shmem"), half, passes);
		goto out;
	}
	ktap_diag("toggle: at 1, first half recharged in %ld ms (%d read passes)",
		  now_ms() - t0, passes);
	if (rh_sysctl_set(0))
		goto out;
	at_stop = cg_stat(b, "shmem");
	if (agent_do(&ag, AG_READ, f, half, size - half, 0) != size - half ||
	    agent_do(&ag, AG_MAP, f, 0, size, AGF_POPULATE) < 0)
		goto out;
	if (rh_poll(probe_stat, &sp, rh_ge, at_stop + RH_MB(1), settle_ms,
		    rh_step_ms, &v)) {
		ret = rh_fail("at 0: owner shmem grew %ld -> %ld", at_stop, v);
		goto out;
	}
	ktap_diag("toggle: at 0, second half read and mapped: owner stays at %ld KB",
		  v >> 10);

	/* 2. Offline walk: A2 dies at 0 with its file mapped; 1 rescans. */
	slot = agent_do(&ag, AG_MAP, f2, 0, half, AGF_POPULATE);
	if (slot < 0 || cg_rmdir(a2))
		goto out;
	rp.live[1] = NULL;
	if (rh_poll(probe_stat, &sp, rh_ge, at_stop + RH_MB(1), settle_ms,
		    rh_step_ms, &v)) {
		ret = rh_fail("at 0: the offline walk recharged %ld", v - at_stop);
		goto out;
	}
	if (rh_sysctl_set(1))
		goto out;
	t0 = now_ms();
	/* f2 (mapped): the rescan; f's second half: mapped as well. */
	if (!rh_poll(probe_stat, &sp, rh_ge, size + half, timeout_ms,
		     rh_step_ms, &v)) {
		ret = rh_fail("back at 1: owner shmem=%ld, expected %ld (rescan of dead memcgs)",
			      v, size + half);
		goto out;
	}
	ktap_diag("toggle: back at 1, dead memcgs rescanned, owner has %ld MB after %ld ms",
		  mbf(v), now_ms() - t0);
	if (!rh_poll(probe_residual, &rp, rh_eq, 0, timeout_ms, rh_step_ms,
		     &v)) {
		ret = rh_fail("%ld bytes stay with the dead memcgs", v);
		goto out;
	}
	ret = RH_PASS;
out:
	rh_counters_diag("toggle", &before, NULL);
	rh_sysctl_set(orig);
	agent_kill(&ag);
	unlink(f);
	unlink(f2);
	cg_destroy_free(&a);
	cg_destroy_free(&a2);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}
