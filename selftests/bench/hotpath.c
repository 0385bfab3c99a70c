// SPDX-License-Identifier: GPL-2.0
/*
 * In-guest benchmarks for the memcg recharging series: numbers, not
 * verdicts on timing.
 *
 * Hot path (the series hooks folio_mark_accessed() and the dirtying paths,
 * so these must not get slower):
 *   read_ext4, read_tmpfs    re-read a file that is fully in the page cache
 *                            (charged to a live memcg the reader runs in),
 *                            MiB/s per repetition
 *   fault_ext4, fault_tmpfs  mmap the cached file, touch one byte per page,
 *                            munmap: page faults/s (minor faults counted with
 *                            getrusage) and MiB/s mapped
 *   mark_accessed_ext4       the cost of one folio_mark_accessed() on a live
 *                            memcg's folio: 1-byte pread()s alternating
 *                            between two pages of a cached file (filemap_read()
 *                            marks a folio accessed when a read moves to
 *                            another folio) against the same loop on one page
 *                            (no mark): reads/s of each, ns per mark
 *
 * With -i N, every hot-path case also runs N fixed-work windows (one pass
 * over the file; mark_accessed: -n reads of each loop) between two marker
 * instructions (see insn_mark()), for the QEMU plugin of recharge-harness
 * (harness/insncount_plugin.c) that counts the guest instructions executed
 * between them: "# insnwin case=C id=ID units=U unit=pages|reads" per
 * window, in the order run.  Without the plugin the markers are no-ops.
 * Recharge throughput (need vm.recharge_offline_memcgs=1, else SKIP):
 *   offline_mapped_ext4, offline_mapped_shmem
 *                            a file charged to memcg A is mapped by a process
 *                            in B; A is removed: MiB/s moved to B by the
 *                            offline worker, and how long until the dying
 *                            memcg is gone
 *   deferred_read_ext4, deferred_read_shmem
 *                            the same file, not mapped, read(2) by B after A
 *                            is removed: MiB/s moved by the deferred path
 *                            (including the reads that drive it)
 *   zombies_ext4             N small memcgs each charged with a file that a
 *                            live memcg maps, all removed: time until
 *                            nr_dying_descendants is back to its baseline
 *
 * Every number is a "# bench <case> <metric> key=value..." diagnostic:
 *   median= min= max= spread_pct= n= samples=a,b,c unit=   (repeated)
 *   value= unit=                                           (single)
 * A case FAILs only if something functional breaks (I/O error, cgroup
 * setup, nothing recharged at all with the sysctl at 1, a suspicious kernel
 * log message); slow is never a failure.
 *
 * Output is KTAP.  Exit: 0 pass, 1 fail, 4 all skipped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/cgutil.h"

#define SCRATCH_DIR	"/mnt/rhscratch"
#define SHMEM_DIR	"/run/rhtmp"
#define MAX_REPS	64

static int reps = 7;
static long file_size = RH_MB(64);
static long recharge_size = RH_MB(32);
static int nr_zombies = 16;
static long zombie_size = RH_MB(2);
static long min_sample_ms = 300;
static long timeout_ms = 60000;
static bool skip_hot, skip_recharge;
static int insn_windows;		/* -i: instruction-count windows per hot case */
static long mark_reads = 10000;		/* -n: preads per mark_accessed window */
static int sysctl;
static int kmsg_fd = -1;
static char *top;	/* this run's parent cgroup */

/* ------------------------------------------------------------ helpers */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* "# bench <case> <metric> median=.. min=.. max=.. spread_pct=.. n=.. samples=.. unit=.." */
static void report_samples(const char *cs, const char *metric, const char *unit,
			   const double *v, int n)
{
	double s[MAX_REPS], med, spread;
	char list[MAX_REPS * 16] = "";
	size_t off = 0;
	int i;

	if (n <= 0)
		return;
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	spread = med > 0 ? 100.0 * (s[n - 1] - s[0]) / med : 0;
	for (i = 0; i < n && off < sizeof(list) - 16; i++)
		off += snprintf(list + off, sizeof(list) - off, "%s%.1f",
				i ? "," : "", v[i]);
	ktap_diag("bench %s %s median=%.1f min=%.1f max=%.1f spread_pct=%.1f n=%d unit=%s samples=%s",
		  cs, metric, med, s[0], s[n - 1], spread, n, unit, list);
}

static void report_value(const char *cs, const char *metric, const char *unit,
			 double v)
{
	ktap_diag("bench %s %s value=%.1f unit=%s", cs, metric, v, unit);
}

/*
 * Instruction-count markers: "nopl 0x5248XXYY(%rax)", a 7-byte no-op whose
 * displacement carries op XX (1 start, 2 stop) and window id YY.  The QEMU
 * plugin of the harness counts the instructions between a start and a stop
 * of one id; anywhere else they do nothing.  The id is an immediate, hence
 * one asm statement per (op, id).
 */
enum { WIN_READ_EXT4 = 1, WIN_READ_TMPFS, WIN_FAULT_EXT4, WIN_FAULT_TMPFS,
       WIN_MARK_ALT, WIN_MARK_SAME };
#define INSN_MARK(op, id)						\
	case (op) << 8 | (id):						\
		asm volatile(".byte 0x0f, 0x1f, 0x80\n\t.long %c0"		\
			     :: "i" (0x52480000 | (op) << 8 | (id)) : "memory"); \
		break

static void insn_mark(int op, int id)
{
	switch (op << 8 | id) {
	INSN_MARK(1, WIN_READ_EXT4); INSN_MARK(2, WIN_READ_EXT4);
	INSN_MARK(1, WIN_READ_TMPFS); INSN_MARK(2, WIN_READ_TMPFS);
	INSN_MARK(1, WIN_FAULT_EXT4); INSN_MARK(2, WIN_FAULT_EXT4);
	INSN_MARK(1, WIN_FAULT_TMPFS); INSN_MARK(2, WIN_FAULT_TMPFS);
	INSN_MARK(1, WIN_MARK_ALT); INSN_MARK(2, WIN_MARK_ALT);
	INSN_MARK(1, WIN_MARK_SAME); INSN_MARK(2, WIN_MARK_SAME);
	}
}

/* Stay on the current CPU: a window's count is that vCPU's. */
static void pin_to_current_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static char *mkcg(const char *parent, const char *name, bool memory)
{
	char *c = cg_join(parent, name);

	if (!c)
		return NULL;
	cg_destroy(c);
	if (cg_create(c) || (memory && cg_enable_memory(c))) {
		ktap_diag("cannot create %s: %s", c, strerror(errno));
		free(c);
		return NULL;
	}
	return c;
}

static bool dir_on(const char *dir, const char *fs)
{
	return on_fstype(dir, fs);
}

static const char *fs_dir(bool blockfs, char *why, size_t len)
{
	if (blockfs) {
		if (dir_on(SCRATCH_DIR, "ext4") || dir_on(SCRATCH_DIR, "xfs") ||
		    dir_on(SCRATCH_DIR, "btrfs"))
			return SCRATCH_DIR;
		snprintf(why, len, "no block filesystem at %s (run guest-setup.sh)",
			 SCRATCH_DIR);
		return NULL;
	}
	if (dir_on(SHMEM_DIR, "tmpfs"))
		return SHMEM_DIR;
	snprintf(why, len, "no tmpfs at %s (run guest-setup.sh)", SHMEM_DIR);
	return NULL;
}

/*
 * Writes @len bytes of @path from a process in @cg, which then exits.  On a
 * block filesystem the blocks are allocated first from outside the cgroup
 * and the data is synced: @cg is charged for clean page cache.
 */
static int populate(const char *cg, const char *path, long len, bool blockfs)
{
	struct agent ag;
	long n;

	unlink(path);
	if (blockfs ? fallocate_file(path, len) : fill_file(path, 0, false))
		return -1;
	if (agent_start(&ag, cg))
		return -1;
	n = agent_do(&ag, AG_WRITE, path, 0, len, blockfs ? AGF_SYNC : 0);
	agent_stop(&ag);
	return n == len ? 0 : -1;
}

/* --------------------------------------------------------- hot path */

enum hot_kind { HOT_READ, HOT_FAULT, HOT_MARK };

struct hot_result {
	int n;
	int err;		/* errno of a functional failure, 0 if none */
	long cached_kb;		/* memory.stat file of the live memcg after setup */
	double mibps[MAX_REPS];
	double faults_ps[MAX_REPS];
	double faults_per_rep;
	double alt_ps[MAX_REPS];	/* mark_accessed: reads/s, two pages */
	double same_ps[MAX_REPS];	/* mark_accessed: reads/s, one page */
	int nwin;			/* instruction-count windows run */
	int win_id[2 * MAX_REPS];
	long win_units[2 * MAX_REPS];
	long win_faults[2 * MAX_REPS];
};

/* One pass of sequential 64 KiB preads over the file; bytes read or -errno. */
static long read_pass(int fd, long len)
{
	static char buf[65536];
	long off;
	ssize_t n;

	for (off = 0; off < len; off += n) {
		n = pread(fd, buf, sizeof(buf), off);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
	}
	return off;
}

/* Sequential 64 KiB preads over the whole file until @min_sample_ms passed. */
static int read_sample(const char *path, long len, double *mibps)
{
	double t0 = now_s(), el;
	long done = 0, n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	do {
		n = read_pass(fd, len);
		if (n < 0) {
			close(fd);
			return n;
		}
		done += n;
		el = now_s() - t0;
	} while (el * 1000 < min_sample_ms);
	close(fd);
	*mibps = done / 1048576.0 / el;
	return 0;
}

/* mmap, touch one byte per page, munmap; 0 or -errno. */
static int fault_pass(int fd, long len)
{
	volatile char sink = 0;
	long i;
	char *p;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	for (i = 0; i < len; i += RH_PAGE)
		sink += ((volatile char *)p)[i];
	munmap(p, len);
	(void)sink;
	return 0;
}

/* mmap + touch one byte per page + munmap until @min_sample_ms passed. */
static int fault_sample(const char *path, long len, double *faults_ps,
			double *mibps, double *faults_per_pass)
{
	struct rusage r0, r1;
	double t0, el;
	long faults, passes = 0;
	int fd, ret;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	getrusage(RUSAGE_SELF, &r0);
	t0 = now_s();
	do {
		ret = fault_pass(fd, len);
		if (ret) {
			close(fd);
			return ret;
		}
		passes++;
		el = now_s() - t0;
	} while (el * 1000 < min_sample_ms);
	getrusage(RUSAGE_SELF, &r1);
	close(fd);
	faults = r1.ru_minflt - r0.ru_minflt;
	*faults_ps = faults / el;
	*mibps = passes * (len / 1048576.0) / el;
	*faults_per_pass = (double)faults / passes;
	return 0;
}

/*
 * @nr 1-byte preads: alternating between the file's first two pages (each
 * read moves to another folio, so filemap_read() marks it accessed) or all
 * on the first page (the same folio as the previous read: no mark).
 */
static int mark_loop(int fd, bool alternate, long nr)
{
	char c;
	long i;

	for (i = 0; i < nr; i++)
		if (pread(fd, &c, 1, alternate && (i & 1) ? RH_PAGE : 0) != 1)
			return errno ? -errno : -EIO;
	return 0;
}

static int mark_sample(int fd, bool alternate, double *reads_ps)
{
	double t0 = now_s(), el;
	long done = 0;
	int ret;

	do {
		ret = mark_loop(fd, alternate, 1000);
		if (ret)
			return ret;
		done += 1000;
		el = now_s() - t0;
	} while (el * 1000 < min_sample_ms);
	*reads_ps = done / el;
	return 0;
}

/* The instruction-count windows of a case (see insn_mark()); 0 or -errno. */
static int insn_windows_run(const char *path, long len, enum hot_kind kind,
			    int id, struct hot_result *res)
{
	struct rusage r0, r1;
	int fd, k, ret = 0;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	pin_to_current_cpu();
	/* One unmeasured pass on this CPU first (the first window counted less). */
	if (kind == HOT_MARK)
		ret = mark_loop(fd, true, mark_reads);
	else if (kind == HOT_FAULT)
		ret = fault_pass(fd, len);
	else
		ret = read_pass(fd, len) < 0 ? -EIO : 0;
	for (k = 0; k < insn_windows && !ret; k++) {
		int i = res->nwin;

		getrusage(RUSAGE_SELF, &r0);
		if (kind == HOT_MARK) {
			insn_mark(1, WIN_MARK_ALT);
			ret = mark_loop(fd, true, mark_reads);
			insn_mark(2, WIN_MARK_ALT);
			if (!ret) {
				res->win_id[i] = WIN_MARK_ALT;
				res->win_units[i] = mark_reads;
				i++;
				insn_mark(1, WIN_MARK_SAME);
				ret = mark_loop(fd, false, mark_reads);
				insn_mark(2, WIN_MARK_SAME);
				res->win_id[i] = WIN_MARK_SAME;
				res->win_units[i] = mark_reads;
			}
		} else if (kind == HOT_FAULT) {
			insn_mark(1, id);
			ret = fault_pass(fd, len);
			insn_mark(2, id);
			res->win_id[i] = id;
			res->win_units[i] = len / RH_PAGE;
		} else {
			long n;

			insn_mark(1, id);
			n = read_pass(fd, len);
			insn_mark(2, id);
			ret = n < 0 ? (int)n : 0;
			res->win_id[i] = id;
			res->win_units[i] = len / RH_PAGE;
		}
		getrusage(RUSAGE_SELF, &r1);
		res->win_faults[i] = r1.ru_minflt - r0.ru_minflt;
		res->nwin = i + 1;
	}
	close(fd);
	return ret;
}

/* Runs in a child attached to the live memcg; results in shared memory. */
static int hot_child(const char *path, long len, enum hot_kind kind, int id,
		     struct hot_result *res)
{
	double dummy;
	int i, ret, fd;

	/* The page cache is charged to this memcg: create and read it here. */
	if (fill_file(path, len, true))
		return errno ? errno : EIO;
	ret = read_sample(path, len, &dummy);	/* warm: everything cached */
	if (ret)
		return -ret;
	if (kind == HOT_MARK) {
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return errno;
		for (i = 0; i < res->n && !ret; i++) {
			ret = mark_sample(fd, true, &res->alt_ps[i]);
			if (!ret)
				ret = mark_sample(fd, false, &res->same_ps[i]);
		}
		close(fd);
		if (ret)
			return -ret;
	}
	for (i = 0; i < res->n && kind != HOT_MARK; i++) {
		ret = kind == HOT_FAULT ?
			fault_sample(path, len, &res->faults_ps[i], &res->mibps[i],
				     &res->faults_per_rep) :
			read_sample(path, len, &res->mibps[i]);
		if (ret)
			return -ret;
	}
	if (insn_windows) {
		ret = insn_windows_run(path, len, kind, id, res);
		if (ret)
			return -ret;
	}
	return 0;
}

static const char *hot_cases[] = {
	[WIN_READ_EXT4] = "read_ext4", [WIN_READ_TMPFS] = "read_tmpfs",
	[WIN_FAULT_EXT4] = "fault_ext4", [WIN_FAULT_TMPFS] = "fault_tmpfs",
	[WIN_MARK_ALT] = "mark_accessed_ext4", [WIN_MARK_SAME] = "mark_accessed_ext4",
};

static int case_hot(const char *name, bool blockfs, enum hot_kind kind, int id)
{
	char why[200], path[PATH_MAX], *live = NULL;
	long len = kind == HOT_MARK ? 2 * RH_PAGE : file_size;
	struct hot_result *res;
	const char *dir;
	int status, ret = RH_FAIL, i;
	pid_t pid;

	if (skip_hot)
		return rh_skip("hot-path cases not selected (-R only)");
	dir = fs_dir(blockfs, why, sizeof(why));
	if (!dir)
		return rh_skip("%s", why);
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		return rh_fail("mmap: %s", strerror(errno));
	memset(res, 0, sizeof(*res));
	res->n = reps;
	live = mkcg(top, name, false);
	if (!live)
		goto out;
	snprintf(path, sizeof(path), "%s/rh_hot_%s_%d", dir, name, getpid());
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		ret = rh_fail("fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		if (cg_enter_current(live))
			_exit(125);
		res->err = hot_child(path, len, kind, id, res);
		res->cached_kb = cg_stat(live, blockfs ? "file" : "shmem") / 1024;
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		ret = rh_fail("benchmark child died (status 0x%x)", status);
		goto out;
	}
	if (res->err) {
		ret = rh_fail("%s on %s: %s",
			      kind == HOT_FAULT ? "mmap/touch" : "read", path,
			      strerror(res->err));
		goto out;
	}
	ktap_diag("%s: %ld KiB file on %s, %ld KiB of it charged to the live memcg, %d repetitions of >= %ld ms",
		  name, len >> 10, dir, res->cached_kb, reps, min_sample_ms);
	if (res->cached_kb * 1024 < len * 9 / 10)
		ktap_diag("%s: note: the file is not fully charged to the reader's memcg (cached elsewhere?)",
			  name);
	if (kind == HOT_FAULT) {
		report_samples(name, "faults_per_s", "faults/s", res->faults_ps, reps);
		report_samples(name, "mapped_MiBps", "MiB/s", res->mibps, reps);
		report_value(name, "faults_per_pass", "faults", res->faults_per_rep);
	} else if (kind == HOT_MARK) {
		double ns[MAX_REPS];

		for (i = 0; i < reps; i++)
			ns[i] = 1e9 / res->alt_ps[i] - 1e9 / res->same_ps[i];
		report_samples(name, "alt_reads_per_s", "reads/s", res->alt_ps, reps);
		report_samples(name, "same_reads_per_s", "reads/s", res->same_ps, reps);
		report_samples(name, "ns_per_mark", "ns", ns, reps);
	} else {
		report_samples(name, "read_MiBps", "MiB/s", res->mibps, reps);
	}
	for (i = 0; i < res->nwin; i++)
		ktap_diag("insnwin case=%s id=%d units=%ld unit=%s faults=%ld",
			  hot_cases[res->win_id[i]], res->win_id[i], res->win_units[i],
			  kind == HOT_MARK ? "reads" : "pages", res->win_faults[i]);
	ret = RH_PASS;
out:
	unlink(path);
	cg_destroy_free(&live);
	munmap(res, sizeof(*res));
	return ret;
}

static int case_read_ext4(void)
{
	return case_hot("read_ext4", true, HOT_READ, WIN_READ_EXT4);
}

static int case_read_tmpfs(void)
{
	return case_hot("read_tmpfs", false, HOT_READ, WIN_READ_TMPFS);
}

static int case_fault_ext4(void)
{
	return case_hot("fault_ext4", true, HOT_FAULT, WIN_FAULT_EXT4);
}

static int case_fault_tmpfs(void)
{
	return case_hot("fault_tmpfs", false, HOT_FAULT, WIN_FAULT_TMPFS);
}

static int case_mark_accessed_ext4(void)
{
	return case_hot("mark_accessed_ext4", true, HOT_MARK, WIN_MARK_ALT);
}

/* -------------------------------------------------- recharge throughput */

struct moved_probe {
	const char *cg;
	const char *key;
	long base;
};

static long probe_moved(void *ctx)
{
	struct moved_probe *p = ctx;
	long v = cg_stat(p->cg, p->key);

	return v < 0 ? LONG_MIN + 1 : v - p->base;
}

static long probe_dying(void *ctx)
{
	return cg_nr_dying(ctx);
}

static const char *recharge_skip(void)
{
	static char why[128];

	if (skip_recharge)
		return "recharge cases not selected (-H only)";
	if (sysctl < 0)
		return "vm.recharge_offline_memcgs absent (kernel without the series)";
	if (sysctl == 0) {
		snprintf(why, sizeof(why),
			 "vm.recharge_offline_memcgs=0: recharging is off, nothing to measure");
		return why;
	}
	return NULL;
}

/* One read(2) pass by @ag over the @nr files of case @name; 0 or a reported failure. */
static int read_files(struct agent *ag, const char *dir, const char *name,
		     int nr, long len)
{
	char path[PATH_MAX];
	int i;

	for (i = 0; i < nr; i++) {
		snprintf(path, sizeof(path), "%s/rh_rc_%s_%d_%d", dir, name,
			 getpid(), i);
		if (agent_do(ag, AG_READ, path, 0, len, 0) != len)
			return rh_fail("read %s failed", path);
	}
	return 0;
}

/*
 * @nr writer memcgs each charged with a @len file; one process in "owner"
 * maps (mapped=true) every file, or reads them after the writers are gone.
 * All writers are removed at once; measures until the owner holds them.
 */
static int recharge_case(const char *name, bool blockfs, bool mapped, int nr,
			 long len)
{
	const char *key = blockfs ? "file" : "shmem", *skip, *dir;
	char why[200], path[PATH_MAX], cgname[32], **w = NULL, *parent = NULL,
	     *owner = NULL;
	struct agent ag = { .pid = -1 };
	struct moved_probe mp;
	struct rh_counters before, delta;
	long total = (long)nr * len, dying_base, v, moved, slot, gone_ms = -1;
	double t0, t_moved = -1, t_first = -1, t_start = -1, t_read = -1;
	int i, passes = 0, ret = RH_FAIL;

	skip = recharge_skip();
	if (skip)
		return rh_skip("%s", skip);
	dir = fs_dir(blockfs, why, sizeof(why));
	if (!dir)
		return rh_skip("%s", why);
	w = calloc(nr, sizeof(*w));
	parent = mkcg(top, name, true);
	owner = parent ? mkcg(parent, "owner", false) : NULL;
	if (!w || !owner)
		goto out;
	dying_base = cg_nr_dying(parent);
	for (i = 0; i < nr; i++) {
		snprintf(cgname, sizeof(cgname), "w%d", i);
		w[i] = mkcg(parent, cgname, false);
		snprintf(path, sizeof(path), "%s/rh_rc_%s_%d_%d", dir, name,
			 getpid(), i);
		if (!w[i] || populate(w[i], path, len, blockfs)) {
			ret = rh_fail("populating %s from memcg %s: %s", path,
				      w[i] ? w[i] : "?", strerror(errno));
			goto out;
		}
	}
	if (agent_start(&ag, owner)) {
		ret = rh_fail("cannot start a process in %s", owner);
		goto out;
	}
	if (mapped) {
		for (i = 0; i < nr; i++) {
			snprintf(path, sizeof(path), "%s/rh_rc_%s_%d_%d", dir,
				 name, getpid(), i);
			slot = agent_do(&ag, AG_MAP, path, 0, len, AGF_POPULATE);
			if (slot < 0) {
				ret = rh_fail("mapping %s: %s", path,
					      strerror(-slot));
				goto out;
			}
		}
	}
	mp.cg = owner;
	mp.key = key;
	mp.base = cg_stat(owner, key);
	ktap_diag("%s: %d memcg(s) x %ld MiB of %s on %s, owner holds %ld KiB of it before",
		  name, nr, len >> 20, key, dir, mp.base / 1024);
	rh_counters_read(&before);
	t0 = now_s();
	for (i = 0; i < nr; i++) {
		if (cg_rmdir(w[i])) {
			ret = rh_fail("rmdir %s: %s", w[i], strerror(errno));
			goto out;
		}
	}
	if (mapped) {
		/*
		 * The offline worker does the moving: just watch. It starts
		 * after a deliberate delay (one walk per burst of rmdirs), so
		 * its first move is timed too: from there on is its own pace.
		 */
		if (rh_poll(probe_moved, &mp, rh_ge, RH_PAGE, timeout_ms, 5,
			    &v))
			t_start = now_s() - t0;
		if (rh_poll(probe_moved, &mp, rh_ge, total - 16 * RH_PAGE * nr,
			    timeout_ms, 5, &v))
			t_moved = now_s() - t0;
	} else {
		/*
		 * Each read(2) pass moves what the deferred queue takes. The
		 * deferred path's own clock starts with the first read (the
		 * rmdirs before it are not its work), and the polls are as
		 * fine as the worker's: a 50 ms step on a ~100 ms pass was
		 * most of what separated them.
		 */
		t_read = now_s();
		for (passes = 1;; passes++) {
			double tp = now_s();

			if (read_files(&ag, dir, name, nr, len)) {
				ret = RH_FAIL;
				goto out;
			}
			if (t_first < 0)
				t_first = now_s() - tp;
			if (rh_poll(probe_moved, &mp, rh_ge,
				    total - 16 * RH_PAGE * nr, 200, 5, &v)) {
				t_moved = now_s() - t0;
				break;
			}
			if ((now_s() - t0) * 1000 > timeout_ms)
				break;
		}
	}
	moved = probe_moved(&mp);
	if (t_moved < 0)
		t_moved = now_s() - t0;
	rh_counters_diag(name, &before, &delta);
	if (moved <= 0 && !(delta.present && delta.moved > 0)) {
		ret = rh_fail("nothing was recharged to the owner within %.1f s (owner %s +%ld bytes)",
			      t_moved, key, moved);
		goto out;
	}
	if (moved < total - 16 * RH_PAGE * nr)
		ktap_diag("%s: note: only %ld of %ld KiB moved within %.1f s",
			  name, moved / 1024, total / 1024, t_moved);
	report_value(name, "moved_MiB", "MiB", moved / 1048576.0);
	report_value(name, "moved_ms", "ms", t_moved * 1000);
	report_value(name, mapped ? "offline_worker_MiBps" : "deferred_MiBps",
		     "MiB/s", t_moved > 0 ? moved / 1048576.0 / t_moved : 0);
	if (mapped && t_start >= 0) {
		report_value(name, "worker_first_move_ms", "ms", t_start * 1000);
		if (t_moved > t_start)
			report_value(name, "offline_worker_active_MiBps",
				     "MiB/s",
				     moved / 1048576.0 / (t_moved - t_start));
	}
	if (rh_poll(probe_dying, parent, rh_le, dying_base, timeout_ms, 50, &v))
		gone_ms = (long)((now_s() - t0) * 1000);
	if (gone_ms >= 0) {
		report_value(name, "dying_gone_ms", "ms", gone_ms);
	} else {
		ktap_diag("%s: note: %ld dying memcg(s) still there after %.1f s (not a failure: page cache or metadata nobody touches may pin them)",
			  name, v - dying_base, now_s() - t0);
		report_value(name, "dying_left", "memcgs", v - dying_base);
		report_value(name, "dying_waited_ms", "ms", (now_s() - t0) * 1000);
	}
	if (!mapped) {
		double tp = now_s(), t_plain;

		report_value(name, "read_passes", "passes", passes);
		report_value(name, "first_read_pass_ms", "ms", t_first * 1000);
		/*
		 * The same pass again, over folios that are the owner's
		 * now: what reading costs without recharging. What the
		 * moving pass took beyond it is the deferred path's own
		 * cost, the throughput the offline worker compares with.
		 */
		if (read_files(&ag, dir, name, nr, len)) {
			ret = RH_FAIL;
			goto out;
		}
		t_plain = now_s() - tp;
		report_value(name, "plain_read_pass_ms", "ms", t_plain * 1000);
		/* From the first read on: the deferred path's own pace */
		t_read -= t0;
		if (t_moved - t_read > t_plain)
			report_value(name, "deferred_net_MiBps", "MiB/s",
				     moved / 1048576.0 /
				     (t_moved - t_read - t_plain));
	}
	ret = RH_PASS;
out:
	agent_kill(&ag);
	for (i = 0; w && i < nr; i++) {
		snprintf(path, sizeof(path), "%s/rh_rc_%s_%d_%d", dir ? dir : "/",
			 name, getpid(), i);
		if (dir)
			unlink(path);
		cg_destroy_free(&w[i]);
	}
	free(w);
	cg_destroy_free(&owner);
	cg_destroy_free(&parent);
	return ret;
}

static int case_offline_mapped_ext4(void)
{
	return recharge_case("offline_mapped_ext4", true, true, 1, recharge_size);
}

static int case_offline_mapped_shmem(void)
{
	return recharge_case("offline_mapped_shmem", false, true, 1, recharge_size);
}

static int case_deferred_read_ext4(void)
{
	return recharge_case("deferred_read_ext4", true, false, 1, recharge_size);
}

static int case_deferred_read_shmem(void)
{
	return recharge_case("deferred_read_shmem", false, false, 1, recharge_size);
}

static int case_zombies_ext4(void)
{
	return recharge_case("zombies_ext4", true, true, nr_zombies, zombie_size);
}

/* ---------------------------------------------------------------- main */

static const struct {
	const char *name;
	int (*fn)(void);
} cases[] = {
	{ "read_ext4", case_read_ext4 },
	{ "read_tmpfs", case_read_tmpfs },
	{ "fault_ext4", case_fault_ext4 },
	{ "fault_tmpfs", case_fault_tmpfs },
	{ "mark_accessed_ext4", case_mark_accessed_ext4 },
	{ "offline_mapped_ext4", case_offline_mapped_ext4 },
	{ "offline_mapped_shmem", case_offline_mapped_shmem },
	{ "deferred_read_ext4", case_deferred_read_ext4 },
	{ "deferred_read_shmem", case_deferred_read_shmem },
	{ "zombies_ext4", case_zombies_ext4 },
};
#define NR_CASES (int)(sizeof(cases) / sizeof(cases[0]))

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-r REPS] [-s MiB] [-m MiB] [-z N] [-Z MiB] [-t MS] [-T MS] [-i N] [-n N] [-H | -R] [-l] [CASE...]\n"
		"  -r REPS  hot-path repetitions (default %d, max %d)\n"
		"  -s MiB   hot-path file size (default %ld)\n"
		"  -m MiB   recharge file size (default %ld)\n"
		"  -z N     zombie memcgs (default %d), -Z MiB each (default %ld)\n"
		"  -t MS    minimum duration of one hot-path sample (default %ld)\n"
		"  -T MS    recharge wait budget (default %ld; extended while progressing)\n"
		"  -i N     instruction-count windows per hot-path case (default 0; for the\n"
		"           QEMU plugin of recharge-harness, no-ops without it)\n"
		"  -n N     preads per mark_accessed window (default %ld)\n"
		"  -H       hot-path cases only, -R recharge cases only\n"
		"  -l       list the cases\n",
		prog, reps, MAX_REPS, file_size >> 20, recharge_size >> 20,
		nr_zombies, zombie_size >> 20, min_sample_ms, timeout_ms, mark_reads);
}

int main(int argc, char **argv)
{
	bool sel[NR_CASES];
	char why[256] = "", name[64];
	struct utsname u;
	int i, j, opt, nr_sel = 0, res;

	while ((opt = getopt(argc, argv, "r:s:m:z:Z:t:T:i:n:HRlh")) != -1) {
		switch (opt) {
		case 'r':
			reps = atoi(optarg);
			break;
		case 's':
			file_size = RH_MB(atol(optarg));
			break;
		case 'm':
			recharge_size = RH_MB(atol(optarg));
			break;
		case 'z':
			nr_zombies = atoi(optarg);
			break;
		case 'Z':
			zombie_size = RH_MB(atol(optarg));
			break;
		case 't':
			min_sample_ms = atol(optarg);
			break;
		case 'T':
			timeout_ms = atol(optarg);
			break;
		case 'i':
			insn_windows = atoi(optarg);
			break;
		case 'n':
			mark_reads = atol(optarg);
			break;
		case 'H':
			skip_recharge = true;
			break;
		case 'R':
			skip_hot = true;
			break;
		case 'l':
			for (i = 0; i < NR_CASES; i++)
				printf("%s\n", cases[i].name);
			return 0;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (reps < 1 || reps > MAX_REPS || file_size < RH_MB(1) ||
	    recharge_size < RH_MB(1) || nr_zombies < 1 || nr_zombies > 200 ||
	    zombie_size < RH_MB(1) || min_sample_ms < 0 || timeout_ms < 1000 ||
	    insn_windows < 0 || insn_windows > MAX_REPS || mark_reads < 2) {
		usage(argv[0]);
		return 2;
	}
	for (i = 0; i < NR_CASES; i++) {
		sel[i] = optind >= argc;
		for (j = optind; j < argc; j++)
			if (!strcmp(argv[j], cases[i].name))
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
	uname(&u);
	ktap_diag("bench kernel release=%s version=%s", u.release, u.version);
	ktap_diag("bench sysctl value=%d (vm.recharge_offline_memcgs%s)", sysctl,
		  sysctl < 0 ? " absent" : "");
	if (cg_setup_root(why, sizeof(why)) == 0) {
		snprintf(name, sizeof(name), "rh_bench_%d", getpid());
		top = mkcg(cg_root(), name, true);
		if (!top)
			snprintf(why, sizeof(why), "cannot create %s/%s", cg_root(), name);
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
			res = cases[i].fn();
			if (kmsg_scan(kmsg_fd, cases[i].name) && res == RH_PASS)
				res = rh_fail("suspicious kernel log messages");
		}
		ktap_result(cases[i].name, res, rh_skip_reason);
	}
	cg_destroy_free(&top);
	return ktap_exit_code();
}
