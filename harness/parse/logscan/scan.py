"""Scanning: report blocks found by the catalogue, each closed into a :class:`Finding`
with a normalised signature; deduplicated per log (:func:`scan_log`) or per marker
bracket (:func:`scan_by_case`)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from harness.parse.logscan.catalogue import (
    ABSORB,
    BANNER,
    CALL_TRACE,
    CRASH_KINDS,
    END_TRACE,
    FRAME,
    RIP,
    RULER,
    SANITIZERS,
    SKIP_FRAMES,
    clean_func,
    match_start,
    normalize,
    strip_timestamp,
)
from harness.parse.logscan.markers import regions

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
    if block.kind in SANITIZERS and RULER.match(stripped):
        return True
    if END_TRACE.match(stripped):
        return True
    if stripped == "</TASK>":
        if block.in_trace:
            block.in_trace, block.task_open, block.trace_done = False, False, True
        return block.trace_done and block.kind not in SANITIZERS
    if not block.in_trace:
        rip = RIP.match(text)
        if rip and block.rip is None and not block.trace_done:
            block.rip = clean_func(rip.group("func"))
        if CALL_TRACE.match(text) and not block.trace_done:
            block.in_trace = True
        return False
    if stripped in _CTX_OPEN:
        block.ctx_depth += 1
    elif stripped in _CTX_CLOSE:
        block.ctx_depth = max(0, block.ctx_depth - 1)
    elif stripped == "<TASK>":
        block.task_open = True
    else:
        m = FRAME.match(text)
        if m:
            if block.ctx_depth == 0 and not m.group("unreliable"):
                block.frames.append(clean_func(m.group("func")))
        elif not block.task_open and block.ctx_depth == 0 and block.frames:
            # a trace without <TASK> (arm64, kmemleak) ends at its first non-frame line
            block.in_trace, block.trace_done = False, True
            return block.kind not in SANITIZERS
    return False


def _title(block: _Block, head: str, frames: list[str]) -> str:
    """A short syzkaller-style title: ``<what> in <first interesting frame>``."""
    groups = block.match.groupdict()
    where = f" in {frames[0]}" if frames else ""
    kind = block.kind
    what = groups.get("what")
    if kind == "kasan":
        return f"KASAN: {what} in {clean_func(groups['func'])}"
    if kind == "warning":
        func = groups.get("func") or groups.get("func2")
        return f"WARNING in {clean_func(func)}" if func else normalize(head) + where
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
        if SKIP_FRAMES.match(f) or f in frames:
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
        if BANNER.match(text):
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
            if block.kind in CRASH_KINDS and ABSORB.match(text) and not block.in_trace and not block.trace_done:
                block.lines.append(raw.rstrip())
                continue
            start = match_start(text)
            if start or len(block.lines) >= MAX_BLOCK_LINES:
                close()
            else:
                block.lines.append(raw.rstrip())
                if _block_line(block, text):
                    close()
                continue
        start = match_start(text)
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


def scan_by_case(text: str, ignore: list[re.Pattern[str]]) -> dict[tuple[str, str], list[Finding]]:
    """:func:`scan_log` per marker bracket, with line numbers of the whole text.

    Only keys with at least one finding are present.  Deduplication is per key.
    """
    lines = text.splitlines()
    per_key: dict[tuple[str, str], list[int]] = {}
    for key, idxs in regions(lines):
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
