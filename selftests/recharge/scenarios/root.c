// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: root_mapper, root_accessor: the root cgroup as mapper and as accessor
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

/*
 * A task in the root cgroup maps A's shmem before A is removed, and is its
 * only mapper: it is the pages' user, so the offline worker gives them to
 * the root memcg (which is where they would be had it faulted them in),
 * and A can go.  At 0 they stay and A stays dying.
 */
int case_root_mapper(void)
{
	char *parent = mkparent("root_mapper"), *a = NULL, path[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct residual_probe rp = { 0 };
	struct rh_counters before, d;
	long v, slot, t0;
	int ret = RH_FAIL;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	snprintf(path, sizeof(path), "%s/rh_root_%d", shmem_dir, getpid());
	a = parent ? mkchild(parent, "A") : NULL;
	if (!a || populate(a, path, size, false, false))
		goto out;
	if (agent_start(&ag, cg_root()))
		goto out;
	slot = agent_do(&ag, AG_MAP, path, 0, size, AGF_POPULATE);
	if (slot < 0)
		goto out;
	rh_counters_read(&before);
	t0 = now_ms();
	if (cg_rmdir(a))
		goto out;
	rp.parent = parent;
	rp.key = "shmem";
	if (expect) {
		if (!rh_poll(probe_residual, &rp, rh_le, size / 10, timeout_ms,
			     rh_step_ms, &v)) {
			ret = rh_fail("dead A keeps %ld KB although its only mapper is in the root cgroup",
				      v >> 10);
			goto out;
		}
		ktap_diag("root_mapper: dead A down to %ld KB after %ld ms",
			  v >> 10, now_ms() - t0);
		if (!rh_poll(probe_dying, parent, rh_eq, 0, timeout_ms,
			     rh_step_ms, &v)) {
			ret = rh_fail("%ld dying memcgs left under the parent", v);
			goto out;
		}
	} else {
		rh_poll(probe_residual, &rp, rh_le, size * 9 / 10, settle_ms,
			rh_step_ms, &v);
		ktap_diag("root_mapper: control: dead A keeps %ld KB", v >> 10);
		if (v < size * 9 / 10) {
			ret = rh_fail("recharging is off, yet the pages left the dead memcg");
			goto out;
		}
	}
	rh_counters_diag("root_mapper", &before, &d);
	ret = RH_PASS;
out:
	agent_kill(&ag);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&parent);
	return ret;
}

/*
 * After A is removed, a task in the root cgroup reads and writes A's pages
 * (folio_mark_accessed(), folio_mark_dirty()): accesses never make the
 * root memcg an owner, so the pages stay with dead A whatever the sysctl.
 * Nothing maps them: a root-only mapping would legitimately hand them to
 * root on the offline worker's next pass over A (root_mapper), and when
 * that pass comes is not this case's to control.
 */
int case_root_accessor(void)
{
	char *parent = mkparent("root_accessor"), *a = NULL, path[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct residual_probe rp = { 0 };
	struct rh_counters before, d;
	long v, min_seen;
	int ret = RH_FAIL, i;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	snprintf(path, sizeof(path), "%s/rh_rootacc_%d", shmem_dir, getpid());
	a = parent ? mkchild(parent, "A") : NULL;
	if (!a || populate(a, path, size, false, false))
		goto out;
	rh_counters_read(&before);
	if (cg_rmdir(a))
		goto out;
	if (agent_start(&ag, cg_root()))
		goto out;
	if (agent_do(&ag, AG_READ, path, 0, size, 0) != size ||
	    agent_do(&ag, AG_WRITE, path, 0, size, 0) != size ||
	    agent_do(&ag, AG_READ, path, 0, size, 0) != size)
		goto out;
	agent_stop(&ag);
	rp.parent = parent;
	rp.key = "shmem";
	min_seen = LONG_MAX;
	for (i = 0; i * rh_step_ms < settle_ms; i++) {
		v = probe_residual(&rp);
		if (v < min_seen)
			min_seen = v;
		sleep_ms(rh_step_ms);
	}
	rh_counters_diag("root_accessor", &before, &d);
	ktap_diag("root_accessor: dead A keeps %ld KB of shmem (lowest seen %ld KB)",
		  probe_residual(&rp) >> 10, min_seen >> 10);
	if (min_seen < size * 9 / 10) {
		ret = rh_fail("pages left the dead memcg on accesses from the root cgroup");
		goto out;
	}
	ret = RH_PASS;
out:
	agent_kill(&ag);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&parent);
	return ret;
}
