"""The parser: one frame per nesting level, segments per plan, missing cases synthesised,
protocol problems collected (see :mod:`harness.parse.ktap`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.parse.ktap.lines import (
    BAIL,
    DIRECTIVE,
    PLAN,
    PRINTK,
    RESULT,
    SUBTEST,
    TOTAL_ITEM,
    TOTALS,
    VERSION,
    parse_result,
    peel,
)
from harness.parse.ktap.model import CaseStatus, KtapCase, KtapResult


@dataclass
class _Segment:
    start: int  # index in _Frame.cases of this segment's first case
    plan: int | None = None
    skip_all: str | None = None
    bail_out: str | None = None
    problems: list[str] = field(default_factory=list)  # e.g. "1..0 without # SKIP"


@dataclass
class _Block:
    """A finished frame: what a nested block hands to its parent's result line."""

    cases: list[KtapCase]
    notes: list[str]  # trailing diagnostics + protocol errors, for the parent case
    skip_all: str | None
    name: str | None


@dataclass
class _Frame:
    depth: int
    version: str | None = None
    name: str | None = None  # from "# Subtest: name"
    cases: list[KtapCase] = field(default_factory=list)
    segments: list[_Segment] = field(default_factory=lambda: [_Segment(0)])
    pending: list[str] = field(default_factory=list)
    child: _Block | None = None
    totals: dict[str, int] | None = None

    def new_segment_if_used(self) -> None:
        seg = self.segments[-1]
        if self.cases[seg.start :] or seg.plan is not None:
            self.segments.append(_Segment(len(self.cases)))

    def finish(self) -> tuple[list[KtapCase], list[str]]:
        """Cases with missing ones synthesised, and the protocol errors."""
        self.flush_orphan()
        out: list[KtapCase] = []
        errors: list[str] = []
        for i, seg in enumerate(self.segments):
            end = self.segments[i + 1].start if i + 1 < len(self.segments) else len(self.cases)
            seen = self.cases[seg.start : end]
            out.extend(seen)
            errors.extend(seg.problems)
            if seg.bail_out is not None:
                errors.append(f"Bail out! {seg.bail_out}".rstrip())
            if seg.plan is None or seg.plan == len(seen):
                seq = _sequence_problem([c.number for c in seen])
                if seq:
                    errors.append(seq)
                continue
            msg = f"plan said {seg.plan}, saw {len(seen)}"
            errors.append(msg)
            if seg.plan < len(seen):
                continue
            numbers = [c.number for c in seen]
            if len(set(numbers)) == len(numbers) and all(1 <= n <= seg.plan for n in numbers):
                missing = sorted(set(range(1, seg.plan + 1)) - set(numbers))
            else:
                missing = list(range(len(seen) + 1, seg.plan + 1))
            why = msg if seg.bail_out is None else f"{msg}; bailed out: {seg.bail_out}"
            out.extend(
                KtapCase(number=n, name=f"missing_{n}", status=CaseStatus.ERROR, reason=why, missing=True)
                for n in missing
            )
        return out, errors

    def flush_orphan(self) -> None:
        """A closed child block that no result line claimed becomes an ERROR case."""
        if self.child is None:
            return
        block, self.child = self.child, None
        number = len(self.cases) + 1
        self.cases.append(
            KtapCase(
                number=number,
                name=block.name or "unfinished",
                status=CaseStatus.ERROR,
                reason="subtests without a result line (program crashed or was killed?)",
                diagnostics=tuple(self.pending + block.notes),
                subtests=tuple(block.cases),
            )
        )
        self.pending = []


class _Parser:
    def __init__(self) -> None:
        self.stack: list[_Frame] = [_Frame(0)]
        self.indents: dict[int, list[int]] = {}

    # -- depth ---------------------------------------------------------------
    def _depth(self, widths: list[int], structural: bool) -> int:
        depth = len(widths) - 1  # one level per '# ' prefix
        for level, width in enumerate(widths):
            stack = self.indents.setdefault(level, [0])
            if structural:
                while len(stack) > 1 and width < stack[-1]:
                    stack.pop()
                if width > stack[-1]:
                    stack.append(width)
                depth += len(stack) - 1
            else:
                depth += max(i for i, w in enumerate(stack) if w <= width)
        return depth

    def _goto(self, depth: int) -> _Frame:
        """Make ``depth`` the deepest open frame, closing or opening frames."""
        while len(self.stack) - 1 > depth:
            self._close_top()
        while len(self.stack) - 1 < depth:
            parent = self.stack[-1]
            parent.flush_orphan()
            self.stack.append(_Frame(len(self.stack)))
        return self.stack[-1]

    def _close_top(self) -> None:
        frame = self.stack.pop()
        cases, errors = frame.finish()
        seg0 = frame.segments[0]
        notes = frame.pending + errors
        parent = self.stack[-1]
        parent.flush_orphan()
        parent.child = _Block(cases=cases, notes=notes, skip_all=seg0.skip_all, name=frame.name)

    # -- lines ---------------------------------------------------------------
    def feed(self, raw: str) -> None:
        if not raw.strip() or PRINTK.match(raw):
            return
        widths, content = peel(raw)
        if PRINTK.match(content):
            return

        m_version = VERSION.match(content)
        m_plan = PLAN.match(content)
        m_result = RESULT.match(content)
        m_bail = BAIL.match(content)
        if m_version or m_plan or m_result or m_bail:
            frame = self._goto(self._depth(widths, structural=True))
            if m_result:
                self._result(frame, m_result)
                return
            frame.flush_orphan()
            if m_version:
                frame.new_segment_if_used()
                frame.version = frame.version or m_version.group(1)
            elif m_plan:
                self._plan(frame, int(m_plan.group(1)), m_plan.group(2) or "")
            elif m_bail:
                frame.segments[-1].bail_out = m_bail.group(1).strip()
            return

        m_sub = SUBTEST.match(content)
        if m_sub and len(widths) > 1:
            # "# Subtest: name" opens and names the block one level below its '#'.
            target = self._depth(widths, structural=True) - 1
            if target >= 1:
                self._goto(target).name = m_sub.group(1).strip()
                return
        raw_depth = self._depth(widths, structural=False)
        depth = min(raw_depth, len(self.stack) - 1)
        m_tot = TOTALS.match(content)
        if m_tot and len(widths) > 1:
            owner = self.stack[max(0, min(raw_depth - 1, len(self.stack) - 1))]
            owner.totals = {k: int(v) for k, v in TOTAL_ITEM.findall(m_tot.group(1))}
        if content:
            self.stack[depth].pending.append(content)

    def _plan(self, frame: _Frame, count: int, comment: str) -> None:
        seg = frame.segments[-1]
        if seg.plan is not None:
            frame.new_segment_if_used()
            seg = frame.segments[-1]
        seg.plan = count
        if count == 0:
            dm = DIRECTIVE.match(comment.strip())
            if dm and dm.group(1).upper().startswith("SKIP"):
                seg.skip_all = dm.group(2).strip()
            else:  # an empty plan that does not say SKIP: nothing ran, for no stated reason
                seg.problems.append("1..0 without # SKIP: an empty plan is not a skip")

    def _result(self, frame: _Frame, m: re.Match[str]) -> None:
        ok = m.group(1) == "ok"
        number = int(m.group(2))
        name, status, reason = parse_result(ok, number, m.group(3) or "")
        diags = list(frame.pending)
        subtests: tuple[KtapCase, ...] = ()
        if frame.child is not None:
            block, frame.child = frame.child, None
            subtests = tuple(block.cases)
            diags += block.notes
            if status is CaseStatus.SKIP and not reason and block.skip_all:
                reason = block.skip_all
        frame.pending = []
        frame.cases.append(
            KtapCase(
                number=number,
                name=name,
                status=status,
                reason=reason,
                diagnostics=tuple(diags),
                subtests=subtests,
            )
        )

    def result(self, name: str) -> KtapResult:
        while len(self.stack) > 1:
            self._close_top()
        top = self.stack[0]
        cases, errors = top.finish()
        plans = [s.plan for s in top.segments if s.plan is not None]
        cut = _cut_mid_test(top.pending) if cases and not plans else None
        if cut:
            errors.append(cut)
        skips = [s.skip_all for s in top.segments if s.skip_all is not None]
        bails = [s.bail_out for s in top.segments if s.bail_out is not None]
        return KtapResult(
            name=name,
            version=top.version,
            plan=sum(plans) if plans else None,
            cases=tuple(cases),
            skip_all=skips[0] if skips and not cases else None,
            bail_out=bails[0] if bails else None,
            totals=top.totals,
            diagnostics=tuple(top.pending),
            errors=tuple(errors),
        )


def _sequence_problem(numbers: list[int]) -> str | None:
    """Result numbers of one block must be 1, 2, 3...: a repeat or a jump means lines
    were printed twice (unflushed stdio across fork) or lost."""
    seen: set[int] = set()
    for expected, n in enumerate(numbers, 1):
        if n in seen:
            return f"duplicate test number {n}"
        if n != expected:
            return f"test numbers out of sequence: expected {expected}, got {n}"
        seen.add(n)
    return None


def _cut_mid_test(trailing: list[str]) -> str | None:
    """Without a plan (the kernel's cgroup suites print none) the only sign of a cut
    stream is text after the last result: the lines of a test that never reported."""
    rest = [line for line in trailing if not TOTALS.match(line)]
    if not rest:
        return None
    return (f"no plan, and the output ends mid-test: {len(rest)} line(s) after the last "
            f"result, first: {rest[0][:80]!r}")


def parse_ktap(text: str, name: str) -> KtapResult:
    """Parse a program's (K)TAP output.  Never raises on malformed input."""
    parser = _Parser()
    for line in text.splitlines():
        parser.feed(line)
    return parser.result(name)
