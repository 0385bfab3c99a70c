/* SPDX-License-Identifier: GPL-2.0 */
/*
 * "# observe" lines: what happened to the memory of a removed memcg, in a
 * form that compares kernels that recharge it (this series), reparent it to
 * the parent at offline (upstream, 7.x) or keep it in the zombie (6.12).
 * The format is documented in selftests/README ("Observe lines").
 *
 *   # observe <case> key=value key=value ...
 *
 * One line per case and phase (key phase= when a case has several); values
 * have no spaces; sizes in bytes, times in ms, -1 when not known.
 */
#ifndef RH_OBSERVE_H
#define RH_OBSERVE_H

#include <stdbool.h>
#include <sys/types.h>

#include "cgutil.h"

/* ---------------------------------------------------------------- a line */

struct obs_line {
	char buf[12288];
	size_t len;
};

void obs_begin(struct obs_line *l, const char *casename, const char *phase);
void obs_kv(struct obs_line *l, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void obs_long(struct obs_line *l, const char *key, long v);
/* Prints the line ("# observe ...") and resets it. */
void obs_end(struct obs_line *l);

/* ------------------------------------------------- nr_dying over time */

/*
 * A forked process (in the caller's cgroup, never in the observed one)
 * that reads @cg's nr_dying_descendants every @period_ms into shared
 * memory.  When its buffer is full it keeps every other sample and
 * doubles the period, so a long run keeps its whole span.  Stop it before
 * @cg is removed.
 */
#define OBS_SAMPLES	256

struct obs_series {
	int period_ms;
	int n;
	long t[OBS_SAMPLES];	/* now_ms() of each sample */
	long v[OBS_SAMPLES];	/* nr_dying_descendants, -1 unreadable */
	int stop;
};

struct obs_sampler {
	pid_t pid;
	struct obs_series *s;	/* shared with the sampler */
};

int obs_sampler_start(struct obs_sampler *smp, const char *cg, int period_ms);
/* Stops the sampler (its samples stay readable until obs_sampler_free()). */
void obs_sampler_stop(struct obs_sampler *smp);
void obs_sampler_free(struct obs_sampler *smp);
/*
 * First time (ms after @t_ref) at which a sample at or after @t_ref was
 * <= @base, -1 if none.
 */
long obs_series_clear_ms(const struct obs_sampler *smp, long t_ref, long base);
/*
 * obs_series_clear_ms(), or if no sample shows it yet but @cg's count is
 * <= @base now, the time until now; -1 if it is not.
 */
long obs_nodying_ms(const struct obs_sampler *smp, const char *cg, long t_ref,
		    long base);
/*
 * Adds dying_period_ms=P dying=T:C,T:C,... (T in ms after @t_ref, samples
 * at or after @t_ref - P) to @l.
 */
void obs_series_kv(struct obs_line *l, const struct obs_sampler *smp,
		   long t_ref);

/* ------------------------------------------------ common measurements */

/*
 * Where the removed memory is.  @residual: the parent's memory.stat key
 * minus the sum of its live children's (what is charged to the parent
 * itself plus to dead descendants); @dying, @base: the parent's
 * nr_dying_descendants now and before the removal.  With no memcg dying
 * beyond @base nothing can be held by a dead memcg, so all of @residual
 * is the parent's own: parent=R dead=0 split=exact.  Otherwise the two
 * cannot be told apart from userspace (a dead memcg's pages count in its
 * parent's hierarchical stats, and /proc/kpagecgroup reports the nearest
 * online ancestor for both): dead=R (an upper bound), parent=0 (a lower
 * bound), split=bound.
 */
void obs_split_kv(struct obs_line *l, long residual, long dying, long base);

/* recharge counters since @before: moved= scanned= cancelled= (pages, -1 absent). */
void obs_counters_kv(struct obs_line *l, const struct rh_counters *before);

/*
 * oom= oom_kill= from @cg's memory.events (hierarchical: the removed
 * children and the users below @cg are included) and oom_kill_sys= (the
 * /proc/vmstat oom_kill delta since @sys0; -1 if @sys0 < 0).
 */
void obs_oom_kv(struct obs_line *l, const char *cg, long sys0);

/* CLOCK_MONOTONIC in microseconds. */
long obs_now_us(void);
/*
 * access=@kind access_bytes= access_us= access_mbps= (MiB/s, 2 decimals):
 * the pass of the user that could trigger a move (-1: none).
 */
void obs_access_kv(struct obs_line *l, const char *kind, long bytes, long us);

/* /proc/vmstat oom_kill, 0 if absent. */
long obs_oom_kill_sys(void);

#endif
