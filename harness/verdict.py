"""The verdicts: of one suite (from its KTAP and exit code) and of a whole run.

One place decides, and everything else reads it: the exit code of the run
(``metadata.json`` ``results.exit_code``), the ``verdict:`` line of ``summary.txt``
and the status of each suite.  Exit codes: 0 passed, 1 a test failed, 2 no verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.model import StageResult, Status, SuiteRun
from harness.parse.ktap import KSFT_FAIL, KSFT_PASS, KSFT_SKIP, KSFT_XFAIL, KSFT_XPASS, CaseStatus, KtapResult
from harness.parse.logscan import Finding, is_failure
from harness.report.junit import suite_label

#: Process exit code per verdict (design contract: 0 passed, 1 failed, 2 no verdict).
EXIT_CODES: dict[Status, int] = {
    Status.PASS: 0,
    Status.SKIP: 0,
    Status.FAIL: 1,
    Status.ERROR: 2,
    Status.NOTRUN: 2,
}

#: Stages whose FAIL means "a test failed" (their detail comes from the runs);
#: a FAIL or ERROR of any other stage means no verdict was possible.
TEST_STAGE_NAMES = frozenset({"suite", "suites", "test", "tests"})

FindingMap = Mapping[tuple[str, str], Sequence[Finding]]


def failing_findings(findings: FindingMap | None) -> list[tuple[tuple[str, str], Finding]]:
    """The kernel-log findings that fail a run, with their (suite, case)."""
    if not findings:
        return []
    return [(key, f) for key, found in findings.items() for f in found if is_failure(f)]


def suite_status(result: KtapResult | None, exit_code: int | None) -> tuple[Status, str]:
    """Suite status from its parsed output and the program's exit code.

    Rules, first match wins:

    * no exit code (timeout, lost connection) -> ERROR;
    * exit code outside the kselftest codes 0-4 (crash signal, 124 timeout) -> ERROR;
    * no result lines: a protocol error (``1..0`` without SKIP) -> ERROR;
      ``1..0 # SKIP`` with exit 1 or 3 -> FAIL; ``1..0 # SKIP`` or exit 4 -> SKIP;
      else ERROR;
    * protocol errors (plan mismatch, numbers repeated or out of sequence, no plan
      and text after the last result, Bail out!) or an ERROR case -> ERROR;
    * a FAIL/XPASS/TIMEOUT case -> FAIL;
    * exit 1 or 3 with no failing case -> FAIL;
    * every case skipped -> SKIP; otherwise PASS.

    The second element is a one-line reason ("" for PASS).
    """
    if exit_code is None:
        return Status.ERROR, "no exit code (timed out or connection lost)"
    if exit_code not in (KSFT_PASS, KSFT_FAIL, KSFT_XFAIL, KSFT_XPASS, KSFT_SKIP):
        return Status.ERROR, f"exit code {exit_code}: program crashed or was killed"
    if result is None or not result.cases:
        if result is not None and result.errors:
            return Status.ERROR, "; ".join(result.errors)
        if result is not None and result.skip_all is not None:
            if exit_code in (KSFT_FAIL, KSFT_XPASS):  # it says "skip" and exits "failed"
                return Status.FAIL, (f"exit code {exit_code} with a skip-all plan "
                                     f"({result.skip_all or 'no reason'})")
            return Status.SKIP, result.skip_all or "skipped (1..0 # SKIP)"
        if exit_code == KSFT_SKIP:
            return Status.SKIP, "exit 4 (skip) without results"
        return Status.ERROR, f"no KTAP results (exit {exit_code})"
    cases = list(result.walk())
    errored = [n for n, c in cases if c.status is CaseStatus.ERROR]
    if result.errors or errored:
        parts = list(result.errors)
        if errored:
            parts.append("error: " + ", ".join(errored[:3]) + (" ..." if len(errored) > 3 else ""))
        return Status.ERROR, "; ".join(parts)
    failed = [n for n, c in cases if c.status.failed]
    if failed:
        more = " ..." if len(failed) > 3 else ""
        return Status.FAIL, f"{len(failed)} failed: " + ", ".join(failed[:3]) + more
    if exit_code in (KSFT_FAIL, KSFT_XPASS):
        return Status.FAIL, f"exit code {exit_code} although no case failed"
    if all(c.status is CaseStatus.SKIP for _, c in cases):
        return Status.SKIP, "all cases skipped"
    return Status.PASS, ""


def verdict(
    runs: Sequence[SuiteRun],
    stages: Sequence[StageResult],
    findings: FindingMap | None = None,
    *,
    suites_expected: bool = True,
) -> tuple[Status, str]:
    """Overall status and a reason; map it to an exit code with :data:`EXIT_CODES`.

    First match wins: a non-test stage FAIL/ERROR -> ERROR; no suite ran ->
    ERROR (PASS for a command that runs no suites, ``suites_expected=False``);
    a suite ERROR/NOTRUN -> ERROR; a suite FAIL or a failing kernel-log
    finding -> FAIL; every suite skipped -> SKIP; else PASS.
    """
    # A test stage's FAIL is decided by its runs; an ERROR of any stage is no verdict.
    broken = [s for s in stages if s.status is Status.ERROR
              or (s.status is Status.FAIL and s.name not in TEST_STAGE_NAMES)]
    if broken:
        s = broken[0]
        detail = f": {s.detail}" if s.detail else ""
        return Status.ERROR, f"stage {s.name} {s.status.value}{detail}"
    if not runs:
        if not suites_expected:  # source ... build, boot: the stages are the verdict
            return Status.PASS, f"{len(stages)} stage(s) passed"
        return Status.ERROR, "no suite ran"
    errored = [r for r in runs if r.status in (Status.ERROR, Status.NOTRUN)]
    if errored:
        names = ", ".join(suite_label(r) for r in errored)
        return Status.ERROR, f"{len(errored)} suite(s) did not complete: {names}"
    failed = [r for r in runs if r.status is Status.FAIL]
    bad_log = failing_findings(findings)
    if failed or bad_log:
        parts = []
        if failed:
            parts.append(f"{len(failed)} suite(s) failed: " + ", ".join(suite_label(r) for r in failed))
        if bad_log:
            parts.append(f"{len(bad_log)} kernel-log finding(s)")
        return Status.FAIL, "; ".join(parts)
    if all(r.status is Status.SKIP for r in runs):
        return Status.SKIP, "every suite skipped: nothing was tested"
    return Status.PASS, f"{len(runs)} suite(s) passed"


def exit_code(stages: Sequence[StageResult], runs: Sequence[SuiteRun],
              findings: FindingMap | None = None, *, suites_expected: bool = True) -> int:
    """The process exit code of :func:`verdict`."""
    return EXIT_CODES[verdict(runs, stages, findings, suites_expected=suites_expected)[0]]
