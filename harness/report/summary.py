"""Short human summary: a fixed-width table of stages and suites, and a verdict.

Pure: returns text, prints nothing.  Example::

    NAME                      STATUS     TIME  PASS  FAIL  SKIP   ERR  FIRST FAILURES
    stage source              pass       0.4s
    stage build               pass    9m12.0s
    suite recharge[sysctl=0]  pass      31.0s     6     0     1     0
    suite recharge[sysctl=1]  FAIL      30.2s     5     1     1     0  test_recharge_offline
    kernel log: 1 finding
      recharge[sysctl=1] test_recharge_offline: WARNING in mem_cgroup_recharge_offline
    verdict: FAIL - 1 suite failed: recharge[sysctl=1] (exit 1)

Counts are over the testcases the JUnit report has for KTAP cases: PASS
counts pass and xfail, FAIL counts fail, xpass and timeout.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.model import StageResult, Status, SuiteRun
from harness.parse.ktap import CaseStatus
from harness.report.junit import infra_error, suite_label
from harness.verdict import EXIT_CODES, TEST_STAGE_NAMES, FindingMap, failing_findings, verdict

__all__ = ["EXIT_CODES", "TEST_STAGE_NAMES", "first_failures", "render_summary", "run_counts", "verdict"]

_MAX_NAME = 40
_MAX_FAILURES = 3

def run_counts(run: SuiteRun) -> dict[str, int]:
    """``pass``/``fail``/``skip``/``error`` counts over all KTAP cases of a run."""
    out = {"pass": 0, "fail": 0, "skip": 0, "error": 0}
    if run.result is None:
        return out
    for _, case in run.result.walk():
        if case.missing and infra_error(run):
            out["skip"] += 1  # not run because the suite died; JUnit says <skipped>
        elif case.status in (CaseStatus.PASS, CaseStatus.XFAIL):
            out["pass"] += 1
        elif case.status.failed:
            out["fail"] += 1
        elif case.status is CaseStatus.SKIP:
            out["skip"] += 1
        else:
            out["error"] += 1
    return out


def first_failures(run: SuiteRun, limit: int = _MAX_FAILURES) -> list[str]:
    """Names of the first failing/erroring cases, leaves preferred over parents.

    Cases that never ran because the suite died (``missing`` with an infrastructure error) are left out.
    """
    if run.result is None:
        return []
    bad = [
        (n, c)
        for n, c in run.result.walk()
        if (c.status.failed or c.status is CaseStatus.ERROR) and not (c.missing and infra_error(run))
    ]
    leaves = [n for n, c in bad if not c.subtests]
    parents = [n for n, c in bad if c.subtests]
    return (leaves + parents)[:limit]


def _duration(seconds: float) -> str:
    if seconds >= 60:
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)}m{rest:04.1f}s"
    return f"{seconds:.1f}s"


def _status_text(status: Status) -> str:
    # Upper-case what needs attention so it stands out in a terminal or CI log.
    text: str = status.value
    return text if status in (Status.PASS, Status.SKIP) else text.upper()


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 3] + "..."


def _known_lines(runs: Sequence[SuiteRun]) -> list[str]:
    """Known failures that matched their evidence (XFAIL), and those that passed (XPASS).

    An XPASS does not fail the run (like pytest's non-strict xfail: the base's failure
    may be flaky), but it is shown loudly: the listed reason may be stale."""
    def hits(kind: str) -> list[tuple[str, str, str]]:
        return [(suite_label(run), name, case.reason) for run in runs if run.result is not None
                for name, case in run.result.walk() if case.known == kind]

    lines = []
    xfail, xpass = hits("xfail"), hits("xpass")
    if xfail:
        lines.append(f"known failures (fail on the unpatched base too, with the measured "
                     f"evidence; not counted): {len(xfail)}")
        lines += [f"  {label} {name}: {reason[len('known failure: '):][:150]}"
                  for label, name, reason in xfail]
    if xpass:
        lines.append(f"XPASS: {len(xpass)} known failure(s) PASSED - check whether the reason "
                     "in harness/stages/suitetable.py still holds (not counted as a failure)")
        lines += [f"  XPASS {label} {name}" for label, name, _ in xpass]
    return lines


def render_summary(
    runs: list[SuiteRun],
    stages: list[StageResult],
    findings: FindingMap | None = None,
) -> str:
    """The summary table plus a ``verdict:`` line (no trailing newline)."""
    rows: list[tuple[str, str, str, str]] = []  # name, status, time, rest
    for st in stages:
        rows.append((f"stage {st.name}", _status_text(st.status), _duration(st.duration_s), ""))
    for run in runs:
        c = run_counts(run)
        counts = f"{c['pass']:>5} {c['fail']:>5} {c['skip']:>5} {c['error']:>5}"
        fails = first_failures(run)
        if run.error and (infra_error(run) or not fails):
            fails = [run.error] + fails
        rest = counts + ("  " + ", ".join(fails) if fails else "")
        rows.append((f"suite {suite_label(run)}", _status_text(run.status), _duration(run.duration_s), rest))

    width = min(_MAX_NAME, max([len("NAME")] + [len(r[0]) for r in rows]))
    header = (
        f"{'NAME':<{width}}  {'STATUS':<7} {'TIME':>8} {'PASS':>5} {'FAIL':>5} {'SKIP':>5} {'ERR':>5}  FIRST FAILURES"
    )
    lines = [header]
    for name, status, time, rest in rows:
        lines.append(f"{_short(name, width):<{width}}  {status:<7} {time:>8} {rest}".rstrip())

    lines += _known_lines(runs)

    bad_log = failing_findings(findings)
    if findings:
        total = sum(len(v) for v in findings.values())
        lines.append(f"kernel log: {total} finding(s), {len(bad_log)} failing")
        for (suite, case), f in bad_log[:5]:
            where = f"{suite} {case}".strip()
            times = f" (x{f.count})" if f.count > 1 else ""
            lines.append(f"  {where}: {f.title}{times}")
        if len(bad_log) > 5:
            lines.append(f"  ... {len(bad_log) - 5} more")

    overall, reason = verdict(runs, stages, findings)
    word = "NO VERDICT" if overall in (Status.ERROR, Status.NOTRUN) else str(overall.value).upper()
    lines.append(f"verdict: {word} - {reason} (exit {EXIT_CODES[overall]})")
    return "\n".join(lines)
