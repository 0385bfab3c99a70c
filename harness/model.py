"""Typed dataclasses shared by every stage of the harness.

These are the seams between modules: each stage returns a frozen dataclass,
and the reporting side (ktap / junit / summary / logscan) consumes
:class:`SuiteRun` and :class:`StageResult`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - import only for type checkers
    from harness.parse.ktap import KtapResult


class Status(enum.Enum):
    """Outcome of a stage, a suite run or a test case."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"
    NOTRUN = "notrun"


@dataclass(frozen=True)
class StageResult:
    """One pipeline stage (source, apply, config, build, boot, ssh, suites, report)."""

    name: str
    status: Status
    duration_s: float
    log: Path | None
    detail: str


@dataclass(frozen=True)
class SuiteRun:
    """One suite executed in the guest (at one sysctl value)."""

    name: str
    status: Status
    duration_s: float
    raw_output: str
    exit_code: int | None
    error: str | None
    sysctl: int | None
    result: "KtapResult | None"
