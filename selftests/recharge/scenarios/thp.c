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

#define THP_SHMEM	"/sys/kernel/mm/transparent_hugepage/shmem_enabled"
#define THP_PMD_ANON	"/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled"

/*
 * thp_shmem: A's files on a tmpfs mounted huge=always; B maps one before A
 * dies and reads the other after (two_file_case()): every huge page must
 * move whole (B's shmem_thp grows by A's, none left behind).  tmpfs
 * accepts huge=always only when the kernel supports THP, so from there on
 * getting no huge page at all is a FAIL, unless the kernel tried and fell
 * back for lack of free 2 MB blocks (thp_none()) or the administrator
 * denied huge shmem (shmem_enabled "deny"): the two legitimate SKIPs.
 */
int case_thp_shmem(void)
{
	const char *dir = private_tmpfs("huge", "size=1g,huge=always");
	char buf[128];

	if (!dir)
		return rh_skip("cannot mount tmpfs with huge=always (kernel without THP for shmem): %s",
			       strerror(errno));
	if (read_str(THP_SHMEM, buf, sizeof(buf)) > 0 && strstr(buf, "[deny]"))
		return rh_skip("%s is 'deny': huge shmem is disabled system-wide",
			       THP_SHMEM);
	return two_file_case("thp_shmem", dir, true);
}

/* -------------------------------------------------------------- anon THP */

#define THP_UNDERUSED "/sys/kernel/mm/transparent_hugepage/shrink_underused"

/*
 * thp_anon: A's task faults --size-mb of anonymous memory with
 * MADV_HUGEPAGE, moves to B, and A is removed: B must end up with all of
 * it, huge pages included (check_owner on anon_thp, then anon).  SKIP only
 * without CONFIG_TRANSPARENT_HUGEPAGE (no sysfs knob) or when the kernel
 * tried and fell back for lack of free 2 MB blocks (thp_none()); a global
 * or per-size "never" is switched to madvise/inherit for the case; no huge
 * page and no fallback is a FAIL.
 */
int case_thp_anon(void)
{
	char *parent = NULL, *a = NULL, *b = NULL, old[128], *sel;
	char underused[16], pmd_old[64];
	bool restore_underused = false, restore_pmd = false;
	struct agent ag = { .pid = -1 };
	struct stat_probe sp;
	struct residual_probe rp = { 0 };
	struct rh_counters before;
	long thp0, v, t0, base;
	bool restore = false;
	long fb0;
	int ret = RH_FAIL;

	if (read_str(THP_ENABLED, old, sizeof(old)) <= 0)
		return rh_skip("no transparent hugepages (%s)", THP_ENABLED);
	sel = strchr(old, '[');
	if (sel && !strncmp(sel, "[never]", 7)) {
		if (write_str(THP_ENABLED, "madvise"))
			return rh_skip("THP is 'never' and cannot be changed");
		restore = true;
	}
	/* 6.12's per-size control for PMD-sized anon THP. */
	if (read_str(THP_PMD_ANON, pmd_old, sizeof(pmd_old)) > 0 &&
	    strstr(pmd_old, "[never]")) {
		if (write_str(THP_PMD_ANON, "inherit")) {
			ret = rh_fail("cannot switch %s from never", THP_PMD_ANON);
			goto out;
		}
		restore_pmd = true;
		ktap_diag("thp_anon: %s was never, set to inherit", THP_PMD_ANON);
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
	thp_compact();
	fb0 = rh_vmstat("thp_fault_fallback");
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
		ret = thp_none("thp_anon", "anonymous", "thp_fault_fallback",
			       fb0);
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
	if (restore_pmd)
		write_str(THP_PMD_ANON, "never");
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
