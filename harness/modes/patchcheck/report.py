"""patchcheck's outputs: the table (``summary.txt``), ``junit.xml`` and ``patchcheck.json``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.model import Status
from harness.modes.patchcheck.check import Result
from harness.parse import buildlog


def fmt_duration(s: float) -> str:
    return f"{int(s) // 60}m{int(s) % 60:02d}s" if s >= 60 else f"{s:.0f}s"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _cell(st: Status, text: str = "") -> str:
    word = {Status.PASS: "ok", Status.FAIL: "FAIL", Status.ERROR: "ERROR",
            Status.NOTRUN: "-", Status.SKIP: "skip"}[st]
    return f"{word} {text}".strip()


def render(result: Result, header: str) -> str:
    lines = [header, "",
             f"{'#':>2}  {'patch':<52} {'apply':<6} {'build':<12} {'checkpatch':<16} "
             f"{'new warn':<9} verdict"]
    for r in result.rows:
        allowed = sum(1 for f in r.findings if f.allowed)
        bad = [f for f in r.findings if not f.allowed]
        if r.index == 0:
            cp, nw = "", ""
        else:
            cp = _cell(r.checkpatch)
            if r.checkpatch is not Status.NOTRUN and r.checkpatch is not Status.ERROR:
                cp = (f"{len(bad)} finding(s)" if bad else "ok") + \
                    (f", {allowed} allowed" if allowed else "")
            kernel_c = buildlog.kernel_c_files(r.touched) or [
                f for f in r.touched if not f.startswith(("tools/", "Documentation/"))]
            nw = (str(len(r.new_warnings)) if r.build is Status.PASS else "-") \
                if kernel_c else "n/a"
        build = _cell(r.build, fmt_duration(r.build_s) if r.build is Status.PASS else "")
        verdict = {Status.PASS: "PASS", Status.FAIL: "FAIL"}.get(r.verdict, "ERROR")
        if r.index == 0:
            verdict = "ok" if r.build is Status.PASS else "ERROR"
        lines.append(f"{r.index:>2}  {_short(r.subject, 52):<52} "
                     f"{_cell(r.apply):<6} {build:<12} {cp:<16} {nw:<9} {verdict}")
    if result.boot is not None:
        st, detail = result.boot
        lines.append(f"{'':>2}  {'boot + suites on the final prefix':<52} {'':<6} {'':<12} "
                     f"{'':<16} {'':<9} {st.name}  {detail}")
    notes: list[str] = []
    for r in result.rows:
        for f in r.findings:
            tag = f"allowed ({f.allowed})" if f.allowed else "FAIL"
            notes.append(f"{r.index:>2}  checkpatch {tag}: {f.head}"
                         + (f" [{f.where}]" if f.where else ""))
        for w in r.new_warnings:
            notes.append(f"{r.index:>2}  new warning: {w.describe()}")
        for d in r.detail:
            notes.append(f"{r.index:>2}  {d}")
    for where in result.unused_rules:
        notes.append(f"    note: allow-list rule {where} matched nothing (stale?)")
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"


def write_junit(result: Result, path: Path) -> None:
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

    ts = TestSuite("patchcheck")
    for r in result.rows:
        label = f"{r.index:02d} {r.name}" if r.index else "00 (base)"
        checks: list[tuple[str, Status, str]] = [
            ("build", Status.ERROR if r.apply is Status.ERROR else r.build,
             "; ".join(d for d in r.detail if d.startswith(("apply", "checkout", "build")))),
        ]
        if r.index:
            bad = [f.head for f in r.findings if not f.allowed]
            checks.append(("checkpatch", r.checkpatch, "; ".join(bad) or "; ".join(
                d for d in r.detail if d.startswith("checkpatch"))))
            checks.append(("new warnings", Status.FAIL if r.new_warnings else
                           (Status.PASS if r.build is Status.PASS else Status.NOTRUN),
                           "; ".join(w.describe() for w in r.new_warnings)))
        for what, st, msg in checks:
            tc = TestCase(name=f"{label}: {what}", classname="patchcheck")
            if st is Status.FAIL:
                tc.result = [Failure(message=msg[:2000] or what, type_=what)]
            elif st is Status.ERROR:
                tc.result = [Error(message=msg[:2000] or what, type_=what)]
            elif st is Status.NOTRUN:
                tc.result = [Skipped(message="not run")]
            allowed = [f"{f.head} (allowed: {f.allowed})" for f in r.findings if f.allowed]
            if what == "checkpatch" and allowed:
                tc.system_out = "\n".join(allowed)
            ts.append(tc)
    if result.boot is not None:
        tc = TestCase(name="boot + suites (final prefix)", classname="patchcheck")
        st, detail = result.boot
        if st is Status.FAIL:
            tc.result = [Failure(message=detail, type_="suites")]
        elif st is not Status.PASS:
            tc.result = [Error(message=detail, type_="boot")]
        ts.append(tc)
    xml = JUnitXml()
    xml.append(ts)
    xml.update_statistics()
    tmp = path.with_name(path.name + ".tmp")
    xml.write(str(tmp), pretty=True)
    os.replace(tmp, path)


def to_json(result: Result) -> dict[str, Any]:
    return {
        "exit_code": result.exit_code,
        "rows": [{"index": r.index, "name": r.name, "subject": r.subject,
                  "touched": list(r.touched), "apply": r.apply.name, "build": r.build.name,
                  "build_s": round(r.build_s, 1), "checkpatch": r.checkpatch.name,
                  "verdict": r.verdict.name, "detail": r.detail,
                  "findings": [{"level": f.level, "type": f.type, "message": f.message,
                                "where": f.where, "allowed": f.allowed} for f in r.findings],
                  "new_warnings": [w.describe() for w in r.new_warnings]}
                 for r in result.rows],
        "boot": None if result.boot is None else {"status": result.boot[0].name,
                                                  "detail": result.boot[1]},
        "unused_allow_rules": result.unused_rules,
    }
