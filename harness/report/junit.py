"""JUnit XML writer (junitparser): one <testsuite> per suite run.

Mapping (like the kernel's kunit JUnit output):

* testsuite name: :func:`suite_label` (``recharge[sysctl=1]``); the caller's
  ``properties`` plus ``suite.status``, ``suite.exit_code``, ``suite.sysctl``
  on each testsuite; time = the run's duration;
* one testcase per KTAP case, parents before children, nested names dotted
  (``selftests: cgroup: test_memcontrol.test_memcg_min``), classname = suite
  label, system-out = the case's diagnostic lines;
* pass -> no element; XFAIL -> pass with property ``ktap.status=xfail`` (and
  ``ktap.raw_status=fail`` for the harness's known failures, read by compare); a
  known failure that passed -> pass with ``ktap.status=xpass-known``;
  SKIP -> <skipped>; FAIL, XPASS, TIMEOUT -> <failure type="fail|xpass|timeout">;
  ERROR (including cases the plan announced but never came) -> <error>;
* a run with status ERROR/NOTRUN and ``error`` set (timeout, VM died, no
  output) -> a ``(run)`` testcase with <error> and the tail of the raw output;
  planned-but-missing cases become <skipped message="not run: ...">.  For
  other statuses ``error`` is only the reason text (see :func:`infra_error`);
* a run whose status is worse than its cases show (crash exit code, no KTAP
  output, NOTRUN) -> a ``(run)`` testcase carrying that status;
* KTAP protocol errors (plan mismatch, Bail out!) -> a ``(ktap)`` error case;
* kernel-log findings (``findings``, keyed ``(suite, case)`` as produced by
  :func:`harness.parse.logscan.scan_by_case`): attached to the matching testcase as
  <failure type="kernel-log.<kind>"> (<error> when fatal), merged with the case's
  own result so every testcase has exactly one outcome element; findings for the
  suite as a whole or for an unknown case go to a ``kernel-log`` testcase of
  that suite; keys that match no run (boot, between suites) go to a separate
  ``kernel-log`` testsuite.  When ``findings`` is given (even empty) those
  ``kernel-log`` testcases are always written, so a CI sees them pass.
  Informational findings (OOM) go to system-err only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from junitparser import (
    Error,
    Failure,
    JUnitXml,
    Properties,
    Property,
    Skipped,
    TestCase,
    TestSuite,
)

from harness.model import Status, SuiteRun
from harness.parse.ktap import CaseStatus, KtapCase
from harness.parse.logscan import BETWEEN, BOOT, KERNEL_SUITE, Finding, is_failure

__all__ = ["KTAP_CASE", "LOG_CASE", "RUN_CASE", "build_junit", "infra_error", "suite_label", "write_junit", "write_xml"]

RUN_CASE = "(run)"
#: Testcase property with the raw outcome of a known failure written as a pass (XFAIL):
#: what compare judges by, so "base passes, patched fails (xfail)" is a regression.
RAW_STATUS = "ktap.raw_status"
KTAP_CASE = "(ktap)"
LOG_CASE = "kernel-log"
RAW_TAIL_LINES = 60

FindingMap = Mapping[tuple[str, str], Sequence[Finding]]


def infra_error(run: SuiteRun) -> str | None:
    """``run.error`` when it means the run did not complete (status ERROR or NOTRUN).

    For other statuses ``error`` is only an explanation (e.g. judge's "1 failed: x"
    for FAIL, or "sysctl absent" for SKIP) and does not turn the run into an error.
    """
    return run.error if run.error and run.status in (Status.ERROR, Status.NOTRUN) else None


def suite_label(run: SuiteRun) -> str:
    """``name[sysctl=N]`` when the run set the sysctl, else the name."""
    if run.sysctl is None or "[" in run.name:
        return run.name
    return f"{run.name}[sysctl={run.sysctl}]"


def _tail(text: str, n: int = RAW_TAIL_LINES) -> str:
    lines = text.splitlines()
    return "\n".join(lines[-n:])


def _add_case_property(tc: TestCase, name: str, value: str) -> None:
    props = tc.child(Properties)
    if props is None:
        props = Properties()
        tc.append(props)
    props.add_property(Property(name, value))


@dataclass
class _Case:
    """A testcase being built; system-out/err are set last so they follow the results."""

    tc: TestCase
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    def done(self) -> TestCase:
        if self.out:
            self.tc.system_out = "\n".join(self.out)
        if self.err:
            self.tc.system_err = "\n".join(self.err)
        return self.tc


def _ktap_case(label: str, dotted: str, case: KtapCase, run_error: str | None) -> _Case:
    tc = TestCase(name=dotted, classname=label)
    status, reason = case.status, case.reason
    if case.missing and run_error:
        tc.result = [Skipped(message=f"not run: {run_error}")]
    elif status is CaseStatus.SKIP:
        tc.result = [Skipped(message=reason or "skipped")]
    elif status.failed:
        msg = f"{status.value}: {reason}" if reason else status.value
        tc.result = [Failure(message=msg, type_=status.value)]
    elif status is CaseStatus.ERROR:
        tc.result = [Error(message=reason or "error", type_="error")]
    elif status is CaseStatus.XFAIL:
        _add_case_property(tc, "ktap.status", "xfail")
        if case.known == "xfail":  # the harness's known failure: it really failed
            _add_case_property(tc, RAW_STATUS, "fail")
        if reason:
            _add_case_property(tc, "ktap.reason", reason)
    elif case.known == "xpass":  # a known failure that passed: shown, not failing
        _add_case_property(tc, "ktap.status", "xpass-known")
        _add_case_property(tc, "ktap.reason", reason)
    return _Case(tc, out=list(case.diagnostics))


def _run_case(run: SuiteRun, label: str, cases: list[_Case]) -> _Case | None:
    """The ``(run)`` testcase, when the run's status is not told by its cases."""
    tc = TestCase(name=RUN_CASE, classname=label, time=run.duration_s)
    has_error = any(isinstance(r, Error) for c in cases for r in c.tc.result)
    has_fail = has_error or any(isinstance(r, Failure) for c in cases for r in c.tc.result)
    exit_txt = f"exit code {run.exit_code}" if run.exit_code is not None else "no exit code"
    infra = infra_error(run)
    if infra:
        tc.result = [Error(message=infra, type_="run")]
    elif run.status is Status.NOTRUN:
        tc.result = [Skipped(message="not run")]
    elif not cases:
        if run.status is Status.PASS:
            pass
        elif run.status is Status.SKIP:
            skip_all = run.result.skip_all if run.result is not None else None
            tc.result = [Skipped(message=run.error or skip_all or "skipped")]
        elif run.status is Status.FAIL:
            tc.result = [Failure(message=run.error or f"failed without KTAP results ({exit_txt})", type_="run")]
        else:
            tc.result = [Error(message=f"no KTAP results ({exit_txt})", type_="run")]
    elif run.status is Status.ERROR and not has_error:
        tc.result = [Error(message=f"suite error ({exit_txt})", type_="run")]
    elif run.status is Status.FAIL and not has_fail:
        tc.result = [Failure(message=run.error or f"suite failed ({exit_txt}) with no failing case", type_="run")]
    else:
        return None
    return _Case(tc, out=[_tail(run.raw_output)] if tc.result and run.raw_output else [])


def _attach(case: _Case, findings: Sequence[Finding], where: str = "") -> None:
    """Add kernel-log findings to a testcase, keeping exactly one result element.

    CI tools read a testcase by one element (two <failure>s, or <skipped> beside a
    <failure>, are read differently by different tools): the worst one is kept
    (error > failure > skipped/pass) and carries every message."""
    at = f" during {where}" if where else ""
    bad: list[Finding] = []
    for f in findings:
        times = f" (x{f.count})" if f.count > 1 else ""
        if not is_failure(f):
            case.err.append(f"kernel log ({f.kind}){times}{at}: {f.title}\n  signature: {f.signature}")
        else:
            bad.append(f)
    if not bad:
        return
    msgs = [f"kernel {f.kind}{f' (x{f.count})' if f.count > 1 else ''}{at}: {f.title}"
            for f in bad]
    texts = [f"signature: {f.signature}\nlog line {f.line_no}:\n{f.excerpt}" for f in bad]
    prior = next(iter(case.tc.result), None)
    fatal = any(f.fatal for f in bad) or isinstance(prior, Error)
    cls = Error if fatal else Failure
    if isinstance(prior, (Error, Failure)):
        msgs.insert(0, str(prior.message or ""))
        texts.insert(0, str(prior.text or ""))
    elif isinstance(prior, Skipped):
        msgs.append(f"(the case was skipped: {prior.message or ''})")
    kind = prior.type if isinstance(prior, cls) and prior.type else f"kernel-log.{bad[0].kind}"
    el = cls(message="; ".join(m for m in msgs if m), type_=kind)
    el.text = "\n\n".join(t for t in texts if t)
    case.tc.result = [el]


def _stats(ts: TestSuite, time: float) -> None:
    tests = failures = errors = skipped = 0
    for case in ts:
        tests += 1
        kinds = {type(r) for r in case.result}
        if Error in kinds:
            errors += 1
        elif Failure in kinds:
            failures += 1
        elif Skipped in kinds:
            skipped += 1
    ts.tests, ts.failures, ts.errors, ts.skipped = tests, failures, errors, skipped
    ts.time = round(time, 3)


def _suite(
    run: SuiteRun, properties: Mapping[str, str], findings: FindingMap | None
) -> tuple[TestSuite, set[tuple[str, str]]]:
    label = suite_label(run)
    ts = TestSuite(label)
    for prop, value in properties.items():
        ts.add_property(prop, str(value))
    ts.add_property("suite.status", run.status.value)
    ts.add_property("suite.exit_code", "" if run.exit_code is None else str(run.exit_code))
    ts.add_property("suite.sysctl", "" if run.sysctl is None else str(run.sysctl))

    cases: list[_Case] = []
    by_name: dict[str, _Case] = {}
    if run.result is not None:
        for dotted, ktap_case in run.result.walk():
            built = _ktap_case(label, dotted, ktap_case, infra_error(run))
            cases.append(built)
            by_name.setdefault(dotted, built)
        if run.result.errors and not infra_error(run):
            protocol = TestCase(name=KTAP_CASE, classname=label)
            protocol.result = [Error(message="; ".join(run.result.errors), type_="ktap")]
            cases.append(_Case(protocol))
    run_tc = _run_case(run, label, cases)
    if run_tc is not None:
        cases.insert(0, run_tc)
        by_name.setdefault(RUN_CASE, run_tc)

    used: set[tuple[str, str]] = set()
    if findings is not None:
        log_tc = _Case(TestCase(name=LOG_CASE, classname=label))
        for key, found in findings.items():
            key_suite, key_case = key
            if key_suite not in (label, run.name):
                continue
            used.add(key)
            target = by_name.get(key_case) if key_case else None
            if target is None:
                _attach(log_tc, found, where=key_case)
            else:
                _attach(target, found)
        cases.append(log_tc)

    for c in cases:
        ts.append(c.done())
    _stats(ts, run.duration_s)
    return ts, used


def _kernel_suite(properties: Mapping[str, str], findings: FindingMap, used: set[tuple[str, str]]) -> TestSuite:
    ts = TestSuite(KERNEL_SUITE)
    for prop, value in properties.items():
        ts.add_property(prop, str(value))
    keys = [BOOT, BETWEEN] + sorted(k for k in findings if k not in used and k not in (BOOT, BETWEEN))
    for key in keys:
        key_suite, key_case = key
        name = key_case if key_suite == KERNEL_SUITE else (f"{key_suite}.{key_case}" if key_case else key_suite)
        built = _Case(TestCase(name=name, classname=KERNEL_SUITE))
        _attach(built, findings.get(key, ()))
        ts.append(built.done())
    _stats(ts, 0.0)
    return ts


def build_junit(
    runs: Sequence[SuiteRun],
    properties: Mapping[str, str],
    findings: FindingMap | None = None,
) -> JUnitXml:
    """The JUnit document for ``runs`` (pure; see the module docstring)."""
    xml = JUnitXml()
    used: set[tuple[str, str]] = set()
    for run in runs:
        ts, u = _suite(run, properties, findings)
        used |= u
        xml.append(ts)
    if findings is not None:
        xml.append(_kernel_suite(properties, findings, used))
    totals = [0, 0, 0, 0]
    time = 0.0
    for ts in xml:
        totals[0] += ts.tests
        totals[1] += ts.failures
        totals[2] += ts.errors
        totals[3] += ts.skipped
        time += ts.time or 0.0
    xml.tests, xml.failures, xml.errors, xml.skipped = totals
    xml.time = round(time, 3)
    return xml


def write_junit(
    runs: list[SuiteRun],
    path: Path,
    properties: dict[str, str],
    findings: dict[tuple[str, str], list[Finding]] | None = None,
) -> None:
    """Write ``junit.xml`` for a pipeline run (:func:`write_xml`)."""
    write_xml(build_junit(runs, properties, findings), path, statistics=False)


def write_xml(xml: JUnitXml, path: Path, *, statistics: bool = True) -> None:
    """The one JUnit writer of every mode: atomically (temporary file + rename), with the
    totals updated first unless the caller computed them (``statistics=False``)."""
    if statistics:
        xml.update_statistics()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    xml.write(str(tmp), pretty=True)
    os.replace(tmp, path)
