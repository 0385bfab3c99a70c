// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: options, shared state and helpers (cgroups, files, probes, owner checks)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "common.h"

long size = RH_MB(32);
int nr_zombies = 50;
long zombie_size = RH_MB(2);
long zombie_timeout_ms = 60000;
int stress_seconds = 60;
long timeout_ms;
long settle_ms = 3000;
long settle_floor_ms = 3000;
long leak_timeout_ms = 30000;
char *sc_top;

int sysctl;		/* value at start, -1 if missing */
bool expect;		/* recharging expected */
bool observing;		/* sysctl missing: observe only */
const char *cur_case;
char shmem_dir[128];	/* tmpfs for shmem cases */
bool have_scratch;
static bool private_ns;
static char tmp_mounts[4][128];
static int nr_tmp_mounts;

/* ------------------------------------------------------------- helpers */

static int ensure_private_ns(void)
{
	if (private_ns)
		return 0;
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -1;
	private_ns = true;
	return 0;
}

const char *private_tmpfs(const char *tag, const char *opts)
{
	char *dir = tmp_mounts[nr_tmp_mounts];

	if (nr_tmp_mounts >= 4 || ensure_private_ns())
		return NULL;
	/* In the working directory (the scratch disk when the harness runs it) */
	snprintf(dir, sizeof(tmp_mounts[0]), "rh-sc-%s.%d", tag, getpid());
	if ((mkdir(dir, 0700) && errno != EEXIST) ||
	    mount("rhsc", dir, "tmpfs", 0, opts)) {
		rmdir(dir);
		return NULL;
	}
	nr_tmp_mounts++;
	return dir;
}

void release_tmpfs(void)
{
	int i;

	for (i = 0; i < nr_tmp_mounts; i++) {
		umount2(tmp_mounts[i], MNT_DETACH);
		rmdir(tmp_mounts[i]);
	}
	nr_tmp_mounts = 0;
}

void prepare_dirs(void)
{
	const char *d;

	if (on_fstype(SHMEM_DIR, "tmpfs")) {
		snprintf(shmem_dir, sizeof(shmem_dir), "%s", SHMEM_DIR);
	} else {
		d = private_tmpfs("shmem", "size=1500m,huge=never");
		if (d)
			snprintf(shmem_dir, sizeof(shmem_dir), "%s", d);
	}
	have_scratch = on_fstype(SCRATCH_DIR, "ext4") ||
		       on_fstype(SCRATCH_DIR, "xfs") ||
		       on_fstype(SCRATCH_DIR, "btrfs");
}

char *mkparent(const char *tag)
{
	char name[96], *p;

	if (sc_top) {
		p = cg_join(sc_top, tag);
	} else {
		snprintf(name, sizeof(name), "rh_sc_%d_%s", getpid(), tag);
		p = cg_join(cg_root(), name);
	}
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

char *mkchild(const char *parent, const char *name)
{
	char *c = cg_join(parent, name);

	if (c && cg_create(c)) {
		ktap_diag("cannot create %s: %s", c, strerror(errno));
		free(c);
		return NULL;
	}
	return c;
}

/* See common.h. */
int populate(const char *cg, const char *path, long len, bool blockfs,
		    bool keep_dirty)
{
	struct agent ag;
	long n;

	unlink(path);
	if (blockfs ? fallocate_file(path, len) : fill_file(path, 0, false))
		return -1;
	if (agent_start(&ag, cg))
		return -1;
	n = agent_do(&ag, AG_WRITE, path, 0, len,
		     blockfs && !keep_dirty ? AGF_SYNC : 0);
	agent_stop(&ag);
	return n == len ? 0 : -1;
}

long probe_stat(void *ctx)
{
	struct stat_probe *p = ctx;

	return cg_stat(p->cg, p->key);
}

long probe_residual(void *ctx)
{
	struct residual_probe *p = ctx;
	long v = cg_stat(p->parent, p->key), c;
	int i;

	if (v < 0)
		return LONG_MIN + 1;
	for (i = 0; i < 4 && p->live[i]; i++) {
		c = cg_stat(p->live[i], p->key);
		if (c < 0)
			return LONG_MIN + 1;
		v -= c;
	}
	return v;
}

long probe_dying(void *ctx)
{
	return cg_nr_dying(ctx);
}

/*
 * Has @ag access memory again and again (read(2) of the first @len bytes of
 * @path, or @op on @slot) until @owner's @key reaches @target.  The kernel
 * recharges per access on a best-effort basis (its deferred queue is
 * bounded; what does not fit waits for a later access), so a user that
 * keeps using the memory is what gets it all moved.  A new pass starts
 * when the previous one brought no complete result within a second.
 * @max_passes: 0 for no limit but the deadline.  Returns true if reached.
 */
bool access_until(struct agent *ag, int op, const char *path,
			 long slot, long len, const char *owner,
			 const char *key, long target, int max_passes,
			 int *passes)
{
	struct stat_probe sp = { owner, key };
	long start = now_ms(), v, prev = -1;
	int n;

	for (n = 1;; n++) {
		if (op == AG_READ)
			v = agent_do(ag, AG_READ, path, 0, len, 0) == len ?
			    0 : -EIO;
		else
			v = agent_do(ag, op, NULL, slot, 0, 0);
		if (v < 0)
			break;
		if (rh_poll(probe_stat, &sp, rh_ge, target, 1000, rh_step_ms,
			    &v)) {
			*passes = n;
			return true;
		}
		if (max_passes && n >= max_passes)
			break;
		if ((now_ms() - start > timeout_ms && v <= prev) ||
		    now_ms() - start > 4 * timeout_ms)
			break;
		prev = v;
	}
	*passes = n;
	return false;
}

/*
 * Expect-mode: waits until @owner holds >= @target of @key and nothing of it
 * is left in dead children of @parent.  Control-mode: checks for the settle
 * window that @owner does not grow past @base + @target / 10 and that the
 * dead children keep at least 90% of @target.  @t0: when the old memcg died.
 */
/*
 * Swap charged to dead descendants of @parent: its memory.swap.current
 * minus that of every live child (the owner, and e.g. a streamer beside
 * it), for @key "anon" or "shmem"; 0 for other keys or without swap
 * accounting.
 */
static long dead_swap(const char *parent, const char *key)
{
	char child[PATH_MAX];
	struct dirent *de;
	long p, c;
	DIR *d;

	if (strcmp(key, "anon") && strcmp(key, "shmem"))
		return 0;
	p = cg_read_long(parent, "memory.swap.current");
	d = opendir(parent);
	if (p <= 0 || !d) {
		if (d)
			closedir(d);
		return 0;
	}
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(child, sizeof(child), "%s/%s", parent, de->d_name);
		c = cg_read_long(child, "memory.swap.current");
		if (c > 0)
			p -= c;
	}
	closedir(d);
	return p > 0 ? p : 0;
}

static int check_owner_inner(const char *what, const char *parent,
			     const char *owner, const char *key, long base,
			     long target, long t0)
{
	struct stat_probe sp = { owner, key };
	struct residual_probe rp = { parent, key, { owner, NULL } };
	long v, swapped, slack;

	if (expect) {
		if (!rh_poll(probe_stat, &sp, rh_ge, base + target, timeout_ms,
			     rh_step_ms, &v))
			return rh_fail("%s: owner %s=%ld after %ld ms, expected >= %ld",
				       what, key, v, now_ms() - t0,
				       base + target);
		ktap_diag("%s: owner %s +%ld MB after %ld ms", what, key,
			  mbf(v - base), now_ms() - t0);
		note_recharge_ms(what, now_ms() - t0);
		slack = strcmp(key, "file") ? 0 : FS_METADATA_SLACK;
		if (!rh_poll(probe_residual, &rp, rh_le, slack, timeout_ms,
			     rh_step_ms, &v))
			return rh_fail("%s: %ld bytes of %s stay with the dead memcg",
				       what, v, key);
		if (v > 0)
			ktap_diag("%s: %ld KB of %s (filesystem metadata, up to %ld KB allowed) stay with the dead memcg",
				  what, v >> 10, key, slack >> 10);
		return RH_PASS;
	}
	if (rh_poll(probe_stat, &sp, rh_ge, base + target / 10, settle_ms,
		    rh_step_ms, &v))
		return rh_fail("%s: recharging is off, yet owner %s grew to %ld",
			       what, key, v);
	v = probe_residual(&rp);
	swapped = dead_swap(parent, key);
	ktap_diag("%s: control: %ld MB of %s stay with the dead memcg (+%ld MB of it in swap), owner has %ld MB",
		  what, mbf(v), key, mbf(swapped), mbf(cg_stat(owner, key)));
	/*
	 * Reclaim may swap the dead memcg's anon or shmem out (a parent at
	 * its limit does): the swap stays charged to the dead memcg, so it
	 * stays with it as much as the pages in memory do.
	 */
	if (v + swapped < target * 9 / 10)
		return rh_fail("%s: recharging is off, yet only %ld bytes of %s stay with the dead memcg (+%ld in swap)",
			       what, v, key, swapped);
	return RH_PASS;
}

/*
 * check_owner_inner(), then a "# observe <case> phase=<what>" line on the
 * state it ended with: removed is @target (what the case made the dead
 * memcg hold), user what @owner gained of @key beyond @base, the split of
 * the rest as in obs_split_kv() (the parent is the case's own, so no memcg
 * was dying below it before), window_ms since the removal (@t0).
 */
int check_owner(const char *what, const char *parent, const char *owner,
		const char *key, long base, long target, long t0)
{
	int ret = check_owner_inner(what, parent, owner, key, base, target,
				    t0);
	struct residual_probe rp = { parent, key, { owner, NULL } };
	long r = probe_residual(&rp), user = cg_stat(owner, key) - base;
	long dying = cg_nr_dying(parent);
	struct obs_line l;

	obs_begin(&l, cur_case ? cur_case : "?", what);
	obs_long(&l, "sysctl", sysctl);
	obs_kv(&l, "stat", "%s", key);
	obs_long(&l, "removed", target);
	obs_long(&l, "user", user);
	obs_split_kv(&l, r, dying, 0);
	obs_long(&l, "gone", target - user - r);
	obs_long(&l, "dying_end", dying);
	obs_long(&l, "window_ms", now_ms() - t0);
	obs_oom_kv(&l, parent, -1);
	obs_end(&l);
	return ret;
}

/*
 * Leak checks. Once the test's files are gone, what can still pin a dying
 * memcg is memory charged to it that others keep using whatever the sysctl
 * (file system metadata in the block device's page cache, pages of shared
 * libraries its processes faulted in first), or a leaked reference. Wait up
 * to @timeout_ms for @parent's dying descendants to go, reclaiming the
 * subtree's memory (offline memcgs included) and dropping clean caches
 * between polls: memcgs still dying after that are pinned by a reference,
 * not by memory. Returns true when none is left; *@left: the last count.
 * (The runner does the same after every case over all of the case's
 * cgroups: see leak_check() in main.c.)
 */
bool drain_dying(const char *tag, const char *parent, long timeout_ms_,
		 long *left)
{
	int passes;
	bool ok = cg_drain_dying(parent, 0, timeout_ms_, left, &passes);

	if (ok && passes)
		ktap_diag("%s: %d reclaim passes over the subtree", tag, passes);
	return ok;
}

void note_recharge_ms(const char *what, long ms)
{
	long w = rh_scaled_window(settle_floor_ms, ms, 2, SETTLE_CAP_MS);

	if (w > settle_ms) {
		ktap_diag("%s: a recharge took %ld ms: negative checks now wait %ld ms (was %ld)",
			  what, ms, w, settle_ms);
		settle_ms = w;
	}
}

void thp_compact(void)
{
	write_str("/proc/sys/vm/compact_memory", "1");
}

int thp_none(const char *what, const char *kind, const char *fallback,
	     long fb0)
{
	long fb = rh_vmstat(fallback);

	if (fb0 >= 0 && fb > fb0)
		return rh_skip("no free 2 MB blocks: the kernel tried and fell back to small pages (%s +%ld after compaction)",
			       fallback, fb - fb0);
	return rh_fail("%s: THP is configured but no %s huge page was allocated, and no allocation failed (%s +%ld)",
		       what, kind, fallback, fb0 >= 0 && fb >= 0 ? fb - fb0 : -1);
}

/*
 * ------------------------------------------------------- two-file shmem
 * A writes f0 and f1 in @dir; B maps f0 before A dies (offline walk) and
 * reads f1 with read(2) after (deferred).  Used by thp_shmem and mglru_*.
 */
int two_file_case(const char *tag, const char *dir, bool huge)
{
	char *parent = mkparent(tag), *a = NULL, *b = NULL;
	char f0[PATH_MAX], f1[PATH_MAX], buf[4096];
	struct agent ag = { .pid = -1 };
	struct stat_probe sp;
	struct residual_probe rp;
	struct rh_counters before;
	long thp0 = 0, t0, v, slot, pmd, fb0 = 0;
	int ret = RH_FAIL, passes;

	if (huge) {
		thp_compact();
		fb0 = rh_vmstat("thp_file_fallback");
	}
	snprintf(f0, sizeof(f0), "%s/rh_%s_%d_0", dir, tag, getpid());
	snprintf(f1, sizeof(f1), "%s/rh_%s_%d_1", dir, tag, getpid());
	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !b)
		goto out;
	if (populate(a, f0, size, false, false) ||
	    populate(a, f1, size, false, false)) {
		ret = rh_fail("populating %s", dir);
		goto out;
	}
	sp.cg = a;
	sp.key = "shmem";
	rh_poll(probe_stat, &sp, rh_ge, 2 * size, timeout_ms, rh_step_ms, &v);
	if (huge) {
		thp0 = cg_stat(a, "shmem_thp");
		ktap_diag("%s: A shmem=%ld MB shmem_thp=%ld MB", tag, mbf(v),
			  mbf(thp0));
		if (thp0 <= 0) {
			ret = thp_none(tag, "shmem", "thp_file_fallback", fb0);
			goto out;
		}
	}
	if (agent_start(&ag, b))
		goto out;
	slot = agent_do(&ag, AG_MAP, f0, 0, size, AGF_POPULATE);
	if (slot < 0) {
		ret = rh_fail("mapping %s: %s", f0, strerror(-slot));
		goto out;
	}
	if (huge) {
		char p[64];

		snprintf(p, sizeof(p), "/proc/%d/smaps_rollup", ag.pid);
		pmd = read_str(p, buf, sizeof(buf)) > 0 ?
		      read_key(p, "ShmemPmdMapped:") : -1;
		ktap_diag("%s: owner maps f0 with ShmemPmdMapped=%ld kB", tag,
			  pmd);
	}
	rh_counters_read(&before);
	if (cg_rmdir(a))
		goto out;
	t0 = now_ms();
	if (expect) {
		access_until(&ag, AG_READ, f1, 0, size, b, "shmem", 2 * size,
			     0, &passes);
		ktap_diag("%s: %d read pass(es) of f1", tag, passes);
	} else if (agent_do(&ag, AG_READ, f1, 0, size, 0) != size) {
		ret = rh_fail("reading %s", f1);
		goto out;
	}
	ret = check_owner(tag, parent, b, "shmem", 0, 2 * size, t0);
	if (ret == RH_PASS && huge) {
		rp.parent = parent;
		rp.key = "shmem_thp";
		rp.live[0] = b;
		rp.live[1] = NULL;
		sp.cg = b;
		sp.key = "shmem_thp";
		if (expect) {
			if (!rh_poll(probe_stat, &sp, rh_ge, thp0, timeout_ms,
				     rh_step_ms, &v) ||
			    !rh_poll(probe_residual, &rp, rh_eq, 0, timeout_ms,
				     rh_step_ms, NULL))
				ret = rh_fail("huge pages: owner shmem_thp=%ld of %ld, %ld left in the dead memcg",
					      v, thp0, probe_residual(&rp));
		} else if (probe_residual(&rp) < thp0) {
			ret = rh_fail("recharging is off, yet huge pages left the dead memcg");
		}
		ktap_diag("%s: owner shmem_thp=%ld MB, dead memcg shmem_thp=%ld MB",
			  tag, mbf(cg_stat(b, "shmem_thp")),
			  mbf(probe_residual(&rp)));
	}
	rh_counters_diag(tag, &before, NULL);
out:
	agent_kill(&ag);
	unlink(f0);
	unlink(f1);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}
