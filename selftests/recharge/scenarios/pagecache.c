// SPDX-License-Identifier: GPL-2.0
/*
 * scenarios: truncated_pinned, write_dirty_file, write_dirty_shmem: page
 * cache that leaves the cache while a recharge is pending, and page cache
 * that is rewritten while it is still dirty.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>

#include "common.h"

#define PIPE_BYTES	RH_MB(1)
#define MAX_PIPES	32

struct splice_arg {
	const char *path;
	long len;
};

/*
 * In the new owner's cgroup: splice the whole file into pipes (each splice
 * marks the folios accessed, which queues their recharge), then truncate
 * the file at once while the pipes still hold the folios, so that most
 * pending recharges find folios that have left the page cache.
 */
static int splice_then_truncate(void *p)
{
	struct splice_arg *sa = p;
	int fds[MAX_PIPES][2], n = 0, i, fd;
	loff_t off = 0;
	ssize_t r;

	fd = open(sa->path, O_RDWR);
	if (fd < 0)
		return 1;
	for (i = 0; i < MAX_PIPES && off < sa->len; i++) {
		if (pipe(fds[i]))
			break;
		n++;
		fcntl(fds[i][1], F_SETPIPE_SZ, PIPE_BYTES);
		r = splice(fd, &off, fds[i][1], NULL, PIPE_BYTES,
			   SPLICE_F_NONBLOCK);
		if (r <= 0)
			break;
	}
	if (ftruncate(fd, 0))
		return 1;
	/* The deferred worker meets the truncated, still pinned folios now. */
	sleep_ms(2000);
	for (i = 0; i < n; i++) {
		close(fds[i][0]);
		close(fds[i][1]);
	}
	close(fd);
	return off >= sa->len / 2 ? 0 : 1;
}

/*
 * A's file (tmpfs, then ext4) is spliced into pipes by a task in B and
 * truncated while the pipes pin its folios.  Truncation already took the
 * folios out of A's file/shmem statistics; a recharge that still moved
 * them would leave phantom file/shmem pages in B (and negative ones in A).
 * Once the pipes are closed nothing of the file exists: B's shmem must be
 * 0 and its file no more than the metadata its truncate read
 * (FS_METADATA_SLACK; a phantom file is 16 MB), whatever the sysctl.
 */
int case_truncated_pinned(void)
{
	char *parent = mkparent("truncated_pinned"), *a = NULL, *b = NULL;
	const char *dirs[2] = { shmem_dir, have_scratch ? SCRATCH_DIR : NULL };
	struct rh_counters before, d;
	struct splice_arg sa;
	char path[PATH_MAX];
	long len = RH_MB(16), file, shmem;
	int ret = RH_FAIL, i;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !b)
		goto out;
	rh_counters_read(&before);
	for (i = 0; i < 2; i++) {
		if (!dirs[i])
			continue;
		snprintf(path, sizeof(path), "%s/rh_trunc_%d_%d", dirs[i],
			 getpid(), i);
		if (populate(a, path, len, i == 1, false))
			goto out;
	}
	if (cg_rmdir(a))
		goto out;
	for (i = 0; i < 2; i++) {
		if (!dirs[i])
			continue;
		snprintf(path, sizeof(path), "%s/rh_trunc_%d_%d", dirs[i],
			 getpid(), i);
		sa.path = path;
		sa.len = len;
		if (cg_run(b, splice_then_truncate, &sa)) {
			ret = rh_fail("splicing and truncating %s from B", path);
			goto out;
		}
		unlink(path);
	}
	sleep_ms(500);
	rh_counters_diag("truncated_pinned", &before, &d);
	file = cg_stat(b, "file");
	shmem = cg_stat(b, "shmem");
	ktap_diag("truncated_pinned: B after the pipes closed: file %ld KB, shmem %ld KB, memory.current %ld KB",
		  file >> 10, shmem >> 10, cg_read_long(b, "memory.current") >> 10);
	/*
	 * B's truncate of the ext4 file may read a block bitmap or an extent
	 * block nobody had cached: that is B's own, real, metadata.
	 */
	if (file > (have_scratch ? FS_METADATA_SLACK : 0) || shmem != 0) {
		ret = rh_fail("B keeps phantom page cache statistics (file %ld KB, shmem %ld KB) for folios that had left the page cache",
			      file >> 10, shmem >> 10);
		goto out;
	}
	if (file)
		ktap_diag("truncated_pinned: B's %ld KB of file: filesystem metadata its truncate read (up to %ld KB allowed)",
			  file >> 10, FS_METADATA_SLACK >> 10);
	ret = RH_PASS;
out:
	for (i = 0; i < 2; i++) {
		if (!dirs[i])
			continue;
		snprintf(path, sizeof(path), "%s/rh_trunc_%d_%d", dirs[i],
			 getpid(), i);
		unlink(path);
	}
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}

struct rewrite_arg {
	const char *path;
	long len;
};

/* write(2) the first half, pwrite(2) the second: one pass, every page. */
static int rewrite_once(void *p)
{
	struct rewrite_arg *ra = p;
	static char buf[RH_MB(1) / 4];
	long done = 0, half = ra->len / 2;
	ssize_t n;
	int fd;

	memset(buf, 0x3c, sizeof(buf));
	fd = open(ra->path, O_WRONLY);
	if (fd < 0)
		return 1;
	while (done < half) {
		n = write(fd, buf, sizeof(buf));
		if (n <= 0)
			return 1;
		done += n;
	}
	while (done < ra->len) {
		n = pwrite(fd, buf, sizeof(buf), done);
		if (n <= 0)
			return 1;
		done += n;
	}
	close(fd);
	return 0;
}

struct dirty_knobs {
	char writeback[32], expire[32];
};

/* Keep the flusher away for the case: the pages must still be dirty. */
static void dirty_hold(struct dirty_knobs *k)
{
	read_str("/proc/sys/vm/dirty_writeback_centisecs", k->writeback,
		 sizeof(k->writeback));
	read_str("/proc/sys/vm/dirty_expire_centisecs", k->expire,
		 sizeof(k->expire));
	write_str("/proc/sys/vm/dirty_writeback_centisecs", "0");
	write_str("/proc/sys/vm/dirty_expire_centisecs", "360000");
}

static void dirty_release(struct dirty_knobs *k)
{
	if (k->writeback[0])
		write_str("/proc/sys/vm/dirty_writeback_centisecs", k->writeback);
	if (k->expire[0])
		write_str("/proc/sys/vm/dirty_expire_centisecs", k->expire);
}

/*
 * A writes a file and is removed while the pages are still dirty; B then
 * overwrites every page exactly once (write(2), then pwrite(2)).  Writing
 * to a page that is already dirty dirties nothing new, so a write path
 * that only hooks "page becomes dirty" never sees B: B must own the pages
 * after that single pass (at 1), nothing moves (at 0).
 */
static int write_dirty_case(bool blockfs)
{
	const char *tag = blockfs ? "write_dirty_file" : "write_dirty_shmem";
	const char *dir = blockfs ? SCRATCH_DIR : shmem_dir;
	const char *key = blockfs ? "file" : "shmem";
	char *parent = NULL, *a = NULL, *b = NULL, path[PATH_MAX];
	struct dirty_knobs k = { "", "" };
	struct rh_counters before, d;
	struct rewrite_arg ra;
	long len = RH_MB(8), dirty, t0;
	int ret = RH_FAIL;

	if (blockfs && !have_scratch)
		return rh_skip("no block filesystem at %s", SCRATCH_DIR);
	if (!dir[0])
		return rh_skip("no tmpfs for shmem");
	parent = mkparent(tag);
	a = parent ? mkchild(parent, "A") : NULL;
	b = parent ? mkchild(parent, "B") : NULL;
	if (!a || !b)
		goto out;
	snprintf(path, sizeof(path), "%s/rh_wdirty_%d", dir, getpid());
	dirty_hold(&k);
	if (populate(a, path, len, blockfs, true))
		goto out;
	if (blockfs) {
		/* The precondition: A's pages are dirty when B writes them. */
		dirty = cg_stat(a, "file_dirty");
		ktap_diag("%s: A's file_dirty %ld KB of %ld KB", tag,
			  dirty >> 10, len >> 10);
		if (dirty < len * 9 / 10) {
			ret = rh_fail("precondition: only %ld KB of A's %ld KB are dirty",
				      dirty >> 10, len >> 10);
			goto out;
		}
	}
	rh_counters_read(&before);
	if (cg_rmdir(a))
		goto out;
	ra.path = path;
	ra.len = len;
	t0 = now_ms();
	if (cg_run(b, rewrite_once, &ra)) {
		ret = rh_fail("B could not rewrite %s", path);
		goto out;
	}
	if (blockfs && cg_stat(parent, "file_dirty") < len * 9 / 10)
		ktap_diag("%s: note: the pages were written back meanwhile", tag);
	ret = check_owner(tag, parent, b, key, 0, len, t0);
	rh_counters_diag(tag, &before, &d);
out:
	dirty_release(&k);
	unlink(path);
	cg_destroy_free(&a);
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}

int case_write_dirty_file(void)
{
	return write_dirty_case(true);
}

int case_write_dirty_shmem(void)
{
	return write_dirty_case(false);
}

struct tree_arg {
	const char *dir;
	int nr;
};

/* In A: a directory tree of small files on ext4, written and synced. */
static int make_tree(void *p)
{
	struct tree_arg *ta = p;
	char path[PATH_MAX];
	int i, fd;

	if (mkdir(ta->dir, 0755) && errno != EEXIST)
		return 1;
	for (i = 0; i < ta->nr; i++) {
		snprintf(path, sizeof(path), "%s/d%d", ta->dir, i % 16);
		if (mkdir(path, 0755) && errno != EEXIST)
			return 1;
		snprintf(path, sizeof(path), "%s/d%d/f%d", ta->dir, i % 16, i);
		fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		if (fd < 0 || write(fd, path, strlen(path)) < 0)
			return 1;
		close(fd);
	}
	sync();
	return 0;
}

static void remove_tree(const char *dir, int nr)
{
	char path[PATH_MAX];
	int i;

	for (i = 0; i < nr; i++) {
		snprintf(path, sizeof(path), "%s/d%d/f%d", dir, i % 16, i);
		unlink(path);
	}
	for (i = 0; i < 16; i++) {
		snprintf(path, sizeof(path), "%s/d%d", dir, i);
		rmdir(path);
	}
	rmdir(dir);
}

/*
 * A creates and writes 2,000 small files in 16 directories of its own on
 * ext4, so the filesystem's metadata it touched first (inode tables,
 * bitmaps, directory blocks, in the block device's page cache) is charged
 * to A.  A is removed and the files are deleted from outside: what A
 * still holds then is metadata that no process can own.  At 1 it goes to
 * the parent at offline and A is freed, without the case reclaiming
 * anything; at 0 A stays dying while its metadata stays cached.
 * What is checked at 1 is the move itself (the counters): A may still be
 * pinned by cgroup writeback for a while (see the case), which is
 * reported, not judged.
 */
int case_bdev_metadata(void)
{
	char *parent = NULL, *a = NULL, dir[PATH_MAX];
	struct rh_counters before, d;
	struct tree_arg ta;
	long v, t0, left;
	int ret = RH_FAIL;

	if (!have_scratch)
		return rh_skip("no block filesystem at %s", SCRATCH_DIR);
	parent = mkparent("bdev_metadata");
	a = parent ? mkchild(parent, "A") : NULL;
	if (!a)
		goto out;
	snprintf(dir, sizeof(dir), "%s/rh_meta_%d", SCRATCH_DIR, getpid());
	ta.dir = dir;
	ta.nr = 2000;
	if (cg_run(a, make_tree, &ta)) {
		ret = rh_fail("A could not create its files");
		goto out;
	}
	rh_counters_read(&before);
	remove_tree(dir, ta.nr);
	sync();
	t0 = now_ms();
	if (cg_rmdir(a))
		goto out;
	left = cg_stat(parent, "file");
	ktap_diag("bdev_metadata: after deleting A's files, the subtree keeps %ld KB of page cache",
		  left >> 10);
	if (left <= 0) {
		ret = rh_fail("precondition: no page cache (metadata) charged to A after deleting its files");
		goto out;
	}
	if (expect) {
		struct rh_counters now;

		/*
		 * The metadata moves to P at offline: the moved counter covers
		 * what A held.  Whether A is then freed without reclaim also
		 * depends on cgroup writeback: inodes A dirtied stay attached
		 * to A's writeback structures, which the kernel switches to the
		 * parent only when they are clean at some memcg's offline.
		 */
		t0 = now_ms();
		do {
			sleep_ms(rh_step_ms);
			rh_counters_read(&now);
		} while (now.moved - before.moved < (left / RH_PAGE) * 9 / 10 &&
			 now_ms() - t0 < timeout_ms);
		rh_counters_diag("bdev_metadata", &before, &d);
		if (d.moved < (left / RH_PAGE) * 9 / 10) {
			ret = rh_fail("%ld KB of metadata in A, but only %ld pages moved to the parent at offline",
				      left >> 10, d.moved);
			goto out;
		}
		ktap_diag("bdev_metadata: metadata moved to the parent after %ld ms",
			  now_ms() - t0);
		rh_poll(probe_dying, parent, rh_eq, 0, 2 * settle_ms,
			rh_step_ms, &v);
		ktap_diag("bdev_metadata: %ld memcg(s) still dying %ld ms later (cgroup writeback: see the comment)",
			  v, 2 * settle_ms);
		ret = RH_PASS;
		goto out;
	} else {
		sleep_ms(settle_ms);
		v = cg_nr_dying(parent);
		ktap_diag("bdev_metadata: control: %ld dying after %ld ms", v,
			  now_ms() - t0);
		if (v < 1 && cg_stat(parent, "file") > 0) {
			ret = rh_fail("recharging is off, yet A was freed while its metadata is still charged");
			goto out;
		}
	}
	rh_counters_diag("bdev_metadata", &before, &d);
	ret = RH_PASS;
out:
	remove_tree(dir, 2000);
	cg_destroy_free(&a);
	cg_destroy_free(&parent);
	return ret;
}

#define MANY_SOURCES	24
#define MANY_PAGES	4
#define MANY_SPINNERS	7

struct many_arg {
	char paths[MANY_SOURCES][PATH_MAX];
};

/* Run on @cpu only, SCHED_FIFO: no kworker runs there meanwhile. */
static void fifo_on(int cpu)
{
	struct sched_param sp = { .sched_priority = 1 };
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	sched_setscheduler(0, SCHED_FIFO, &sp);
}

/* Keep @cpu busy for at most 5 s, or until killed. */
static pid_t spin_on(int cpu)
{
	pid_t pid = fork();
	long end;

	if (pid)
		return pid;
	fifo_on(cpu);
	end = now_ms() + 5000;
	while (now_ms() < end)
		;
	_exit(0);
}

/*
 * In B: read each file once, back to back, without sleeping in between,
 * on CPU 0 with SCHED_FIFO while spinners hold the other CPUs: the
 * deferred worker, a normal kworker, runs only once all 24 sources are
 * queued, and finds them in one batch. (With the worker running beside
 * the reader, each batch saw a few sources and never needed the retry.)
 */
static int read_all_once(void *p)
{
	struct many_arg *ma = p;
	static char buf[MANY_PAGES * RH_PAGE];
	int i, fd;

	fifo_on(0);
	for (i = 0; i < MANY_SOURCES; i++) {
		fd = open(ma->paths[i], O_RDONLY);
		if (fd < 0 || read(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			return 1;
		close(fd);
	}
	return 0;
}

/*
 * 24 removed memcgs each leave a small file that B then reads once, back
 * to back.  The deferred worker raises moving_account for at most 16 dead
 * memcgs per batch, so a batch that holds folios of more of them must
 * retry the rest: B owns all 24 files after that single read (at 1), none
 * of them (at 0).  Without the retry the folios of the memcgs beyond the
 * sixteenth stay where they are until they are read again.
 */
int case_many_sources(void)
{
	char *parent = mkparent("many_sources"), *b = NULL, *z[MANY_SOURCES] = { 0 };
	long len = MANY_PAGES * RH_PAGE, t0;
	struct rh_counters before, d;
	static struct many_arg ma;
	pid_t spinners[MANY_SPINNERS] = { 0 };
	char name[16];
	int ret = RH_FAIL, i, rc;
	long nr_cpus;

	if (!shmem_dir[0])
		return rh_skip("no tmpfs for shmem");
	b = parent ? mkchild(parent, "B") : NULL;
	if (!b)
		goto out;
	for (i = 0; i < MANY_SOURCES; i++) {
		snprintf(name, sizeof(name), "z%d", i);
		snprintf(ma.paths[i], PATH_MAX, "%s/rh_many_%d_%d", shmem_dir,
			 getpid(), i);
		z[i] = mkchild(parent, name);
		if (!z[i] || populate(z[i], ma.paths[i], len, false, false))
			goto out;
	}
	for (i = 0; i < MANY_SOURCES; i++)
		if (cg_rmdir(z[i]))
			goto out;
	rh_counters_read(&before);
	nr_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	for (i = 1; i < nr_cpus && i <= MANY_SPINNERS; i++)
		spinners[i - 1] = spin_on(i);
	t0 = now_ms();
	rc = cg_run(b, read_all_once, &ma);
	for (i = 0; i < MANY_SPINNERS; i++) {
		if (spinners[i] > 0) {
			kill(spinners[i], SIGKILL);
			waitpid(spinners[i], NULL, 0);
		}
	}
	if (rc) {
		ret = rh_fail("B could not read the files");
		goto out;
	}
	ret = check_owner("many_sources", parent, b, "shmem", 0,
			  MANY_SOURCES * len, t0);
	rh_counters_diag("many_sources", &before, &d);
out:
	for (i = 0; i < MANY_SOURCES; i++) {
		unlink(ma.paths[i]);
		cg_destroy_free(&z[i]);
	}
	cg_destroy_free(&b);
	cg_destroy_free(&parent);
	return ret;
}
