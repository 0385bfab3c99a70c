"""What compare found: each case, kernel-log signature and build warning classified by
:class:`Change`, and the :class:`Comparison` of the two runs (verdict, exit code, detail)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from harness.modes.child import ChildRun
from harness.parse import buildlog


class Change(enum.Enum):
    NEW_FAILURE = "new failure"
    PRE_EXISTING = "pre-existing"
    FIXED = "fixed"
    NEW_CASE = "new case"
    GONE = "gone"
    SAME = "same"


#: Changes that are shown in the summary table (the rest are in junit.xml only).
SHOWN = (Change.NEW_FAILURE, Change.PRE_EXISTING, Change.FIXED, Change.GONE)


@dataclass(frozen=True)
class CaseDiff:
    suite: str
    name: str
    base: str | None  # pass | fail | error | skip | None (absent)
    patched: str | None
    change: Change
    message: str = ""


@dataclass(frozen=True)
class SignatureDiff:
    signature: str
    kind: str
    where: str  # suite.case where it appeared (patched, else base)
    change: Change  # NEW_FAILURE, PRE_EXISTING or GONE


@dataclass(frozen=True)
class WarningDiff:
    warning: buildlog.CompilerWarning
    change: Change  # NEW_FAILURE (counted) or NEW_CASE (seen, but the base did not compile it)


@dataclass
class Comparison:
    verdict: str  # pass | regression | infrastructure | patched-error
    exit_code: int
    detail: str
    base: ChildRun | None = None
    patched: ChildRun | None = None
    cases: list[CaseDiff] = field(default_factory=list)
    signatures: list[SignatureDiff] = field(default_factory=list)
    warnings: list[WarningDiff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, change: Change) -> int:
        return sum(1 for c in self.cases if c.change is change)

    @property
    def new_signatures(self) -> list[SignatureDiff]:
        return [s for s in self.signatures if s.change is Change.NEW_FAILURE]

    @property
    def new_warnings(self) -> list[WarningDiff]:
        return [w for w in self.warnings if w.change is Change.NEW_FAILURE]
