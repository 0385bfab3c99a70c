"""The catalogue of kernel-log reports (the table in :mod:`harness.parse.logscan`): the
lines that start a report, continue its header or end it, the frames that say nothing,
and :func:`normalize`, which makes a line comparable across runs."""

from __future__ import annotations

import re

_TS = re.compile(r"^\s*(?:<\d+>)?\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])?\s?")


def strip_timestamp(line: str) -> str:
    """``[   12.345678][  T123] text`` -> ``text`` (also ``<4>[...]`` dmesg -r form)."""
    return _TS.sub("", line, count=1).rstrip()


_LOCKDEP = (
    r"possible circular locking dependency detected|possible recursive locking detected"
    r"|inconsistent lock state|suspicious RCU usage|bad unlock balance detected"
    r"|held lock freed|lock held when returning to user space"
    r"|possible irq lock inversion dependency detected"
    r"|\S+-safe -> \S+-unsafe lock order detected|still has locks held"
    r"|lock held at task exit time|Nested lock was not taken|lock held while freeing"
)

# (kind, regex on the timestamp-stripped line, fatal).  Order matters.
_STARTS: list[tuple[str, re.Pattern[str], bool]] = [
    ("panic", re.compile(r"^Kernel panic - not syncing: (?P<what>.*)"), True),
    ("kasan", re.compile(r"^BUG: KASAN: (?P<what>\S+) in (?P<func>[\w.]+)"), False),
    ("kfence", re.compile(r"^BUG: KFENCE: (?P<what>.*)"), False),
    ("kcsan", re.compile(r"^BUG: KCSAN: (?P<what>.*)"), False),
    ("kmsan", re.compile(r"^BUG: KMSAN: (?P<what>.*)"), False),
    ("ubsan", re.compile(r"^UBSAN: (?P<what>.+?) in (?P<file>\S+?)(?::\d+)*\s*$"), False),
    ("lockdep", re.compile(rf"^(?:WARNING|BUG): (?P<what>{_LOCKDEP})"), False),
    (
        "atomic_sleep",
        re.compile(r"^BUG: (?P<what>sleeping function called from invalid context|scheduling while atomic)"),
        False,
    ),
    ("soft_lockup", re.compile(r"^(?:watchdog: )?BUG: soft lockup - CPU#\d+ stuck"), False),
    ("hard_lockup", re.compile(r"(?:^|watchdog: ).*[Hh]ard LOCKUP"), False),
    ("rcu_stall", re.compile(r"^(?:rcu: )?INFO: (?P<what>rcu_\w+ (?:self-)?detected (?:expedited )?stalls?)"), False),
    ("hung_task", re.compile(r"^INFO: task \S+ blocked for more than \d+ seconds"), False),
    ("wq_lockup", re.compile(r"^BUG: workqueue lockup"), False),
    ("bad_page", re.compile(r"^BUG: (?P<what>Bad page state|Bad page map|Bad rss-counter state)"), False),
    (
        "oops",
        re.compile(
            r"^(?:BUG: (?P<what>kernel NULL pointer dereference|unable to handle \w+(?: \w+)*"
            r"|stack guard page was hit)"
            r"|Oops: |general protection fault|invalid opcode: |divide error: |stack segment: "
            r"|PANIC: double fault|Unable to handle kernel )"
        ),
        False,
    ),
    ("bug", re.compile(r"^kernel BUG at (?P<file>[^:\s]+)"), False),
    ("kmemleak", re.compile(r"^unreferenced object 0x[0-9a-f]+"), False),
    (
        "warning",
        re.compile(
            r"^WARNING: (?:CPU: \d+ PID: \d+ at (?P<file>[^:\s]+)\S* (?P<func>[\w.]+)"
            r"|(?P<file2>[^:\s]+):\d+ at (?P<func2>[\w.]+))"
        ),
        False,
    ),
    ("warning", re.compile(r"^WARNING: "), False),
    ("oom", re.compile(r"^\S+ invoked oom-killer: "), False),
    ("bug", re.compile(r"^BUG: (?P<what>.*)"), False),
]

# Lines that continue the header of a crash report already open.
ABSORB = re.compile(
    r"^(?:#PF: |Oops: |invalid opcode: |general protection fault|BUG: unable to handle"
    r"|BUG: kernel NULL pointer|KASAN: |PGD |stack segment: |divide error: )"
)
SANITIZERS = frozenset({"kasan", "kfence", "kcsan", "kmsan", "ubsan"})
CRASH_KINDS = SANITIZERS | {"oops", "bug", "bad_page"}
END_TRACE = re.compile(r"^---\[ end (?:trace|Kernel panic)")
RULER = re.compile(r"^={20,}\s*$")
CALL_TRACE = re.compile(r"^\s*(?:Call Trace|Call trace|Backtrace|backtrace(?: \(crc [0-9a-f]+\))?):?\s*$")
FRAME = re.compile(
    r"^\s*(?:\[<[0-9a-f]+>\]\s*)?(?P<unreliable>\?\s+)?(?P<func>[A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+/0x[0-9a-f]+"
)
RIP = re.compile(r"^\s*(?:RIP: [0-9a-f]{4}:|pc : |PC is at )(?P<func>[A-Za-z_.$][\w.$]*)\+0x")
BANNER = re.compile(r"^Linux version \d")


SKIP_FRAMES = re.compile(
    r"^(?:dump_stack(?:_lvl)?|show_stack|__dump_stack|print_report|print_address_description"
    r"|kasan_report\w*|__kasan_\w+|kasan_\w+|__asan_\w+|__ubsan_handle_\w+|ubsan_\w+"
    r"|kfence_\w+|__kfence_\w+|kcsan_\w+|__tsan_\w+|kmsan_\w+|__msan_\w+"
    r"|__warn|warn_slowpath_fmt|report_bug|handle_bug|exc_invalid_op|asm_exc_invalid_op"
    r"|__might_resched|__might_sleep|__might_fault|might_alloc|__schedule_bug"
    r"|panic|nmi_cpu_backtrace|nmi_trigger_cpumask_backtrace|lockdep_\w+|__lock_acquire"
    r"|lock_acquire|lock_release|validate_chain|check_prev_add|check_prevs_add"
    r"|check_noncircular|print_circular_bug|print_usage_bug|mark_lock|print_deadlock_bug"
    r"|__schedule|schedule|schedule_timeout|schedule_preempt_disabled|io_schedule\w*"
    r"|bad_page|dump_header|dump_page|rcu_dump_cpu_stacks|print_cpu_stall"
    r"|oom_kill_process|out_of_memory|mem_cgroup_out_of_memory"
    r"|__die|die|die_addr|page_fault_oops|do_user_addr_fault|exc_page_fault|exc_general_protection"
    r"|__mutex_lock(?:_common)?|mutex_lock(?:_nested|_killable|_interruptible)?"
    r"|_raw_(?:spin|read|write)_lock\w*|down_(?:read|write)\w*|rwsem_down_\w+|__down\w*"
    r"|__pfx_\w+|ret_from_fork\w*|entry_SYSCALL_64\w*|do_syscall_64|asm_\w+)$"
)
_COMPILER_SUFFIX = re.compile(r"\.(?:isra|constprop|part|cold|llvm|lto_priv)(?:\.\d+)*")


# --------------------------------------------------------------------------- normalising

_NORM_SUBS: list[tuple[re.Pattern[str], str]] = [
    # the task that happened to hit the report is not part of the bug
    (re.compile(r"^INFO: task \S+ blocked"), "INFO: task blocked"),
    (re.compile(r"^\S+ invoked oom-killer:.*"), "invoked oom-killer"),
    (re.compile(r"^(BUG: scheduling while atomic):.*"), r"\1"),
    # where the tree was built is not part of the bug: O= builds print source paths
    # relative to the build dir ("../../worktrees/debian-6.12/mm/memcontrol.c")
    (re.compile(r"(?:\.\./)+(?:[\w.+-]+/)*?worktrees/[^/\s]+/"), ""),
    (re.compile(r"\[<[0-9a-fA-F]+>\]"), ""),
    (re.compile(r"\bCPU: \d+ (?:UID: \d+ )?PID: \d+ (?:at )?"), ""),
    (re.compile(r"\+0x[0-9a-fA-F]+/0x[0-9a-fA-F]+"), ""),
    (re.compile(r"\[[^\]]*\]"), ""),  # [task:123], [#1], [ext4], [ end trace ]
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "ADDR"),
    (re.compile(r"\b[0-9a-fA-F]{8,}\b"), "ADDR"),
    (re.compile(r"(?<![A-Za-z_0-9])\d+"), "N"),
    (re.compile(r"\s+"), " "),
]


def normalize(text: str) -> str:
    """Remove what changes from run to run: addresses, numbers, ``[...]`` brackets."""
    out = strip_timestamp(text)
    for pattern, repl in _NORM_SUBS:
        out = pattern.sub(repl, out)
    return out.strip(" ,:;")


def clean_func(name: str) -> str:
    return _COMPILER_SUFFIX.sub("", name)


def match_start(text: str) -> tuple[str, re.Match[str], bool] | None:
    for kind, pattern, fatal in _STARTS:
        m = pattern.search(text) if kind == "hard_lockup" else pattern.match(text)
        if m:
            return kind, m, fatal
    return None
