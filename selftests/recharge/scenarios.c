// SPDX-License-Identifier: GPL-2.0
/*
 * Scenarios for memcg recharging beyond the in-tree selftest.  Each case is
 * one KTAP test.  Every case reads vm.recharge_offline_memcgs first: at 1 it
 * expects recharging, at 0 (or when the kernel has no such sysctl) it
 * asserts the opposite (memory stays with the dead cgroup, the dying count
 * does not fall), so the same binary is its own negative control.  Cases
 * that must write the sysctl SKIP when it is missing.
 *
 * Cases:
 *   zombie_shmem, zombie_file  N memcgs populate files that a live memcg
 *                    keeps mapped, then are removed: nr_dying_descendants
 *                    before/after and time to clear
 *   anon_migrate     anon memory of a task moved from A to B, A removed
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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/cgutil.h"

#define SCRATCH_DIR	"/mnt/rhscratch"
#define SHMEM_DIR	"/run/rhtmp"
#define LRU_GEN		"/sys/kernel/mm/lru_gen/enabled"
#define THP_ENABLED	"/sys/kernel/mm/transparent_hugepage/enabled"

static long size = RH_MB(32);
static int nr_zombies = 50;
static long zombie_size = RH_MB(2);
static long zombie_timeout_ms = 60000;
static int stress_seconds = 60;
static long timeout_ms;
static long settle_ms = 3000;

static int sysctl;		/* value at start, -1 if missing */
static bool expect;		/* recharging expected */
static char shmem_dir[128];	/* tmpfs for shmem cases */
static bool have_scratch;
static bool private_ns;
static int kmsg_fd = -1;
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

/* Mounts a private tmpfs with @opts; returns its path or NULL. */
static const char *private_tmpfs(const char *tag, const char *opts)
{
	char *dir = tmp_mounts[nr_tmp_mounts];

	if (nr_tmp_mounts >= 4 || ensure_private_ns())
		return NULL;
	snprintf(dir, sizeof(tmp_mounts[0]), "/tmp/rh-sc-%s.%d", tag,
		 getpid());
	if ((mkdir(dir, 0700) && errno != EEXIST) ||
	    mount("rhsc", dir, "tmpfs", 0, opts)) {
		rmdir(dir);
		return NULL;
	}
	nr_tmp_mounts++;
	return dir;
}

static void prepare_dirs(void)
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

static char *mkparent(const char *tag)
{
	char name[96], *p;

	snprintf(name, sizeof(name), "rh_sc_%d_%s", getpid(), tag);
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

static char *mkchild(const char *parent, const char *name)
{
	char *c = cg_join(parent, name);

	if (c && cg_create(c)) {
		ktap_diag("cannot create %s: %s", c, strerror(errno));
		free(c);
		return NULL;
	}
	return c;
}

/*
 * Writes @len bytes of @path from a process in @cg, which then exits.  On a
 * block filesystem the blocks are reserved beforehand from outside the
 * cgroup and the data is synced, so the cgroup is charged for clean page
 * cache only.  @keep_dirty: write without syncing (pages stay dirty).
 */
static int populate(const char *cg, const char *path, long len, bool blockfs,
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

struct stat_probe {
	const char *cg;
	const char *key;
};

static long probe_stat(void *ctx)
{
	struct stat_probe *p = ctx;

	return cg_stat(p->cg, p->key);
}

struct residual_probe {
	const char *parent;
	const char *key;
	const char *live[4];	/* NULL-terminated */
};

/* Memory of @key charged to dead descendants of @parent. */
static long probe_residual(void *ctx)
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

static long probe_dying(void *ctx)
{
	return cg_nr_dying(ctx);
}

static long mbf(long bytes)
{
	return bytes >> 20;
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
static bool access_until(struct agent *ag, int op, const char *path,
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
static int check_owner(const char *what, const char *parent,
		       const char *owner, const char *key, long base,
		       long target, long t0)
{
	struct stat_probe sp = { owner, key };
	struct residual_probe rp = { parent, key, { owner, NULL } };
	long v;

	if (expect) {
		if (!rh_poll(probe_stat, &sp, rh_ge, base + target, timeout_ms,
			     rh_step_ms, &v))
			return rh_fail("%s: owner %s=%ld after %ld ms, expected >= %ld",
				       what, key, v, now_ms() - t0,
				       base + target);
		ktap_diag("%s: owner %s +%ld MB after %ld ms", what, key,
			  mbf(v - base), now_ms() - t0);
		if (!rh_poll(probe_residual, &rp, rh_eq, 0, timeout_ms,
			     rh_step_ms, &v))
			return rh_fail("%s: %ld bytes of %s stay with the dead memcg",
				       what, v, key);
		return RH_PASS;
	}
	if (rh_poll(probe_stat, &sp, rh_ge, base + target / 10, settle_ms,
		    rh_step_ms, &v))
		return rh_fail("%s: recharging is off, yet owner %s grew to %ld",
			       what, key, v);
	v = probe_residual(&rp);
	ktap_diag("%s: control: %ld MB of %s stay with the dead memcg, owner has %ld MB",
		  what, mbf(v), key, mbf(cg_stat(owner, key)));
	if (v < target * 9 / 10)
		return rh_fail("%s: recharging is off, yet only %ld bytes of %s stay with the dead memcg",
			       what, v, key);
	return RH_PASS;
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
 */
static bool drain_dying(const char *tag, const char *parent, long timeout_ms_,
			long *left)
{
	long deadline = now_ms() + timeout_ms_;
	int passes = 0;

	for (;;) {
		*left = cg_nr_dying(parent);
		if (*left == 0)
			break;
		if (now_ms() >= deadline)
			return false;
		/* -EAGAIN when less than asked could be reclaimed: expected. */
		cg_write(parent, "memory.reclaim", "1G");
		write_str("/proc/sys/vm/drop_caches", "3");
		passes++;
		sleep_ms(rh_step_ms);
	}
	if (passes)
		ktap_diag("%s: %d reclaim passes over the subtree", tag, passes);
	return true;
}

/* ------------------------------------------------------ zombie reduction */

static int zombie_case(bool blockfs)
{
	const char *dir = blockfs ? SCRATCH_DIR : shmem_dir;
	const char *key = blockfs ? "file" : "shmem";
	char *parent = NULL, *live = NULL, **z = NULL, path[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct residual_probe rp;
	struct rh_counters before;
	long base, dying0, dead0, dead1, v, t0, t_clear = -1, slot;
	int i, ret = RH_FAIL;

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

	rp.parent = parent;
	rp.key = key;
	rp.live[0] = live;
	rp.live[1] = NULL;
	dead0 = probe_residual(&rp);
	rh_counters_read(&before);
	for (i = 0; i < nr_zombies; i++) {
		if (cg_rmdir(z[i])) {
			ret = rh_fail("rmdir %s: %s", z[i], strerror(errno));
			goto out;
		}
	}
	t0 = now_ms();
	dying0 = cg_nr_dying(parent);
	ktap_diag("zombies: %d memcgs x %ld MB of %s, baseline nr_dying_descendants=%ld",
		  nr_zombies, mbf(zombie_size), key, base);
	ktap_diag("zombies: before: nr_dying_descendants=%ld, memory in removed memcgs=%ld MB",
		  dying0, mbf(dead0));

	if (expect) {
		if (rh_poll(probe_dying, parent, rh_le, base, zombie_timeout_ms,
			    rh_step_ms, &v))
			t_clear = now_ms() - t0;
		dead1 = probe_residual(&rp);
		ktap_diag("zombies: after: nr_dying_descendants=%ld after %ld ms, memory in dead memcgs=%ld MB, owner %s=%ld MB",
			  v, now_ms() - t0, mbf(dead1), key,
			  mbf(cg_stat(live, key)));
		rh_counters_diag("zombies", &before, NULL);
		if (t_clear < 0) {
			ret = rh_fail("nr_dying_descendants still %ld (baseline %ld) after %ld ms",
				      v, base, now_ms() - t0);
			goto out;
		}
		ktap_diag("zombies: time to clear: %ld ms", t_clear);
	} else {
		long window = settle_ms > 5000 ? settle_ms : 5000;

		if (rh_poll(probe_dying, parent, rh_le, dying0 - 1, window,
			    rh_step_ms, &v)) {
			ret = rh_fail("recharging is off, yet nr_dying_descendants fell to %ld",
				      v);
			goto out;
		}
		dead1 = probe_residual(&rp);
		ktap_diag("zombies: control: after %ld ms nr_dying_descendants=%ld, memory in dead memcgs=%ld MB",
			  now_ms() - t0, v, mbf(dead1));
		rh_counters_diag("zombies", &before, NULL);
		if (v < base + nr_zombies || dead1 < dead0 * 9 / 10) {
			ret = rh_fail("recharging is off, yet the dead memcgs shrank");
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

static int case_zombie_shmem(void)
{
	return zombie_case(false);
}

static int case_zombie_file(void)
{
	return zombie_case(true);
}

/* --------------------------------------------------------- anon migrate */

static int case_anon_migrate(void)
{
	char *parent = mkparent("anon"), *a = NULL, *b = NULL;
	struct agent ag = { .pid = -1 };
	struct stat_probe sp;
	struct residual_probe rp;
	struct rh_counters before;
	long v, base, t0, slot;
	int ret = RH_FAIL;

	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !b)
		goto out;
	if (agent_start(&ag, a))
		goto out;
	slot = agent_do(&ag, AG_ANON, NULL, 0, size,
			AGF_POPULATE | AGF_NOHUGE);
	if (slot < 0) {
		ret = rh_fail("anon mmap: %s", strerror(-slot));
		goto out;
	}
	sp.cg = a;
	sp.key = "anon";
	if (!rh_poll(probe_stat, &sp, rh_ge, size, timeout_ms, rh_step_ms,
		     &v)) {
		ret = rh_fail("A anon=%ld, expected >= %ld", v, size);
		goto out;
	}
	if (cg_enter(b, ag.pid)) {
		ret = rh_fail("moving the task to B: %s", strerror(errno));
		goto out;
	}
	base = cg_stat(b, "anon");
	ktap_diag("anon: A anon=%ld MB, task moved to B (anon=%ld KB)",
		  mbf(cg_stat(a, "anon")), base >> 10);
	rh_counters_read(&before);
	if (cg_rmdir(a)) {
		ret = rh_fail("rmdir A: %s", strerror(errno));
		goto out;
	}
	t0 = now_ms();
	ret = check_owner("anon", parent, b, "anon", base, size, t0);
	if (ret == RH_FAIL && expect) {
		/* Tell which part was missing. */
		rp.parent = parent;
		rp.key = "anon";
		rp.live[0] = b;
		rp.live[1] = NULL;
		ktap_diag("anon: B anon=%ld, dead A anon=%ld",
			  cg_stat(b, "anon"), probe_residual(&rp));
	}
	rh_counters_diag("anon", &before, NULL);
	if (ret == RH_PASS && agent_do(&ag, AG_TOUCH_READ, NULL, slot, 0, 0))
		ret = rh_fail("the task cannot read its memory any more");
out:
	agent_kill(&ag);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}

/* --------------------------------------------------------- at the limit */

static int limit_case(const char *knob)
{
	char *parent = mkparent(knob + 7), *a = NULL, *b = NULL;
	char path[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct rh_counters before, d;
	struct stat_probe sp;
	long limit = size / 4, oom0, kill0, v, t0, cur, got, dead, slot;
	int ret = RH_FAIL, passes;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	snprintf(path, sizeof(path), "%s/rh_limit_%d", shmem_dir, getpid());
	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !b)
		goto out;
	if (populate(a, path, size, false, false)) {
		ret = rh_fail("populating %s", path);
		goto out;
	}
	if (cg_write_long(b, knob, limit)) {
		ret = rh_fail("setting %s: %s", knob, strerror(errno));
		goto out;
	}
	if (agent_start(&ag, b))
		goto out;
	/* Mapped before offline (offline walk), read after (deferred). */
	slot = agent_do(&ag, AG_MAP, path, 0, size, AGF_POPULATE);
	if (slot < 0) {
		ret = rh_fail("mapping: %s", strerror(-slot));
		goto out;
	}
	oom0 = cg_read_key(b, "memory.events", "oom");
	kill0 = cg_read_key(b, "memory.events", "oom_kill");
	rh_counters_read(&before);
	if (cg_rmdir(a))
		goto out;
	t0 = now_ms();
	/* Three read passes: the deferred path gets its chances too. */
	access_until(&ag, AG_READ, path, 0, size, b, "shmem", size, 3,
		     &passes);

	sp.cg = b;
	sp.key = "shmem";
	if (expect) {
		/* Wait until the owner is full, then for things to settle. */
		rh_poll(probe_stat, &sp, rh_ge, limit - RH_MB(2), timeout_ms,
			rh_step_ms, &v);
		rh_poll(probe_stat, &sp, rh_ge, limit + 1, settle_ms,
			rh_step_ms, &v);
	} else {
		rh_poll(probe_stat, &sp, rh_ge, size / 10, settle_ms,
			rh_step_ms, &v);
	}
	rh_counters_diag(knob, &before, &d);
	cur = cg_read_long(b, "memory.current");
	got = cg_stat(b, "shmem");
	dead = cg_stat(parent, "shmem") - got;
	ktap_diag("%s: %s=%ld MB, owner memory.current=%ld KB shmem=%ld KB, %ld KB stay with the dead memcg (after %ld ms)",
		  knob + 7, knob, mbf(limit), cur >> 10, got >> 10, dead >> 10,
		  now_ms() - t0);
	ktap_diag("%s: owner memory.events: oom %ld->%ld oom_kill %ld->%ld max %ld high %ld",
		  knob + 7, oom0, cg_read_key(b, "memory.events", "oom"), kill0,
		  cg_read_key(b, "memory.events", "oom_kill"),
		  cg_read_key(b, "memory.events", "max"),
		  cg_read_key(b, "memory.events", "high"));

	if (cg_read_key(b, "memory.events", "oom") != oom0 ||
	    cg_read_key(b, "memory.events", "oom_kill") != kill0) {
		ret = rh_fail("recharging into a full memcg triggered the OOM killer");
		goto out;
	}
	if (agent_do(&ag, AG_TOUCH_READ, NULL, slot, 0, 0)) {
		ret = rh_fail("the owner's task is gone");
		goto out;
	}
	if (got > limit) {
		ret = rh_fail("owner shmem %ld exceeds %s %ld", got, knob,
			      limit);
		goto out;
	}
	if (expect) {
		if (d.present && d.cancelled <= 0) {
			ret = rh_fail("no recharge_pgs_cancelled although %ld KB did not fit",
				      dead >> 10);
			goto out;
		}
		if (dead < size - limit) {
			ret = rh_fail("only %ld KB stay with the dead memcg, expected >= %ld KB",
				      dead >> 10, (size - limit) >> 10);
			goto out;
		}
	} else {
		if (got > size / 10 || dead < size * 9 / 10) {
			ret = rh_fail("recharging is off, yet the owner got %ld KB",
				      got >> 10);
			goto out;
		}
		if (d.present && (d.moved || d.cancelled)) {
			ret = rh_fail("recharging is off, yet counters moved");
			goto out;
		}
	}
	ret = RH_PASS;
out:
	agent_kill(&ag);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}

static int case_limit_max(void)
{
	return limit_case("memory.max");
}

static int case_limit_high(void)
{
	return limit_case("memory.high");
}

/*
 * ------------------------------------------------------- two-file shmem
 * A writes f0 and f1 in @dir; B maps f0 before A dies (offline walk) and
 * reads f1 with read(2) after (deferred).  Used by thp_shmem and mglru_*.
 */
static int two_file_case(const char *tag, const char *dir, bool huge)
{
	char *parent = mkparent(tag), *a = NULL, *b = NULL;
	char f0[PATH_MAX], f1[PATH_MAX], buf[4096];
	struct agent ag = { .pid = -1 };
	struct stat_probe sp;
	struct residual_probe rp;
	struct rh_counters before;
	long thp0 = 0, t0, v, slot, pmd;
	int ret = RH_FAIL, passes;

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
			ret = rh_skip("no shmem huge pages were allocated");
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

static int case_thp_shmem(void)
{
	const char *dir = private_tmpfs("huge", "size=1g,huge=always");

	if (!dir)
		return rh_skip("cannot mount tmpfs with huge=always: %s",
			       strerror(errno));
	return two_file_case("thp_shmem", dir, true);
}

/* -------------------------------------------------------------- anon THP */

#define THP_UNDERUSED "/sys/kernel/mm/transparent_hugepage/shrink_underused"

static int case_thp_anon(void)
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

/* ------------------------------------------------------------------ MGLRU */

static int mglru_case(bool on)
{
	char old[64], now[64];
	int ret;

	if (read_str(LRU_GEN, old, sizeof(old)) <= 0)
		return rh_skip("no MGLRU (%s missing; CONFIG_LRU_GEN=n)",
			       LRU_GEN);
	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	old[strcspn(old, "\n")] = 0;
	if (write_str(LRU_GEN, on ? "y" : "n"))
		return rh_fail("cannot write %s: %s", LRU_GEN, strerror(errno));
	read_str(LRU_GEN, now, sizeof(now));
	now[strcspn(now, "\n")] = 0;
	ktap_diag("mglru: %s was %s, now %s", LRU_GEN, old, now);
	if (on ? !strcmp(now, "0x0000") : strcmp(now, "0x0000"))
		ret = rh_fail("MGLRU did not switch %s", on ? "on" : "off");
	else
		ret = two_file_case(on ? "mglru_on" : "mglru_off", shmem_dir,
				    false);
	write_str(LRU_GEN, old);
	return ret;
}

static int case_mglru_on(void)
{
	return mglru_case(true);
}

static int case_mglru_off(void)
{
	return mglru_case(false);
}

/* ------------------------------------------------------------------ mlock */

static int case_mlock(void)
{
	char *parent = mkparent("mlock"), *a = NULL, *b = NULL;
	char path[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct stat_probe sp;
	struct rh_counters before;
	long v, t0, slot;
	int ret = RH_FAIL, passes;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	snprintf(path, sizeof(path), "%s/rh_mlock_%d", shmem_dir, getpid());
	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !b)
		goto out;
	if (populate(a, path, size, false, false))
		goto out;
	if (agent_start(&ag, b))
		goto out;
	slot = agent_do(&ag, AG_MAP, path, 0, size, 0);
	if (slot < 0 || agent_do(&ag, AG_MLOCK, NULL, slot, 0, 0)) {
		ret = rh_fail("mapping/mlocking %s", path);
		goto out;
	}
	ktap_diag("mlock: %ld MB mlocked by B, A unevictable=%ld KB", mbf(size),
		  cg_stat(a, "unevictable") >> 10);
	rh_counters_read(&before);
	if (cg_rmdir(a))
		goto out;
	t0 = now_ms();

	/* Phase 1: only the offline walk had a chance. */
	sp.cg = b;
	sp.key = "shmem";
	rh_poll(probe_stat, &sp, rh_ge, size, settle_ms, rh_step_ms, &v);
	ktap_diag("mlock: phase 1 (offline walk, still mlocked): owner shmem=%ld KB after %ld ms",
		  v >> 10, now_ms() - t0);
	rh_counters_diag("mlock phase 1", &before, NULL);
	if (!expect && v > size / 10) {
		ret = rh_fail("recharging is off, yet the owner got %ld KB", v);
		goto out;
	}

	/* Phase 2: read(2) while still mlocked: the deferred path. */
	t0 = now_ms();
	access_until(&ag, AG_READ, path, 0, size, b, "shmem", size, 3,
		     &passes);
	rh_poll(probe_stat, &sp, rh_ge, size, settle_ms, rh_step_ms, &v);
	ktap_diag("mlock: phase 2 (read(2) x%d, still mlocked): owner shmem=%ld KB after %ld ms",
		  passes, v >> 10, now_ms() - t0);
	rh_counters_diag("mlock phase 2", &before, NULL);
	if (!expect && v > size / 10) {
		ret = rh_fail("recharging is off, yet the owner got %ld KB", v);
		goto out;
	}

	/* Phase 3: munlock, read again: must end up with the owner. */
	if (agent_do(&ag, AG_MUNLOCK, NULL, slot, 0, 0))
		goto out;
	t0 = now_ms();
	access_until(&ag, AG_READ, path, 0, size, b, "shmem", size,
		     expect ? 0 : 1, &passes);
	ktap_diag("mlock: phase 3: %d read pass(es) after munlock", passes);
	ret = check_owner("mlock phase 3 (munlocked, read again)", parent, b,
			  "shmem", 0, size, t0);
	rh_counters_diag("mlock phase 3", &before, NULL);
out:
	agent_kill(&ag);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}

/* --------------------------------------------------------- kernel context */

/*
 * Dead A's pages are dirty; the flusher (a kernel thread) writes them back.
 * Neither root nor the unrelated memcg U may end up with them.
 */
static int case_kernel_writeback(void)
{
	char *parent = NULL, *a = NULL, *u = NULL, f[PATH_MAX], g[PATH_MAX];
	struct residual_probe rp = { 0 };
	struct stat_probe sp;
	struct rh_counters before, d;
	long u0, dead0, dirty, v, t0;
	int ret = RH_FAIL;

	if (!have_scratch)
		return rh_skip("no block filesystem at %s (run guest-setup.sh)",
			       SCRATCH_DIR);
	snprintf(f, sizeof(f), "%s/rh_kwb_%d_f", SCRATCH_DIR, getpid());
	snprintf(g, sizeof(g), "%s/rh_kwb_%d_g", SCRATCH_DIR, getpid());
	parent = mkparent("kernel_writeback");
	a = parent ? mkchild(parent, "A") : NULL;
	u = parent ? mkchild(parent, "U") : NULL;
	if (!a || !u)
		goto out;
	/* U has page cache of its own, A leaves dirty pages behind. */
	if (populate(u, g, size / 4, true, false) ||
	    populate(a, f, size, true, true)) {
		ret = rh_fail("populating files");
		goto out;
	}
	dirty = cg_stat(a, "file_dirty");
	ktap_diag("kernel_writeback: A file=%ld MB file_dirty=%ld MB",
		  mbf(cg_stat(a, "file")), mbf(dirty));
	rp.parent = parent;
	rp.key = "file";
	rp.live[0] = u;
	rh_counters_read(&before);
	if (cg_rmdir(a))
		goto out;
	t0 = now_ms();
	sleep_ms(200);
	u0 = cg_stat(u, "file");
	dead0 = probe_residual(&rp);

	/* sync(2) hands the work to the flusher threads and waits. */
	sync();
	sp.cg = parent;
	sp.key = "file_dirty";
	rh_poll(probe_stat, &sp, rh_le, 0, timeout_ms, rh_step_ms, &v);
	sp.key = "file_writeback";
	rh_poll(probe_stat, &sp, rh_le, 0, timeout_ms, rh_step_ms, NULL);
	ktap_diag("kernel_writeback: written back after %ld ms (parent file_dirty=%ld)",
		  now_ms() - t0, v);

	/* Give a wrong recharge every chance to show. */
	sp.cg = u;
	sp.key = "file";
	rh_poll(probe_stat, &sp, rh_ge, u0 + size / 10, settle_ms, rh_step_ms,
		&v);
	rh_counters_diag("kernel_writeback", &before, &d);
	ktap_diag("kernel_writeback: U file %ld->%ld KB, dead A file %ld->%ld KB",
		  u0 >> 10, v >> 10, dead0 >> 10, probe_residual(&rp) >> 10);
	if (v > u0 + RH_MB(1)) {
		ret = rh_fail("the unrelated memcg U was charged for A's pages");
		goto out;
	}
	if (probe_residual(&rp) < dead0 - RH_MB(1)) {
		ret = rh_fail("A's pages left the dead memcg (to root?)");
		goto out;
	}
	/* recharge_pgs_moved is global: a diagnostic only (printed above). */
	ret = RH_PASS;
out:
	unlink(f);
	unlink(g);
	cg_destroy_free(&a);
	cg_destroy_free(&u);
	cg_destroy_free(&parent);
	return ret;
}

/*
 * A task maps dead A's shmem pages with plain read faults (young PTEs, no
 * folio_mark_accessed()) and exits: the zap at exit sees young PTEs, but an
 * exiting task must not become the owner.
 */
static int case_kernel_exit(void)
{
	char *parent = mkparent("kernel_exit"), *a = NULL, *u = NULL;
	char path[PATH_MAX];
	struct agent ag = { .pid = -1 };
	struct residual_probe rp = { 0 };
	struct stat_probe sp;
	struct rh_counters before;
	long v, slot, wait_ms;
	int ret = RH_FAIL, attempt;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	snprintf(path, sizeof(path), "%s/rh_kexit_%d", shmem_dir, getpid());
	for (attempt = 0, wait_ms = 1000; attempt < 3; attempt++, wait_ms *= 4) {
		cg_destroy_free(&a);
		cg_destroy_free(&u);
		a = parent ? mkchild(parent, "A") : NULL;
		u = parent ? mkchild(parent, "U") : NULL;
		if (!a || !u)
			goto out;
		if (populate(a, path, size, false, false))
			goto out;
		rh_counters_read(&before);
		if (cg_rmdir(a))
			goto out;
		/*
		 * Let the offline worker finish with A (nothing is mapped, so
		 * it has nothing to do) before anyone maps the file: a mapper
		 * present during the walk would legitimately get the pages.
		 */
		sleep_ms(wait_ms);
		if (agent_start(&ag, u))
			goto out;
		slot = agent_do(&ag, AG_MAP, path, 0, size, 0);
		if (slot < 0 || agent_do(&ag, AG_TOUCH_READ, NULL, slot, 0, 0))
			goto out;
		sp.cg = u;
		sp.key = "shmem";
		if (!rh_poll(probe_stat, &sp, rh_ge, size / 10, 1000,
			     rh_step_ms, &v))
			break;
		ktap_diag("kernel_exit: precondition: U got %ld KB while merely mapping (attempt %d); retrying with a longer wait",
			  v >> 10, attempt + 1);
		agent_kill(&ag);
		unlink(path);
	}
	if (attempt == 3) {
		ret = rh_fail("read faults alone recharged the pages");
		goto out;
	}
	/* Exit with the young PTEs still mapped. */
	agent_stop(&ag);
	rh_poll(probe_stat, &sp, rh_ge, size / 10, settle_ms, rh_step_ms, &v);
	rp.parent = parent;
	rp.key = "shmem";
	rp.live[0] = u;
	ktap_diag("kernel_exit: after the exit U shmem=%ld KB, dead A shmem=%ld KB",
		  v >> 10, probe_residual(&rp) >> 10);
	rh_counters_diag("kernel_exit", &before, NULL);
	if (v > size / 10) {
		ret = rh_fail("the exiting task's memcg was charged");
		goto out;
	}
	if (probe_residual(&rp) < size * 9 / 10) {
		ret = rh_fail("the pages left the dead memcg");
		goto out;
	}
	ret = RH_PASS;
out:
	agent_kill(&ag);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&u);
	cg_destroy_free(&parent);
	return ret;
}

/*
 * A task in the root cgroup maps A's shmem before A is removed, and is its
 * only mapper: it is the pages' user, so the offline worker gives them to
 * the root memcg (which is where they would be had it faulted them in),
 * and A can go.  At 0 they stay and A stays dying.
 */
static int case_root_mapper(void)
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
static int case_root_accessor(void)
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

/* ----------------------------------------------------------------- toggle */

static int case_toggle(void)
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
			   long deadline, int id)
{
	unsigned int seed = getpid() ^ (id << 8);
	char name[64], *cg;
	int n = 0, j, status;
	pid_t pid;

	while (now_ms() < deadline) {
		snprintf(name, sizeof(name), "churn_%d_%d", id, n++);
		cg = cg_join(parent, name);
		if (!cg || cg_create(cg))
			_exit(1);
		if (n % 3 == 0)
			cg_write_long(cg, "memory.max", RH_MB(8));
		pid = fork();
		if (pid == 0) {
			if (cg_enter(cg, getpid()))
				_exit(1);
			for (j = 0; j < 8; j++)
				stress_op(sf, &seed, j < 4 ? 4 : -1);
			_exit(0);
		}
		waitpid(pid, &status, 0);
		if (cg_destroy(cg))
			_exit(2);
		free(cg);
	}
	printf("# stress: creator %d made and removed %d memcgs\n", id, n);
	fflush(stdout);
	_exit(0);
}

static int case_stress(void)
{
	char *parent = mkparent("stress"), *l1 = NULL, *l2 = NULL;
	struct stress_files sf = { .nr = 0, .len = RH_MB(4) };
	struct rh_counters before, d, abs;
	pid_t pids[8];
	int nr = 0, i, status, bad = 0, ret = RH_FAIL;
	long deadline, v, max_dying = 0, t0;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
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
	deadline = now_ms() + stress_seconds * 1000L;
	fflush(stdout);
	for (i = 0; i < 3; i++) {
		pids[nr] = fork();
		if (pids[nr] == 0)
			stress_creator(&sf, parent, deadline, i);
		nr++;
	}
	for (i = 0; i < 2; i++) {
		pids[nr] = fork();
		if (pids[nr] == 0) {
			if (cg_enter(i ? l2 : l1, getpid()))
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
	rh_counters_diag("stress", &before, &d);
	rh_counters_read(&abs);
	ktap_diag("stress: max nr_dying_descendants seen %ld; live2 memory.events oom=%ld oom_kill=%ld",
		  max_dying, cg_read_key(l2, "memory.events", "oom"),
		  cg_read_key(l2, "memory.events", "oom_kill"));
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
	/* Leak check (see drain_dying()). */
	for (i = 0; i < sf.nr; i++)
		unlink(sf.path[i]);
	t0 = now_ms();
	if (!drain_dying("stress", parent, zombie_timeout_ms, &v)) {
		ret = rh_fail("%ld dying memcgs remain after the files were removed and their memory reclaimed (memory.current %ld KB, file %ld KB, anon %ld KB, slab %ld KB)",
			      v, cg_read_long(parent, "memory.current") >> 10,
			      cg_stat(parent, "file") >> 10,
			      cg_stat(parent, "anon") >> 10,
			      cg_stat(parent, "slab") >> 10);
		goto out;
	}
	ktap_diag("stress: dying memcgs drained in %ld ms", now_ms() - t0);
	ret = RH_PASS;
out:
	for (i = 0; i < sf.nr; i++)
		unlink(sf.path[i]);
	cg_destroy_free(&l1);
	cg_destroy_free(&l2);
	cg_destroy_free(&parent);
	return ret;
}

/* ------------------------------------------------------------------ main */

static const struct {
	const char *name;
	int (*fn)(void);
} cases[] = {
	{ "zombie_shmem", case_zombie_shmem },
	{ "zombie_file", case_zombie_file },
	{ "anon_migrate", case_anon_migrate },
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
	{ "toggle", case_toggle },
	{ "stress", case_stress },
};

#define NR_CASES ((int)(sizeof(cases) / sizeof(cases[0])))

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
		"  --settle MS           window for things that must not happen (default 3000)\n",
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *only[32];
	int nr_only = 0, i, j, opt, nr_sel = 0, res;
	bool sel[NR_CASES];
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
			settle_ms = atol(optarg);
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (size < RH_MB(4) || nr_zombies < 1 || nr_zombies > 250 ||
	    zombie_size < RH_PAGE || stress_seconds < 1) {
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
	ktap_diag("vm.recharge_offline_memcgs=%d%s: %s", sysctl,
		  sysctl < 0 ? " (missing)" : "",
		  expect ? "expecting recharging" :
			   "control run, expecting no recharging");
	if (cg_setup_root(why, sizeof(why)) == 0) {
		prepare_dirs();
		ktap_diag("shmem dir %s, scratch %s", shmem_dir[0] ? shmem_dir : "(none)",
			  have_scratch ? SCRATCH_DIR : "(none)");
		kmsg_fd = kmsg_open();
		kmsg_scan(kmsg_fd, "before");
	}

	for (i = 0; i < NR_CASES; i++) {
		if (!sel[i])
			continue;
		rh_skip_reason[0] = 0;
		if (why[0]) {
			res = rh_skip("%s", why);
		} else {
			ktap_diag("-- %s", cases[i].name);
			res = cases[i].fn();
			if (kmsg_scan(kmsg_fd, cases[i].name) && res == RH_PASS)
				res = rh_fail("suspicious kernel log messages");
			/* Another case may have changed it: put it back. */
			if (sysctl >= 0 && rh_sysctl_get() != sysctl)
				rh_sysctl_set(sysctl);
		}
		ktap_result(cases[i].name, res, rh_skip_reason);
	}

	for (i = 0; i < nr_tmp_mounts; i++) {
		umount2(tmp_mounts[i], MNT_DETACH);
		rmdir(tmp_mounts[i]);
	}
	return ktap_exit_code();
}
