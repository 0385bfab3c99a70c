// SPDX-License-Identifier: GPL-2.0
/*
 * Scenarios for memcg recharging beyond the in-tree selftest.  Each case is
 * one KTAP test.  Every case reads vm.recharge_offline_memcgs first: at 1 it
 * expects recharging, at 0 it asserts the opposite (memory stays with the
 * dead cgroup, the dying count does not fall), so the same binary is its
 * own negative control.  When the kernel has no such sysctl (6.12 as
 * released, upstream kernels that reparent a dead memcg's folios) every
 * case reports SKIP ("observed only") after running its actions: the
 * zombie and stress cases observe without asserting, the others run their
 * control checks and report what they found.  "# observe" lines (format in
 * selftests/README) say where the removed memory went, at every sysctl
 * value.  Cases that must write the sysctl SKIP when it is missing.
 *
 * Cases:
 *   zombie_shmem, zombie_file  N memcgs populate files that a live memcg
 *                    keeps mapped, then are removed: nr_dying_descendants
 *                    before/after and time to clear
 *   offline_churn    the offline worker runs while other memcgs keep
 *                    going offline
 *   anon_migrate     anon memory of a task moved from A to B, A removed
 *   compaction_owner a task that compacts memory becomes the owner of none
 *                    of the dead memcg's anon it migrates
 *   limit_max, limit_high  the new owner is at its limit: no OOM, the
 *                    charge is refused (recharge_pgs_cancelled grows)
 *   thp_shmem, thp_anon  large folios are recharged whole
 *   mglru_on, mglru_off  the same checks with MGLRU switched
 *   mlock            mlocked memory: what the offline walk and the deferred
 *                    path do, then after munlock
 *   kernel_writeback dirty pages of a dead memcg written back by the flusher
 *                    end up neither in root nor in an unrelated memcg
 *   kernel_exit      young PTEs zapped by an exiting task recharge nothing
 *   root_mapper      A's only mapper is in the root cgroup: the offline
 *                    worker gives the pages to root, and A can go
 *   root_accessor    reads and writes from the root cgroup after removal
 *                    never make root the owner
 *   toggle           sysctl 1->0 stops recharging, 0->1 resumes it
 *   stress           memcg churn against shared files for --stress-seconds
 *   one_access       one read pass moves >= 99 % of a dead memcg's file
 *                    (tmpfs, ext4; --one-access-mb sizes), and the deferred
 *                    path's throughput next to the offline worker's
 *
 * This file: options, the case table and the runner; common.[ch]: shared
 * helpers; one file per theme for the cases.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <getopt.h>
#include <signal.h>

#include "common.h"

/* ------------------------------------------------------------------ main */

static int kmsg_fd = -1;

/*
 * The leak invariant, checked by the runner after every case whatever its
 * result: every memcg the case removed is freed once its memory is
 * reclaimed.  Each case's cgroups live below its parent (mkparent()), and
 * every parent below the run's top cgroup sc_top, so sc_top's
 * nr_dying_descendants counts every memcg a case removed, its parent
 * included, even after the case has removed the parent.  After the case,
 * the runner removes whatever the case left under sc_top, then waits for
 * that count to come back to its value before the case (cg_drain_dying():
 * memory.reclaim over sc_top, sync, drop_caches 3 between polls, up to
 * --leak-timeout).  By then the case has deleted its files and its
 * processes are gone, so at either sysctl value nothing but a leaked
 * reference can keep a dead memcg: pages of deleted files are freed, and
 * what others still use (shared libraries, fs metadata) is reclaimable.
 *
 * A failure is folded into the case's own KTAP result ("not ok N case",
 * also for a case that would have passed or skipped) with "# leak: ..."
 * diagnostics: how many memcgs stay dying and the paths the case (or its
 * children) removed, the candidates.  Returns true when nothing leaked.
 */
static bool leak_check(const char *name, long baseline)
{
	return cg_leak_check(name, sc_top, baseline, leak_timeout_ms);
}

/*
 * The runner's "# observe <case> phase=run" line, for every case at every
 * sysctl value: what the case's own checks said (checks=pass|fail|skip;
 * with the sysctl missing they are the control checks where the case has
 * no observe mode of its own), whether its removed memcgs were freed
 * (leak=0|1), suspicious kernel log lines (kmsg=N), the case's duration,
 * OOM kills anywhere while it ran (oom_kill_sys; oom= oom_kill= are -1).
 */
static void observe_run(const char *name, int checks, bool leaked, int kmsg,
			long ms, long sys0)
{
	struct obs_line l;

	obs_begin(&l, name, "run");
	obs_long(&l, "sysctl", sysctl);
	obs_kv(&l, "checks", "%s", checks == RH_PASS ? "pass" :
		   checks == RH_SKIP ? "skip" : "fail");
	obs_long(&l, "leak", leaked);
	obs_long(&l, "kmsg", kmsg);
	obs_long(&l, "case_ms", ms);
	obs_oom_kv(&l, NULL, sys0);
	obs_end(&l);
}

/* The run's top cgroup, below the root: every case's parent goes there. */
static char *make_top(void)
{
	char name[64], *p;

	snprintf(name, sizeof(name), "rh_sc_%d", getpid());
	p = cg_join(cg_root(), name);
	if (!p)
		return NULL;
	cg_destroy(p);
	if (cg_create(p) || cg_enable_memory(p)) {
		ktap_diag("cannot create %s: %s", p, strerror(errno));
		free(p);
		return NULL;
	}
	return p;
}

/*
 * Scales the negative checks' window to the guest: SETTLE_FACTOR x the
 * time a child takes to populate, map and re-read --size-mb of shmem, at
 * least --settle.  A wrong recharge is work of the same kind (an rmap walk
 * or an access per folio), so it would show within a few such times.
 */
static void scale_settle(void)
{
	long calib = rh_calibrate_ms(size);

	settle_ms = rh_scaled_window(settle_floor_ms, calib, SETTLE_FACTOR,
				     SETTLE_CAP_MS);
	ktap_diag("guest speed: populating and mapping %ld MB took %ld ms: negative checks wait %ld ms (%d x, floor %ld ms, cap %d ms)",
		  mbf(size), calib, settle_ms, SETTLE_FACTOR, settle_floor_ms,
		  SETTLE_CAP_MS);
}

static const struct {
	const char *name;
	int (*fn)(void);
} cases[] = {
	{ "zombie_shmem", case_zombie_shmem },
	{ "zombie_file", case_zombie_file },
	{ "offline_churn", case_offline_churn },
	{ "anon_migrate", case_anon_migrate },
	{ "compaction_owner", case_compaction_owner },
	{ "limit_max", case_limit_max },
	{ "limit_high", case_limit_high },
	{ "thp_shmem", case_thp_shmem },
	{ "thp_anon", case_thp_anon },
	{ "mglru_on", case_mglru_on },
	{ "mglru_off", case_mglru_off },
	{ "mlock", case_mlock },
	{ "kernel_writeback", case_kernel_writeback },
	{ "kernel_exit", case_kernel_exit },
	{ "root_mapper", case_root_mapper },
	{ "root_accessor", case_root_accessor },
	{ "root_pass_leak", case_root_pass_leak },
	{ "truncated_pinned", case_truncated_pinned },
	{ "ancestor_read", case_ancestor_read },
	{ "ancestor_map", case_ancestor_map },
	{ "write_dirty_file", case_write_dirty_file },
	{ "write_dirty_shmem", case_write_dirty_shmem },
	{ "lru_hold", case_lru_hold },
	{ "stuck_zombies", case_stuck_zombies },
	{ "refuse_backoff", case_refuse_backoff },
	{ "mlock_count", case_mlock_count },
	{ "bdev_metadata", case_bdev_metadata },
	{ "many_sources", case_many_sources },
	{ "one_access", case_one_access },
	{ "toggle", case_toggle },
	{ "stress", case_stress },
};

#define NR_CASES ((int)(sizeof(cases) / sizeof(cases[0])))

/* --one-access-mb: "32,256" into one_access_mb[]. */
static int parse_sizes(const char *list)
{
	char *end;
	long v;

	nr_one_access = 0;
	while (*list) {
		v = strtol(list, &end, 10);
		if (end == list || v < 1 || v > 4096 ||
		    nr_one_access == ONE_ACCESS_MAX ||
		    (*end && *end != ',')) {
			fprintf(stderr, "--one-access-mb: expected sizes in MiB, e.g. 32,256\n");
			return -1;
		}
		one_access_mb[nr_one_access++] = v;
		list = *end ? end + 1 : end;
	}
	return nr_one_access ? 0 : -1;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-l] [-t NAME]... [options]\n"
		"  -l                    list the cases\n"
		"  -t NAME               run only NAME (repeatable)\n"
		"  --size-mb N           memory per scenario (default 32)\n"
		"  --zombies N           memcgs in zombie_* (default 50)\n"
		"  --zombie-mb N         file size per zombie (default 2)\n"
		"  --zombie-timeout MS   bound for the dying count to clear (default 60000)\n"
		"  --stress-seconds N    duration of stress (default 60)\n"
		"  --timeout MS          polling budget per wait (default $RH_TIMEOUT_MS or 20000)\n"
		"  --settle MS           least window for things that must not happen (default 3000;\n"
		"                        scaled up to the guest's speed, see the \"guest speed\" line)\n"
		"  --leak-timeout MS     after each case, bound for its removed memcgs to be freed (default 30000)\n"
		"  --one-access-mb LIST  file sizes of one_access, comma-separated (default 32,256)\n",
		prog);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size-mb", required_argument, NULL, 's' },
		{ "zombies", required_argument, NULL, 'z' },
		{ "zombie-mb", required_argument, NULL, 'Z' },
		{ "zombie-timeout", required_argument, NULL, 'y' },
		{ "stress-seconds", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "settle", required_argument, NULL, 'w' },
		{ "leak-timeout", required_argument, NULL, 'k' },
		{ "one-access-mb", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *only[32];
	int nr_only = 0, i, j, opt, nr_sel = 0, res;
	long baseline, t0, sys0;
	bool sel[NR_CASES], leaked;
	int checks, kmsg;
	char why[256] = "";

	timeout_ms = rh_timeout_ms();
	while ((opt = getopt_long(argc, argv, "lt:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			for (i = 0; i < NR_CASES; i++)
				printf("%s\n", cases[i].name);
			return 0;
		case 't':
			if (nr_only < 32)
				only[nr_only++] = optarg;
			break;
		case 's':
			size = RH_MB(atol(optarg));
			break;
		case 'z':
			nr_zombies = atoi(optarg);
			break;
		case 'Z':
			zombie_size = RH_MB(atol(optarg));
			break;
		case 'y':
			zombie_timeout_ms = atol(optarg);
			break;
		case 'S':
			stress_seconds = atoi(optarg);
			break;
		case 'T':
			timeout_ms = atol(optarg);
			break;
		case 'w':
			settle_floor_ms = atol(optarg);
			break;
		case 'k':
			leak_timeout_ms = atol(optarg);
			break;
		case 'O':
			if (parse_sizes(optarg))
				return 2;
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (size < RH_MB(4) || nr_zombies < 1 || nr_zombies > 250 ||
	    zombie_size < RH_PAGE || stress_seconds < 1 ||
	    leak_timeout_ms < 0 || settle_floor_ms < 0) {
		usage(argv[0]);
		return 2;
	}
	size &= ~(RH_MB(2) - 1);

	for (i = 0; i < NR_CASES; i++) {
		sel[i] = !nr_only;
		for (j = 0; j < nr_only; j++)
			if (!strcmp(only[j], cases[i].name))
				sel[i] = true;
		nr_sel += sel[i];
	}
	if (!nr_sel) {
		fprintf(stderr, "no such case; -l lists them\n");
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	ktap_header(nr_sel);
	sysctl = rh_sysctl_get();
	expect = sysctl == 1;
	cg_leak_lenient = !expect;
	observing = sysctl < 0;
	ktap_diag("vm.recharge_offline_memcgs=%d%s: %s", sysctl,
		  sysctl < 0 ? " (missing)" : "",
		  observing ? "observing only: the cases run and print \"# observe\" lines, verdicts are SKIP" :
		  expect ? "expecting recharging" :
			   "control run, expecting no recharging");
	if (cg_setup_root(why, sizeof(why)) == 0 && cg_rmlog_init())
		snprintf(why, sizeof(why), "cannot map the removal log: %s",
			 strerror(errno));
	if (!why[0] && !(sc_top = make_top()))
		snprintf(why, sizeof(why), "cannot create the top cgroup");
	if (!why[0]) {
		prepare_dirs();
		ktap_diag("shmem dir %s, scratch %s", shmem_dir[0] ? shmem_dir : "(none)",
			  have_scratch ? SCRATCH_DIR : "(none)");
		kmsg_fd = kmsg_open();
		kmsg_scan(kmsg_fd, "before");
		scale_settle();
	}

	for (i = 0; i < NR_CASES; i++) {
		if (!sel[i])
			continue;
		rh_skip_reason[0] = 0;
		if (why[0]) {
			res = rh_skip("%s", why);
		} else {
			ktap_diag("-- %s", cases[i].name);
			baseline = cg_nr_dying(sc_top);
			cg_rmlog_reset();
			t0 = now_ms();
			sys0 = obs_oom_kill_sys();
			cur_case = cases[i].name;
			res = cases[i].fn();
			checks = res;
			/* Another case may have changed it: put it back. */
			if (sysctl >= 0 && rh_sysctl_get() != sysctl)
				rh_sysctl_set(sysctl);
			leaked = !leak_check(cases[i].name, baseline);
			kmsg = kmsg_scan(kmsg_fd, cases[i].name);
			if (leaked && !observing)
				res = rh_fail("leak: memcgs removed by %s stay dying after reclaim",
					      cases[i].name);
			if (kmsg && res == RH_PASS && !observing)
				res = rh_fail("suspicious kernel log messages");
			observe_run(cases[i].name, checks, leaked, kmsg,
				    now_ms() - t0, sys0);
			if (observing && res != RH_SKIP) {
				ktap_diag("%s: observed only (the case's own checks: %s)",
					  cases[i].name,
					  checks == RH_PASS ? "pass" : "fail");
				res = rh_skip(OBS_SKIP_REASON);
			}
		}
		ktap_result(cases[i].name, res, rh_skip_reason);
	}

	if (sc_top)
		cg_destroy_free(&sc_top);
	release_tmpfs();
	return ktap_exit_code();
}
