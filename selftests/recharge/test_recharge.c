// SPDX-License-Identifier: GPL-2.0
/*
 * Standalone port of the kernel's test_memcg_recharge (patch 8 of the
 * series): memory charged to a removed (offline) memcg is recharged to the
 * memcg of a process that uses it.
 *
 * Two setups (shmem on tmpfs, regular files on a block filesystem) times
 * four scenarios:
 *   mapped_before  the file is mapped by the new owner before the old
 *                  memcg dies: the offline worker recharges mapped folios
 *   mapped_after   mapped with MAP_POPULATE after the memcg died: deferred
 *                  recharge through the GUP touch (folio_mark_accessed)
 *   written_after  overwritten with write(2) after: deferred, dirtying
 *   read_after     read with read(2) after: deferred, folio_mark_accessed
 *
 * Each case: parent P (+memory) with children C1 and C2.  C1 writes the
 * file, so its pages are charged to C1.  C1 is removed.  A process in C2
 * uses the file.  Expected: C2's memory.current and memory.stat key
 * (shmem or file) grow by the file size, and nothing stays behind in the
 * dead C1: P's stat key equals C2's (for regular files, up to 16 pages of
 * filesystem metadata charged to C1 that no process touches may stay; the
 * amount is reported).  The new owner keeps accessing the file until the
 * deadline: recharging on access is best effort per access.
 *
 * SKIPs when vm.recharge_offline_memcgs is 0, unless --control is given:
 * then every case asserts the opposite, the memory stays with the dead
 * cgroup.  When the kernel has no such sysctl (6.12 as released, upstream
 * kernels that reparent a dead memcg's folios to its parent), with or
 * without --control, every case runs, asserts nothing and reports SKIP
 * ("observed only").  At every value each case prints "# observe" lines
 * (format in selftests/README): where child1's memory went.
 *
 * The global counters are checked too: recharge_pgs_moved grows by at
 * least the pages that reached child2 (minus FS_METADATA_SLACK), scanned >=
 * moved + cancelled; in control mode none of them moves.
 *
 * After every case (folded into its result, "# leak:" diagnostics), the
 * leak invariant: every memcg the case removed is freed once the file is
 * deleted and memory reclaimed (cg_leak_check(); the cases' cgroups live
 * below one top cgroup rh_port_<pid>, --leak-timeout).
 *
 * The control mode's window (--settle, a floor) is scaled to the guest's
 * speed: 3 x the time to populate and map the file size in a memfd.  At
 * sysctl 1 the same cases move their first tenth within 0.2-0.5 s of the
 * access (the offline worker batches by HZ/10), so a kernel that ignores
 * the sysctl is seen several times over inside the window.
 *
 * Output is KTAP.  Exit: 0 pass, 1 fail, 4 all skipped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/cgutil.h"
#include "../lib/observe.h"

#define SCRATCH_DIR	RH_SCRATCH_DIR
#define SHMEM_DIR	"/run/rhtmp"

enum scenario { MAPPED_BEFORE, MAPPED_AFTER, WRITTEN_AFTER, READ_AFTER };

static const char * const scenario_names[] = {
	"mapped_before", "mapped_after", "written_after", "read_after",
};

struct setup {
	const char *name;
	const char *key;	/* memory.stat key */
	char dir[256];
	char unavailable[200];	/* non-empty: SKIP reason */
};

static struct setup setups[2] = {
	{ .name = "shmem", .key = "shmem" },
	{ .name = "file", .key = "file" },
};

static long file_size = RH_MB(50);
static bool control_mode, concurrent;
/*
 * The kernel has no vm.recharge_offline_memcgs: each case runs as in
 * control mode but asserts nothing, prints its "# observe" line and
 * reports SKIP (OBS_SKIP_REASON).
 */
static bool observing;
#define OBS_SKIP_REASON "the kernel has no vm.recharge_offline_memcgs; observed only"
static int sysctl_val;
static long timeout_ms;
static long settle_ms = 1500;
static long leak_timeout_ms = 30000;
static char *top;	/* every case's parent lives below it */
static int kmsg_fd = -1;
static char private_tmpfs[128];
/* --concurrent: a case's process between its checks and its leak check */
static int barrier_done = -1, barrier_go = -1;

static void prepare_setups(void)
{
	struct setup *sh = &setups[0], *fl = &setups[1];

	/* shmem: the guest's /run/rhtmp, or a tmpfs of our own. */
	if (on_fstype(SHMEM_DIR, "tmpfs")) {
		snprintf(sh->dir, sizeof(sh->dir), "%s", SHMEM_DIR);
	} else {
		/* in the working directory (the scratch disk under the harness) */
		snprintf(private_tmpfs, sizeof(private_tmpfs),
			 "rh-port-tmpfs.%d", getpid());
		if (unshare(CLONE_NEWNS) ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    (mkdir(private_tmpfs, 0700) && errno != EEXIST) ||
		    mount("rhtmp", private_tmpfs, "tmpfs", 0, "size=1g")) {
			snprintf(sh->unavailable, sizeof(sh->unavailable),
				 "no tmpfs at %s and cannot mount one: %s",
				 SHMEM_DIR, strerror(errno));
			private_tmpfs[0] = 0;
		} else {
			snprintf(sh->dir, sizeof(sh->dir), "%s",
				 private_tmpfs);
		}
	}

	/* Regular files need a block filesystem with a real page cache. */
	snprintf(fl->dir, sizeof(fl->dir), "%s", SCRATCH_DIR);
	if (!on_fstype(SCRATCH_DIR, "ext4") &&
	    !on_fstype(SCRATCH_DIR, "xfs") &&
	    !on_fstype(SCRATCH_DIR, "btrfs"))
		snprintf(fl->unavailable, sizeof(fl->unavailable),
			 "no block filesystem mounted at %s (run selftests/guest-setup.sh)",
			 SCRATCH_DIR);
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
	const char *child;
	const char *key;
};

/* What the dead child still holds: parent's stat minus the live child's. */
static long probe_residual(void *ctx)
{
	struct residual_probe *p = ctx;
	long a = cg_stat(p->parent, p->key), b = cg_stat(p->child, p->key);

	if (a < 0 || b < 0)
		return LONG_MIN + 1;
	return a - b;
}

static long probe_dying(void *ctx)
{
	return cg_nr_dying(ctx);
}

#define PASS_WAIT_MS	1000

/*
 * One access pass of child2 after the offline.  Pass 1 of mapped_after
 * maps the file (MAP_POPULATE touches every page through GUP); later
 * passes touch the mapping again with MADV_POPULATE_READ.
 */
static long do_pass(struct agent *ag, enum scenario sc, const char *path,
		    int pass, long *slot)
{
	long v;

	switch (sc) {
	case MAPPED_BEFORE:
		return 0;
	case MAPPED_AFTER:
		if (pass == 1) {
			*slot = agent_do(ag, AG_MAP, path, 0, file_size,
					 AGF_POPULATE);
			return *slot < 0 ? *slot : 0;
		}
		return agent_do(ag, AG_POPULATE, NULL, *slot, 0, 0);
	case WRITTEN_AFTER:
		/* Clean the pages first so that the write dirties them. */
		v = agent_do(ag, AG_FSYNC, path, 0, 0, 0);
		if (!v)
			v = agent_do(ag, AG_WRITE, path, 0, file_size, 0);
		return v == file_size ? 0 : (v < 0 ? v : -EIO);
	case READ_AFTER:
		v = agent_do(ag, AG_READ, path, 0, file_size, 0);
		return v == file_size ? 0 : (v < 0 ? v : -EIO);
	}
	return -EINVAL;
}

/*
 * The "# observe" line of a case, printed once the new owner's accesses
 * are over (whatever the verdict): where child1's memory is (user: what
 * child2 gained of the key; parent/dead: obs_split_kv() of the parent's
 * key minus child2's), the dying count (child1 is the only memcg that can
 * die below the parent), OOM events, counters since the removal, and the
 * throughput of child2's first access after the removal (for
 * mapped_before, of its map before the removal).
 */
struct case_obs {
	const char *name;
	struct setup *s;
	const char *parent, *c2;
	long removed, user0, t0, sys0;
	const char *access;
	long access_bytes, access_us;
	struct obs_sampler smp;
	struct rh_counters before;
};

static void observe_case(struct case_obs *o)
{
	long p = cg_stat(o->parent, o->s->key), u = cg_stat(o->c2, o->s->key);
	long r = p < 0 || u < 0 ? LONG_MIN + 1 : p - u;
	long dying = cg_nr_dying(o->parent);
	struct obs_line l;

	obs_begin(&l, o->name, NULL);
	obs_long(&l, "sysctl", sysctl_val);
	obs_kv(&l, "stat", "%s", o->s->key);
	obs_long(&l, "removed", o->removed);
	obs_long(&l, "user", u - o->user0);
	obs_split_kv(&l, r, dying, 0);
	obs_long(&l, "gone", o->removed - (u - o->user0) - r);
	obs_long(&l, "dying_base", 0);
	obs_long(&l, "dying_end", dying);
	obs_long(&l, "t_nodying_ms",
		 obs_nodying_ms(&o->smp, o->parent, o->t0, 0));
	obs_long(&l, "window_ms", now_ms() - o->t0);
	obs_oom_kv(&l, o->parent, o->sys0);
	obs_access_kv(&l, o->access, o->access_bytes, o->access_us);
	obs_counters_kv(&l, &o->before);
	obs_sampler_free(&o->smp);
	obs_end(&l);
}

static int run_case(struct setup *s, enum scenario sc, const char *name)
{
	char *parent = NULL, *c1 = NULL, *c2 = NULL, path[PATH_MAX], tag[64];
	struct agent a1 = { .pid = -1 }, a2 = { .pid = -1 };
	bool expect = !control_mode && !observing;
	bool is_file = !strcmp(s->key, "file");

	cg_leak_lenient = !expect;
	struct rh_counters before, d;
	struct stat_probe sp;
	struct residual_probe rp;
	long v, cur, t0 = -1, slot = -1, mb = file_size >> 20, last_pass_val = -1;
	int ret = RH_FAIL, passes;
	struct case_obs ob = {
		.name = name, .s = s, .sys0 = obs_oom_kill_sys(),
		.access = scenario_names[sc], .access_bytes = file_size,
		.access_us = -1, .smp = { .pid = -1 },
	};

	if (s->unavailable[0])
		return rh_skip("%s", s->unavailable);

	snprintf(tag, sizeof(tag), "rh_port_%d_%s", getpid(), name);
	parent = cg_join(top, name);
	c1 = cg_join(parent, "child1");
	c2 = cg_join(parent, "child2");
	snprintf(path, sizeof(path), "%s/%s", s->dir, tag);
	if (!parent || !c1 || !c2)
		goto out;
	if (cg_create(parent) || cg_enable_memory(parent) || cg_create(c1) ||
	    cg_create(c2)) {
		ret = rh_fail("cannot create cgroups under %s: %s", parent,
			      strerror(errno));
		goto out;
	}

	/*
	 * Create the file outside P.  On a block filesystem reserve its
	 * blocks now, so that writing it from C1 needs no allocator metadata
	 * (bitmaps) that would be charged to C1 and stay there.
	 */
	unlink(path);
	if (is_file ? fallocate_file(path, file_size) :
		      fill_file(path, 0, false)) {
		ret = rh_fail("cannot create %s: %s", path, strerror(errno));
		goto out;
	}

	/* Phase 1: C1 writes the file and exits. */
	if (agent_start(&a1, c1)) {
		ret = rh_fail("cannot start a process in %s", c1);
		goto out;
	}
	v = agent_do(&a1, AG_WRITE, path, 0, file_size, is_file ? AGF_SYNC : 0);
	agent_stop(&a1);
	if (v != file_size) {
		ret = rh_fail("writing %s from child1: %ld", path, v);
		goto out;
	}
	sp.cg = c1;
	sp.key = s->key;
	if (!rh_poll(probe_stat, &sp, rh_ge, file_size, timeout_ms,
		     rh_step_ms, &v)) {
		ret = rh_fail("child1 %s=%ld after writing %ld MB, expected >= %ld",
			      s->key, v, mb, file_size);
		goto out;
	}
	cur = cg_read_long(c1, "memory.current");
	if (cur < file_size) {
		ret = rh_fail("child1 memory.current=%ld < %ld", cur, file_size);
		goto out;
	}

	/* The future owner. */
	if (agent_start(&a2, c2)) {
		ret = rh_fail("cannot start a process in %s", c2);
		goto out;
	}
	if (sc == MAPPED_BEFORE) {
		ob.access = "map_before";
		ob.access_us = obs_now_us();
		slot = agent_do(&a2, AG_MAP, path, 0, file_size, AGF_POPULATE);
		ob.access_us = obs_now_us() - ob.access_us;
		if (slot < 0) {
			ret = rh_fail("mapping %s: %s", path, strerror(-slot));
			goto out;
		}
	}

	/* Using memory charged to a live memcg charges nothing to C2. */
	v = cg_stat(c2, s->key);
	cur = cg_read_long(c2, "memory.current");
	if (v != 0 || cur > RH_MB(2)) {
		ret = rh_fail("before offline child2 has %s=%ld memory.current=%ld (expected 0 and <= 2 MB)",
			      s->key, v, cur);
		goto out;
	}

	/* Offline C1. */
	ob.removed = cg_stat(c1, s->key);
	ob.user0 = v;
	ob.parent = parent;
	ob.c2 = c2;
	rh_counters_read(&before);
	if (cg_rmdir(c1)) {
		ret = rh_fail("rmdir %s: %s", c1, strerror(errno));
		goto out;
	}
	t0 = now_ms();
	ob.t0 = t0;
	ob.before = before;
	if (obs_sampler_start(&ob.smp, parent, 100))
		ktap_diag("%s: cannot start the dying-count sampler", name);

	sp.cg = c2;
	rp.parent = parent;
	rp.child = c2;
	rp.key = s->key;

	/*
	 * The deferred path is best effort per access (a folio whose turn
	 * comes while the kernel's bounded queue is busy waits for the next
	 * access), so the new owner keeps using the file: one pass, then
	 * another whenever a pass brought no complete result within its wait.
	 * The offline walk (mapped_before) needs no further access.
	 */
	for (passes = 1;; passes++) {
		long us = obs_now_us();

		v = do_pass(&a2, sc, path, passes, &slot);
		if (passes == 1 && sc != MAPPED_BEFORE)
			ob.access_us = obs_now_us() - us;
		if (v < 0) {
			ret = rh_fail("%s by child2 failed (pass %d): %s",
				      scenario_names[sc], passes, strerror(-v));
			goto out;
		}
		if (!expect)
			break;
		if (rh_poll(probe_stat, &sp, rh_ge, file_size, PASS_WAIT_MS,
			    rh_step_ms, &v))
			break;
		if ((now_ms() - t0 > timeout_ms &&
		     (sc == MAPPED_BEFORE || v <= last_pass_val)) ||
		    now_ms() - t0 > 4 * timeout_ms) {
			ret = rh_fail("child2 %s=%ld after %d passes and %ld ms, expected >= %ld",
				      s->key, v, passes, now_ms() - t0,
				      file_size);
			goto diag;
		}
		last_pass_val = v;
	}

	if (expect) {
		ktap_diag("%s: child2 %s reached %ld MB after %ld ms, %d access pass(es)",
			  name, s->key, v >> 20, now_ms() - t0, passes);
		cur = cg_read_long(c2, "memory.current");
		if (cur < file_size) {
			ret = rh_fail("child2 memory.current=%ld < %ld", cur,
				      file_size);
			goto diag;
		}
		/*
		 * Nothing may stay behind in the dead child1.  On a block
		 * filesystem child1 may also have been charged for a few
		 * metadata blocks (e.g. an extent tree leaf allocated by its
		 * fsync) that no process ever touches, so they legitimately
		 * stay: allow FS_METADATA_SLACK for those and report them.
		 */
		if (!rh_poll(probe_residual, &rp, is_file ? rh_le : rh_eq,
			     is_file ? FS_METADATA_SLACK : 0, timeout_ms,
			     rh_step_ms, &v)) {
			ret = rh_fail("%ld bytes of %s stay with the dead child1 (parent %ld, child2 %ld)",
				      v, s->key, cg_stat(parent, s->key),
				      cg_stat(c2, s->key));
			goto diag;
		}
		if (v)
			ktap_diag("%s: %ld bytes of %s (filesystem metadata) stay with the dead child1",
				  name, v, s->key);
		/*
		 * The counters: what reached child2 was moved, and every
		 * move was scanned.  Catches moves that are not counted (or
		 * counted as cancelled) and a broken scanned accounting.
		 */
		rh_counters_diag(name, &before, &d);
		if (!d.present) {
			ret = rh_fail("recharge_pgs_* missing from /proc/vmstat");
			goto out;
		}
		if (d.moved * RH_PAGE < file_size - FS_METADATA_SLACK ||
		    d.scanned < d.moved + d.cancelled) {
			ret = rh_fail("counters: moved +%ld pages for %ld recharged, scanned +%ld, cancelled +%ld",
				      d.moved, file_size / RH_PAGE, d.scanned,
				      d.cancelled);
			goto out;
		}
		ret = RH_PASS;
		goto out;
	} else if (observing) {
		/*
		 * No sysctl: nothing to assert.  Give the kernel the control
		 * window to do whatever it does at offline (upstream
		 * reparents to the parent), ending early once child1 is
		 * freed, then report.
		 */
		rh_poll(probe_dying, parent, rh_le, 0, settle_ms, rh_step_ms,
			&v);
		ktap_diag("%s: observed: child2 %s=%ld KB, parent and dead child1 hold %ld KB, nr_dying_descendants=%ld",
			  name, s->key, cg_stat(c2, s->key) >> 10,
			  probe_residual(&rp) >> 10, v);
		ret = RH_PASS;
		goto out;
	} else {
		/* Control: give recharging every chance, then expect none. */
		if (rh_poll(probe_stat, &sp, rh_ge, file_size / 10, settle_ms,
			    rh_step_ms, &v)) {
			ret = rh_fail("recharging is off but child2 %s=%ld", s->key,
				      v);
			goto diag;
		}
		v = probe_residual(&rp);
		if (v < file_size * 9 / 10) {
			ret = rh_fail("recharging is off but only %ld bytes of %s stay with the dead child1",
				      v, s->key);
			goto diag;
		}
		ktap_diag("%s: control: %ld MB of %s stay with the dead child1, child2 %s=%ld, nr_dying_descendants=%ld",
			  name, v >> 20, s->key, s->key, cg_stat(c2, s->key),
			  cg_nr_dying(parent));
		/* Off means off: the kernel did not even try. */
		rh_counters_diag(name, &before, &d);
		if (d.present && (d.scanned || d.moved || d.cancelled)) {
			ret = rh_fail("recharging is off, yet the counters moved");
			goto out;
		}
		ret = RH_PASS;
		goto out;
	}
diag:
	rh_counters_diag(name, &before, NULL);
out:
	if (t0 >= 0)
		observe_case(&ob);
	obs_sampler_free(&ob.smp);
	agent_kill(&a1);
	agent_kill(&a2);
	if (c2)
		cg_destroy(c2);
	if (c1)
		cg_destroy(c1);
	if (parent)
		cg_destroy(parent);
	unlink(path);
	free(parent);
	free(c1);
	free(c2);
	return ret;
}

/*
 * --concurrent: tell the parent that this case's checks are over, and
 * wait until every case's are (run_concurrently()).
 */
static void barrier_wait(void)
{
	char c = 0;

	if (barrier_done < 0)
		return;
	if (write(barrier_done, &c, 1) != 1 || read(barrier_go, &c, 1) != 1)
		ktap_diag("barrier: %s", errno ? strerror(errno) : "closed");
}

/*
 * One case, then the leak invariant, then the kernel log; then the
 * "# observe <case> phase=run" line (the case's checks, leak=0|1, kmsg=N).
 * Observing (no sysctl), the verdict is SKIP whatever they said.
 */
static int run_checked(struct setup *s, enum scenario sc, const char *name)
{
	long baseline = cg_nr_dying(top), t0 = now_ms();
	long sys0 = obs_oom_kill_sys();
	int ret, checks, kmsg;
	struct obs_line l;
	bool leaked;

	cg_rmlog_reset();
	ret = checks = run_case(s, sc, name);
	barrier_wait();
	leaked = !cg_leak_check(name, top, baseline, leak_timeout_ms);
	kmsg = kmsg_scan(kmsg_fd, name);
	if (leaked && !observing)
		ret = rh_fail("leak: memcgs removed by %s stay dying after reclaim",
			      name);
	if (kmsg && ret == RH_PASS && !observing)
		ret = rh_fail("suspicious kernel log messages during the case");
	obs_begin(&l, name, "run");
	obs_long(&l, "sysctl", sysctl_val);
	obs_kv(&l, "checks", "%s", checks == RH_PASS ? "pass" :
		   checks == RH_SKIP ? "skip" : "fail");
	obs_long(&l, "leak", leaked);
	obs_long(&l, "kmsg", kmsg);
	obs_long(&l, "case_ms", now_ms() - t0);
	obs_oom_kv(&l, NULL, sys0);
	obs_end(&l);
	if (observing && ret != RH_SKIP)
		ret = rh_skip(OBS_SKIP_REASON);
	return ret;
}

struct case_result {
	int res;
	char reason[sizeof(rh_skip_reason)];
};

/* In the child of run_concurrently(): case @i below a cgroup of its own. */
static void __attribute__((noreturn))
concurrent_child(int i, const char *name, FILE *out, struct case_result *r)
{
	char sub[96];

	if (dup2(fileno(out), STDOUT_FILENO) < 0)
		_exit(1);
	/* the parent scans the kernel log once, for all */
	kmsg_fd = -1;
	snprintf(sub, sizeof(sub), "job_%s", name);
	top = cg_join(top, sub);
	/* this case's removals only, for its leak report */
	if (cg_rmlog_renew()) {
		r->res = rh_fail("cannot map a removal log: %s",
				 strerror(errno));
	} else if (!top || cg_create(top) || cg_enable_memory(top)) {
		r->res = rh_fail("cannot create %s: %s", top ? top : sub,
				 strerror(errno));
	} else {
		rh_skip_reason[0] = 0;
		r->res = run_checked(&setups[i / 4], i % 4, name);
		snprintf(r->reason, sizeof(r->reason), "%s", rh_skip_reason);
		cg_destroy(top);
	}
	fflush(stdout);
	_exit(0);
}

/*
 * --concurrent, control mode: every selected case at once, each in a
 * child process with a cgroup of its own below top and its output kept
 * in a temporary file, printed in case order. A control case only waits
 * to see that nothing moves, so the windows overlap; what would take a
 * case's memory away during its window, the leak checks' reclaim and
 * cache drops, waits until every case has passed its checks (a
 * barrier). The kernel log is scanned once, at the end: a finding fails
 * every case that passed. Returns false if it could not start (the
 * caller runs the cases one by one).
 */
static bool run_concurrently(const bool *sel, char names[][64])
{
	int done[2], go[2], i, n = 0, got = 0, kmsg;
	struct case_result *r;
	FILE *out[8] = { NULL };
	pid_t pid[8], w;
	char c = 0, buf[4096];
	size_t len;

	r = mmap(NULL, 8 * sizeof(*r), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return false;
	if (pipe(done)) {
		munmap(r, 8 * sizeof(*r));
		return false;
	}
	if (pipe(go)) {
		close(done[0]);
		close(done[1]);
		munmap(r, 8 * sizeof(*r));
		return false;
	}
	fflush(stdout);
	for (i = 0; i < 8; i++) {
		pid[i] = -1;
		if (!sel[i])
			continue;
		r[i].res = RH_FAIL;
		snprintf(r[i].reason, sizeof(r[i].reason), "%s", "");
		out[i] = tmpfile();
		if (out[i])
			pid[i] = fork();
		if (!pid[i]) {
			close(done[0]);
			close(go[1]);
			barrier_go = go[0];
			barrier_done = done[1];
			concurrent_child(i, names[i], out[i], &r[i]);
		}
		if (pid[i] < 0)
			ktap_diag("%s: cannot start its process: %s", names[i],
				  strerror(errno));
		else
			n++;
	}
	close(done[1]);
	close(go[0]);
	/* The barrier: every child passed its checks, or is gone. */
	while (got < n) {
		struct pollfd p = { .fd = done[0], .events = POLLIN };

		if (poll(&p, 1, 200) > 0) {
			if (read(done[0], &c, 1) == 1)
				got++;
			else
				break;	/* every child is gone */
			continue;
		}
		while ((w = waitpid(-1, NULL, WNOHANG)) > 0)
			for (i = 0; i < 8; i++)
				if (pid[i] == w) {
					pid[i] = -1;
					n--;
				}
	}
	for (i = 0; i < got; i++)
		if (write(go[1], &c, 1) != 1)
			break;
	close(go[1]);
	close(done[0]);
	for (i = 0; i < 8; i++)
		if (pid[i] > 0)
			waitpid(pid[i], NULL, 0);
	kmsg = kmsg_scan(kmsg_fd, "concurrent cases");

	for (i = 0; i < 8; i++) {
		if (!sel[i])
			continue;
		if (out[i]) {
			rewind(out[i]);
			while ((len = fread(buf, 1, sizeof(buf), out[i])))
				fwrite(buf, 1, len, stdout);
			fclose(out[i]);
		}
		if (kmsg && r[i].res == RH_PASS)
			r[i].res = rh_fail("suspicious kernel log messages while the cases ran");
		ktap_result(names[i], r[i].res, r[i].reason);
	}
	munmap(r, 8 * sizeof(*r));
	return true;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-l] [-t NAME]... [-s MB] [--timeout MS] [--control [--concurrent]]\n"
		"  -l           list the cases\n"
		"  -t NAME      run only NAME (repeatable)\n"
		"  -s MB        file size per case (default 50)\n"
		"  --timeout MS polling budget per wait (default $RH_TIMEOUT_MS or 20000)\n"
		"  --settle MS  control: least wait for recharging that must not happen (default 1500,\n"
		"               scaled up to the guest's speed)\n"
		"  --leak-timeout MS  after each case, bound for its removed memcgs to be freed (default 30000)\n"
		"  --control    with the sysctl at 0 assert that nothing is recharged\n"
		"               (without the sysctl every case observes and SKIPs, --control or not)\n"
		"  --concurrent with --control: run the cases at once, their leak checks after\n"
		"               all their windows\n",
		prog);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 'T' },
		{ "settle", required_argument, NULL, 'S' },
		{ "control", no_argument, NULL, 'c' },
		{ "concurrent", no_argument, NULL, 'C' },
		{ "leak-timeout", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char names[8][64], why[256];
	const char *only[16];
	int nr_only = 0, i, j, n, opt, sysctl, nr_sel = 0, res;
	bool sel[8];

	timeout_ms = rh_timeout_ms();
	for (i = 0; i < 2; i++)
		for (j = 0; j < 4; j++)
			snprintf(names[i * 4 + j], sizeof(names[0]), "%s_%s",
				 setups[i].name, scenario_names[j]);

	while ((opt = getopt_long(argc, argv, "lt:s:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			for (i = 0; i < 8; i++)
				printf("%s\n", names[i]);
			return 0;
		case 't':
			if (nr_only < 16)
				only[nr_only++] = optarg;
			break;
		case 's':
			file_size = RH_MB(atol(optarg));
			break;
		case 'T':
			timeout_ms = atol(optarg);
			break;
		case 'S':
			settle_ms = atol(optarg);
			break;
		case 'c':
			control_mode = true;
			break;
		case 'C':
			concurrent = true;
			break;
		case 'k':
			leak_timeout_ms = atol(optarg);
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (file_size <= 0) {
		usage(argv[0]);
		return 2;
	}

	for (i = 0; i < 8; i++) {
		sel[i] = !nr_only;
		for (j = 0; j < nr_only; j++)
			if (!strcmp(only[j], names[i]))
				sel[i] = true;
		nr_sel += sel[i];
	}
	if (!nr_sel) {
		fprintf(stderr, "no such case; -l lists them\n");
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	ktap_header(nr_sel);
	sysctl = sysctl_val = rh_sysctl_get();
	observing = sysctl < 0;
	ktap_diag("vm.recharge_offline_memcgs=%d%s, file size %ld MB, %s mode",
		  sysctl, sysctl < 0 ? " (missing)" : "", file_size >> 20,
		  observing ? "observe (verdicts SKIP)" :
		  control_mode ? "control" : "recharge");

	why[0] = 0;
	if (cg_setup_root(why, sizeof(why)) == 0) {
		if (control_mode && sysctl == 1)
			snprintf(why, sizeof(why),
				 "--control needs vm.recharge_offline_memcgs=0 (it is 1)");
		else if (!control_mode && sysctl == 0)
			snprintf(why, sizeof(why),
				 "memcg recharging is disabled (vm.recharge_offline_memcgs=0)");
	}
	if (!why[0] && cg_rmlog_init())
		snprintf(why, sizeof(why), "cannot map the removal log: %s",
			 strerror(errno));
	if (!why[0]) {
		char name[64];

		snprintf(name, sizeof(name), "rh_port_%d", getpid());
		top = cg_join(cg_root(), name);
		if (!top || (cg_destroy(top), cg_create(top)) ||
		    cg_enable_memory(top))
			snprintf(why, sizeof(why), "cannot create %s: %s",
				 top ? top : name, strerror(errno));
	}
	if (!why[0]) {
		long calib;

		prepare_setups();
		kmsg_fd = kmsg_open();
		kmsg_scan(kmsg_fd, "before");
		calib = rh_calibrate_ms(file_size);
		settle_ms = rh_scaled_window(settle_ms, calib, 3, 60000);
		ktap_diag("guest speed: populating and mapping %ld MB took %ld ms: control windows %ld ms",
			  file_size >> 20, calib, settle_ms);
	}

	/* Only control cases can share the guest: they move nothing. */
	if (!why[0] && concurrent && control_mode && !observing &&
	    run_concurrently(sel, names))
		memset(sel, 0, sizeof(sel));
	for (i = 0, n = 0; i < 8; i++) {
		if (!sel[i])
			continue;
		n++;
		rh_skip_reason[0] = 0;
		if (why[0])
			res = rh_skip("%s", why);
		else
			res = run_checked(&setups[i / 4], i % 4, names[i]);
		ktap_result(names[i], res, rh_skip_reason);
	}

	if (top)
		cg_destroy_free(&top);
	if (private_tmpfs[0]) {
		umount2(private_tmpfs, MNT_DETACH);
		rmdir(private_tmpfs);
	}
	return ktap_exit_code();
}
