// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: zombie_shmem, zombie_file: many dead memcgs whose files a live memcg keeps using
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common.h"

/* ------------------------------------------------------ zombie reduction */

/*
 * nr_zombies memcgs each write a file (--zombie-mb) that one live memcg
 * keeps mapped, then are removed.  At sysctl 1:
 *
 * - the dying count falls back to its baseline (the zombies are freed);
 * - the memory went to the live memcg: its @key stat grew by the
 *   zombies' total (dead0, measured before the removal) within
 *   tol = max(1 MB, dead0 / 20), and the dead memcgs keep <= tol.  This
 *   catches a kernel that frees the zombies some other way than by
 *   recharging to the user: reparenting their pages to the parent (the
 *   dying count falls, but the pages stay in the parent, not in the live
 *   memcg), dropping or reclaiming them, or charging a wrong memcg;
 * - nothing is lost before that: the zombies held >= 90% of the total
 *   they wrote (else the case tests nothing).
 *
 * At sysctl 0 the dying count does not fall for settle_ms (at least 5 s),
 * the dead memcgs keep >= 90% and the live memcg's @key does not grow by
 * more than tol.  In both, once the files are deleted, every zombie goes.
 *
 * Without the sysctl (observing) nothing is asserted but that last point:
 * the dying count is watched for the same window, then a "# observe" line
 * says where the zombies' memory went (user, parent, still dead).
 */
/*
 * The "# observe" line of a zombie case: where the zombies' memory is now
 * (see observe.h, obs_split_kv()), the dying count over time since the
 * removal (t0), OOM events, the counters since @before and the throughput
 * of the live memcg's map pass (before the removal: the move is the
 * offline worker's, not an access's).
 */
struct zombie_obs {
	const char *name, *key, *parent, *live;
	long dead0, live0, base, dying0, t0, sys0, map_bytes, map_us;
	struct obs_sampler smp;
	struct rh_counters before;
};

static void zombie_observe(struct zombie_obs *o)
{
	struct residual_probe rp = { o->parent, o->key, { o->live, NULL } };
	long r = probe_residual(&rp), user = cg_stat(o->live, o->key) - o->live0;
	long dying = cg_nr_dying(o->parent);
	struct obs_line l;

	obs_begin(&l, o->name, NULL);
	obs_long(&l, "sysctl", sysctl);
	obs_kv(&l, "stat", "%s", o->key);
	obs_long(&l, "removed", o->dead0);
	obs_long(&l, "user", user);
	obs_split_kv(&l, r, dying, o->base);
	obs_long(&l, "gone", o->dead0 - user - r);
	obs_long(&l, "dying_base", o->base);
	obs_long(&l, "dying_start", o->dying0);
	obs_long(&l, "dying_end", dying);
	obs_long(&l, "t_nodying_ms",
		 obs_nodying_ms(&o->smp, o->parent, o->t0, o->base));
	obs_long(&l, "window_ms", now_ms() - o->t0);
	obs_oom_kv(&l, o->parent, o->sys0);
	obs_access_kv(&l, "map_before", o->map_bytes, o->map_us);
	obs_counters_kv(&l, &o->before);
	obs_sampler_stop(&o->smp);
	obs_series_kv(&l, &o->smp, o->t0);
	obs_end(&l);
}

static int zombie_case(bool blockfs)
{
	const char *dir = blockfs ? SCRATCH_DIR : shmem_dir;
	const char *key = blockfs ? "file" : "shmem";
	char *parent = NULL, *live = NULL, **z = NULL, path[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct residual_probe rp;
	struct rh_counters before;
	long base, dying0, dead0, dead1, v, t0, t_clear = -1, slot;
	long live0, live1, tol, total = nr_zombies * zombie_size;
	int i, ret = RH_FAIL;
	struct zombie_obs ob = {
		.name = blockfs ? "zombie_file" : "zombie_shmem",
		.key = key, .sys0 = obs_oom_kill_sys(), .smp = { .pid = -1 },
	};

	if (blockfs && !have_scratch)
		return rh_skip("no block filesystem at %s (run guest-setup.sh)",
			       SCRATCH_DIR);
	if (!dir[0])
		return rh_skip("no tmpfs for shmem");

	z = calloc(nr_zombies, sizeof(*z));
	parent = mkparent(blockfs ? "zombie_file" : "zombie_shmem");
	live = parent ? mkchild(parent, "live") : NULL;
	if (!z || !live)
		goto out;
	base = cg_nr_dying(parent);

	for (i = 0; i < nr_zombies; i++) {
		char name[32];

		snprintf(name, sizeof(name), "z%d", i);
		z[i] = mkchild(parent, name);
		snprintf(path, sizeof(path), "%s/rh_zombie_%d_%d", dir,
			 getpid(), i);
		if (!z[i] || populate(z[i], path, zombie_size, blockfs,
				      false)) {
			ret = rh_fail("populating %s from %s", path, z[i]);
			goto out;
		}
	}

	/* The live memcg keeps using every file. */
	if (agent_start(&ag, live))
		goto out;
	ob.map_us = obs_now_us();
	for (i = 0; i < nr_zombies; i++) {
		snprintf(path, sizeof(path), "%s/rh_zombie_%d_%d", dir,
			 getpid(), i);
		slot = agent_do(&ag, AG_MAP, path, 0, zombie_size,
				AGF_POPULATE);
		if (slot < 0) {
			ret = rh_fail("mapping %s: %s", path, strerror(-slot));
			goto out;
		}
	}
	ob.map_us = obs_now_us() - ob.map_us;
	ob.map_bytes = total;

	rp.parent = parent;
	rp.key = key;
	rp.live[0] = live;
	rp.live[1] = NULL;
	dead0 = probe_residual(&rp);
	live0 = cg_stat(live, key);
	tol = dead0 / 20 > RH_MB(1) ? dead0 / 20 : RH_MB(1);
	if (dead0 < total * 9 / 10 || live0 < 0) {
		ret = rh_fail("precondition: the zombies-to-be hold %ld KB of %s, expected >= 90%% of %ld KB (live %s=%ld)",
			      dead0 >> 10, key, total >> 10, key, live0);
		goto out;
	}
	rh_counters_read(&before);
	for (i = 0; i < nr_zombies; i++) {
		if (cg_rmdir(z[i])) {
			ret = rh_fail("rmdir %s: %s", z[i], strerror(errno));
			goto out;
		}
	}
	t0 = now_ms();
	dying0 = cg_nr_dying(parent);
	ob.parent = parent;
	ob.live = live;
	ob.dead0 = dead0;
	ob.live0 = live0;
	ob.base = base;
	ob.dying0 = dying0;
	ob.t0 = t0;
	ob.before = before;
	if (obs_sampler_start(&ob.smp, parent, 100))
		ktap_diag("zombies: cannot start the dying-count sampler");
	ktap_diag("zombies: %d memcgs x %ld MB of %s, baseline nr_dying_descendants=%ld",
		  nr_zombies, mbf(zombie_size), key, base);
	ktap_diag("zombies: before: nr_dying_descendants=%ld, memory in removed memcgs=%ld MB",
		  dying0, mbf(dead0));

	if (observing) {
		/*
		 * No sysctl: whatever the kernel does at offline (reparent,
		 * keep) shows within the control window; watch the dying
		 * count until it is back to base or the window ends.
		 */
		long window = settle_ms > 5000 ? settle_ms : 5000;

		rh_poll(probe_dying, parent, rh_le, base, window, rh_step_ms,
			&v);
		dead1 = probe_residual(&rp);
		live1 = cg_stat(live, key);
		ktap_diag("zombies: observed: after %ld ms nr_dying_descendants=%ld, parent and dead memcgs hold %ld KB of %s, live %s %ld -> %ld KB",
			  now_ms() - t0, v, dead1 >> 10, key, key, live0 >> 10,
			  live1 >> 10);
		zombie_observe(&ob);
	} else if (expect) {
		if (rh_poll(probe_dying, parent, rh_le, base, zombie_timeout_ms,
			    rh_step_ms, &v))
			t_clear = now_ms() - t0;
		dead1 = probe_residual(&rp);
		live1 = cg_stat(live, key);
		ktap_diag("zombies: after: nr_dying_descendants=%ld after %ld ms, memory in dead memcgs=%ld KB, live %s %ld -> %ld KB (+%ld KB of the zombies' %ld KB, tolerance %ld KB)",
			  v, now_ms() - t0, dead1 >> 10, key, live0 >> 10,
			  live1 >> 10, (live1 - live0) >> 10, dead0 >> 10,
			  tol >> 10);
		zombie_observe(&ob);
		rh_counters_diag("zombies", &before, NULL);
		if (t_clear < 0) {
			ret = rh_fail("nr_dying_descendants still %ld (baseline %ld) after %ld ms",
				      v, base, now_ms() - t0);
			goto out;
		}
		ktap_diag("zombies: time to clear: %ld ms", t_clear);
		if (live1 - live0 < dead0 - tol) {
			ret = rh_fail("the zombies are gone but the live memcg got only %ld of their %ld KB of %s",
				      (live1 - live0) >> 10, dead0 >> 10, key);
			goto out;
		}
		if (dead1 > tol) {
			ret = rh_fail("the zombies are gone but %ld KB of %s stay outside the live memcg (reparented?)",
				      dead1 >> 10, key);
			goto out;
		}
	} else {
		long window = settle_ms > 5000 ? settle_ms : 5000;

		if (rh_poll(probe_dying, parent, rh_le, dying0 - 1, window,
			    rh_step_ms, &v)) {
			ret = rh_fail("recharging is off, yet nr_dying_descendants fell to %ld",
				      v);
			goto out;
		}
		dead1 = probe_residual(&rp);
		live1 = cg_stat(live, key);
		ktap_diag("zombies: control: after %ld ms nr_dying_descendants=%ld, memory in dead memcgs=%ld MB, live %s %ld -> %ld KB",
			  now_ms() - t0, v, mbf(dead1), key, live0 >> 10,
			  live1 >> 10);
		zombie_observe(&ob);
		rh_counters_diag("zombies", &before, NULL);
		if (v < base + nr_zombies || dead1 < dead0 * 9 / 10) {
			ret = rh_fail("recharging is off, yet the dead memcgs shrank");
			goto out;
		}
		if (live1 - live0 > tol) {
			ret = rh_fail("recharging is off, yet the live memcg's %s grew by %ld KB",
				      key, (live1 - live0) >> 10);
			goto out;
		}
	}

	/* Leak check: once the files are gone, every zombie must go. */
	agent_stop(&ag);
	for (i = 0; i < nr_zombies; i++) {
		snprintf(path, sizeof(path), "%s/rh_zombie_%d_%d", dir,
			 getpid(), i);
		unlink(path);
	}
	t0 = now_ms();
	if (!drain_dying("zombies", parent, zombie_timeout_ms, &v)) {
		ret = rh_fail("after deleting the files and reclaiming, nr_dying_descendants is still %ld (memory.current %ld KB)",
			      v, cg_read_long(parent, "memory.current") >> 10);
		goto out;
	}
	ktap_diag("zombies: after deleting the files, dying count back to %ld in %ld ms",
		  v, now_ms() - t0);
	ret = RH_PASS;
out:
	obs_sampler_free(&ob.smp);
	agent_kill(&ag);
	for (i = 0; z && i < nr_zombies; i++) {
		snprintf(path, sizeof(path), "%s/rh_zombie_%d_%d", dir,
			 getpid(), i);
		unlink(path);
		cg_destroy_free(&z[i]);
	}
	free(z);
	cg_destroy_free(&live);
	cg_destroy_free(&parent);
	return ret;
}

int case_zombie_shmem(void)
{
	return zombie_case(false);
}

int case_zombie_file(void)
{
	return zombie_case(true);
}

/* ------------------------------------------------------- offline_churn */

/* Create and remove an empty memcg under @arg every 20 ms until killed. */
static void churn(const char *parent)
{
	char path[PATH_MAX];
	long i;

	for (i = 0;; i++) {
		snprintf(path, sizeof(path), "%s/churn%ld", parent, i % 4);
		if (!mkdir(path, 0755))
			rmdir(path);
		usleep(20000);
	}
}

/*
 * offline_churn: B maps A's shmem, A is removed while another memcg is
 * created and removed every 20 ms (transient service scopes, CI jobs).
 * Every removal kicks the offline worker; a kick must not postpone a walk
 * already scheduled, or steady churn keeps it from ever running: B must
 * own the file while the churn goes on. At 0 nothing moves.
 */
int case_offline_churn(void)
{
	char *parent = mkparent("offline_churn"), *a = NULL, *b = NULL,
	     path[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct stat_probe sp;
	struct rh_counters before;
	long v, slot, base, t0, window;
	pid_t pid = -1;
	int ret = RH_FAIL;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	snprintf(path, sizeof(path), "%s/rh_churn_%d", shmem_dir, getpid());
	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !b || populate(a, path, size, false, false))
		goto out;
	if (agent_start(&ag, b))
		goto out;
	slot = agent_do(&ag, AG_MAP, path, 0, size, AGF_POPULATE);
	if (slot < 0) {
		ret = rh_fail("mapping %s: %s", path, strerror(-slot));
		goto out;
	}
	/* Long enough for the worker many times over, at this guest's pace. */
	window = settle_ms * 4 < 3000 ? 3000 : settle_ms * 4;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		goto out;
	if (pid == 0) {
		churn(parent);
		_exit(0);
	}
	usleep(200000);
	base = cg_stat(b, "shmem");
	rh_counters_read(&before);
	t0 = now_ms();
	if (cg_rmdir(a)) {
		ret = rh_fail("rmdir A: %s", strerror(errno));
		goto out;
	}
	sp.cg = b;
	sp.key = "shmem";
	rh_poll(probe_stat, &sp, rh_ge, base + size - size / 100, window,
		rh_step_ms, &v);
	ktap_diag("offline_churn: B shmem %ld -> %ld KB within %ld ms of A's removal, a memcg removed every 20 ms meanwhile",
		  base >> 10, v >> 10, now_ms() - t0);
	rh_counters_diag("offline_churn", &before, NULL);
	if (expect && v - base < size - size / 100)
		ret = rh_fail("B got %ld of %ld KB while other memcgs kept going offline: each removal postponed the offline worker",
			      (v - base) >> 10, size >> 10);
	else if (!expect && v - base > size / 10)
		ret = rh_fail("recharging is off, yet B got %ld KB", (v - base) >> 10);
	else
		ret = RH_PASS;
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	agent_kill(&ag);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}
