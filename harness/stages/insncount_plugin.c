// SPDX-License-Identifier: GPL-2.0
/*
 * insncount: a QEMU TCG plugin that counts the guest instructions executed
 * between two markers the guest itself executes (recharge-harness bench).
 *
 * Counting: every translated block gets an execution callback that adds the
 * block's instruction count to its vCPU's counter, and to the vCPU's kernel
 * counter when the block's address is in the upper half (x86-64 kernel
 * text).  A block left early (an exception in its middle) is counted
 * whole: a constant per event, the same on every run.
 *
 * Markers: the 7-byte no-op "nopl disp32(%rax)" (0f 1f 80 + disp32) whose
 * displacement is 0x52480000 | op << 8 | id ("RH"), op 1 = start, 2 = stop,
 * id 0..255.  It does nothing on any x86-64 CPU; here, only instructions
 * with exactly these bytes get a callback (found at translation time), so
 * markers cost nothing elsewhere.  On a stop the plugin appends one line
 * to its output file (flushed at once):
 *
 *   window id=ID seq=N vcpu=V insns=I kernel=K all=A all_kernel=AK
 *          [migrated=1] [error=...]
 *
 * insns/kernel: instructions of the stopping vCPU between start and stop
 * (everything that ran on it: the program, the kernel on its behalf,
 * interrupts); all/all_kernel: the same summed over every vCPU.
 *
 * Arguments (-plugin insncount.so,out=PATH[,kernel_split=off]):
 *   out=PATH   output file (default: QEMU's log via qemu_plugin_outs)
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define INSNCOUNT_FORMAT	1
#define MARK_MAGIC		0x52480000u
#define MARK_MAGIC_MASK		0xffff0000u
#define MARK_START		1
#define MARK_STOP		2
#define MAX_IDS			256

struct vcpu_count {
	uint64_t insns;
	uint64_t kinsns;
	char pad[48];		/* one cache line per vCPU */
};

struct window {
	bool open;
	int vcpu;
	uint64_t insns, kinsns;	/* of @vcpu at the start */
	uint64_t all, all_k;	/* of every vCPU at the start */
};

static struct vcpu_count *counts;
static int nr_vcpus;
static struct window windows[MAX_IDS];
static uint64_t seq;
static FILE *out;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void emit(const char *line)
{
	if (out) {
		fputs(line, out);
		fflush(out);
	} else {
		qemu_plugin_outs(line);
	}
}

static void sum_all(uint64_t *all, uint64_t *all_k)
{
	int i;

	*all = *all_k = 0;
	for (i = 0; i < nr_vcpus; i++) {
		*all += __atomic_load_n(&counts[i].insns, __ATOMIC_RELAXED);
		*all_k += __atomic_load_n(&counts[i].kinsns, __ATOMIC_RELAXED);
	}
}

static void tb_exec_user(unsigned int vcpu, void *udata)
{
	counts[vcpu].insns += (uintptr_t)udata;
}

static void tb_exec_kernel(unsigned int vcpu, void *udata)
{
	counts[vcpu].insns += (uintptr_t)udata;
	counts[vcpu].kinsns += (uintptr_t)udata;
}

static void marker(unsigned int vcpu, void *udata)
{
	unsigned int code = (uintptr_t)udata, op = (code >> 8) & 0xff,
		     id = code & 0xff;
	struct window *w = &windows[id];
	uint64_t all, all_k;
	char line[256];

	pthread_mutex_lock(&lock);
	sum_all(&all, &all_k);
	if (op == MARK_START) {
		if (w->open) {
			snprintf(line, sizeof(line),
				 "window id=%u seq=%" PRIu64 " vcpu=%u error=restarted\n",
				 id, ++seq, vcpu);
			emit(line);
		}
		w->open = true;
		w->vcpu = vcpu;
		w->insns = counts[vcpu].insns;
		w->kinsns = counts[vcpu].kinsns;
		w->all = all;
		w->all_k = all_k;
	} else if (op == MARK_STOP) {
		if (!w->open) {
			snprintf(line, sizeof(line),
				 "window id=%u seq=%" PRIu64 " vcpu=%u error=no-start\n",
				 id, ++seq, vcpu);
		} else {
			/* Migrated: this vCPU's delta is meaningless, "all" still holds. */
			bool moved = (int)vcpu != w->vcpu;

			snprintf(line, sizeof(line),
				 "window id=%u seq=%" PRIu64 " vcpu=%u insns=%" PRIu64
				 " kernel=%" PRIu64 " all=%" PRIu64 " all_kernel=%" PRIu64 "%s\n",
				 id, ++seq, vcpu,
				 moved ? 0 : counts[vcpu].insns - w->insns,
				 moved ? 0 : counts[vcpu].kinsns - w->kinsns,
				 all - w->all, all_k - w->all_k,
				 moved ? " migrated=1" : "");
			w->open = false;
		}
		emit(line);
	}
	pthread_mutex_unlock(&lock);
}

/* The marker's code (op << 8 | id), or 0 if @insn is not a marker. */
static unsigned int marker_code(struct qemu_plugin_insn *insn)
{
	const uint8_t *b;
	uint32_t disp;

	if (qemu_plugin_insn_size(insn) != 7)
		return 0;
	b = qemu_plugin_insn_data(insn);
	if (b[0] != 0x0f || b[1] != 0x1f || b[2] != 0x80)
		return 0;
	disp = b[3] | b[4] << 8 | b[5] << 16 | (uint32_t)b[6] << 24;
	if ((disp & MARK_MAGIC_MASK) != MARK_MAGIC)
		return 0;
	return disp & 0xffff;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb), i;
	bool kernel = qemu_plugin_tb_vaddr(tb) >> 63;
	unsigned int code;

	qemu_plugin_register_vcpu_tb_exec_cb(tb, kernel ? tb_exec_kernel : tb_exec_user,
					     QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
	if (kernel)
		return;
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);

		code = marker_code(insn);
		if (code)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, marker,
							       QEMU_PLUGIN_CB_NO_REGS,
							       (void *)(uintptr_t)code);
	}
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
	char line[160];
	int i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nr_vcpus; i++) {
		snprintf(line, sizeof(line), "total vcpu=%d insns=%" PRIu64 " kernel=%" PRIu64 "\n",
			 i, counts[i].insns, counts[i].kinsns);
		emit(line);
	}
	if (out)
		fclose(out);
	out = NULL;
	pthread_mutex_unlock(&lock);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
					   int argc, char **argv)
{
	char line[200];
	int i;

	if (!info->system_emulation || strcmp(info->target_name, "x86_64")) {
		fprintf(stderr, "insncount: needs qemu-system-x86_64 (got %s)\n",
			info->target_name);
		return -1;
	}
	for (i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4)) {
			out = fopen(argv[i] + 4, "a");
			if (!out) {
				perror(argv[i] + 4);
				return -1;
			}
		} else {
			fprintf(stderr, "insncount: unknown argument %s\n", argv[i]);
			return -1;
		}
	}
	nr_vcpus = info->system.max_vcpus > 0 ? info->system.max_vcpus : 1;
	counts = calloc(nr_vcpus, sizeof(*counts));
	if (!counts)
		return -1;
	snprintf(line, sizeof(line), "insncount format=%d api=%d max_vcpus=%d\n",
		 INSNCOUNT_FORMAT, QEMU_PLUGIN_VERSION, nr_vcpus);
	emit(line);
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
