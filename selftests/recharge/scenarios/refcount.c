// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: root_pass_leak: the offline worker's root pass must not leak a
 * css reference on the memcgs it passes over.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/*
 * A's shmem is mapped by a task in C, which is at its limit (memory.max
 * leaves room for a few pages only) and by a task in the root cgroup.  When
 * A goes, the worker tries C first, which refuses most folios, then, as a
 * last resort, hands them to root: its second rmap walk meets C's mapping
 * again.  Every reference taken on C on the way must be dropped: once C's
 * task exits, C is removed and its few pages are freed, C must be freed.
 * A leaked reference keeps C dying forever, whatever is reclaimed.
 */
int case_root_pass_leak(void)
{
	char *parent = mkparent("root_pass_leak"), *a = NULL, *c = NULL;
	struct agent ac = { .pid = -1 }, ar = { .pid = -1 };
	struct rh_counters before, d;
	long len = RH_MB(4), v, cur, t0;
	char path[PATH_MAX];
	int ret = RH_FAIL;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	snprintf(path, sizeof(path), "%s/rh_rootleak_%d", shmem_dir, getpid());
	a = parent ? mkchild(parent, "A") : NULL;
	c = parent ? mkchild(parent, "C") : NULL;
	if (!a || !c || populate(a, path, len, false, false))
		goto out;
	if (agent_start(&ac, c) ||
	    agent_do(&ac, AG_MAP, path, 0, len, AGF_POPULATE) < 0)
		goto out;
	cur = cg_read_long(c, "memory.current");
	if (cur < 0 || cg_write_long(c, "memory.max", cur + 16 * RH_PAGE)) {
		ret = rh_fail("cannot put C at its limit: %s", strerror(errno));
		goto out;
	}
	if (agent_start(&ar, cg_root()) ||
	    agent_do(&ar, AG_MAP, path, 0, len, AGF_POPULATE) < 0)
		goto out;
	rh_counters_read(&before);
	t0 = now_ms();
	if (cg_rmdir(a))
		goto out;
	if (expect) {
		if (!rh_poll(probe_dying, parent, rh_eq, 0, timeout_ms,
			     rh_step_ms, &v)) {
			ret = rh_fail("dead A still dying after %ld ms although root and C map all of it",
				      now_ms() - t0);
			goto out;
		}
		ktap_diag("root_pass_leak: A freed after %ld ms, C holds %ld KB of shmem",
			  now_ms() - t0, cg_stat(c, "shmem") >> 10);
	} else {
		sleep_ms(settle_ms);
		if (cg_nr_dying(parent) < 1) {
			ret = rh_fail("recharging is off, yet dead A was freed");
			goto out;
		}
	}
	rh_counters_diag("root_pass_leak", &before, &d);
	agent_kill(&ac);
	if (cg_rmdir(c)) {
		ret = rh_fail("rmdir C: %s", strerror(errno));
		goto out;
	}
	agent_kill(&ar);
	unlink(path);
	t0 = now_ms();
	if (!drain_dying("root_pass_leak", parent, timeout_ms, &v)) {
		ret = rh_fail("%ld of the memcgs removed here (A, C) stay dying %ld ms after their memory was freed and reclaimed: a leaked css reference",
			      v, now_ms() - t0);
		goto out;
	}
	ret = RH_PASS;
out:
	agent_kill(&ac);
	agent_kill(&ar);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&c);
	cg_destroy_free(&parent);
	return ret;
}
