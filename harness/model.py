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

from harness.stages.profiles import DEFAULT_PROFILE

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


@dataclass(frozen=True)
class Options:
    """The options of a run (from the command line, harness.cli), for every mode."""

    command: str = "run"
    tree: Path | None = None
    base: str | None = None
    series: Path | None = None
    #: ``--series none`` (or a source the series is not for): test the base unpatched.
    no_series: bool = False
    #: ``--source``: which Debian release (harness.stages.debian); ignored with ``tree``.
    source: str = "debian:6.12"
    out: Path = Path("out")
    memory: str = "3G"
    cpus: int = 2
    accel: str = "auto"
    jobs: int | None = None
    profile: str = DEFAULT_PROFILE
    suites: tuple[str, ...] = ()
    #: --case: only these cases of the project's programs (see suites.select_suites)
    cases: tuple[str, ...] = ()
    shard: str | None = None  # "I/N" when --shard chose ``suites``
    #: ``--parallel``: guests booted to share the suites (None: harness.stages.schedule's default)
    parallel: int | None = None
    #: ``test --kernel-dir``: a run directory holding kernel/bzImage, config, guest/
    kernel_dir: Path | None = None
    stress_s: int | None = None  # --stress-seconds for the scenarios' stress case
    soak_s: int | None = None  # --soak-seconds for the soak suite (harness.stages.widenet)
    keep_vm_on_failure: bool = False
    boot_timeout_s: float = 300.0
    budget_s: int = 3 * 3600
    tcg_multithread: bool = False
    project: Path = Path(".")
    cache: Path = Path(".")
    argv: tuple[str, ...] = ()
