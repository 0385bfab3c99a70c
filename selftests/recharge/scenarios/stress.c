// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: stress: memcg churn against shared files
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>
#include <sys/wait.h>

#include "common.h"

/* ----------------------------------------------------------------- stress */

#define STRESS_FILES 8

struct stress_files {
	char path[2 * STRESS_FILES][PATH_MAX];
	int nr;
	long len;
};

/*
 * One random operation on a random range of a random shared file: read,
 * write, map (populated or faulted) and touch, or (@op_hint 4) punch a hole
 * and write it again, which puts new page cache into the caller's memcg.
 */
static void stress_op(struct stress_files *sf, unsigned int *seed,
		      int op_hint)
{
	static char buf[65536];
	const char *p = sf->path[rand_r(seed) % sf->nr];
	long off = (rand_r(seed) % (sf->len / RH_PAGE)) * RH_PAGE, i;
	long len = sf->len - off < (long)sizeof(buf) * 4 ?
		   sf->len - off : (long)sizeof(buf) * 4;
	char *m;
	int fd, op = op_hint >= 0 ? op_hint : rand_r(seed) % 5;

	fd = open(p, O_RDWR);
	if (fd < 0)
		return;
	switch (op) {
	case 4:
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
			  len);
		/* fall through */
	case 1:
		memset(buf, op, sizeof(buf));
		for (i = 0; i + (long)sizeof(buf) <= len; i += sizeof(buf))
			if (pwrite(fd, buf, sizeof(buf), off + i) <= 0)
				break;
		break;
	case 0:
		for (i = 0; i < len; i += sizeof(buf))
			if (pread(fd, buf, sizeof(buf), off + i) <= 0)
				break;
		break;
	default:
		m = mmap(NULL, sf->len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | (op == 2 ? MAP_POPULATE : 0), fd, 0);
		if (m == MAP_FAILED)
			break;
		for (i = off; i < off + len; i += RH_PAGE)
			((volatile char *)m)[i] += op;
		munmap(m, sf->len);
		break;
	}
	close(fd);
}

/*
 * A long-lived user of the shared files.  The limited one only reads with
 * read(2), which allocates nothing on tmpfs, so that its limit is filled by
 * recharged pages only (and refusals show up as recharge_pgs_cancelled)
 * instead of by tmpfs pages of its own, which only swap could reclaim.
 */
static void stress_user(struct stress_files *sf, long deadline, int id,
			bool limited)
{
	unsigned int seed = getpid() ^ id;

	while (now_ms() < deadline)
		stress_op(sf, &seed, limited ? 0 : -1);
	_exit(0);
}

static void stress_creator(struct stress_files *sf, const char *parent,
			   long deadline, int id, long *left_behind)
{
	unsigned int seed = getpid() ^ (id << 8);
	char name[64], *cg;
	int n = 0, j, status;
	pid_t pid;
	long v;

	while (now_ms() < deadline) {
		snprintf(name, sizeof(name), "churn_%d_%d", id, n++);
		cg = cg_join(parent, name);
		if (!cg || cg_create(cg))
			_exit(1);
		if (n % 3 == 0)
			cg_write_long(cg, "memory.max", RH_MB(8));
		pid = fork();
		if (pid == 0) {
			if (cg_enter_current(cg))
				_exit(1);
			for (j = 0; j < 8; j++)
				stress_op(sf, &seed, j < 4 ? 4 : -1);
			_exit(0);
		}
		waitpid(pid, &status, 0);
		/* What this memcg leaves behind when it dies. */
		v = cg_stat(cg, "file");
		if (v > 0)
			__atomic_fetch_add(left_behind, v, __ATOMIC_SEQ_CST);
		if (cg_destroy(cg))
			_exit(2);
		free(cg);
	}
	printf("# stress: creator %d made and removed %d memcgs\n", id, n);
	fflush(stdout);
	_exit(0);
}

/*
 * After the churn: the memory still charged to dead churn memcgs (R0, the
 * parent's file minus the live memcgs') is what the churn left behind and
 * nobody has used since.  live1 now reads every file again and again (a
 * sweep).  At sysctl 1 the sweep must move it: the dead memcgs keep at
 * most tol = max(2 MB, R0 / 10) (filesystem metadata charged to churn
 * memcgs cannot be recharged by reading files), and recharge_pgs_moved
 * grows by at least what left them (minus tol), so the memory was moved,
 * not reclaimed or reparented.  At sysctl 0 the dead memcgs keep
 * >= R0 - tol.  Returns RH_PASS or RH_FAIL (with the reason printed).
 */
/* What the "# observe stress" lines need from case_stress(). */
struct stress_obs {
	struct obs_sampler smp;
	long t_start, t_end;	/* the churn's */
	long sys0;
};

static int stress_sweep(struct stress_files *sf, const char *parent,
			const char *l1, const char *l2, struct stress_obs *ob)
{
	struct residual_probe rp = { parent, "file", { l1, l2, NULL } };
	struct agent ag = { .pid = -1 };
	struct rh_counters before, d;
	long r0, r1, tol, t0 = now_ms(), prev = LONG_MAX, u0, us = -1;
	struct obs_line l;
	int i, pass, ret = RH_FAIL;

	sync();
	r0 = probe_residual(&rp);
	tol = r0 / 10 > RH_MB(2) ? r0 / 10 : RH_MB(2);
	u0 = cg_stat(l1, "file");
	rh_counters_read(&before);
	if (agent_start(&ag, l1))
		return rh_fail("stress sweep: cannot start a reader in %s", l1);
	for (pass = 1;; pass++) {
		long t = obs_now_us();

		for (i = 0; i < sf->nr; i++)
			agent_do(&ag, AG_READ, sf->path[i], 0, sf->len, 0);
		if (pass == 1)
			us = obs_now_us() - t;
		if (!expect)
			break;
		if (rh_poll(probe_residual, &rp, rh_le, tol, 1000, rh_step_ms,
			    &r1))
			break;
		if ((now_ms() - t0 > timeout_ms && r1 >= prev) ||
		    now_ms() - t0 > 4 * timeout_ms)
			break;
		prev = r1;
	}
	agent_stop(&ag);
	/* At 0: give a wrong recharge the negative window to show. */
	if (!expect)
		rh_poll(probe_residual, &rp, rh_le, r0 - tol - 1, settle_ms,
			rh_step_ms, NULL);
	r1 = probe_residual(&rp);
	/*
	 * The sweep's observe line: r0 is what the churn left outside the
	 * live memcgs, user what live1 gained of it, the dying series spans
	 * the churn and the sweep (t from the churn's start, churn_ms its
	 * length), t_nodying_ms counts from the churn's end.
	 */
	obs_begin(&l, "stress", "sweep");
	obs_long(&l, "sysctl", sysctl);
	obs_kv(&l, "stat", "file");
	obs_long(&l, "removed", r0);
	obs_long(&l, "user", cg_stat(l1, "file") - u0);
	obs_split_kv(&l, r1, cg_nr_dying(parent), 0);
	obs_long(&l, "gone", r0 - (cg_stat(l1, "file") - u0) - r1);
	obs_long(&l, "dying_base", 0);
	obs_long(&l, "dying_end", cg_nr_dying(parent));
	obs_long(&l, "t_nodying_ms",
		 obs_nodying_ms(&ob->smp, parent, ob->t_end, 0));
	obs_long(&l, "window_ms", now_ms() - ob->t_end);
	obs_long(&l, "churn_ms", ob->t_end - ob->t_start);
	obs_long(&l, "passes", pass);
	obs_oom_kv(&l, parent, ob->sys0);
	obs_access_kv(&l, "read", (long)sf->nr * sf->len, us);
	obs_counters_kv(&l, &before);
	obs_sampler_stop(&ob->smp);
	obs_series_kv(&l, &ob->smp, ob->t_start);
	obs_end(&l);
	rh_counters_diag("stress sweep", &before, &d);
	ktap_diag("stress: sweep by live1 (%d pass(es), %ld ms): dead churn memcgs hold %ld -> %ld KB (tolerance %ld KB)",
		  pass, now_ms() - t0, r0 >> 10, r1 >> 10, tol >> 10);
	if (d.present && d.scanned < d.moved + d.cancelled) {
		ret = rh_fail("stress sweep: scanned +%ld < moved +%ld + cancelled +%ld",
			      d.scanned, d.moved, d.cancelled);
	} else if (expect && r1 > tol) {
		ret = rh_fail("stress: after the sweep %ld KB stay with dead memcgs (of %ld KB left behind by the churn)",
			      r1 >> 10, r0 >> 10);
	} else if (expect && d.present &&
		   d.moved * RH_PAGE < r0 - r1 - tol) {
		ret = rh_fail("stress: %ld KB left the dead memcgs in the sweep, but recharge_pgs_moved grew by only %ld KB",
			      (r0 - r1) >> 10, d.moved * RH_PAGE >> 10);
	} else if (!expect && !observing && r1 < r0 - tol) {
		ret = rh_fail("stress: recharging is off, yet the sweep took %ld KB from dead memcgs",
			      (r0 - r1) >> 10);
	} else {
		ret = RH_PASS;
	}
	return ret;
}

/*
 * Churn for --stress-seconds: 3 creators make memcgs whose short-lived
 * tasks punch and rewrite ranges of shared files (tmpfs, and ext4 if
 * present) and do random I/O, then remove them; live1 uses the files
 * every way, live2 (memory.max 16 MB) only reads.  Asserts:
 * - no worker failed, no OOM kill in live2;
 * - scanned >= moved + cancelled, over the run and in total;
 * - at 1, moved > 0 during the churn, and the sweep (stress_sweep())
 *   moves what the churn left behind; at 0 the counters do not move and
 *   the sweep moves nothing;
 * - every removed memcg is freed once the files are gone (drain_dying(),
 *   and the runner's leak check).
 * The memory each churn memcg held when it died is summed and printed
 * ("left behind"); it is not compared with moved during the churn,
 * because later churn legitimately frees much of it by punching holes.
 */
int case_stress(void)
{
	char *parent = mkparent("stress"), *l1 = NULL, *l2 = NULL;
	struct stress_files sf = { .nr = 0, .len = RH_MB(4) };
	struct rh_counters before, d, abs;
	pid_t pids[8];
	int nr = 0, i, status, bad = 0, ret = RH_FAIL;
	long deadline, v, max_dying = 0, t0, *left_behind;
	struct stress_obs ob = { .smp = { .pid = -1 } };
	struct obs_line l;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	left_behind = mmap(NULL, sizeof(long), PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (left_behind == MAP_FAILED)
		return rh_fail("mmap: %s", strerror(errno));
	*left_behind = 0;
	l1 = parent ? mkchild(parent, "live1") : NULL;
	l2 = parent ? mkchild(parent, "live2") : NULL;
	if (!l1 || !l2 || cg_write_long(l2, "memory.max", RH_MB(16)))
		goto out;
	for (i = 0; i < STRESS_FILES; i++) {
		snprintf(sf.path[sf.nr], PATH_MAX, "%s/rh_stress_%d_%d",
			 shmem_dir, getpid(), i);
		fill_file(sf.path[sf.nr++], sf.len, false);
		if (!have_scratch)
			continue;
		snprintf(sf.path[sf.nr], PATH_MAX, "%s/rh_stress_%d_%d",
			 SCRATCH_DIR, getpid(), i);
		fill_file(sf.path[sf.nr++], sf.len, true);
	}
	ktap_diag("stress: %d s, %d files of %ld MB (%s), 3 memcg creators, 2 users (one limited to 16 MB)",
		  stress_seconds, sf.nr, mbf(sf.len),
		  have_scratch ? "tmpfs + ext4" : "tmpfs");
	rh_counters_read(&before);
	ob.sys0 = obs_oom_kill_sys();
	ob.t_start = now_ms();
	if (obs_sampler_start(&ob.smp, parent, 500))
		ktap_diag("stress: cannot start the dying-count sampler");
	deadline = now_ms() + stress_seconds * 1000L;
	fflush(stdout);
	for (i = 0; i < 3; i++) {
		pids[nr] = fork();
		if (pids[nr] == 0)
			stress_creator(&sf, parent, deadline, i,
				       left_behind);
		nr++;
	}
	for (i = 0; i < 2; i++) {
		pids[nr] = fork();
		if (pids[nr] == 0) {
			if (cg_enter_current(i ? l2 : l1))
				_exit(1);
			stress_user(&sf, deadline, i, i == 1);
		}
		nr++;
	}
	while (now_ms() < deadline) {
		v = cg_nr_dying(parent);
		if (v > max_dying)
			max_dying = v;
		sleep_ms(500);
	}
	for (i = 0; i < nr; i++) {
		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			bad++;
	}
	ob.t_end = now_ms();
	/*
	 * The churn's observe line: removed is what the churn memcgs held
	 * when they died (their file stat just before rmdir), user and
	 * the split are not measured here (the sweep's line has them).
	 */
	obs_begin(&l, "stress", "churn");
	obs_long(&l, "sysctl", sysctl);
	obs_kv(&l, "stat", "file");
	obs_long(&l, "removed", *left_behind);
	obs_long(&l, "dying_max", max_dying);
	obs_long(&l, "dying_end", cg_nr_dying(parent));
	obs_long(&l, "churn_ms", ob.t_end - ob.t_start);
	obs_oom_kv(&l, parent, ob.sys0);
	obs_long(&l, "oom_limited", cg_read_key(l2, "memory.events", "oom"));
	obs_long(&l, "oom_kill_limited",
		 cg_read_key(l2, "memory.events", "oom_kill"));
	obs_counters_kv(&l, &before);
	obs_end(&l);
	rh_counters_diag("stress", &before, &d);
	rh_counters_read(&abs);
	ktap_diag("stress: max nr_dying_descendants seen %ld; live2 memory.events oom=%ld oom_kill=%ld",
		  max_dying, cg_read_key(l2, "memory.events", "oom"),
		  cg_read_key(l2, "memory.events", "oom_kill"));
	ktap_diag("stress: the churn memcgs left %ld KB behind when they died, %ld KB were recharged during the churn",
		  *left_behind >> 10, d.present ? d.moved * RH_PAGE >> 10 : -1);
	if (bad) {
		ret = rh_fail("%d stress workers failed", bad);
		goto out;
	}
	if (d.present) {
		if (abs.scanned < abs.moved + abs.cancelled ||
		    d.scanned < d.moved + d.cancelled) {
			ret = rh_fail("counter invariant scanned >= moved + cancelled broken (totals %ld/%ld/%ld)",
				      abs.scanned, abs.moved, abs.cancelled);
			goto out;
		}
		if (expect && d.moved <= 0) {
			ret = rh_fail("nothing was recharged during the stress run");
			goto out;
		}
		if (!expect && (d.scanned || d.moved || d.cancelled)) {
			ret = rh_fail("recharging is off, yet the counters moved");
			goto out;
		}
	}
	if (cg_read_key(l2, "memory.events", "oom_kill") > 0) {
		ret = rh_fail("OOM kills in the limited memcg");
		goto out;
	}
	if (stress_sweep(&sf, parent, l1, l2, &ob) != RH_PASS)
		goto out;
	/* Leak check (see drain_dying()). */
	for (i = 0; i < sf.nr; i++)
		unlink(sf.path[i]);
	t0 = now_ms();
	if (!drain_dying("stress", parent, zombie_timeout_ms, &v) &&
	    (expect || cg_stat(parent, "file") + cg_stat(parent, "anon") <= 0)) {
		/*
		 * With recharging off, pages reclaim cannot free (filesystem
		 * metadata awaiting a journal checkpoint) legitimately pin a
		 * dead memcg: the same rule as the runner's leak check.
		 */
		ret = rh_fail("%ld dying memcgs remain after the files were removed and their memory reclaimed (memory.current %ld KB, file %ld KB, anon %ld KB, slab %ld KB)",
			      v, cg_read_long(parent, "memory.current") >> 10,
			      cg_stat(parent, "file") >> 10,
			      cg_stat(parent, "anon") >> 10,
			      cg_stat(parent, "slab") >> 10);
		goto out;
	}
	ktap_diag("stress: after %ld ms, %ld dying memcgs left (file %ld KB)",
		  now_ms() - t0, v, cg_stat(parent, "file") >> 10);
	ret = RH_PASS;
out:
	obs_sampler_free(&ob.smp);
	munmap(left_behind, sizeof(long));
	for (i = 0; i < sf.nr; i++)
		unlink(sf.path[i]);
	cg_destroy_free(&l1);
	cg_destroy_free(&l2);
	cg_destroy_free(&parent);
	return ret;
}
