// SPDX-License-Identifier: GPL-2.0
/*
 * Memory soak: for --seconds, memcgs are created and removed continuously
 * below one top cgroup while stress-ng runs memory, page cache, mmap and
 * fork stressors inside them, then the system must be back in order.
 *
 * During the soak (all below rh_soak_<pid>):
 *   gen<N>/lim<N>  --slots concurrent generations, each one memcg running
 *                  one stress-ng (a rotating mix of --vm --page-in, --hdd,
 *                  --readahead, --seek, --mmap --mmap-file on ext4 and on
 *                  tmpfs, --fork with --vm, --memfd, --mmapmany) for 5-15 s,
 *                  removed when it exits.  Every third one (lim<N>) has
 *                  memory.max = --limit-mb and runs a --vm worker of twice
 *                  that (--oomable) next to a file stressor: it is meant to
 *                  hit its limit; every other of those also has
 *                  memory.swap.max = 0, so it OOMs instead of swapping.
 *   q<N>           a churner creates a memcg, has a process in it write
 *                  and map a range of shared files (ext4 and tmpfs), and
 *                  removes it, again and again (page cache left to
 *                  zombies).
 *   live           a reader that keeps reading and mapping the shared
 *                  files (with this series, it is whom the zombies' page
 *                  cache is recharged to).
 * The stress-ng processes are moved into their memcg by this program
 * (stress-ng 0.15 has no cgroup stressor); their output goes to a log
 * file (its path is printed).
 *
 * Cases (one KTAP line each, all judged on the same soak):
 *   soak_churn        the soak ran: stress-ng could be executed, each mix
 *                     passed a --dry-run, generations and churn memcgs
 *                     were created and removed, reader and churner ran
 *   oom_confined      OOM kills only in the lim<N> memcgs: every other
 *                     memcg's memory.events oom_kill is 0, and the
 *                     /proc/vmstat oom_kill delta equals the sum over the
 *                     lim<N> memcgs (no kill outside the soak's memcgs)
 *   kernel_log        no suspicious kernel log line (cgutil's list, as in
 *                     kmsg_scan()), except the OOM reports of lim<N>
 *                     memcgs (a report counts as expected when its
 *                     "oom-kill:constraint=CONSTRAINT_MEMCG" line names a
 *                     lim<N> memcg as oom_memcg)
 *   recharge_counters recharge_pgs_scanned >= moved + cancelled, over the
 *                     soak and in total (SKIP without the sysctl)
 *   memcgs_freed      after the soak, with the files deleted, every
 *                     removed memcg is freed once memory is reclaimed
 *                     (cg_leak_check(), --leak-timeout)
 *   memavailable      MemAvailable (after sync and drop_caches 3) is back
 *                     to at least its value before the soak minus the
 *                     tolerance (--mem-tolerance-mb, default the larger of
 *                     64 MB and 5% of MemTotal), polled for up to 30 s
 *
 * Without stress-ng every case SKIPs, saying so.  Numbers are printed as
 * "# " diagnostics and one "# observe soak_churn" line (selftests/README).
 * Output is KTAP; exit 0 pass, 1 fail, 4 all skipped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/cgutil.h"
#include "../lib/observe.h"

#define SCRATCH_DIR	"/mnt/rhscratch"
#define SHMEM_DIR	"/run/rhtmp"
#define MAX_SLOTS	16
#define NR_SHARED	4
#define SHARED_LEN	RH_MB(8)

enum { C_CHURN, C_OOM, C_KLOG, C_COUNTERS, C_FREED, C_MEMAVAIL, NR_CASES };

static const char * const case_names[NR_CASES] = {
	"soak_churn", "oom_confined", "kernel_log", "recharge_counters",
	"memcgs_freed", "memavailable",
};

/* ---------------------------------------------------------------- options */

static int seconds = 120;
static int nr_slots = 4;
static long limit = RH_MB(32);
static long mem_tol = -1;		/* -1: max(64 MB, 5% of MemTotal) */
static long leak_timeout_ms = 60000;

/* ------------------------------------------------------------------ state */

static char *top, *live;
static char ext4_dir[200], tmpfs_dir[200], private_mnt[128];
static char logpath[PATH_MAX];
static char shared[2 * NR_SHARED][PATH_MAX];
static int nr_shared;
static long deadline;

/* Written by the churner and reader children. */
struct soak_shared {
	long quick_made, quick_failed, quick_oom_kill;
	long reader_bytes, reader_passes, reader_failed;
};
static struct soak_shared *sh;

/* --------------------------------------------------------------- stress-ng */

enum { D_NONE, D_EXT4, D_TMPFS };

struct mix {
	const char *name;
	const char *args[12];
	int dir;
	bool file;	/* usable next to --vm in a limited memcg */
	bool ok;	/* passed --dry-run */
};

static struct mix mixes[] = {
	{ "vm+page-in", { "--vm", "1", "--vm-bytes", "48M", "--vm-keep",
			  "--page-in", NULL }, D_NONE, false },
	{ "hdd", { "--hdd", "1", "--hdd-bytes", "32M", NULL }, D_EXT4, true },
	{ "readahead", { "--readahead", "1", "--readahead-bytes", "32M", NULL },
	  D_EXT4, true },
	{ "seek", { "--seek", "1", "--seek-size", "32M", NULL }, D_EXT4, true },
	{ "mmap-file-ext4", { "--mmap", "1", "--mmap-bytes", "32M",
			      "--mmap-file", NULL }, D_EXT4, true },
	{ "mmap-file-tmpfs", { "--mmap", "1", "--mmap-bytes", "32M",
			       "--mmap-file", NULL }, D_TMPFS, true },
	{ "fork+vm", { "--fork", "1", "--fork-max", "8", "--vm", "1",
		       "--vm-bytes", "16M", NULL }, D_NONE, false },
	{ "memfd", { "--memfd", "1", "--memfd-bytes", "16M", "--memfd-fds",
		     "16", NULL }, D_NONE, true },
	{ "mmapmany", { "--mmapmany", "1", NULL }, D_NONE, false },
};

#define NR_MIXES ((int)(sizeof(mixes) / sizeof(mixes[0])))

static bool find_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX], *dirs, *d, *save = NULL;
	bool found = false;

	dirs = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (d = strtok_r(dirs, ":", &save); d && !found;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/%s", d, prog);
		found = access(buf, X_OK) == 0;
	}
	free(dirs);
	return found;
}

static const char *mix_dir(const struct mix *m)
{
	if (m->dir == D_EXT4 && ext4_dir[0])
		return ext4_dir;
	if (m->dir == D_TMPFS || !ext4_dir[0])
		return tmpfs_dir;
	return ext4_dir;
}

/*
 * argv: stress-ng --timeout Ns --temp-path DIR <mix> [--vm ... --oomable]
 * @vm_bytes > 0 adds a --vm worker of that size (limited memcgs).
 */
static int build_argv(const char **argv, char *tbuf, char *vbuf,
		      const struct mix *m, int secs, long vm_bytes)
{
	int n = 0, i;

	argv[n++] = "stress-ng";
	argv[n++] = "--timeout";
	sprintf(tbuf, "%ds", secs);
	argv[n++] = tbuf;
	argv[n++] = "--temp-path";
	argv[n++] = mix_dir(m);
	for (i = 0; m->args[i]; i++)
		argv[n++] = m->args[i];
	if (vm_bytes > 0) {
		sprintf(vbuf, "%ldM", vm_bytes >> 20);
		argv[n++] = "--vm";
		argv[n++] = "1";
		argv[n++] = "--vm-bytes";
		argv[n++] = vbuf;
		argv[n++] = "--vm-keep";
		argv[n++] = "--oomable";
	}
	argv[n] = NULL;
	return n;
}

/* Starts stress-ng (in @cg when not NULL); output appended to the log. */
static pid_t spawn(const char *cg, const char **argv)
{
	pid_t pid;
	int fd;

	fflush(stdout);
	pid = fork();
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (cg && cg_enter_current(cg))
		_exit(126);
	fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execvp(argv[0], (char * const *)argv);
	_exit(127);
}

/* Each mix must be accepted by this stress-ng (--dry-run). */
static int check_mixes(void)
{
	const char *argv[32];
	char tbuf[16], vbuf[16];
	int i, status, good = 0;
	pid_t pid;

	for (i = 0; i < NR_MIXES; i++) {
		build_argv(argv, tbuf, vbuf, &mixes[i], 1, mixes[i].file ?
			   2 * limit : 0);
		argv[0] = "stress-ng";
		/* insert --dry-run after argv[0] */
		memmove(&argv[2], &argv[1], sizeof(argv) - 2 * sizeof(argv[0]));
		argv[1] = "--dry-run";
		pid = spawn(NULL, argv);
		mixes[i].ok = pid > 0 && waitpid(pid, &status, 0) == pid &&
			      WIFEXITED(status) && !WEXITSTATUS(status);
		if (!mixes[i].ok)
			ktap_diag("stress-ng rejects the mix %s (--dry-run exit %d): dropped",
				  mixes[i].name,
				  pid > 0 && WIFEXITED(status) ?
				  WEXITSTATUS(status) : -1);
		good += mixes[i].ok;
	}
	return good;
}

/* ------------------------------------------------------------- generations */

struct gen {
	char *cg;
	pid_t pid;
	bool limited, noswap;
	int mix;
	long n, start;
};

static struct gen slots[MAX_SLOTS];

static struct {
	long started, finished, limited, noswap, destroy_failed;
	long exec_failed, signalled, status[8], status_other;
	long lim_oom_kill, lim_oom, lim_max;
	long other_oom_kill;
	long mix_runs[16];
} st;

static void start_gen(struct gen *g, long n, int secs)
{
	const char *argv[32];
	char name[32], tbuf[16], vbuf[16];
	int i, m;

	g->n = n;
	g->limited = n % 3 == 2;
	g->noswap = g->limited && (n / 3) % 2 == 0;
	snprintf(name, sizeof(name), "%s%ld", g->limited ? "lim" : "gen", n);
	g->cg = cg_join(top, name);
	if (!g->cg || cg_create(g->cg)) {
		ktap_diag("soak: cannot create %s: %s", name, strerror(errno));
		free(g->cg);
		g->cg = NULL;
		g->pid = -1;
		return;
	}
	if (g->limited) {
		cg_write_long(g->cg, "memory.max", limit);
		if (g->noswap)
			cg_write(g->cg, "memory.swap.max", "0");
	}
	/*
	 * The next usable mix (limited: the next file mix), each kind
	 * rotating through the table on its own.
	 */
	m = (g->limited ? st.limited : st.started - st.limited) % NR_MIXES;
	for (i = 0; i < NR_MIXES; i++, m = (m + 1) % NR_MIXES)
		if (mixes[m].ok && (!g->limited || mixes[m].file))
			break;
	if (i == NR_MIXES) {
		g->pid = -1;
		cg_destroy_free(&g->cg);
		return;
	}
	g->mix = m;
	build_argv(argv, tbuf, vbuf, &mixes[m], secs,
		   g->limited ? 2 * limit : 0);
	g->start = now_ms();
	g->pid = spawn(g->cg, argv);
	st.started++;
	st.limited += g->limited;
	st.noswap += g->noswap;
	st.mix_runs[m]++;
}

static void finish_gen(struct gen *g, int status)
{
	long oom_kill = cg_read_key(g->cg, "memory.events", "oom_kill");
	long oom = cg_read_key(g->cg, "memory.events", "oom");
	long max = cg_read_key(g->cg, "memory.events", "max");

	st.finished++;
	if (WIFEXITED(status)) {
		int c = WEXITSTATUS(status);

		if (c == 127 || c == 126)
			st.exec_failed++;
		else if (c < 8)
			st.status[c]++;
		else
			st.status_other++;
		if (c && c != 127 && c != 126)
			ktap_diag("soak: stress-ng %s in %s exited %d after %ld ms",
				  mixes[g->mix].name, g->cg, c,
				  now_ms() - g->start);
	} else {
		st.signalled++;
		ktap_diag("soak: stress-ng %s in %s killed by signal %d",
			  mixes[g->mix].name, g->cg, WTERMSIG(status));
	}
	if (g->limited) {
		st.lim_oom_kill += oom_kill > 0 ? oom_kill : 0;
		st.lim_oom += oom > 0 ? oom : 0;
		st.lim_max += max > 0 ? max : 0;
	} else if (oom_kill > 0) {
		st.other_oom_kill += oom_kill;
		ktap_diag("soak: unexpected OOM kill: %s (no limit) memory.events oom_kill=%ld",
			  g->cg, oom_kill);
	}
	if (cg_destroy(g->cg)) {
		st.destroy_failed++;
		ktap_diag("soak: cannot remove %s: %s", g->cg, strerror(errno));
	}
	free(g->cg);
	g->cg = NULL;
	g->pid = -1;
}

/* ---------------------------------------------------- churner and reader */

static void quick_child(unsigned int *seed)
{
	static char buf[65536];
	const char *p = shared[rand_r(seed) % nr_shared];
	long off = (rand_r(seed) % (SHARED_LEN / RH_MB(1))) * RH_MB(1), i;
	char *m;
	int fd;

	fd = open(p, O_RDWR);
	if (fd < 0)
		_exit(1);
	memset(buf, rand_r(seed), sizeof(buf));
	for (i = 0; i < RH_MB(1); i += sizeof(buf))
		if (pwrite(fd, buf, sizeof(buf), off + i) != sizeof(buf))
			_exit(1);
	if (rand_r(seed) % 2)
		fsync(fd);
	m = mmap(NULL, SHARED_LEN, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		_exit(1);
	for (i = 0; i < SHARED_LEN; i += RH_PAGE * 4)
		(void)((volatile char *)m)[i];
	_exit(0);
}

static void churner(void)
{
	unsigned int seed = getpid();
	char name[32], *cg;
	long n = 0, k;
	int status;
	pid_t pid;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (now_ms() < deadline) {
		snprintf(name, sizeof(name), "q%ld", n++);
		cg = cg_join(top, name);
		if (!cg || cg_create(cg)) {
			__atomic_fetch_add(&sh->quick_failed, 1, __ATOMIC_SEQ_CST);
			free(cg);
			sleep_ms(200);
			continue;
		}
		pid = fork();
		if (pid == 0) {
			if (cg_enter_current(cg))
				_exit(1);
			quick_child(&seed);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid ||
		    !WIFEXITED(status) || WEXITSTATUS(status))
			__atomic_fetch_add(&sh->quick_failed, 1, __ATOMIC_SEQ_CST);
		(void)rand_r(&seed);
		k = cg_read_key(cg, "memory.events", "oom_kill");
		if (k > 0)
			__atomic_fetch_add(&sh->quick_oom_kill, k,
					   __ATOMIC_SEQ_CST);
		if (cg_destroy(cg))
			__atomic_fetch_add(&sh->quick_failed, 1, __ATOMIC_SEQ_CST);
		else
			__atomic_fetch_add(&sh->quick_made, 1, __ATOMIC_SEQ_CST);
		free(cg);
		sleep_ms(50);
	}
	_exit(0);
}

static void reader(void)
{
	static char buf[65536];
	long off, i;
	char *m;
	int f, fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (cg_enter_current(live))
		_exit(1);
	while (now_ms() < deadline) {
		for (f = 0; f < nr_shared; f++) {
			fd = open(shared[f], O_RDONLY);
			if (fd < 0) {
				__atomic_fetch_add(&sh->reader_failed, 1,
						   __ATOMIC_SEQ_CST);
				continue;
			}
			for (off = 0; off < SHARED_LEN; off += sizeof(buf))
				if (pread(fd, buf, sizeof(buf), off) <= 0)
					break;
			if (sh->reader_passes % 4 == 0) {
				m = mmap(NULL, SHARED_LEN, PROT_READ,
					 MAP_SHARED | MAP_POPULATE, fd, 0);
				if (m != MAP_FAILED) {
					for (i = 0; i < SHARED_LEN; i += RH_PAGE)
						(void)((volatile char *)m)[i];
					munmap(m, SHARED_LEN);
				}
			}
			close(fd);
			__atomic_fetch_add(&sh->reader_bytes, off,
					   __ATOMIC_SEQ_CST);
		}
		__atomic_fetch_add(&sh->reader_passes, 1, __ATOMIC_SEQ_CST);
		sleep_ms(100);
	}
	_exit(0);
}

/* ------------------------------------------------------------ kernel log */

/*
 * cgutil's list of suspicious messages, except OOM reports of the lim<N>
 * memcgs: the lines of a report ("invoked oom-killer", its "Call Trace:")
 * are held until its "oom-kill:constraint=" line says whose it is.
 */
struct klog {
	char expect[96];	/* "oom_memcg=/rh_soak_<pid>/lim" */
	char stats[96];		/* "Memory cgroup stats for /rh_soak_<pid>/lim" */
	bool in_oom;
	bool lim;		/* the report dumps a lim<N> memcg's stats */
	int npend, bad, oom_expected, oom_other;
	char pend[24][200];
};

static void klog_bad(struct klog *k, const char *msg)
{
	if (k->bad < 30)
		ktap_diag("kernel log: %s", msg);
	k->bad++;
}

static void klog_flush(struct klog *k, bool bad)
{
	int i;

	for (i = 0; bad && i < k->npend; i++)
		klog_bad(k, k->pend[i]);
	k->npend = 0;
	k->in_oom = false;
	k->lim = false;
}

/*
 * A report that ends without an "oom-kill:" line (no killable task left,
 * e.g. stress-ng's own processes are protected): expected if it is about a
 * lim<N> memcg.
 */
static void klog_unfinished(struct klog *k)
{
	if (k->lim)
		k->oom_expected++;
	else
		k->oom_other++;
	klog_flush(k, !k->lim);
}

static void klog_one(const char *msg, void *ctx)
{
	struct klog *k = ctx;

	if (strstr(msg, "invoked oom-killer")) {
		if (k->in_oom)
			klog_unfinished(k);
		k->in_oom = true;
	}
	if (k->in_oom && strstr(msg, k->stats))
		k->lim = true;
	if (k->in_oom && strstr(msg, "oom-kill:constraint=")) {
		bool ok = strstr(msg, "CONSTRAINT_MEMCG") &&
			  strstr(msg, k->expect);

		if (ok) {
			k->oom_expected++;
		} else {
			k->oom_other++;
			klog_bad(k, msg);
		}
		klog_flush(k, !ok);
		return;
	}
	if (!kmsg_suspicious(msg))
		return;
	if (k->in_oom && k->npend < 24)
		snprintf(k->pend[k->npend++], sizeof(k->pend[0]), "%s", msg);
	else if (!k->in_oom)
		klog_bad(k, msg);
}

/* The "# observe soak_churn phase=soak" line (selftests/README). */
static void observe_soak(int sysctl, long t0, long t_end, long max_dying,
			 const struct rh_counters *c0,
			 const struct rh_counters *c1, long oom_sys,
			 struct obs_sampler *smp)
{
	bool cnt = c0->present && c1->present;
	struct obs_line l;

	obs_begin(&l, "soak_churn", "soak");
	obs_long(&l, "sysctl", sysctl);
	obs_long(&l, "seconds", (t_end - t0) / 1000);
	obs_long(&l, "generations", st.started);
	obs_long(&l, "limited", st.limited);
	obs_long(&l, "churn_memcgs", sh->quick_made);
	obs_long(&l, "dying_max", max_dying);
	obs_long(&l, "dying_end", cg_nr_dying(top));
	obs_long(&l, "live_file", cg_stat(live, "file"));
	obs_long(&l, "live_shmem", cg_stat(live, "shmem"));
	obs_long(&l, "oom_kill_limited", st.lim_oom_kill);
	obs_long(&l, "oom_kill_other", st.other_oom_kill + sh->quick_oom_kill);
	obs_long(&l, "oom_kill_sys", oom_sys);
	obs_long(&l, "moved", cnt ? c1->moved - c0->moved : -1);
	obs_long(&l, "scanned", cnt ? c1->scanned - c0->scanned : -1);
	obs_long(&l, "cancelled", cnt ? c1->cancelled - c0->cancelled : -1);
	obs_sampler_stop(smp);
	obs_series_kv(&l, smp, t0);
	obs_end(&l);
}

/* ----------------------------------------------------------------- setup */

static long meminfo(const char *key)
{
	char k[64];
	long v;

	snprintf(k, sizeof(k), "%s:", key);
	v = read_key("/proc/meminfo", k);
	return v < 0 ? -1 : v << 10;	/* kB -> bytes */
}

static long mem_available_dropped(void)
{
	sync();
	write_str("/proc/sys/vm/drop_caches", "3");
	sleep_ms(500);
	return meminfo("MemAvailable");
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The soak's directories on ext4 and tmpfs, and the shared files. */
static int prepare_dirs(char *why, size_t len)
{
	const char *tmpfs = NULL;
	int i;

	if (on_fstype(SCRATCH_DIR, "ext4"))
		snprintf(ext4_dir, sizeof(ext4_dir), "%s/rh-soak.%d",
			 SCRATCH_DIR, getpid());
	if (on_fstype(SHMEM_DIR, "tmpfs")) {
		tmpfs = SHMEM_DIR;
	} else {
		/* in the working directory, like the scenarios' own tmpfs */
		snprintf(private_mnt, sizeof(private_mnt), "rh-soak-tmpfs.%d",
			 getpid());
		if (!unshare(CLONE_NEWNS) &&
		    !mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) &&
		    !(mkdir(private_mnt, 0700) && errno != EEXIST) &&
		    !mount("rhsoak", private_mnt, "tmpfs", 0, "size=1g"))
			tmpfs = private_mnt;
		else
			private_mnt[0] = 0;
	}
	if (!tmpfs) {
		snprintf(why, len, "no tmpfs at %s and cannot mount one",
			 SHMEM_DIR);
		return -1;
	}
	snprintf(tmpfs_dir, sizeof(tmpfs_dir), "%s/rh-soak.%d", tmpfs,
		 getpid());
	if (mkdir(tmpfs_dir, 0755) ||
	    (ext4_dir[0] && mkdir(ext4_dir, 0755))) {
		snprintf(why, len, "cannot create the soak directories: %s",
			 strerror(errno));
		return -1;
	}
	for (i = 0; i < NR_SHARED; i++) {
		snprintf(shared[nr_shared++], PATH_MAX, "%s/shared%d", tmpfs_dir,
			 i);
		if (ext4_dir[0])
			snprintf(shared[nr_shared++], PATH_MAX, "%s/shared%d",
				 ext4_dir, i);
	}
	for (i = 0; i < nr_shared; i++)
		if (fill_file(shared[i], SHARED_LEN, true)) {
			snprintf(why, len, "cannot write %s: %s", shared[i],
				 strerror(errno));
			return -1;
		}
	return 0;
}

static void cleanup_dirs(void)
{
	rm_tree(ext4_dir);
	rm_tree(tmpfs_dir);
	if (private_mnt[0]) {
		umount2(private_mnt, MNT_DETACH);
		rmdir(private_mnt);
		private_mnt[0] = 0;
	}
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-l] [options]\n"
		"  -l                     list the cases\n"
		"  --seconds N            duration of the soak (default 120)\n"
		"  --slots N              concurrent stress-ng memcgs (default 4, at most %d)\n"
		"  --limit-mb N           memory.max of the limited memcgs (default 32)\n"
		"  --mem-tolerance-mb N   MemAvailable may end this much lower than before\n"
		"                         (default: the larger of 64 MB and 5%% of MemTotal)\n"
		"  --leak-timeout MS      bound for the removed memcgs to be freed (default 60000)\n",
		prog, MAX_SLOTS);
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "slots", required_argument, NULL, 'n' },
		{ "limit-mb", required_argument, NULL, 'm' },
		{ "mem-tolerance-mb", required_argument, NULL, 'M' },
		{ "leak-timeout", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int res[NR_CASES], opt, i, sysctl, good_mixes = 0, status = 0, running;
	char why[256] = "", name[64];
	struct rh_counters c0, c1;
	struct klog klog = { 0 };
	struct obs_sampler smp = { .pid = -1 };
	long mem0 = -1, mem1 = -1, memtotal, oom_sys0 = 0, oom_sys, t0;
	long max_dying = 0, v, n_gen = 0, last_progress, last_kmsg, secs;
	long live_oom_kill, expected, unexpected, t_end, remaining;
	pid_t churn_pid = -1, reader_pid = -1;
	int kfd = -1;

	while ((opt = getopt_long(argc, argv, "lh", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			for (i = 0; i < NR_CASES; i++)
				printf("%s\n", case_names[i]);
			return 0;
		case 's':
			seconds = atoi(optarg);
			break;
		case 'n':
			nr_slots = atoi(optarg);
			break;
		case 'm':
			limit = RH_MB(atol(optarg));
			break;
		case 'M':
			mem_tol = RH_MB(atol(optarg));
			break;
		case 'k':
			leak_timeout_ms = atol(optarg);
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (seconds < 10 || nr_slots < 1 || nr_slots > MAX_SLOTS ||
	    limit < RH_MB(8) || leak_timeout_ms < 0) {
		usage(argv[0]);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	ktap_header(NR_CASES);
	for (i = 0; i < NR_CASES; i++)
		res[i] = RH_FAIL;
	sysctl = rh_sysctl_get();
	cg_leak_lenient = sysctl != 1;
	ktap_diag("soak: %d s, %d stress-ng slots, limited memcgs at %ld MB, vm.recharge_offline_memcgs=%d%s",
		  seconds, nr_slots, limit >> 20, sysctl,
		  sysctl < 0 ? " (missing)" : "");

	if (!find_in_path("stress-ng"))
		snprintf(why, sizeof(why),
			 "stress-ng is not installed (Debian: apt-get install stress-ng)");
	else if (geteuid())
		snprintf(why, sizeof(why), "needs root");
	else if (!cg_setup_root(why, sizeof(why)) && cg_rmlog_init())
		snprintf(why, sizeof(why), "cannot map the removal log: %s",
			 strerror(errno));
	if (!why[0]) {
		snprintf(name, sizeof(name), "rh_soak_%d", getpid());
		top = cg_join(cg_root(), name);
		live = top ? cg_join(top, "live") : NULL;
		if (!live || cg_create(top) || cg_enable_memory(top) ||
		    cg_create(live))
			snprintf(why, sizeof(why), "cannot create %s: %s",
				 top ? top : name, strerror(errno));
	}
	if (!why[0]) {
		/* Before anything of the soak exists (its files included). */
		mem0 = mem_available_dropped();
		memtotal = meminfo("MemTotal");
		if (mem_tol < 0)
			mem_tol = memtotal / 20 > RH_MB(64) ?
				  memtotal / 20 : RH_MB(64);
		prepare_dirs(why, sizeof(why));
	}
	if (!why[0]) {
		sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (sh == MAP_FAILED)
			snprintf(why, sizeof(why), "mmap: %s", strerror(errno));
	}
	if (why[0]) {
		for (i = 0; i < NR_CASES; i++)
			ktap_result(case_names[i], RH_SKIP, why);
		goto cleanup;
	}
	snprintf(logpath, sizeof(logpath), "%s/rh-soak-stress-ng.%d.log",
		 ext4_dir[0] ? SCRATCH_DIR : "/tmp", getpid());
	ktap_diag("soak: files in %s%s%s, stress-ng log %s", tmpfs_dir,
		  ext4_dir[0] ? " and " : " (no ext4 scratch disk)", ext4_dir,
		  logpath);
	ktap_diag("soak: MemTotal %ld MB, SwapTotal %ld MB, SwapFree %ld MB",
		  meminfo("MemTotal") >> 20, meminfo("SwapTotal") >> 20,
		  meminfo("SwapFree") >> 20);
	if (meminfo("SwapTotal") <= 0)
		ktap_diag("soak: no swap (guest-setup.sh enables it): limited memcgs with swap allowed OOM too");
	good_mixes = check_mixes();

	/* Before: */
	kfd = kmsg_open();
	kmsg_read(kfd, klog_one, &klog);
	klog = (struct klog){ 0 };
	snprintf(klog.expect, sizeof(klog.expect), "oom_memcg=/%s/lim", name);
	snprintf(klog.stats, sizeof(klog.stats),
		 "Memory cgroup stats for /%s/lim", name);
	ktap_diag("soak: MemAvailable before %ld MB (after drop_caches), tolerance %ld MB",
		  mem0 >> 20, mem_tol >> 20);
	rh_counters_read(&c0);
	oom_sys0 = obs_oom_kill_sys();

	t0 = now_ms();
	deadline = good_mixes ? t0 + seconds * 1000L : t0;
	if (obs_sampler_start(&smp, top, 1000))
		ktap_diag("soak: cannot start the dying-count sampler");
	fflush(stdout);
	if (good_mixes) {
		churn_pid = fork();
		if (churn_pid == 0)
			churner();
		reader_pid = fork();
		if (reader_pid == 0)
			reader();
	}
	for (i = 0; i < nr_slots; i++)
		slots[i].pid = -1;
	last_progress = last_kmsg = now_ms();
	for (;;) {
		running = 0;
		for (i = 0; i < nr_slots; i++) {
			struct gen *g = &slots[i];

			if (g->pid > 0 &&
			    waitpid(g->pid, &status, WNOHANG) == g->pid)
				finish_gen(g, status);
			remaining = deadline - now_ms();
			if (g->pid <= 0 && good_mixes && remaining > 3000) {
				secs = 5 + rand() % 11;
				if (secs * 1000 > remaining)
					secs = remaining / 1000;
				start_gen(g, n_gen++, secs);
			}
			running += g->pid > 0;
		}
		v = cg_nr_dying(top);
		if (v > max_dying)
			max_dying = v;
		if (now_ms() - last_kmsg >= 5000) {
			kmsg_read(kfd, klog_one, &klog);
			last_kmsg = now_ms();
		}
		if (now_ms() - last_progress >= 30000) {
			ktap_diag("soak: t=%lds generations %ld, churn memcgs %ld, dying %ld, MemAvailable %ld MB, SwapFree %ld MB",
				  (now_ms() - t0) / 1000, st.started,
				  sh->quick_made, v,
				  meminfo("MemAvailable") >> 20,
				  meminfo("SwapFree") >> 20);
			last_progress = now_ms();
		}
		if (now_ms() >= deadline && !running)
			break;
		/* stress-ng overran its --timeout by a minute: kill it. */
		if (now_ms() > deadline + 60000) {
			for (i = 0; i < nr_slots; i++) {
				if (slots[i].pid <= 0)
					continue;
				ktap_diag("soak: stress-ng in %s overran its timeout: killed",
					  slots[i].cg);
				cg_write(slots[i].cg, "cgroup.kill", "1");
				waitpid(slots[i].pid, &status, 0);
				finish_gen(&slots[i], status);
			}
		}
		sleep_ms(200);
	}
	t_end = now_ms();
	for (i = 0; i < 2; i++) {
		pid_t p = i ? reader_pid : churn_pid;

		if (p > 0 && (waitpid(p, &status, 0) != p ||
			      !WIFEXITED(status) || WEXITSTATUS(status))) {
			ktap_diag("soak: the %s failed (status 0x%x)",
				  i ? "reader" : "churner", status);
			if (i)
				sh->reader_failed++;
			else
				sh->quick_failed++;
		}
	}
	live_oom_kill = cg_read_key(live, "memory.events", "oom_kill");
	oom_sys = obs_oom_kill_sys() - oom_sys0;
	expected = st.lim_oom_kill;
	unexpected = st.other_oom_kill + sh->quick_oom_kill +
		     (live_oom_kill > 0 ? live_oom_kill : 0);
	rh_counters_read(&c1);

	/* soak_churn */
	ktap_diag("soak: %ld generations (%ld limited, %ld of them without swap), %ld churn memcgs (%ld failures), reader %ld MB in %ld passes",
		  st.started, st.limited, st.noswap, sh->quick_made,
		  sh->quick_failed, sh->reader_bytes >> 20, sh->reader_passes);
	ktap_diag("soak: stress-ng exits: 0:%ld 1:%ld 2:%ld 3:%ld 4:%ld 5:%ld 6:%ld 7:%ld other:%ld signalled:%ld exec-failed:%ld",
		  st.status[0], st.status[1], st.status[2], st.status[3],
		  st.status[4], st.status[5], st.status[6], st.status[7],
		  st.status_other, st.signalled, st.exec_failed);
	for (i = 0; i < NR_MIXES; i++)
		if (st.mix_runs[i])
			ktap_diag("soak: mix %s ran %ld times", mixes[i].name,
				  st.mix_runs[i]);
	ktap_diag("soak: most memcgs dying at once: %ld", max_dying);
	if (good_mixes < NR_MIXES)
		res[C_CHURN] = rh_fail("%d of %d stress-ng mixes rejected by this stress-ng (see above)",
				       NR_MIXES - good_mixes, NR_MIXES);
	else if (st.exec_failed)
		res[C_CHURN] = rh_fail("stress-ng could not be executed %ld times",
				       st.exec_failed);
	else if (!st.started || !sh->quick_made || !sh->reader_passes)
		res[C_CHURN] = rh_fail("the soak did not run: %ld generations, %ld churn memcgs, %ld reader passes",
				       st.started, sh->quick_made,
				       sh->reader_passes);
	else if (sh->quick_failed || sh->reader_failed || st.destroy_failed)
		res[C_CHURN] = rh_fail("churner failures %ld, reader failures %ld, memcgs not removable %ld",
				       sh->quick_failed, sh->reader_failed,
				       st.destroy_failed);
	else
		res[C_CHURN] = RH_PASS;
	observe_soak(sysctl, t0, t_end, max_dying, &c0, &c1, oom_sys, &smp);
	ktap_result(case_names[C_CHURN], res[C_CHURN], NULL);

	/* oom_confined */
	ktap_diag("soak: limited memcgs: memory.events max %ld, oom %ld, oom_kill %ld; other memcgs oom_kill %ld (generations %ld, churn %ld, live %ld); /proc/vmstat oom_kill +%ld",
		  st.lim_max, st.lim_oom, st.lim_oom_kill, unexpected,
		  st.other_oom_kill, sh->quick_oom_kill, live_oom_kill, oom_sys);
	if (unexpected)
		res[C_OOM] = rh_fail("%ld OOM kills in memcgs without a limit",
				     unexpected);
	else if (oom_sys != expected)
		res[C_OOM] = rh_fail("/proc/vmstat oom_kill grew by %ld, the limited memcgs account for %ld: %ld kills outside the soak's limited memcgs",
				     oom_sys, expected, oom_sys - expected);
	else
		res[C_OOM] = RH_PASS;
	ktap_result(case_names[C_OOM], res[C_OOM], NULL);

	/* kernel_log */
	kmsg_read(kfd, klog_one, &klog);
	if (klog.in_oom)
		klog_unfinished(&klog);
	ktap_diag("soak: kernel log: %d OOM reports of limited memcgs, %d other OOM reports, %d suspicious lines",
		  klog.oom_expected, klog.oom_other, klog.bad);
	res[C_KLOG] = klog.bad ? rh_fail("%d suspicious kernel log lines",
					 klog.bad) : RH_PASS;
	ktap_result(case_names[C_KLOG], res[C_KLOG], NULL);

	/* recharge_counters */
	if (sysctl < 0) {
		res[C_COUNTERS] = rh_skip("the kernel has no vm.recharge_offline_memcgs");
	} else if (!c0.present || !c1.present) {
		res[C_COUNTERS] = rh_fail("recharge_pgs_* missing from /proc/vmstat");
	} else {
		long ds = c1.scanned - c0.scanned, dm = c1.moved - c0.moved;
		long dc = c1.cancelled - c0.cancelled;

		ktap_diag("soak: recharge_pgs_scanned +%ld moved +%ld cancelled +%ld (totals %ld/%ld/%ld)",
			  ds, dm, dc, c1.scanned, c1.moved, c1.cancelled);
		if (ds < dm + dc || c1.scanned < c1.moved + c1.cancelled)
			res[C_COUNTERS] = rh_fail("scanned >= moved + cancelled does not hold");
		else
			res[C_COUNTERS] = RH_PASS;
	}
	ktap_result(case_names[C_COUNTERS], res[C_COUNTERS], rh_skip_reason);

	/* memcgs_freed: delete the files, then every removed memcg must go. */
	cleanup_dirs();
	unlink(logpath);
	res[C_FREED] = cg_leak_check("memcgs_freed", top, 0, leak_timeout_ms) ?
		       RH_PASS :
		       rh_fail("removed memcgs stay dying after reclaim");
	ktap_result(case_names[C_FREED], res[C_FREED], NULL);

	/* memavailable */
	for (v = now_ms();;) {
		mem1 = mem_available_dropped();
		if (mem1 >= mem0 - mem_tol || now_ms() - v > 30000)
			break;
		sleep_ms(2000);
	}
	ktap_diag("soak: MemAvailable %ld MB before, %ld MB after (%+ld MB, tolerance %ld MB); Slab %ld MB, Percpu %ld MB, Shmem %ld MB, SwapFree %ld MB",
		  mem0 >> 20, mem1 >> 20, (mem1 - mem0) >> 20, mem_tol >> 20,
		  meminfo("Slab") >> 20, meminfo("Percpu") >> 20,
		  meminfo("Shmem") >> 20, meminfo("SwapFree") >> 20);
	res[C_MEMAVAIL] = mem1 >= mem0 - mem_tol ? RH_PASS :
			  rh_fail("MemAvailable %ld MB below its value before the soak (tolerance %ld MB)",
				  (mem0 - mem1) >> 20, mem_tol >> 20);
	ktap_result(case_names[C_MEMAVAIL], res[C_MEMAVAIL], NULL);
cleanup:
	obs_sampler_free(&smp);
	for (i = 0; i < nr_slots; i++)
		if (slots[i].pid > 0)
			kill(slots[i].pid, SIGKILL);
	if (top)
		cg_destroy_free(&top);
	free(live);
	cleanup_dirs();
	if (kfd >= 0)
		close(kfd);
	return ktap_exit_code();
}
