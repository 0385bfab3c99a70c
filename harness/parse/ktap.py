"""KTAP / kselftest TAP parser: text -> tree of test cases.

Pure functions, no I/O.  Accepts what kselftest programs really print (see
docs/design.md):

* a ``TAP version 13`` / ``KTAP version 1`` header, or none at all (the 6.12
  ``test_memcontrol`` prints only ``ok N name`` lines and no plan);
* a ``1..N`` plan at the start or at the end, ``1..0 # SKIP reason``;
* directives after the name (``ok 1 name # SKIP why``, ``ok 1 - name # SKIP``)
  or before it, as ``kselftest.h`` prints them (``ok 3 # SKIP test_memcg_sock``,
  ``not ok 5 # error name``); SKIP, XFAIL, XPASS, TODO, TIMEOUT, ERROR;
* nesting by indentation (2 or 4 spaces) and by the ``# `` prefix that
  kselftest's runner puts in front of every line a program prints, so
  ``# ok 1 test_memcg_min`` lines become subtests of the runner's
  ``ok 1 selftests: cgroup: test_memcontrol``;
* ``Bail out!``, ``# Totals: pass:N ...``, several ``TAP version`` sections
  in a row (older runners restart numbering per collection);
* kernel printk lines (``[   12.345678] ...``) interleaved anywhere: ignored.

A plan larger than the number of results seen yields synthesised cases with
status ERROR (``missing=True``) and the error "plan said N, saw M".  Strict on
what would let an incomplete output pass: result numbers must run 1, 2, 3...
in each block (a repeat or a jump is an error), ``1..0`` without ``# SKIP`` is
an error, and an output with results but no plan (the 6.12 cgroup suites) that
ends with text after its last result was cut mid-test (an error).  A missing
plan by itself is not an error: the caller's inventory (harness.stages.inventory)
knows how many cases such a program reports.

Diagnostic lines (``# ...`` and any unknown text) belong to the next result
line at their level, as in KTAP; lines after the last result of a nested block
go to the parent case, lines after the last top-level result to
``KtapResult.diagnostics``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CaseStatus",
    "KtapCase",
    "KtapResult",
    "parse_ktap",
]


class CaseStatus(enum.Enum):
    """Outcome of one KTAP test case."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    XFAIL = "xfail"
    XPASS = "xpass"
    TIMEOUT = "timeout"
    ERROR = "error"

    @property
    def failed(self) -> bool:
        """A real test failure (FAIL, XPASS, TIMEOUT): maps to JUnit <failure>."""
        return self in (CaseStatus.FAIL, CaseStatus.XPASS, CaseStatus.TIMEOUT)


@dataclass(frozen=True)
class KtapCase:
    """One result line (``ok``/``not ok``), with the lines that belong to it."""

    number: int
    name: str
    status: CaseStatus
    reason: str = ""  # directive text (``# SKIP why`` -> "why"), or text after '#'
    diagnostics: tuple[str, ...] = ()
    subtests: tuple[KtapCase, ...] = ()
    missing: bool = False  # synthesised: planned but never reported
    #: Set by the harness for a case of a suite's known failures (harness.stages.suites):
    #: "xfail" (failed as known; status XFAIL, raw status FAIL) or "xpass" (passed).
    known: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {
            "number": self.number,
            "name": self.name,
            "status": self.status.value,
            "reason": self.reason,
            "diagnostics": list(self.diagnostics),
            "subtests": [c.to_dict() for c in self.subtests],
            "missing": self.missing,
        }
        if self.known:
            d["known"] = self.known
        return d


@dataclass(frozen=True)
class KtapResult:
    """A parsed program output (top-level block)."""

    name: str
    version: str | None = None  # e.g. "TAP version 13"; None when absent
    plan: int | None = None  # sum of the plans seen; None when there was none
    cases: tuple[KtapCase, ...] = ()
    skip_all: str | None = None  # "1..0 # SKIP why" -> "why" ("" if no reason)
    bail_out: str | None = None  # "Bail out! why" -> "why"
    totals: Mapping[str, int] | None = None  # from "# Totals: pass:N fail:N ..."
    diagnostics: tuple[str, ...] = ()  # lines after the last top-level result
    errors: tuple[str, ...] = ()  # protocol problems ("plan said 14, saw 5", ...)

    def walk(self) -> Iterator[tuple[str, KtapCase]]:
        """Every case, depth first, parent before children, with dotted names."""

        def rec(prefix: str, cases: tuple[KtapCase, ...]) -> Iterator[tuple[str, KtapCase]]:
            for case in cases:
                full = f"{prefix}.{case.name}" if prefix else case.name
                yield full, case
                yield from rec(full, case.subtests)

        yield from rec("", self.cases)

    def counts(self) -> dict[str, int]:
        """Number of cases (all levels, as in :meth:`walk`) per status value."""
        out = {s.value: 0 for s in CaseStatus}
        for _, case in self.walk():
            out[case.status.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "plan": self.plan,
            "skip_all": self.skip_all,
            "bail_out": self.bail_out,
            "totals": dict(self.totals) if self.totals is not None else None,
            "errors": list(self.errors),
            "diagnostics": list(self.diagnostics),
            "cases": [c.to_dict() for c in self.cases],
        }


# --------------------------------------------------------------------------- lines

_PRINTK = re.compile(r"^\s*(?:<\d+>)?\[\s*\d+\.\d+\]")
_VERSION = re.compile(r"^(K?TAP version \d+)\s*$")
_PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*))?$")
_RESULT = re.compile(r"^(not ok|ok)\s+(\d+)(?:\s+(.*))?$")
_BAIL = re.compile(r"^Bail out!\s*(.*)$")
_SUBTEST = re.compile(r"^Subtest:\s*(.*)$")
_TOTALS = re.compile(r"^Totals:\s*(.*)$")
_TOTAL_ITEM = re.compile(r"(\w+):(\d+)")
_DIRECTIVE_SPLIT = re.compile(r"(?:^|\s)#")
_DIRECTIVE = re.compile(r"^(SKIP\w*|TODO|XFAIL|XPASS|TIMEOUT|ERROR)\b[:\s]*(.*)$", re.IGNORECASE)


def _peel(line: str) -> tuple[list[int], str]:
    """Split a line into indentation widths per '# ' level, and the content.

    ``"  ok 1 a"`` -> ([2], "ok 1 a"); ``"# ok 1 a"`` -> ([0, 0], "ok 1 a");
    ``"#   ok 1 a"`` -> ([0, 2], "ok 1 a").  The number of '# ' prefixes is
    ``len(widths) - 1``.
    """
    widths: list[int] = []
    rest = line.expandtabs(8)
    while True:
        stripped = rest.lstrip(" ")
        widths.append(len(rest) - len(stripped))
        rest = stripped
        if rest == "#":
            widths.append(0)
            return widths, ""
        if rest.startswith("# "):
            rest = rest[2:]
            continue
        return widths, rest.rstrip()


def _parse_result(ok: bool, number: int, rest: str) -> tuple[str, CaseStatus, str]:
    """Name, status and reason from the part of a result line after the number."""
    rest = rest.strip()
    m = _DIRECTIVE_SPLIT.search(rest)
    if m:
        desc, comment = rest[: m.start()].strip(), rest[m.end() :].strip()
    else:
        desc, comment = rest, ""
    if desc.startswith("- "):
        desc = desc[2:].strip()
    elif desc == "-":
        desc = ""
    directive = ""
    reason = comment
    dm = _DIRECTIVE.match(comment)
    if dm:
        directive = dm.group(1).upper()
        reason = dm.group(2).strip()
    name = desc or reason or f"case_{number}"

    if directive.startswith("SKIP"):
        status = CaseStatus.SKIP
    elif directive == "XFAIL":
        status = CaseStatus.XFAIL
    elif directive == "XPASS":
        status = CaseStatus.XPASS
    elif directive == "TIMEOUT":
        status = CaseStatus.TIMEOUT
    elif directive == "ERROR":
        status = CaseStatus.ERROR
    elif directive == "TODO":
        status = CaseStatus.PASS if ok else CaseStatus.XFAIL
        reason = f"TODO {reason}".strip()
    else:
        status = CaseStatus.PASS if ok else CaseStatus.FAIL
    return name, status, reason


# --------------------------------------------------------------------------- frames


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
        if not raw.strip() or _PRINTK.match(raw):
            return
        widths, content = _peel(raw)
        if _PRINTK.match(content):
            return

        m_version = _VERSION.match(content)
        m_plan = _PLAN.match(content)
        m_result = _RESULT.match(content)
        m_bail = _BAIL.match(content)
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

        m_sub = _SUBTEST.match(content)
        if m_sub and len(widths) > 1:
            # "# Subtest: name" opens and names the block one level below its '#'.
            target = self._depth(widths, structural=True) - 1
            if target >= 1:
                self._goto(target).name = m_sub.group(1).strip()
                return
        raw_depth = self._depth(widths, structural=False)
        depth = min(raw_depth, len(self.stack) - 1)
        m_tot = _TOTALS.match(content)
        if m_tot and len(widths) > 1:
            owner = self.stack[max(0, min(raw_depth - 1, len(self.stack) - 1))]
            owner.totals = {k: int(v) for k, v in _TOTAL_ITEM.findall(m_tot.group(1))}
        if content:
            self.stack[depth].pending.append(content)

    def _plan(self, frame: _Frame, count: int, comment: str) -> None:
        seg = frame.segments[-1]
        if seg.plan is not None:
            frame.new_segment_if_used()
            seg = frame.segments[-1]
        seg.plan = count
        if count == 0:
            dm = _DIRECTIVE.match(comment.strip())
            if dm and dm.group(1).upper().startswith("SKIP"):
                seg.skip_all = dm.group(2).strip()
            else:  # an empty plan that does not say SKIP: nothing ran, for no stated reason
                seg.problems.append("1..0 without # SKIP: an empty plan is not a skip")

    def _result(self, frame: _Frame, m: re.Match[str]) -> None:
        ok = m.group(1) == "ok"
        number = int(m.group(2))
        name, status, reason = _parse_result(ok, number, m.group(3) or "")
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
    rest = [line for line in trailing if not _TOTALS.match(line)]
    if not rest:
        return None
    return (f"no plan, and the output ends mid-test: {len(rest)} line(s) after the last "
            f"result, first: {rest[0][:80]!r}")


def top_level_result(line: str) -> tuple[int, str, CaseStatus] | None:
    """``(number, name, status)`` if ``line`` is a top-level result line (not indented,
    not behind ``#``): what a live progress display follows, one line at a time."""
    widths, content = _peel(line.rstrip("\n"))
    if widths != [0]:
        return None
    m = _RESULT.match(content)
    if not m:
        return None
    name, status, _ = _parse_result(m.group(1) == "ok", int(m.group(2)), m.group(3) or "")
    return int(m.group(2)), name, status


def top_level_plan(line: str) -> int | None:
    """N of a top-level ``1..N`` plan line."""
    widths, content = _peel(line.rstrip("\n"))
    m = _PLAN.match(content) if widths == [0] else None
    return int(m.group(1)) if m else None


def parse_ktap(text: str, name: str) -> KtapResult:
    """Parse a program's (K)TAP output.  Never raises on malformed input."""
    parser = _Parser()
    for line in text.splitlines():
        parser.feed(line)
    return parser.result(name)


# --------------------------------------------------------------------------- verdict

KSFT_PASS, KSFT_FAIL, KSFT_XFAIL, KSFT_XPASS, KSFT_SKIP = 0, 1, 2, 3, 4
