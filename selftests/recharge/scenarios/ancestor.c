// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: ancestor_read, ancestor_map, refuse_backoff: moves below a
 * limited common ancestor, and a target that refuses.
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
 * A pod-like parent P with memory.max whose usage sits at its limit: A
 * wrote a file, S holds mlocked anonymous memory, and P's memory.max is
 * set to its usage.  A is removed; its sibling B reads the file
 * (ancestor_read: the deferred path) or has it mapped (ancestor_map: the
 * offline worker).  A move between siblings does not change P's usage, so
 * it must not be refused: B owns the whole file afterwards.  Charging B
 * before uncharging A counts each folio twice at P, which has no room for that.
 *
 * How much room: ancestor_map leaves P none.  ancestor_read puts A's file in
 * 2 MB folios (a tmpfs mounted huge=always) and leaves P 1 MB: B's reader
 * allocates a little as it goes (kernel memory, charged to B), and with no
 * room at all, that made P reclaim and swap some of A's file out -- into P,
 * where nothing moves it (seen on a debug kernel under load) -- while a
 * double charge of 2 MB still finds no room.  Without huge pages it falls
 * back to 4 KB pages and no room.
 */
static int ancestor_case(bool mapped)
{
	const char *tag = mapped ? "ancestor_map" : "ancestor_read";
	char *parent = NULL, *a = NULL, *b = NULL, *s = NULL, path[PATH_MAX];
	struct agent as = { .pid = -1 }, ab = { .pid = -1 };
	struct rh_counters before, d;
	long len = RH_MB(16), slot, cur, t0, room = 0, thp;
	int ret = RH_FAIL, passes = 0, still;
	const char *dir = shmem_dir, *huge = NULL;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	if (!mapped)
		huge = private_tmpfs("anc", "size=64m,huge=always");
	if (huge)
		dir = huge;
	parent = mkparent(tag);
	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	s = parent ? mkchild(parent, "S") : NULL;
	if (!a || !b || !s)
		goto out;
	snprintf(path, sizeof(path), "%s/rh_anc_%d", dir, getpid());
	if (populate(a, path, len, false, false))
		goto out;
	thp = huge ? cg_stat(a, "shmem_thp") : 0;
	if (huge && thp >= len)
		room = RH_MB(1);
	else if (!mapped)
		ktap_diag("%s: %ld KB of A's file in huge pages: 4 KB pages, no room at P",
			  tag, thp >> 10);
	if (agent_start(&as, s))
		goto out;
	slot = agent_do(&as, AG_ANON, NULL, 0, RH_MB(8), 0);
	if (slot < 0 || agent_do(&as, AG_TOUCH_WRITE, NULL, slot, 0, 0) < 0 ||
	    agent_do(&as, AG_MLOCK, NULL, slot, 0, 0) < 0) {
		ret = rh_fail("S could not lock its memory");
		goto out;
	}
	if (agent_start(&ab, b))
		goto out;
	if (mapped && agent_do(&ab, AG_MAP, path, 0, len, AGF_POPULATE) < 0)
		goto out;
	/* Warm B's reader up: its buffers are charged before P is full. */
	if (!mapped && agent_do(&ab, AG_READ, path, 0, RH_PAGE, 0) != RH_PAGE)
		goto out;
	/*
	 * Less room than a folio: a move that charges B before uncharging A
	 * needs P to hold one more folio for a moment, which a limit with
	 * that much room left would allow, one folio at a time.
	 */
	cur = cg_read_long(parent, "memory.current");
	if (cur < 0 || cg_write_long(parent, "memory.max", cur + room)) {
		ret = rh_fail("cannot set the parent's memory.max");
		goto out;
	}
	ktap_diag("%s: P at %ld KB, memory.max %ld KB above; A's file %ld KB, %ld KB of it in huge pages",
		  tag, cur >> 10, room >> 10, len >> 10, thp >> 10);
	if (cg_stat(parent, "shmem") < len) {
		ret = rh_fail("precondition: setting P's limit reclaimed A's file (%ld KB left)",
			      cg_stat(parent, "shmem") >> 10);
		goto out;
	}
	rh_counters_read(&before);
	t0 = now_ms();
	if (cg_rmdir(a))
		goto out;
	/*
	 * A's offline hands its per-CPU charge stock back to P (from work
	 * items, a moment later): room for a move that charges twice, one
	 * folio at a time. Take it away again once P's usage settles, well
	 * before the offline worker's walk (HZ/10 after the rmdir).
	 */
	for (still = 0, cur = -1; still < 3; ) {
		long v = cg_read_long(parent, "memory.current");

		still = v == cur ? still + 1 : 0;
		cur = v;
		if (now_ms() - t0 > 50)
			break;
		sleep_ms(5);
	}
	if (cur < 0 || cg_write_long(parent, "memory.max", cur + room)) {
		ret = rh_fail("cannot set the parent's memory.max again");
		goto out;
	}
	if (!mapped) {
		if (expect) {
			access_until(&ab, AG_READ, path, 0, len, b, "shmem",
				     len, 0, &passes);
			ktap_diag("%s: %d read pass(es)", tag, passes);
		} else if (agent_do(&ab, AG_READ, path, 0, len, 0) != len) {
			goto out;
		}
	}
	ret = check_owner(tag, parent, b, "shmem", 0, len, t0);
	rh_counters_diag(tag, &before, &d);
	ktap_diag("%s: P's memory.current %ld KB, memory.peak %ld KB", tag,
		  cg_read_long(parent, "memory.current") >> 10,
		  cg_read_long(parent, "memory.peak") >> 10);
out:
	agent_kill(&ab);
	agent_kill(&as);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&s);
	cg_destroy_free(&parent);
	return ret;
}

int case_ancestor_read(void)
{
	return ancestor_case(false);
}

int case_ancestor_map(void)
{
	return ancestor_case(true);
}

/* Bound the kernel promises: one queueing per refusing target per second. */
#define REFUSE_BACKOFF_MS	1000
/* About 1,000 reads a second, for two seconds. */
#define REFUSE_WINDOW_MS	2000

struct hammer_arg {
	const char *path;
	const char *cg;
};

/*
 * In B: put B at its limit (memory.high), then read two
 * pages of the file alternately, one read a millisecond, for
 * REFUSE_WINDOW_MS.  Alternating matters: the read path marks a folio
 * accessed only when a read moves on to another folio.
 */
static int hammer(void *p)
{
	struct hammer_arg *ha = p;
	char buf[64];
	long cur, t0;
	int fd, i;

	fd = open(ha->path, O_RDONLY);
	if (fd < 0 || pread(fd, buf, sizeof(buf), 0) < 0 ||
	    pread(fd, buf, sizeof(buf), RH_PAGE) < 0)
		return 1;
	/*
	 * B at its limit: memory.high far below its usage.  A memory.max at
	 * the usage is not enough: the usage falls again as B's per-CPU
	 * charge cache drains or freed objects leave KASAN's quarantine, and
	 * two pages then fit (seen under the debug profile).  The reads
	 * below allocate nothing, so B is not throttled.
	 */
	if (cg_write_long(ha->cg, "memory.high", RH_PAGE))
		return 2;
	cur = cg_read_long(ha->cg, "memory.current");
	if (cur < 0)
		return 2;
	t0 = now_ms();
	for (i = 0; now_ms() - t0 < REFUSE_WINDOW_MS; i++) {
		if (pread(fd, buf, sizeof(buf), (i & 1) * RH_PAGE) < 0)
			return 1;
		usleep(1000);
	}
	/* The exit code carries the elapsed time in 100 ms units. */
	t0 = (now_ms() - t0) / 100;
	return t0 > 250 ? 253 : t0 + 3;
}

/*
 * A's two pages are read about a thousand times a second by B, which is
 * at its limit:
 * every recharge is refused.  The access hook must back off per refusing
 * target instead of queueing (css and folio references, a global lock, a
 * worker run, the dead memcg's move_lock raised) on every access: each
 * folio is queued at most once per backoff period.  At 0 nothing is queued.
 */
int case_refuse_backoff(void)
{
	char *parent = mkparent("refuse_backoff"), *a = NULL, *b = NULL;
	struct rh_counters before, d;
	struct hammer_arg ha;
	long q0, q1, elapsed, bound;
	char path[PATH_MAX];
	int ret = RH_FAIL, rc;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !b)
		goto out;
	snprintf(path, sizeof(path), "%s/rh_refuse_%d", shmem_dir, getpid());
	if (populate(a, path, 2 * RH_PAGE, false, false) || cg_rmdir(a))
		goto out;
	q0 = rh_debugfs("deferred_queued");
	if (q0 < 0) {
		ret = sysctl < 0 ? rh_skip("the kernel has no recharging") :
				   rh_fail("no memcg_recharge/deferred_queued in debugfs");
		goto out;
	}
	rh_counters_read(&before);
	ha.path = path;
	ha.cg = b;
	rc = cg_run(b, hammer, &ha);
	if (rc < 3) {
		ret = rh_fail("reader in B failed (%d)", rc);
		goto out;
	}
	elapsed = (rc - 3) * 100 + 99;	/* upper end of the unit */
	sleep_ms(200);
	q1 = rh_debugfs("deferred_queued");
	rh_counters_diag("refuse_backoff", &before, &d);
	bound = expect ? 2 * (elapsed / REFUSE_BACKOFF_MS + 2) : 0;
	ktap_diag("refuse_backoff: reads for %ld ms queued %ld recharges (bound %ld), cancelled +%ld",
		  elapsed, q1 - q0, bound, d.cancelled);
	if (q1 - q0 > bound) {
		ret = rh_fail("%ld queueings for 2 folios in %ld ms; at most %ld expected",
			      q1 - q0, elapsed, bound);
		goto out;
	}
	if (expect && d.cancelled < 1) {
		ret = rh_fail("B at its limit, yet no recharge was refused: the case proves nothing");
		goto out;
	}
	ret = RH_PASS;
out:
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}
