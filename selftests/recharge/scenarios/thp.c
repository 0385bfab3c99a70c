// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: thp_shmem, thp_anon: large folios are recharged whole
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

int case_thp_shmem(void)
{
	const char *dir = private_tmpfs("huge", "size=1g,huge=always");

	if (!dir)
		return rh_skip("cannot mount tmpfs with huge=always: %s",
			       strerror(errno));
	return two_file_case("thp_shmem", dir, true);
}

/* -------------------------------------------------------------- anon THP */

#define THP_UNDERUSED "/sys/kernel/mm/transparent_hugepage/shrink_underused"

int case_thp_anon(void)
{
	char *parent = NULL, *a = NULL, *b = NULL, old[128], *sel;
	char underused[16];
	bool restore_underused = false;
	struct agent ag = { .pid = -1 };
	struct stat_probe sp;
	struct residual_probe rp = { 0 };
	struct rh_counters before;
	long thp0, v, t0, base;
	bool restore = false;
	int ret = RH_FAIL;

	if (read_str(THP_ENABLED, old, sizeof(old)) <= 0)
		return rh_skip("no transparent hugepages (%s)", THP_ENABLED);
	sel = strchr(old, '[');
	if (sel && !strncmp(sel, "[never]", 7)) {
		if (write_str(THP_ENABLED, "madvise"))
			return rh_skip("THP is 'never' and cannot be changed");
		restore = true;
	}
	/*
	 * 6.12 queues every new anon THP on its memcg's deferred split queue
	 * for the underused-THP shrinker, and recharging leaves queued folios
	 * alone (the queue lives in the memcg).  Fault the THP with that off.
	 */
	if (read_str(THP_UNDERUSED, underused, sizeof(underused)) > 0 &&
	    !write_str(THP_UNDERUSED, "0")) {
		restore_underused = true;
		ktap_diag("thp_anon: %s was %.1s, set to 0 while faulting",
			  THP_UNDERUSED, underused);
	}
	parent = mkparent("thp_anon");
	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !b)
		goto out;
	if (agent_start(&ag, a))
		goto out;
	v = agent_do(&ag, AG_ANON, NULL, 0, size,
		     AGF_POPULATE | AGF_HUGE | AGF_ALIGN);
	if (v < 0) {
		ret = rh_fail("anon mmap: %s", strerror(-v));
		goto out;
	}
	sp.cg = a;
	sp.key = "anon";
	rh_poll(probe_stat, &sp, rh_ge, size, timeout_ms, rh_step_ms, &v);
	thp0 = cg_stat(a, "anon_thp");
	ktap_diag("thp_anon: A anon=%ld MB anon_thp=%ld MB", mbf(v), mbf(thp0));
	if (thp0 <= 0) {
		ret = rh_skip("no anonymous huge pages were allocated");
		goto out;
	}
	if (cg_enter(b, ag.pid))
		goto out;
	base = cg_stat(b, "anon");
	rh_counters_read(&before);
	if (cg_rmdir(a))
		goto out;
	t0 = now_ms();
	ret = check_owner("thp_anon", parent, b, "anon_thp", 0, thp0, t0);
	if (ret == RH_PASS && expect) {
		sp.cg = b;
		sp.key = "anon";
		if (!rh_poll(probe_stat, &sp, rh_ge, base + size - RH_MB(1),
			     timeout_ms, rh_step_ms, &v))
			ret = rh_fail("owner anon=%ld, expected about %ld", v,
				      base + size);
	}
	rp.parent = parent;
	rp.key = "anon";
	rp.live[0] = b;
	ktap_diag("thp_anon: owner anon=%ld MB anon_thp=%ld MB, dead memcg anon=%ld KB",
		  mbf(cg_stat(b, "anon")), mbf(cg_stat(b, "anon_thp")),
		  probe_residual(&rp) >> 10);
	rh_counters_diag("thp_anon", &before, NULL);
out:
	agent_kill(&ag);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	if (restore_underused)
		write_str(THP_UNDERUSED, underused[0] == '0' ? "0" : "1");
	if (restore) {
		sel = strchr(old, '[');
		if (sel) {
			sel[strcspn(sel, "]")] = 0;
			write_str(THP_ENABLED, sel + 1);
		}
	}
	return ret;
}
