"""Kernel-log classifier: finds oopses, sanitizer reports, lockdep splats, stalls...

Pure functions except :func:`load_ignore` (reads one file).  The catalogue
follows what syzkaller, LKP and NIPA look for:

=============  =============================================================
kind           report start (after the ``[   12.345678]`` timestamp)
=============  =============================================================
panic          ``Kernel panic - not syncing: ...`` (the only ``fatal`` kind)
reboot         a second ``Linux version ...`` banner (fatal)
kasan          ``BUG: KASAN: <type> in <func>``
kfence         ``BUG: KFENCE: ...``
kcsan, kmsan   ``BUG: KCSAN: ...``, ``BUG: KMSAN: ...``
ubsan          ``UBSAN: <kind> in <file>``
lockdep        ``WARNING: possible circular locking dependency detected``,
               recursive locking, inconsistent lock state, suspicious RCU
               usage, bad unlock balance, held lock freed, ...
atomic_sleep   ``BUG: sleeping function called from invalid context``,
               ``BUG: scheduling while atomic``
soft_lockup    ``BUG: soft lockup - CPU#N stuck for Ns!``
hard_lockup    ``watchdog: ... hard LOCKUP``
rcu_stall      ``rcu: INFO: rcu_preempt detected stalls``, self-detected,
               expedited
hung_task      ``INFO: task X:N blocked for more than N seconds.``
wq_lockup      ``BUG: workqueue lockup``
bad_page       ``BUG: Bad page state``, ``BUG: Bad page map``,
               ``BUG: Bad rss-counter state``
oops           ``BUG: kernel NULL pointer dereference``, ``BUG: unable to
               handle ...``, ``Oops: ...``, ``general protection fault``,
               ``invalid opcode:``, ``divide error:``, ``stack segment:``,
               ``PANIC: double fault``
bug            ``kernel BUG at <file>:<line>!``, any other ``BUG: ...``
kmemleak       ``unreferenced object 0x...``
warning        ``WARNING: CPU: N PID: N at <file>:<line> <func>`` (and the
               newer ``WARNING: <file>:<line> at <func>`` form)
oom            ``<task> invoked oom-killer:`` (informational, see
               :data:`INFO_KINDS`: the memcg OOM tests trigger it on purpose)
=============  =============================================================

A report is a block of lines: it starts at one of the lines above and ends at
``---[ end trace ... ]---``, at the closing ``=====`` line of sanitizer
reports, at the first ``</TASK>`` after its Call Trace, at the next report,
or after :data:`MAX_BLOCK_LINES` lines.  Header lines of the same crash
(``#PF:``, ``Oops:``, ``invalid opcode:``...) are absorbed into the block.

Signatures are normalised: no timestamps, addresses, hex values, numbers, PIDs,
CPU numbers or ``[task:pid]`` brackets; they end with up to five function
frames from the first Call Trace (helper frames such as ``dump_stack_lvl`` or
``__warn`` and ``?`` frames skipped), the RIP function first.

Findings with the same signature are reported once (``count`` tells how many).

Markers: the harness writes ``RECHARGE-HARNESS: begin <suite> <case>`` and
``RECHARGE-HARNESS: end <suite> <case>`` into the guest log (``/dev/kmsg``);
:func:`split_by_markers` and :func:`scan_by_case` assign each line to the
innermost open bracket, else to :data:`BOOT` (before the first marker) or
:data:`BETWEEN`.  ``<suite>`` is one token, ``<case>`` the rest of the line
(may contain spaces, may be empty).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BETWEEN",
    "BOOT",
    "INFO_KINDS",
    "KERNEL_SUITE",
    "MARKER",
    "MAX_BLOCK_LINES",
    "Finding",
    "is_failure",
    "load_ignore",
    "normalize",
    "scan_by_case",
    "scan_log",
    "split_by_markers",
    "strip_timestamp",
]

MARKER = "RECHARGE-HARNESS:"
KERNEL_SUITE = "kernel-log"
BOOT: tuple[str, str] = (KERNEL_SUITE, "(boot)")
BETWEEN: tuple[str, str] = (KERNEL_SUITE, "(between)")

MAX_BLOCK_LINES = 200
MAX_EXCERPT_LINES = 80
MAX_FRAMES = 5

#: Kinds that are reported but are not failures by themselves.
INFO_KINDS = frozenset({"oom"})


@dataclass(frozen=True)
class Finding:
    """One kernel-log report."""

    kind: str
    title: str
    signature: str
    line_no: int  # 1-based line number of the report's first line in the scanned text
    excerpt: str  # the report block (bounded), timestamps kept
    fatal: bool  # the kernel stopped (panic, unexpected reboot)
    count: int = 1  # how many reports with this signature were merged into this one


def is_failure(finding: Finding) -> bool:
    """Whether the finding should fail the test case it is attached to."""
    return finding.kind not in INFO_KINDS


# --------------------------------------------------------------------------- catalogue

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
_ABSORB = re.compile(
    r"^(?:#PF: |Oops: |invalid opcode: |general protection fault|BUG: unable to handle"
    r"|BUG: kernel NULL pointer|KASAN: |PGD |stack segment: |divide error: )"
)
_SANITIZERS = frozenset({"kasan", "kfence", "kcsan", "kmsan", "ubsan"})
_CRASH_KINDS = _SANITIZERS | {"oops", "bug", "bad_page"}
_END_TRACE = re.compile(r"^---\[ end (?:trace|Kernel panic)")
_RULER = re.compile(r"^={20,}\s*$")
_CALL_TRACE = re.compile(r"^\s*(?:Call Trace|Call trace|Backtrace|backtrace(?: \(crc [0-9a-f]+\))?):?\s*$")
_FRAME = re.compile(
    r"^\s*(?:\[<[0-9a-f]+>\]\s*)?(?P<unreliable>\?\s+)?(?P<func>[A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+/0x[0-9a-f]+"
)
_RIP = re.compile(r"^\s*(?:RIP: [0-9a-f]{4}:|pc : |PC is at )(?P<func>[A-Za-z_.$][\w.$]*)\+0x")
_BANNER = re.compile(r"^Linux version \d")
_MARKER_LINE = re.compile(rf"{re.escape(MARKER)} (?P<op>begin|end) (?P<suite>\S+)(?: (?P<case>.*))?$")

# Frames that say nothing about where the bug is.
_SKIP_FRAMES = re.compile(
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


def _clean_func(name: str) -> str:
    return _COMPILER_SUFFIX.sub("", name)


# --------------------------------------------------------------------------- scanning


def _match_start(text: str) -> tuple[str, re.Match[str], bool] | None:
    for kind, pattern, fatal in _STARTS:
        m = pattern.search(text) if kind == "hard_lockup" else pattern.match(text)
        if m:
            return kind, m, fatal
    return None


@dataclass
class _Block:
    kind: str
    match: re.Match[str]
    fatal: bool
    start: int  # index in the line list
    lines: list[str]
    in_trace: bool = False
    trace_done: bool = False
    task_open: bool = False  # between <TASK> and </TASK>
    ctx_depth: int = 0  # inside <IRQ>/<NMI>
    frames: list[str] = dataclasses.field(default_factory=list)
    rip: str | None = None


_CTX_OPEN = frozenset({"<IRQ>", "<NMI>", "<#DF>", "<SOFTIRQ>"})
_CTX_CLOSE = frozenset({"</IRQ>", "</NMI>", "</#DF>", "</SOFTIRQ>"})


def _block_line(block: _Block, text: str) -> bool:
    """Update ``block`` with one more of its lines; True when the block ends there."""
    stripped = text.strip()
    if block.kind in _SANITIZERS and _RULER.match(stripped):
        return True
    if _END_TRACE.match(stripped):
        return True
    if stripped == "</TASK>":
        if block.in_trace:
            block.in_trace, block.task_open, block.trace_done = False, False, True
        return block.trace_done and block.kind not in _SANITIZERS
    if not block.in_trace:
        rip = _RIP.match(text)
        if rip and block.rip is None and not block.trace_done:
            block.rip = _clean_func(rip.group("func"))
        if _CALL_TRACE.match(text) and not block.trace_done:
            block.in_trace = True
        return False
    if stripped in _CTX_OPEN:
        block.ctx_depth += 1
    elif stripped in _CTX_CLOSE:
        block.ctx_depth = max(0, block.ctx_depth - 1)
    elif stripped == "<TASK>":
        block.task_open = True
    else:
        m = _FRAME.match(text)
        if m:
            if block.ctx_depth == 0 and not m.group("unreliable"):
                block.frames.append(_clean_func(m.group("func")))
        elif not block.task_open and block.ctx_depth == 0 and block.frames:
            # a trace without <TASK> (arm64, kmemleak) ends at its first non-frame line
            block.in_trace, block.trace_done = False, True
            return block.kind not in _SANITIZERS
    return False


def _title(block: _Block, head: str, frames: list[str]) -> str:
    """A short syzkaller-style title: ``<what> in <first interesting frame>``."""
    groups = block.match.groupdict()
    where = f" in {frames[0]}" if frames else ""
    kind = block.kind
    what = groups.get("what")
    if kind == "kasan":
        return f"KASAN: {what} in {_clean_func(groups['func'])}"
    if kind == "warning":
        func = groups.get("func") or groups.get("func2")
        return f"WARNING in {_clean_func(func)}" if func else normalize(head) + where
    if kind == "ubsan":
        return f"UBSAN: {what} in {groups['file']}"
    if kind == "bug" and groups.get("file"):
        return f"kernel BUG at {groups['file']}{where}"
    if kind in ("panic", "kmemleak", "kfence", "kcsan", "kmsan"):
        return normalize(head)
    base = {
        "hung_task": "INFO: task hung",
        "soft_lockup": "BUG: soft lockup",
        "hard_lockup": "watchdog: hard LOCKUP",
        "rcu_stall": "INFO: rcu detected stall",
        "wq_lockup": "BUG: workqueue lockup",
        "oom": "oom-killer invoked",
    }.get(kind)
    if base is None:
        base = f"{head.split(':', 1)[0]}: {what}" if what else normalize(head)
    return base + where


def _finish(block: _Block, lines: list[str]) -> Finding:
    head = strip_timestamp(lines[block.start]).split(" [#", 1)[0]
    frames: list[str] = []
    for f in ([block.rip] if block.rip else []) + block.frames:
        if _SKIP_FRAMES.match(f) or f in frames:
            continue
        frames.append(f)
    frames = frames[:MAX_FRAMES]
    signature = f"{block.kind}: {normalize(head)}"
    if frames:
        signature += " | " + " < ".join(frames)
    excerpt_lines = block.lines[:MAX_EXCERPT_LINES]
    if len(block.lines) > MAX_EXCERPT_LINES:
        excerpt_lines.append(f"... ({len(block.lines) - MAX_EXCERPT_LINES} more lines)")
    return Finding(
        kind=block.kind,
        title=_title(block, head, frames),
        signature=signature,
        line_no=block.start + 1,
        excerpt="\n".join(excerpt_lines),
        fatal=block.fatal,
    )


def _scan_lines(lines: list[str], numbers: list[int] | None = None) -> list[Finding]:
    """Findings in ``lines`` (not deduplicated, not filtered)."""
    found: list[Finding] = []
    block: _Block | None = None
    banners = 0

    def close() -> None:
        nonlocal block
        if block is not None:
            found.append(_finish(block, lines))
            block = None

    for idx, raw in enumerate(lines):
        text = strip_timestamp(raw)
        if _BANNER.match(text):
            banners += 1
            if banners > 1:
                close()
                found.append(
                    Finding(
                        kind="reboot",
                        title="unexpected reboot (second Linux version banner)",
                        signature="reboot: second Linux version banner",
                        line_no=idx + 1,
                        excerpt=raw.rstrip(),
                        fatal=True,
                    )
                )
            continue
        if block is not None:
            if block.kind in _CRASH_KINDS and _ABSORB.match(text) and not block.in_trace and not block.trace_done:
                block.lines.append(raw.rstrip())
                continue
            start = _match_start(text)
            if start or len(block.lines) >= MAX_BLOCK_LINES:
                close()
            else:
                block.lines.append(raw.rstrip())
                if _block_line(block, text):
                    close()
                continue
        start = _match_start(text)
        if start is not None:
            kind, m, fatal = start
            block = _Block(kind=kind, match=m, fatal=fatal, start=idx, lines=[raw.rstrip()])
    close()
    if numbers is not None:
        found = [dataclasses.replace(f, line_no=numbers[f.line_no - 1]) for f in found]
    return found


def _ignored(finding: Finding, lines_by_no: dict[int, str], ignore: list[re.Pattern[str]]) -> bool:
    head = strip_timestamp(lines_by_no.get(finding.line_no, ""))
    return any(p.search(head) or p.search(finding.signature) or p.search(finding.title) for p in ignore)


def _dedup(findings: list[Finding]) -> list[Finding]:
    seen: dict[str, int] = {}
    out: list[Finding] = []
    for f in findings:
        if f.signature in seen:
            i = seen[f.signature]
            out[i] = dataclasses.replace(out[i], count=out[i].count + 1)
        else:
            seen[f.signature] = len(out)
            out.append(f)
    return out


def scan_log(text: str, ignore: list[re.Pattern[str]]) -> list[Finding]:
    """Findings in a kernel log, in order of first appearance, one per signature.

    A finding is dropped when an ``ignore`` pattern matches (``re.search``) its
    first line (timestamp stripped), its title or its signature.
    """
    lines = text.splitlines()
    found = _scan_lines(lines)
    by_no = {f.line_no: lines[f.line_no - 1] for f in found}
    return _dedup([f for f in found if not _ignored(f, by_no, ignore)])


# --------------------------------------------------------------------------- markers


def _regions(lines: list[str]) -> list[tuple[tuple[str, str], list[int]]]:
    """Consecutive runs of line indexes with the key they belong to."""
    stack: list[tuple[str, str]] = []
    seen_marker = False
    out: list[tuple[tuple[str, str], list[int]]] = []
    for idx, raw in enumerate(lines):
        m = _MARKER_LINE.search(raw)
        if m:
            seen_marker = True
            key = (m.group("suite"), (m.group("case") or "").strip())
            if m.group("op") == "begin":
                stack.append(key)
            elif key in stack:
                while stack and stack.pop() != key:
                    pass
            continue
        if stack:
            key = stack[-1]
        else:
            key = BETWEEN if seen_marker else BOOT
        if out and out[-1][0] == key:
            out[-1][1].append(idx)
        else:
            out.append((key, [idx]))
    return out


def split_by_markers(text: str) -> dict[tuple[str, str], str]:
    """Kernel log text per ``(suite, case)`` bracket; marker lines themselves dropped.

    Lines before the first marker go to :data:`BOOT`, lines outside any bracket
    after it to :data:`BETWEEN`.  A ``begin`` without its ``end`` (the kernel
    died) extends to the end of the log.  Text of repeated keys is concatenated.
    """
    lines = text.splitlines()
    out: dict[tuple[str, str], list[str]] = {}
    for key, idxs in _regions(lines):
        out.setdefault(key, []).extend(lines[i] for i in idxs)
    return {k: "\n".join(v) + "\n" for k, v in out.items()}


def scan_by_case(text: str, ignore: list[re.Pattern[str]]) -> dict[tuple[str, str], list[Finding]]:
    """:func:`scan_log` per marker bracket, with line numbers of the whole text.

    Only keys with at least one finding are present.  Deduplication is per key.
    """
    lines = text.splitlines()
    per_key: dict[tuple[str, str], list[int]] = {}
    for key, idxs in _regions(lines):
        per_key.setdefault(key, []).extend(idxs)
    result: dict[tuple[str, str], list[Finding]] = {}
    for key, idxs in per_key.items():
        sub = [lines[i] for i in idxs]
        found = _scan_lines(sub, numbers=[i + 1 for i in idxs])
        by_no = {f.line_no: lines[f.line_no - 1] for f in found}
        kept = _dedup([f for f in found if not _ignored(f, by_no, ignore)])
        if kept:
            result[key] = kept
    return result


# --------------------------------------------------------------------------- ignore file


def parse_ignore(text: str) -> list[re.Pattern[str]]:
    """One regex per line; blank lines and lines starting with ``#`` are skipped.

    Raises ``ValueError`` naming the line of an invalid regex.
    """
    out: list[re.Pattern[str]] = []
    for no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append(re.compile(line))
        except re.error as exc:
            raise ValueError(f"line {no}: invalid regex {line!r}: {exc}") from exc
    return out


def load_ignore(path: Path) -> list[re.Pattern[str]]:
    """Read an ignore-list file (see :func:`parse_ignore`)."""
    return parse_ignore(Path(path).read_text(encoding="utf-8", errors="replace"))
