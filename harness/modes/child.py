"""The harness as a black box: start ``python -m harness ...`` and read the run it left.

``compare``, ``patchcheck --boot`` and ``bisect`` drive whole runs through this
module instead of calling the pipeline in-process: a child run has its own
logging, signal handling, run directory and cleanup, exactly as a user's run.
What they need from it is read back from its files:

* ``metadata.json``: exit code, per-stage status (which stage failed), kernel-log
  findings, build facts;
* ``junit.xml``: one outcome per (testsuite, testcase);
* ``build.log``: compiler warnings (see :mod:`harness.parse.buildlog`).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from harness import proc, record
from harness.options import forward_args  # noqa: F401  (the modes call it from here)

log = logging.getLogger(__name__)

#: Stages that must succeed before there is anything to compare or judge.
SETUP_STAGES = ("source", "apply", "config", "build", "selftests", "boot", "guest-setup")
BUILD_STAGES = ("apply", "config", "build", "selftests")
BOOT_STAGES = ("boot", "guest-setup")

#: A child run may build a kernel from scratch (cold: 20+ minutes) and run every suite.
CHILD_TIMEOUT_S = 6 * 3600.0


# ---------------------------------------------------------------- child runs --


@dataclass(frozen=True)
class ChildRun:
    """A finished ``python -m harness <command>``: its exit code and run directory."""

    label: str
    exit_code: int
    run_dir: Path | None  # None: it died before creating one
    output_log: Path  # its stdout + stderr
    duration_s: float

    def record(self) -> record.RunRecord:
        """Its typed run record (empty when it died before writing one)."""
        return record.load(self.run_dir)

    def file(self, name: str) -> Path | None:
        if self.run_dir is None:
            return None
        p = self.run_dir / name
        return p if p.exists() else None


#: How compare/bisect start a child run: (label, argv after ``harness``, out parent, log).
ChildRunner = Callable[[str, list[str], Path, Path], ChildRun]


def find_run_dir(out: Path) -> Path | None:
    """The newest numbered run directory under ``out`` (a child run makes exactly one)."""
    latest = out / "latest"
    if latest.is_symlink() or latest.is_dir():
        target = latest.resolve()
        if target.is_dir():
            return target
    nums = sorted((int(p.name) for p in out.iterdir() if p.name.isdigit()), reverse=True) \
        if out.is_dir() else []
    return out / str(nums[0]) if nums else None


def harness_command(args: list[str], *, verbose: bool = False) -> list[str]:
    return [sys.executable, "-m", "harness", *(["-v"] if verbose else []), *args]


#: How long a nested run may take to stop its VM after SIGTERM (its own VM stop waits
#: up to 5 s for vng, then SIGKILLs; plus Python teardown).
CHILD_STOP_GRACE_S = 30.0


def run_child(label: str, args: list[str], out: Path, log_path: Path, *,
              timeout: float = CHILD_TIMEOUT_S, verbose: bool = False,
              echo: bool = True, env: Mapping[str, str] | None = None) -> ChildRun:
    """Run ``python -m harness <args> --out <out>`` and wait; its lines go to ``log_path``.

    With ``echo`` its output is also logged here, prefixed ``[label]``; ``env``: what the
    child's environment adds to ours (ours is never changed).  Ctrl-C or
    SIGTERM here stops the child's whole session (the child then stops its VM).
    """
    out.mkdir(parents=True, exist_ok=True)
    argv = harness_command([*args, "--out", str(out)], verbose=verbose)
    log.info("[%s] %s", label, " ".join(argv[1:]))

    def echo_line(line: str) -> None:
        if echo and line.strip():
            log.info("[%s] %s", label, line)

    start = time.monotonic()
    # On Ctrl-C/SIGTERM the child gets SIGTERM and stops its own VM (another session,
    # which only it knows): give it the time that takes before SIGKILL.
    res = proc.run(argv, cwd=Path.cwd(), timeout=timeout, log_path=log_path, capture=False,
                   on_line=echo_line, log_mode="w", stop_grace_s=CHILD_STOP_GRACE_S, env=env)
    return ChildRun(label, res.returncode, find_run_dir(out), log_path,
                    time.monotonic() - start)


# ----------------------------------------------------------------- readers --


@dataclass(frozen=True)
class CaseOutcome:
    suite: str
    name: str
    outcome: str  # pass | fail | error | skip (| xfail: compare's reading of raw)
    message: str = ""
    raw: str = ""  # property ktap.raw_status: "fail" for a known failure written as a pass

    @property
    def key(self) -> tuple[str, str]:
        return (self.suite, self.name)

    @property
    def bad(self) -> bool:
        return self.outcome in ("fail", "error", "xfail")


def read_cases(junit: Path) -> dict[tuple[str, str], CaseOutcome]:
    """Every testcase of a junit.xml: (testsuite name, testcase name) -> outcome.

    A repeated name inside one testsuite gets `` #2``, `` #3``... appended.
    Raises OSError/ValueError for a missing or malformed file.
    """
    from junitparser import Error, Failure, JUnitXml, Skipped, TestSuite

    try:
        doc = JUnitXml.fromfile(str(junit))
    except SyntaxError as e:  # xml ParseError
        raise ValueError(f"{junit}: not JUnit XML: {e}") from e
    suites = [doc] if isinstance(doc, TestSuite) else list(doc)
    out: dict[tuple[str, str], CaseOutcome] = {}
    for ts in suites:
        sname = str(ts.name or "")
        for case in ts:
            name = str(case.name or "")
            key = (sname, name)
            n = 1
            while key in out:
                n += 1
                key = (sname, f"{name} #{n}")
            outcome, message = "pass", ""
            for r in case.result:
                if isinstance(r, Error):
                    outcome, message = "error", str(r.message or "")
                    break
                if isinstance(r, Failure):
                    outcome, message = "fail", str(r.message or "")
                elif isinstance(r, Skipped) and outcome == "pass":
                    outcome, message = "skip", str(r.message or "")
            raw = next((str(p.get("value") or "") for p in case._elem.iter("property")
                        if p.get("name") == "ktap.raw_status"), "")
            out[key] = CaseOutcome(key[0], key[1], outcome, message, raw)
    return out


def counts(cases: dict[tuple[str, str], CaseOutcome]) -> dict[str, int]:
    c = {"pass": 0, "fail": 0, "error": 0, "skip": 0}
    for v in cases.values():
        c[v.outcome] = c.get(v.outcome, 0) + 1
    return c


def describe(run: ChildRun) -> str:
    """One line: where the run is, its exit code, and why if it had no verdict."""
    where = str(run.run_dir) if run.run_dir else f"(no run directory; see {run.output_log})"
    text = f"{where} (exit {run.exit_code}"
    fs = run.record().failed_stage()
    if fs:
        text += f", {fs[0]}: {fs[1][:160]}"
    return text + ")"
