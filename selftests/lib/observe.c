// SPDX-License-Identifier: GPL-2.0
/*
 * "# observe" lines (see observe.h and selftests/README).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "observe.h"

/* ---------------------------------------------------------------- a line */

void obs_begin(struct obs_line *l, const char *casename, const char *phase)
{
	l->len = 0;
	l->buf[0] = 0;
	obs_kv(l, NULL, "%s", casename);
	if (phase)
		obs_kv(l, "phase", "%s", phase);
}

void obs_kv(struct obs_line *l, const char *key, const char *fmt, ...)
{
	size_t room = sizeof(l->buf) - l->len, i, start;
	va_list ap;
	int n;

	if (room < 2)
		return;
	start = l->len;
	if (key)
		n = snprintf(l->buf + l->len, room, " %s=", key);
	else
		n = snprintf(l->buf + l->len, room, " ");
	if (n < 0 || (size_t)n >= room)
		goto full;
	l->len += n;
	room -= n;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		goto full;
	/* A value never has blanks: the line splits on them. */
	for (i = l->len; i < l->len + n; i++)
		if (l->buf[i] == ' ' || l->buf[i] == '\t' || l->buf[i] == '\n')
			l->buf[i] = '_';
	l->len += n;
	return;
full:
	/* Drop the pair rather than print half of it. */
	l->len = start;
	l->buf[start] = 0;
}

void obs_long(struct obs_line *l, const char *key, long v)
{
	obs_kv(l, key, "%ld", v);
}

void obs_end(struct obs_line *l)
{
	printf("# observe%s\n", l->buf);
	fflush(stdout);
	l->len = 0;
	l->buf[0] = 0;
}

/* ------------------------------------------------- nr_dying over time */

static void sampler_main(struct obs_series *s, const char *cg)
{
	long next = now_ms(), v;
	int i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (!__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) {
		v = cg_nr_dying(cg);
		if (s->n == OBS_SAMPLES) {
			for (i = 0; i < OBS_SAMPLES / 2; i++) {
				s->t[i] = s->t[2 * i];
				s->v[i] = s->v[2 * i];
			}
			s->n = OBS_SAMPLES / 2;
			s->period_ms *= 2;
		}
		s->t[s->n] = now_ms();
		s->v[s->n] = v;
		__atomic_store_n(&s->n, s->n + 1, __ATOMIC_SEQ_CST);
		next += s->period_ms;
		v = next - now_ms();
		if (v > 0)
			sleep_ms(v);
		else
			next = now_ms();
	}
	_exit(0);
}

int obs_sampler_start(struct obs_sampler *smp, const char *cg, int period_ms)
{
	void *p;

	smp->pid = -1;
	smp->s = NULL;
	p = mmap(NULL, sizeof(*smp->s), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	smp->s = p;
	smp->s->period_ms = period_ms > 0 ? period_ms : 100;
	fflush(stdout);
	smp->pid = fork();
	if (smp->pid == 0)
		sampler_main(smp->s, cg);
	return smp->pid < 0 ? -1 : 0;
}

void obs_sampler_stop(struct obs_sampler *smp)
{
	if (!smp->s || smp->pid <= 0)
		return;
	__atomic_store_n(&smp->s->stop, 1, __ATOMIC_SEQ_CST);
	/* Never wait a full (doubled) period for it. */
	kill(smp->pid, SIGKILL);
	waitpid(smp->pid, NULL, 0);
	smp->pid = -1;
}

void obs_sampler_free(struct obs_sampler *smp)
{
	obs_sampler_stop(smp);
	if (smp->s)
		munmap(smp->s, sizeof(*smp->s));
	smp->s = NULL;
}

long obs_series_clear_ms(const struct obs_sampler *smp, long t_ref, long base)
{
	int i, n;

	if (!smp->s)
		return -1;
	n = __atomic_load_n(&smp->s->n, __ATOMIC_SEQ_CST);
	for (i = 0; i < n; i++)
		if (smp->s->t[i] >= t_ref && smp->s->v[i] >= 0 &&
		    smp->s->v[i] <= base)
			return smp->s->t[i] - t_ref;
	return -1;
}

long obs_nodying_ms(const struct obs_sampler *smp, const char *cg, long t_ref,
		    long base)
{
	long t = obs_series_clear_ms(smp, t_ref, base), v;

	if (t >= 0)
		return t;
	v = cg_nr_dying(cg);
	return v >= 0 && v <= base ? now_ms() - t_ref : -1;
}

void obs_series_kv(struct obs_line *l, const struct obs_sampler *smp,
		   long t_ref)
{
	char buf[OBS_SAMPLES * 20], *p = buf;
	size_t room = sizeof(buf);
	int i, n, k;

	buf[0] = 0;
	if (!smp->s) {
		obs_long(l, "dying_period_ms", -1);
		obs_kv(l, "dying", "-");
		return;
	}
	n = __atomic_load_n(&smp->s->n, __ATOMIC_SEQ_CST);
	for (i = 0; i < n; i++) {
		if (smp->s->t[i] < t_ref - smp->s->period_ms)
			continue;
		k = snprintf(p, room, "%s%ld:%ld", p == buf ? "" : ",",
			     smp->s->t[i] - t_ref, smp->s->v[i]);
		if (k < 0 || (size_t)k >= room)
			break;
		p += k;
		room -= k;
	}
	obs_long(l, "dying_period_ms", smp->s->period_ms);
	obs_kv(l, "dying", "%s", buf[0] ? buf : "-");
}

/* ------------------------------------------------ common measurements */

void obs_split_kv(struct obs_line *l, long residual, long dying, long base)
{
	if (residual == LONG_MIN + 1 || residual < -(1L << 40)) {
		obs_long(l, "parent", -1);
		obs_long(l, "dead", -1);
		obs_kv(l, "split", "unknown");
		return;
	}
	if (dying >= 0 && dying <= base) {
		obs_long(l, "parent", residual);
		obs_long(l, "dead", 0);
		obs_kv(l, "split", "exact");
	} else {
		obs_long(l, "parent", 0);
		obs_long(l, "dead", residual);
		obs_kv(l, "split", "bound");
	}
}

void obs_counters_kv(struct obs_line *l, const struct rh_counters *before)
{
	struct rh_counters now;

	rh_counters_read(&now);
	if (now.present && before->present) {
		obs_long(l, "moved", now.moved - before->moved);
		obs_long(l, "scanned", now.scanned - before->scanned);
		obs_long(l, "cancelled", now.cancelled - before->cancelled);
	} else {
		obs_long(l, "moved", -1);
		obs_long(l, "scanned", -1);
		obs_long(l, "cancelled", -1);
	}
}

long obs_oom_kill_sys(void)
{
	long v = rh_vmstat("oom_kill");

	return v < 0 ? 0 : v;
}

void obs_oom_kv(struct obs_line *l, const char *cg, long sys0)
{
	obs_long(l, "oom", cg ? cg_read_key(cg, "memory.events", "oom") : -1);
	obs_long(l, "oom_kill",
		 cg ? cg_read_key(cg, "memory.events", "oom_kill") : -1);
	obs_long(l, "oom_kill_sys", sys0 < 0 ? -1 : obs_oom_kill_sys() - sys0);
}

long obs_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000L;
}

void obs_access_kv(struct obs_line *l, const char *kind, long bytes, long us)
{
	obs_kv(l, "access", "%s", kind);
	obs_long(l, "access_bytes", bytes);
	obs_long(l, "access_us", us);
	if (bytes >= 0 && us > 0)
		obs_kv(l, "access_mbps", "%.2f", (double)bytes / (1 << 20) /
			 ((double)us / 1000000));
	else
		obs_kv(l, "access_mbps", "-1");
}
