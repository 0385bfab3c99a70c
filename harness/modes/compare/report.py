"""compare's outputs: ``junit.xml`` (one testcase per compared case), ``summary.txt``
(only the differences) and ``compare.json``."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.modes import child as rundir
from harness.modes.child import ChildRun
from harness.modes.compare.model import SHOWN, Change, Comparison

SUITE_PREFIX = "compare"


def write_junit(cmp: Comparison, path: Path) -> None:
    """One testcase per compared case; failure only for regressions."""
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

    props = {"compare.verdict": cmp.verdict,
             "compare.base_run": str(cmp.base.run_dir if cmp.base else ""),
             "compare.patched_run": str(cmp.patched.run_dir if cmp.patched else "")}
    xml = JUnitXml()
    suites: dict[str, TestSuite] = {}

    def suite(name: str) -> TestSuite:
        if name not in suites:
            ts = TestSuite(name)
            for k, v in props.items():
                ts.add_property(k, v)
            suites[name] = ts
            xml.append(ts)
        return suites[name]

    if cmp.verdict in ("infrastructure", "patched-error"):
        tc = TestCase(name="base" if cmp.verdict == "infrastructure" else "patched",
                      classname=f"{SUITE_PREFIX}.setup")
        tc.result = [Error(message=cmp.detail, type_=cmp.verdict)]
        suite(f"{SUITE_PREFIX}.setup").append(tc)
    for c in cmp.cases:
        tc = TestCase(name=c.name, classname=c.suite)
        text = f"base: {c.base or 'absent'}, patched: {c.patched or 'absent'}"
        if c.change is Change.NEW_FAILURE:
            tc.result = [Failure(message=f"new failure ({text}): {c.message}"[:2000],
                                 type_="regression")]
        elif c.change is Change.GONE:
            tc.result = [Failure(message=f"gone: ran on the base, not on patched ({text})",
                                 type_="gone")]
        elif c.change is Change.PRE_EXISTING:
            tc.result = [Skipped(message=f"pre-existing: fails on the base too ({text})")]
        elif c.patched in (None, "skip"):  # not run on patched, nor on base: not a pass
            tc.result = [Skipped(message=f"not run ({text}) {c.message}".strip())]
        tc.system_out = f"{c.change.value}: {text}"
        suite(c.suite).append(tc)
    for s in cmp.signatures:
        tc = TestCase(name=s.signature[:200], classname=f"{SUITE_PREFIX}.kernel-log")
        if s.change is Change.NEW_FAILURE:
            tc.result = [Failure(message=f"new {s.kind} in {s.where}: {s.signature}"[:2000],
                                 type_=f"kernel-log.{s.kind}")]
        elif s.change is Change.PRE_EXISTING:
            tc.result = [Skipped(message=f"pre-existing: the base shows it too ({s.where})")]
        tc.system_out = f"{s.change.value}: {s.kind} in {s.where}"
        suite(f"{SUITE_PREFIX}.kernel-log").append(tc)
    if cmp.patched is not None and cmp.verdict not in ("infrastructure", "patched-error"):
        ws = suite(f"{SUITE_PREFIX}.build-warnings")
        for w in cmp.warnings:
            tc = TestCase(name=w.warning.describe()[:200], classname=ws.name)
            if w.change is Change.NEW_FAILURE:
                tc.result = [Failure(message=f"new warning: {w.warning.describe()}",
                                     type_="build-warning")]
            else:
                tc.result = [Skipped(message="new in the patched log, but the base build did "
                                     "not compile this file: unverified")]
            ws.append(tc)
        summary_tc = TestCase(name="no new build warnings", classname=ws.name)
        if cmp.new_warnings:
            summary_tc.result = [Failure(message=f"{len(cmp.new_warnings)} new warning(s)",
                                         type_="build-warning")]
        ws.append(summary_tc)
    xml.update_statistics()
    tmp = path.with_name(path.name + ".tmp")
    xml.write(str(tmp), pretty=True)
    os.replace(tmp, path)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def render(cmp: Comparison) -> str:
    """The summary table: verdict, then only the differences."""
    lines = [f"compare: {cmp.verdict.upper()} (exit {cmp.exit_code}): {cmp.detail}", ""]
    shown = [c for c in cmp.cases if c.change in SHOWN]
    if shown:
        lines.append(f"{'change':<13} {'suite':<22} {'case':<44} {'base':<7} patched")
        order = {ch: i for i, ch in enumerate(SHOWN)}
        for c in sorted(shown, key=lambda c: order[c.change]):
            lines.append(f"{c.change.value:<13} {_short(c.suite, 22):<22} "
                         f"{_short(c.name, 44):<44} {c.base or '-':<7} {c.patched or '-'}")
        lines.append("")
    elif cmp.patched is not None and cmp.cases:
        lines += [f"test cases: no differences ({len(cmp.cases)} compared)", ""]
    if cmp.signatures:
        lines.append(f"{'kernel log':<13} {'kind':<12} signature (where)")
        for s in cmp.signatures:
            tag = "new" if s.change is Change.NEW_FAILURE else s.change.value
            lines.append(f"{tag:<13} {s.kind:<12} {_short(s.signature, 70)} "
                         f"({s.where})")
        lines.append("")
    if cmp.warnings:
        lines.append("build warnings new on patched")
        for w in cmp.warnings:
            tag = "new" if w.change is Change.NEW_FAILURE else "unverified"
            lines.append(f"{tag:<13} {w.warning.describe()}")
        lines.append("")
    for n in cmp.notes:
        lines.append(f"note: {n}")
    for r in (cmp.base, cmp.patched):
        if r is not None:
            lines.append(f"{r.label + ':':<9}{rundir.describe(r)}")
    if cmp.patched is None and cmp.base is not None:
        lines.append("patched: not run (the base failed)")
    return "\n".join(lines).rstrip() + "\n"


def to_json(cmp: Comparison) -> dict[str, Any]:
    def run(r: ChildRun | None) -> dict[str, Any] | None:
        return None if r is None else {"label": r.label, "exit_code": r.exit_code,
                                       "run_dir": str(r.run_dir or ""),
                                       "duration_s": round(r.duration_s, 1)}
    return {
        "verdict": cmp.verdict, "exit_code": cmp.exit_code, "detail": cmp.detail,
        "base": run(cmp.base), "patched": run(cmp.patched),
        "cases": [dict(asdict(c), change=c.change.value) for c in cmp.cases
                  if c.change is not Change.SAME],
        "signatures": [dict(asdict(s), change=s.change.value) for s in cmp.signatures],
        "warnings": [{"file": w.warning.file, "line": w.warning.line,
                      "message": w.warning.message,
                      "counted": w.change is Change.NEW_FAILURE} for w in cmp.warnings],
        "notes": cmp.notes,
    }


def write_reports(cmp: Comparison, run_dir: Path) -> str:
    """junit.xml, summary.txt, compare.json in ``run_dir``; returns the summary text."""
    from harness.paths import atomic_write

    write_junit(cmp, run_dir / "junit.xml")
    text = render(cmp)
    atomic_write(run_dir / "summary.txt", text)
    atomic_write(run_dir / "compare.json", json.dumps(to_json(cmp), indent=2) + "\n")
    return text
