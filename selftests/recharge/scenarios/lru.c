// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: mglru_on, mglru_off, mlock: LRU flavours and unevictable memory
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

int case_mglru_on(void)
{
	return mglru_case(true);
}

int case_mglru_off(void)
{
	return mglru_case(false);
}

/* ------------------------------------------------------------------ mlock */

int case_mlock(void)
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
	/*
	 * Folios munlocked on a CPU the agent then left stay PG_mlocked in
	 * that CPU's mlock batch until it drains: 6.12's batching, which the
	 * series leaves alone (mlocked folios are never moved).
	 */
	cg_drain_percpu_caches();
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
