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

int case_stress(void)
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
