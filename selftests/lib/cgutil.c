// SPDX-License-Identifier: GPL-2.0
/*
 * Minimal cgroup v2 / KTAP / polling helpers for the recharge selftests.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgutil.h"

/* ---------------------------------------------------------------- KTAP */

static int ktap_nr, ktap_pass, ktap_fail, ktap_skip;
char rh_skip_reason[256];

void ktap_header(int nr_cases)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	printf("1..%d\n", nr_cases);
}

void ktap_result(const char *name, int result, const char *skip_reason)
{
	ktap_nr++;
	switch (result) {
	case RH_PASS:
		ktap_pass++;
		printf("ok %d %s\n", ktap_nr, name);
		break;
	case RH_SKIP:
		ktap_skip++;
		printf("ok %d %s # SKIP %s\n", ktap_nr, name,
		       skip_reason && *skip_reason ? skip_reason : "skipped");
		break;
	default:
		ktap_fail++;
		printf("not ok %d %s\n", ktap_nr, name);
		break;
	}
	fflush(stdout);
}

void ktap_diag(const char *fmt, ...)
{
	char buf[1024], *line, *save = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		printf("# %s\n", line);
	fflush(stdout);
}

int ktap_exit_code(void)
{
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n",
	       ktap_pass, ktap_fail, ktap_skip);
	fflush(stdout);
	if (ktap_fail)
		return 1;
	if (ktap_nr && ktap_skip == ktap_nr)
		return 4;
	return 0;
}

int rh_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rh_skip_reason, sizeof(rh_skip_reason), fmt, ap);
	va_end(ap);
	return RH_SKIP;
}

int rh_fail(const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ktap_diag("FAIL: %s", buf);
	return RH_FAIL;
}

/* ---------------------------------------------------------- plain files */

long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

ssize_t read_str(const char *path, char *buf, size_t len)
{
	ssize_t n, total = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (total < (ssize_t)len - 1) {
		n = read(fd, buf + total, len - 1 - total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += n;
	}
	close(fd);
	buf[total] = 0;
	return total;
}

int write_str(const char *path, const char *str)
{
	ssize_t len = strlen(str), n;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = write(fd, str, len);
	close(fd);
	return n == len ? 0 : -1;
}

long read_long(const char *path)
{
	char buf[64];

	if (read_str(path, buf, sizeof(buf)) <= 0)
		return -1;
	if (!strncmp(buf, "max", 3))
		return LONG_MAX;
	return strtol(buf, NULL, 10);
}

long read_key(const char *path, const char *key)
{
	static char buf[32768];
	size_t klen = strlen(key);
	char *p;

	if (read_str(path, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, key, klen) && p[klen] == ' ')
			return strtol(p + klen + 1, NULL, 10);
	}
	return -1;
}

int rh_sysctl_get(void)
{
	long v = read_long(RH_SYSCTL);

	return v < 0 ? -1 : (int)v;
}

int rh_sysctl_set(int val)
{
	return write_str(RH_SYSCTL, val ? "1" : "0");
}

long rh_vmstat(const char *name)
{
	return read_key("/proc/vmstat", name);
}

/*
 * The kernel counts a folio scanned before it counts it moved or
 * cancelled, but one read of /proc/vmstat is no snapshot: a folio counted
 * between its sums of scanned and of moved shows up in moved only. Read
 * scanned last, from a read of its own: then scanned >= moved + cancelled
 * holds for what is returned whenever it holds in the kernel.
 */
void rh_counters_read(struct rh_counters *c)
{
	c->moved = rh_vmstat("recharge_pgs_moved");
	c->cancelled = rh_vmstat("recharge_pgs_cancelled");
	c->scanned = rh_vmstat("recharge_pgs_scanned");
	c->present = c->scanned >= 0 && c->moved >= 0 && c->cancelled >= 0;
}

void rh_counters_diag(const char *tag, const struct rh_counters *before,
		      struct rh_counters *delta_out)
{
	struct rh_counters now, d = { 0 };

	rh_counters_read(&now);
	d.present = now.present && before->present;
	if (d.present) {
		d.scanned = now.scanned - before->scanned;
		d.moved = now.moved - before->moved;
		d.cancelled = now.cancelled - before->cancelled;
		ktap_diag("%s: recharge_pgs_scanned +%ld moved +%ld cancelled +%ld (pages)",
			  tag, d.scanned, d.moved, d.cancelled);
	} else {
		ktap_diag("%s: recharge_pgs_* counters absent from /proc/vmstat",
			  tag);
	}
	if (delta_out)
		*delta_out = d;
}

/* -------------------------------------------------------------- cgroups */

const char *cg_root(void)
{
	static char root[PATH_MAX];
	char line[4096], dev[256], mnt[PATH_MAX], type[64];
	FILE *f;

	if (root[0])
		return root;
	f = fopen("/proc/self/mounts", "re");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %4095s %63s", dev, mnt, type) != 3)
			continue;
		if (!strcmp(type, "cgroup2")) {
			snprintf(root, sizeof(root), "%s", mnt);
			break;
		}
	}
	fclose(f);
	return root[0] ? root : NULL;
}

char *cg_join(const char *parent, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", parent, name) < 0)
		return NULL;
	return p;
}

int cg_create(const char *cg)
{
	if (mkdir(cg, 0755) && errno != EEXIST)
		return -1;
	return 0;
}

static int cg_path(char *buf, size_t len, const char *cg, const char *file)
{
	int n = snprintf(buf, len, "%s/%s", cg, file);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

long cg_read_long(const char *cg, const char *file)
{
	char path[PATH_MAX];

	if (cg_path(path, sizeof(path), cg, file))
		return -1;
	return read_long(path);
}

long cg_read_key(const char *cg, const char *file, const char *key)
{
	char path[PATH_MAX];

	if (cg_path(path, sizeof(path), cg, file))
		return -1;
	return read_key(path, key);
}

long cg_stat(const char *cg, const char *key)
{
	return cg_read_key(cg, "memory.stat", key);
}

int cg_write(const char *cg, const char *file, const char *val)
{
	char path[PATH_MAX];

	if (cg_path(path, sizeof(path), cg, file))
		return -1;
	return write_str(path, val);
}

int cg_write_long(const char *cg, const char *file, long val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", val);
	return cg_write(cg, file, buf);
}

int cg_enable_memory(const char *cg)
{
	char path[PATH_MAX], buf[512];

	if (cg_path(path, sizeof(path), cg, "cgroup.subtree_control"))
		return -1;
	if (read_str(path, buf, sizeof(buf)) >= 0 && strstr(buf, "memory"))
		return 0;
	return write_str(path, "+memory");
}

int cg_enter(const char *cg, pid_t pid)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d", (int)pid);
	return cg_write(cg, "cgroup.procs", buf);
}

int cg_enter_current(const char *cg)
{
	return cg_write(cg, "cgroup.procs", "0");
}

int cg_read(const char *cg, const char *file, char *buf, size_t len)
{
	char path[PATH_MAX];

	if (cg_path(path, sizeof(path), cg, file))
		return -1;
	return read_str(path, buf, len) < 0 ? -1 : 0;
}

int cg_nr_procs(const char *cg)
{
	char path[PATH_MAX], buf[8192], *p;
	int nr = 0;

	if (cg_path(path, sizeof(path), cg, "cgroup.procs"))
		return -1;
	if (read_str(path, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; *p; p++)
		if (*p == '\n')
			nr++;
	return nr;
}

long cg_nr_dying(const char *cg)
{
	return cg_read_key(cg, "cgroup.stat", "nr_dying_descendants");
}

#define RMLOG_SLOTS	256
#define RMLOG_PATH	160

struct rmlog {
	long count;
	char path[RMLOG_SLOTS][RMLOG_PATH];
};

static struct rmlog *rmlog;

int cg_rmlog_init(void)
{
	void *p;

	if (rmlog)
		return 0;
	p = mmap(NULL, sizeof(*rmlog), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	rmlog = p;
	return 0;
}

/* A log of its own, for a process forked after cg_rmlog_init(). */
int cg_rmlog_renew(void)
{
	rmlog = NULL;
	return cg_rmlog_init();
}

void cg_rmlog_reset(void)
{
	if (rmlog)
		__atomic_store_n(&rmlog->count, 0, __ATOMIC_SEQ_CST);
}

long cg_rmlog_count(void)
{
	return rmlog ? __atomic_load_n(&rmlog->count, __ATOMIC_SEQ_CST) : 0;
}

const char *cg_rmlog_path(long i)
{
	if (!rmlog || i < 0 || i >= cg_rmlog_count() || i >= RMLOG_SLOTS)
		return NULL;
	return rmlog->path[i];
}

static void rmlog_add(const char *cg)
{
	long i;

	if (!rmlog)
		return;
	i = __atomic_fetch_add(&rmlog->count, 1, __ATOMIC_SEQ_CST);
	if (i < RMLOG_SLOTS)
		snprintf(rmlog->path[i], RMLOG_PATH, "%s", cg);
}

int cg_rmdir(const char *cg)
{
	long deadline = now_ms() + 10000;

	while (rmdir(cg)) {
		if (errno == ENOENT)
			return 0;
		if (errno != EBUSY || now_ms() > deadline)
			return -1;
		sleep_ms(20);
	}
	rmlog_add(cg);
	return 0;
}

/*
 * Each CPU caches charges of the last memcg that charged there (memcg_stock
 * for pages, and for kernel objects a byte stock that flushes into it),
 * with a css reference: on an idle CPU of an SMP guest that can be a
 * removed memcg, which then stays dying until that CPU charges for
 * another memcg; so do the swap slots a CPU freed last (drain_swap_slots()).
 * Nothing a test can see holds such a cache: it is memory
 * not yet returned, like what memory.reclaim frees. drain_each_cpu()
 * charges a page and a pipe's kernel memory on every CPU from a cgroup
 * that is never removed (rh_drain below the root), so that every CPU's
 * caches then hold that one.
 */
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif
#define SWAP_DRAIN_PAGES	256

/*
 * Swap entries freed on a CPU wait in its swap slots cache, still charged
 * to the memcg that swapped them out (whose ID they pin), until more than
 * a cache's worth are freed there. Page out and free more than that.
 */
static void drain_swap_slots(void)
{
	long len = SWAP_DRAIN_PAGES * RH_PAGE, i;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	for (i = 0; i < len; i += RH_PAGE)
		p[i] = 1;
	madvise(p, len, MADV_PAGEOUT);
	munmap(p, len);
}

/*
 * munlock() queues each folio in the CPU's mlock batch, which keeps it
 * PG_mlocked until that CPU drains it: munlock(2) drains the batch of the
 * CPU it ends on, so a task that moved between CPUs on its way leaves up
 * to a batch of folios behind on the other, still "mlocked". An
 * mlock()/munlock() on each CPU drains each one (lru_add_drain()).
 */
static void drain_mlock_batch(void)
{
	char *p = mmap(NULL, RH_PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	p[0] = 1;
	if (!mlock(p, RH_PAGE))
		munlock(p, RH_PAGE);
	munmap(p, RH_PAGE);
}

static int drain_each_cpu(void *arg)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN), cpu;
	cpu_set_t one;
	int fds[2], round;
	char *p, c;

	(void)arg;
	for (cpu = 0; cpu < n && cpu < CPU_SETSIZE; cpu++) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			continue;
		/*
		 * Kernel memory first: flushing the old byte stock refills
		 * the page stock with the old objcg's memcg (a removed
		 * memcg's parent, say); the page charged next replaces it.
		 * Twice, as each flush can refill the other.
		 */
		drain_swap_slots();
		drain_mlock_batch();
		for (round = 0; round < 2; round++) {
			if (!pipe(fds)) {
				if (write(fds[1], "x", 1) == 1 &&
				    read(fds[0], &c, 1) != 1)
					c = 0;
				close(fds[0]);
				close(fds[1]);
			}
			p = mmap(NULL, RH_PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p != MAP_FAILED) {
				p[0] = 1;
				munmap(p, RH_PAGE);
			}
		}
	}
	return 0;
}

void cg_drain_percpu_caches(void)
{
	static char path[PATH_MAX];

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	if (!path[0])
		snprintf(path, sizeof(path), "%s/rh_drain", cg_root());
	if (mkdir(path, 0755) && errno != EEXIST)
		return;
	cg_run(path, drain_each_cpu, NULL);
}

/*
 * Metadata blocks of the ext4 scratch disk that are still on the journal's
 * checkpoint list cannot be released, so memory charged to a dead memcg
 * stays until the journal needs the room, which in a test may be never.
 * Freezing the filesystem checkpoints the whole journal; thaw it at once.
 * Only the harness's scratch disk: never a filesystem the host may need.
 */
#define RH_EXT4_MAGIC	0xEF53

void cg_checkpoint_scratch(void)
{
	struct statfs sf;
	struct stat st, parent;
	int fd;

	if (stat(RH_SCRATCH_DIR, &st) || stat(RH_SCRATCH_DIR "/..", &parent) ||
	    st.st_dev == parent.st_dev)
		return;		/* not a mount point */
	if (statfs(RH_SCRATCH_DIR, &sf) || sf.f_type != RH_EXT4_MAGIC)
		return;
	fd = open(RH_SCRATCH_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (!ioctl(fd, FIFREEZE, 0))
		ioctl(fd, FITHAW, 0);
	close(fd);
}

bool cg_drain_dying(const char *top, long baseline, long timeout_ms,
		    long *left, int *passes)
{
	long start = now_ms(), last_change = start, prev = -1, v, t;

	*passes = 0;
	for (;;) {
		v = cg_nr_dying(top);
		*left = v;
		if (v >= 0 && v <= baseline)
			return true;
		t = now_ms();
		if (v != prev) {
			if (prev >= 0)
				last_change = t;
			prev = v;
		}
		if (v < 0 || (t - start >= timeout_ms &&
			      (t - last_change >= 2000 ||
			       t - start >= 4 * timeout_ms)))
			return false;
		/*
		 * Dirty or journalled pages cannot be reclaimed: write them
		 * back first.  memory.reclaim returns -EAGAIN when less than
		 * asked could be reclaimed: expected.
		 */
		sync();
		/* The first pass frees most; journalled metadata needs more */
		if (*passes)
			cg_checkpoint_scratch();
		cg_write(top, "memory.reclaim", "1G");
		write_str("/proc/sys/vm/drop_caches", "3");
		cg_drain_percpu_caches();
		(*passes)++;
		sleep_ms(rh_step_ms);
	}
}

int cg_destroy(const char *cg)
{
	char path[PATH_MAX];
	struct dirent *de;
	long deadline;
	DIR *d;

	if (!cg)
		return 0;
	d = opendir(cg);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", cg, de->d_name);
		cg_destroy(path);
	}
	closedir(d);

	deadline = now_ms() + 10000;
	while (cg_nr_procs(cg) > 0 && now_ms() < deadline) {
		cg_write(cg, "cgroup.kill", "1");
		sleep_ms(20);
	}
	return cg_rmdir(cg);
}

bool cg_leak_lenient;

bool cg_leak_check(const char *name, const char *top, long baseline,
		   long timeout_ms)
{
	char path[PATH_MAX];
	struct dirent *de;
	long left, t0 = now_ms(), n, i;
	int passes;
	DIR *d;

	/* Whatever the case did not remove (it failed half-way, say). */
	d = opendir(top);
	while (d && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", top, de->d_name);
		ktap_diag("leak: %s: removing %s, left behind by the case",
			  name, path);
		cg_destroy(path);
	}
	if (d)
		closedir(d);

	if (cg_drain_dying(top, baseline, timeout_ms, &left,
			   &passes)) {
		if (passes)
			ktap_diag("leak: %s: every removed memcg freed after %ld ms (%d reclaim passes)",
				  name, now_ms() - t0, passes);
		return true;
	}
	/* Pages still charged below top: the dying memcgs' own, or top's. */
	if (cg_leak_lenient && cg_stat(top, "file") + cg_stat(top, "anon") > 0) {
		ktap_diag("leak: %s: %ld dying memcg(s) still pinned after %ld ms by pages reclaim cannot free (file %ld KB, anon %ld KB): what the kernel keeps without recharging, not a leaked reference",
			  name, left - baseline, now_ms() - t0,
			  cg_stat(top, "file") >> 10, cg_stat(top, "anon") >> 10);
		return true;
	}
	n = cg_rmlog_count();
	ktap_diag("leak: %s: %ld dying memcg(s) survive reclaim for %ld ms (%ld before the case); memory.current of the dead subtree %ld KB, file %ld KB, anon %ld KB, percpu %ld KB, kernel %ld KB, swap %ld KB",
		  name, left - baseline, now_ms() - t0, baseline,
		  cg_read_long(top, "memory.current") >> 10,
		  cg_stat(top, "file") >> 10, cg_stat(top, "anon") >> 10,
		  cg_stat(top, "percpu") >> 10, cg_stat(top, "kernel") >> 10,
		  cg_read_long(top, "memory.swap.current") >> 10);
	ktap_diag("leak: %s: the case removed %ld memcg(s), the culprits are among them:",
		  name, n);
	for (i = 0; i < n && i < 40; i++)
		ktap_diag("leak: %s:   %s", name, cg_rmlog_path(i) ?: "?");
	if (n > 40)
		ktap_diag("leak: %s:   ... and %ld more", name, n - 40);
	return false;
}

int cg_setup_root(char *why, size_t len)
{
	const char *root = cg_root();
	char path[PATH_MAX], buf[512];

	if (!root) {
		snprintf(why, len, "cgroup v2 is not mounted");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/cgroup.controllers", root);
	if (read_str(path, buf, sizeof(buf)) < 0 || !strstr(buf, "memory")) {
		snprintf(why, len, "memory controller is not available");
		return -1;
	}
	if (cg_enable_memory(root)) {
		snprintf(why, len, "cannot enable +memory in %s", root);
		return -1;
	}
	return 0;
}

int cg_run(const char *cg, int (*fn)(void *arg), void *arg)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (cg_enter_current(cg))
			_exit(125);
		_exit(fn(arg));
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* --------------------------------------------------------------- polling */

long rh_step_ms = 100;

long rh_timeout_ms(void)
{
	const char *env = getenv("RH_TIMEOUT_MS");
	long v = env ? strtol(env, NULL, 10) : 0;

	return v > 0 ? v : 20000;
}

bool rh_ge(long v, long arg) { return v >= arg; }
bool rh_le(long v, long arg) { return v >= 0 && v <= arg; }
bool rh_eq(long v, long arg) { return v == arg; }

bool rh_poll(rh_probe_t probe, void *ctx, bool (*cond)(long v, long arg),
	     long arg, long timeout_ms, long step_ms, long *last)
{
	long start = now_ms(), last_change = start, prev = LONG_MIN, v, t;

	for (;;) {
		v = probe(ctx);
		if (last)
			*last = v;
		if (cond(v, arg))
			return true;
		t = now_ms();
		if (v != prev) {
			if (prev != LONG_MIN)
				last_change = t;
			prev = v;
		}
		if (t - start >= timeout_ms &&
		    (t - last_change >= 2000 || t - start >= 4 * timeout_ms))
			return false;
		sleep_ms(step_ms);
	}
}

/* ------------------------------------------------------------ guest speed */

static int calib_child(long len)
{
	static char buf[65536];
	long done, i;
	char *m;
	int fd;

	fd = memfd_create("rh_calib", MFD_CLOEXEC);
	if (fd < 0)
		return 1;
	memset(buf, 0x3c, sizeof(buf));
	for (done = 0; done < len; done += sizeof(buf))
		if (pwrite(fd, buf, sizeof(buf), done) != sizeof(buf))
			return 1;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		 fd, 0);
	if (m == MAP_FAILED)
		return 1;
	for (i = 0; i < len; i += RH_PAGE)
		((volatile char *)m)[i] ^= 1;
	for (done = 0; done < len; done += sizeof(buf))
		if (pread(fd, buf, sizeof(buf), done) != sizeof(buf))
			return 1;
	munmap(m, len);
	close(fd);
	return 0;
}

long rh_calibrate_ms(long len)
{
	long t[3], x;
	int i, j, status;
	pid_t pid;

	len = (len + 65535) & ~65535L;
	for (i = 0; i < 3; i++) {
		fflush(stdout);
		t[i] = now_ms();
		pid = fork();
		if (pid < 0)
			return -1;
		if (pid == 0)
			_exit(calib_child(len));
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			return -1;
		t[i] = now_ms() - t[i];
	}
	for (i = 0; i < 3; i++)
		for (j = i + 1; j < 3; j++)
			if (t[j] < t[i]) {
				x = t[i];
				t[i] = t[j];
				t[j] = x;
			}
	return t[1];
}

long rh_scaled_window(long floor_ms, long calib_ms, long factor, long cap_ms)
{
	long w = calib_ms > 0 ? calib_ms * factor : 0;

	if (w > cap_ms)
		w = cap_ms;
	return w > floor_ms ? w : floor_ms;
}

/* ----------------------------------------------------------- kernel log */

int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

static const char * const kmsg_bad[] = {
	"BUG:", "WARNING:", "Oops", "general protection fault",
	"kernel BUG", "Kernel panic", "KASAN", "UBSAN", "KFENCE",
	"possible circular locking", "possible recursive locking",
	"inconsistent lock state", "suspicious RCU usage",
	"sleeping function called from invalid context",
	"scheduling while atomic", "INFO: task", "rcu_sched self-detected",
	"rcu: INFO", "soft lockup", "hard LOCKUP", "Call Trace:",
	"invoked oom-killer", "page allocation failure",
	NULL,
};

bool kmsg_suspicious(const char *msg)
{
	int i;

	for (i = 0; kmsg_bad[i]; i++)
		if (strstr(msg, kmsg_bad[i]))
			return true;
	return false;
}

int kmsg_read(int fd, void (*fn)(const char *msg, void *ctx), void *ctx)
{
	char rec[8192], *msg;
	int nr = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* records overwritten, go on */
		if (n <= 0)
			break;
		rec[n] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		msg[strcspn(msg, "\n")] = 0;
		fn(msg, ctx);
		nr++;
	}
	return nr;
}

struct kmsg_scan_ctx {
	const char *tag;
	int bad;
};

static void kmsg_scan_one(const char *msg, void *ctx)
{
	struct kmsg_scan_ctx *c = ctx;

	if (!kmsg_suspicious(msg))
		return;
	if (c->bad < 20)
		ktap_diag("%s: kernel log: %s", c->tag, msg);
	c->bad++;
}

int kmsg_scan(int fd, const char *tag)
{
	struct kmsg_scan_ctx c = { tag, 0 };

	kmsg_read(fd, kmsg_scan_one, &c);
	return c.bad;
}

/* ---------------------------------------------------------------- agents */

struct agent_cmd {
	int op;
	int flags;
	long off;
	long len;
	char path[256];
};

struct agent_resp {
	long rc;
};

#define AGENT_SLOTS 256

static struct {
	char *addr;
	long len;
} slots[AGENT_SLOTS];

static long agent_new_slot(char *addr, long len)
{
	int i;

	for (i = 0; i < AGENT_SLOTS; i++) {
		if (!slots[i].addr) {
			slots[i].addr = addr;
			slots[i].len = len;
			return i;
		}
	}
	return -ENOSPC;
}

static long agent_map(const struct agent_cmd *c)
{
	int fd, prot = PROT_READ, mflags = MAP_SHARED;
	struct stat st;
	long len = c->len;
	char *addr;

	fd = open(c->path, (c->flags & AGF_WRITE) ? O_RDWR : O_RDONLY);
	if (fd < 0)
		return -errno;
	if (!len) {
		if (fstat(fd, &st)) {
			close(fd);
			return -errno;
		}
		len = st.st_size;
	}
	if (c->flags & AGF_WRITE)
		prot |= PROT_WRITE;
	if (c->flags & AGF_POPULATE)
		mflags |= MAP_POPULATE;
	addr = mmap(NULL, len, prot, mflags, fd, c->off);
	close(fd);
	if (addr == MAP_FAILED)
		return -errno;
	return agent_new_slot(addr, len);
}

static long agent_anon(const struct agent_cmd *c)
{
	long len = c->len, align = RH_MB(2), i;
	char *addr, *p;

	addr = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (addr == MAP_FAILED)
		return -errno;
	p = addr;
	if (c->flags & AGF_ALIGN)
		p = (char *)(((uintptr_t)addr + align - 1) & ~(align - 1));
	if (c->flags & AGF_HUGE)
		madvise(p, len, MADV_HUGEPAGE);
	if (c->flags & AGF_NOHUGE)
		madvise(p, len, MADV_NOHUGEPAGE);
	if (c->flags & AGF_POPULATE)
		for (i = 0; i < len; i += RH_PAGE)
			((volatile char *)p)[i] = 1;
	return agent_new_slot(p, len);
}

static long agent_rw(const struct agent_cmd *c, bool wr)
{
	static char buf[65536];
	long done = 0, chunk;
	ssize_t n;
	int fd;

	if (wr)
		fd = open(c->path, O_WRONLY |
			  ((c->flags & AGF_CREATE) ? O_CREAT | O_TRUNC : 0),
			  0644);
	else
		fd = open(c->path, O_RDONLY);
	if (fd < 0)
		return -errno;
	if (wr && (c->flags & AGF_SYNC))
		fsync(fd);
	memset(buf, 0x5a, sizeof(buf));
	while (done < c->len) {
		chunk = c->len - done;
		if (chunk > (long)sizeof(buf))
			chunk = sizeof(buf);
		if (wr)
			n = pwrite(fd, buf, chunk, c->off + done);
		else
			n = pread(fd, buf, chunk, c->off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += n;
	}
	if (wr && (c->flags & AGF_SYNC))
		fsync(fd);
	close(fd);
	return done;
}

static long agent_exec(const struct agent_cmd *c)
{
	long s = c->off, i;
	int fd;

	if (((c->op >= AG_TOUCH_READ && c->op <= AG_UNMAP) ||
	     c->op == AG_POPULATE) &&
	    (s < 0 || s >= AGENT_SLOTS || !slots[s].addr))
		return -EINVAL;

	switch (c->op) {
	case AG_MAP:
		return agent_map(c);
	case AG_ANON:
		return agent_anon(c);
	case AG_TOUCH_READ:
		for (i = 0; i < slots[s].len; i += RH_PAGE)
			(void)((volatile char *)slots[s].addr)[i];
		return 0;
	case AG_TOUCH_WRITE:
		for (i = 0; i < slots[s].len; i += RH_PAGE)
			((volatile char *)slots[s].addr)[i] ^= 1;
		return 0;
	case AG_MLOCK:
		return mlock(slots[s].addr, slots[s].len) ? -errno : 0;
	case AG_MUNLOCK:
		return munlock(slots[s].addr, slots[s].len) ? -errno : 0;
	case AG_POPULATE:
		return madvise(slots[s].addr, slots[s].len,
			       MADV_POPULATE_READ) ? -errno : 0;
	case AG_UNMAP:
		munmap(slots[s].addr, slots[s].len);
		slots[s].addr = NULL;
		return 0;
	case AG_READ:
		return agent_rw(c, false);
	case AG_WRITE:
		return agent_rw(c, true);
	case AG_FSYNC:
		fd = open(c->path, O_RDONLY);
		if (fd < 0)
			return -errno;
		i = fsync(fd) ? -errno : 0;
		close(fd);
		return i;
	}
	return -EINVAL;
}

static void agent_main(int cmd_fd, int resp_fd, const char *cg)
{
	struct agent_resp r = { 0 };
	struct agent_cmd c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (cg && cg_enter_current(cg))
		r.rc = -EIO;
	if (write(resp_fd, &r, sizeof(r)) != sizeof(r) || r.rc)
		_exit(1);
	while (read(cmd_fd, &c, sizeof(c)) == sizeof(c)) {
		if (c.op == AG_EXIT)
			break;
		r.rc = agent_exec(&c);
		if (write(resp_fd, &r, sizeof(r)) != sizeof(r))
			break;
	}
	_exit(0);
}

int agent_start(struct agent *ag, const char *cg)
{
	struct agent_resp r;
	int cmd[2], resp[2];

	ag->pid = -1;
	if (pipe2(cmd, O_CLOEXEC))
		return -1;
	if (pipe2(resp, O_CLOEXEC)) {
		close(cmd[0]);
		close(cmd[1]);
		return -1;
	}
	fflush(stdout);
	ag->pid = fork();
	if (ag->pid == 0) {
		close(cmd[1]);
		close(resp[0]);
		agent_main(cmd[0], resp[1], cg);
	}
	close(cmd[0]);
	close(resp[1]);
	ag->cmd_fd = cmd[1];
	ag->resp_fd = resp[0];
	if (ag->pid < 0 || read(ag->resp_fd, &r, sizeof(r)) != sizeof(r) ||
	    r.rc) {
		agent_kill(ag);
		return -1;
	}
	return 0;
}

long agent_do(struct agent *ag, int op, const char *path, long off, long len,
	      int flags)
{
	struct agent_cmd c;
	struct agent_resp r;

	if (ag->pid <= 0)
		return -ESRCH;
	memset(&c, 0, sizeof(c));
	c.op = op;
	c.flags = flags;
	c.off = off;
	c.len = len;
	if (path)
		snprintf(c.path, sizeof(c.path), "%s", path);
	if (write(ag->cmd_fd, &c, sizeof(c)) != sizeof(c))
		return -EPIPE;
	if (read(ag->resp_fd, &r, sizeof(r)) != sizeof(r))
		return -EPIPE;
	return r.rc;
}

bool agent_alive(struct agent *ag)
{
	int status;

	if (ag->pid <= 0)
		return false;
	if (waitpid(ag->pid, &status, WNOHANG) == ag->pid) {
		close(ag->cmd_fd);
		close(ag->resp_fd);
		ag->pid = -1;
		return false;
	}
	return true;
}

int agent_stop(struct agent *ag)
{
	struct agent_cmd c = { .op = AG_EXIT };
	int status = 0;

	if (ag->pid <= 0)
		return -1;
	if (write(ag->cmd_fd, &c, sizeof(c)) != sizeof(c))
		kill(ag->pid, SIGKILL);
	waitpid(ag->pid, &status, 0);
	close(ag->cmd_fd);
	close(ag->resp_fd);
	ag->pid = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void agent_kill(struct agent *ag)
{
	if (ag->pid <= 0)
		return;
	kill(ag->pid, SIGKILL);
	waitpid(ag->pid, NULL, 0);
	close(ag->cmd_fd);
	close(ag->resp_fd);
	ag->pid = -1;
}

/* ----------------------------------------------------------------- files */

int fill_file(const char *path, long len, bool do_fsync)
{
	static char buf[65536];
	long done = 0, chunk;
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return -1;
	memset(buf, 0xa5, sizeof(buf));
	while (done < len) {
		chunk = len - done;
		if (chunk > (long)sizeof(buf))
			chunk = sizeof(buf);
		n = pwrite(fd, buf, chunk, done);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		done += n;
	}
	if (do_fsync)
		fsync(fd);
	close(fd);
	return 0;
}

int fallocate_file(const char *path, long len)
{
	int fd, ret;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	ret = fallocate(fd, 0, 0, len);
	close(fd);
	return ret;
}

bool on_fstype(const char *path, const char *fstype)
{
	char line[4096], dev[256], mnt[PATH_MAX], type[64];
	bool found = false;
	FILE *f;

	f = fopen("/proc/self/mounts", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %4095s %63s", dev, mnt, type) != 3)
			continue;
		/* The last matching mount wins (mounts stack). */
		if (!strcmp(mnt, path))
			found = !strcmp(type, fstype);
	}
	fclose(f);
	return found;
}

void cg_destroy_free(char **cg)
{
	if (*cg) {
		cg_destroy(*cg);
		free(*cg);
		*cg = NULL;
	}
}
