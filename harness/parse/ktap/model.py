"""What a KTAP parse produces: :class:`KtapResult`, a tree of :class:`KtapCase` with a
:class:`CaseStatus` each; and the exit codes of kselftest programs (``KSFT_*``)."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


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


#: Exit codes of a kselftest program (kselftest.h).
KSFT_PASS, KSFT_FAIL, KSFT_XFAIL, KSFT_XPASS, KSFT_SKIP = 0, 1, 2, 3, 4
