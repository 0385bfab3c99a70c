// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: one_access: a single read pass by the new owner is enough to
 * move a dead memcg's page cache, and how fast the deferred path moves it
 * next to the offline worker.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* The share of the file the owner must hold after one pass (per mille). */
#define ONE_ACCESS_PERMILLE	990

long one_access_mb[ONE_ACCESS_MAX] = { 32, 256 };
int nr_one_access = 2;

struct one_result {
	long moved;		/* bytes the owner gained */
	long access_ms;		/* the single pass (read, or map + touch) */
	long reread_ms;		/* a second read pass, nothing left to move */
	long move_ms;		/* removal (worker) or pass start (deferred) -> moved */
	long gone_ms;		/* -> the dead memcg freed, -1 if not seen */
};

/*
 * Waits until @owner's @key stops growing (or reaches @len), then for the
 * dead memcgs below @parent to go.  Fills @r; @t0: when the clock starts.
 */
static void one_settle(const char *parent, const char *owner, const char *key,
		       long len, long t0, struct one_result *r)
{
	long v, prev = -1, last_growth = now_ms(), left;

	for (;;) {
		v = cg_stat(owner, key);
		if (v > prev) {
			last_growth = now_ms();
			r->move_ms = last_growth - t0;
		}
		prev = v;
		if (v >= len || now_ms() - last_growth > settle_ms ||
		    now_ms() - t0 > timeout_ms)
			break;
		sleep_ms(rh_step_ms);
	}
	r->moved = prev;
	r->gone_ms = -1;
	if (rh_poll(probe_dying, (void *)parent, rh_eq, 0, timeout_ms,
		    rh_step_ms, &left))
		r->gone_ms = now_ms() - t0;
}

/*
 * A fills @len bytes of a file on @dir and is removed; B then either reads
 * it exactly once (@map false: the deferred path) or has mapped and
 * touched it before the removal (@map true: the offline worker moves it).
 */
static int one_run(const char *tag, bool blockfs, long len, bool map,
		   struct one_result *r)
{
	const char *dir = blockfs ? SCRATCH_DIR : shmem_dir;
	const char *key = blockfs ? "file" : "shmem";
	char *parent = mkparent(tag), *a = NULL, *b = NULL, path[PATH_MAX];
	struct agent ag = { .pid = -1 };
	long t0, slot = -1;
	int ret = RH_FAIL;

	memset(r, 0, sizeof(*r));
	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !b)
		goto out;
	snprintf(path, sizeof(path), "%s/rh_one_%d", dir, getpid());
	if (populate(a, path, len, blockfs, false))
		goto out;
	if (agent_start(&ag, b))
		goto out;
	if (map) {
		slot = agent_do(&ag, AG_MAP, path, 0, len, 0);
		if (slot < 0 || agent_do(&ag, AG_TOUCH_READ, NULL, slot, 0, 0))
			goto out;
	}
	t0 = now_ms();
	if (cg_rmdir(a))
		goto out;
	if (!map) {
		t0 = now_ms();
		if (agent_do(&ag, AG_READ, path, 0, len, 0) != len) {
			ret = rh_fail("%s: B could not read %s", tag, path);
			goto out;
		}
	}
	r->access_ms = map ? 0 : now_ms() - t0;
	/* The mapping stays until the worker is done: it names the owner. */
	one_settle(parent, b, key, len, t0, r);
	if (!map) {
		/* The same read again, with nothing left to move: its own cost. */
		long t1 = now_ms();

		if (agent_do(&ag, AG_READ, path, 0, len, 0) == len)
			r->reread_ms = now_ms() - t1;
	}
	agent_stop(&ag);
	ret = RH_PASS;
out:
	if (ag.pid > 0)
		agent_kill(&ag);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}

static long mib_per_s(long bytes, long ms)
{
	return ms > 0 ? (bytes >> 10) * 1000 / 1024 / ms : -1;
}

/*
 * For tmpfs and ext4 and each --one-access-mb size: A's file, A removed,
 * B reads it once.  At 1, B must hold >= 99 % of it after that pass alone
 * (nothing reads it again); at 0, nothing may move.  At 1 the largest size
 * is also moved by the offline worker (B mapped it before the removal), so
 * that the deferred path's throughput is reported next to the worker's
 * ("# one_access" lines: bytes moved, the time from the start of the pass,
 * or from the removal, until the owner stopped growing, and until the dead
 * memcg was freed).
 */
int case_one_access(void)
{
	bool fss[2] = { false, true };
	struct one_result r, w;
	int f, i, ret = RH_PASS;
	char tag[64];

	for (f = 0; f < 2; f++) {
		const char *fs = fss[f] ? "ext4" : "tmpfs";

		if (fss[f] ? !have_scratch : !shmem_dir[0]) {
			ktap_diag("one_access: no %s here, not measured", fs);
			continue;
		}
		for (i = 0; i < nr_one_access; i++) {
			long len = RH_MB(one_access_mb[i]), need;

			/* The control needs only the smallest size. */
			if (!expect && i > 0)
				break;
			snprintf(tag, sizeof(tag), "one_access_%s_%ld", fs,
				 one_access_mb[i]);
			if (one_run(tag, fss[f], len, false, &r))
				return RH_FAIL;
			ktap_diag("one_access %s %ld MiB read: pass %ld ms, moved %ld KiB (%ld.%ld %%) in %ld ms = %ld MiB/s, %ld MiB/s without the read's own cost (a second pass: %ld ms), dead memcg gone after %ld ms",
				  fs, one_access_mb[i], r.access_ms,
				  r.moved >> 10, r.moved * 100 / len,
				  r.moved * 1000 / len % 10, r.move_ms,
				  mib_per_s(r.moved, r.move_ms),
				  mib_per_s(r.moved, r.move_ms - r.reread_ms),
				  r.reread_ms, r.gone_ms);
			if (!expect) {
				if (r.moved > len / 10)
					ret = rh_fail("one_access %s: recharging is off, yet B gained %ld KiB",
						      fs, r.moved >> 10);
				continue;
			}
			need = len / 1000 * ONE_ACCESS_PERMILLE;
			if (r.moved < need)
				ret = rh_fail("one_access %s %ld MiB: one read pass moved %ld KiB of %ld KiB (need 99 %%)",
					      fs, one_access_mb[i], r.moved >> 10,
					      len >> 10);
			/*
			 * At 32 MiB or less the queue never overflows: the
			 * pass must move all of the file. A tmpfs file has no
			 * filesystem metadata either: then nothing may pin the
			 * dead memcg, which must go without any reclaim.
			 */
			else if (one_access_mb[i] <= 32 && r.moved < len)
				ret = rh_fail("one_access %s %ld MiB: one read pass left %ld KiB of the file with the dead memcg",
					      fs, one_access_mb[i],
					      (len - r.moved) >> 10);
			else if (!fss[f] && one_access_mb[i] <= 32 &&
				 r.gone_ms < 0)
				ret = rh_fail("one_access %s %ld MiB: all moved, yet the dead memcg is still there %ld ms later, without reclaim",
					      fs, one_access_mb[i], timeout_ms);
			if (i != nr_one_access - 1)
				continue;
			snprintf(tag, sizeof(tag), "one_access_%s_worker", fs);
			if (one_run(tag, fss[f], len, true, &w))
				return RH_FAIL;
			ktap_diag("one_access %s %ld MiB worker: moved %ld KiB in %ld ms = %ld MiB/s, dead memcg gone after %ld ms; deferred/worker throughput %ld %% (%ld %% without the read's own cost)",
				  fs, one_access_mb[i], w.moved >> 10, w.move_ms,
				  mib_per_s(w.moved, w.move_ms), w.gone_ms,
				  mib_per_s(w.moved, w.move_ms) > 0 ?
				  100 * mib_per_s(r.moved, r.move_ms) /
				  mib_per_s(w.moved, w.move_ms) : -1,
				  mib_per_s(w.moved, w.move_ms) > 0 ?
				  100 * mib_per_s(r.moved, r.move_ms - r.reread_ms) /
				  mib_per_s(w.moved, w.move_ms) : -1);
		}
	}
	return ret;
}
