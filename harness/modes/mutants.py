"""Mutation check of the test suites: every planted bug must turn the verdict red.

``recharge-harness mutants [--mutants DIR] [--mutant NAME]... [run options]``

Each ``mutants/*.patch`` (format in ``mutants/README``) is a small bug planted on
top of the series.  One at a time, in run order, the mutant gets a private series
(the series' patches + the mutant, under ``out/<N>/series/<mutant>/``) and an
ordinary child ``run`` (:mod:`harness.modes.child`): the harness applies it with
``git am --3way`` in its cache worktree (never a user's tree), builds
incrementally in the shared build directory, boots and runs the selected suites
(default ``--suite recharge --suite scenarios``).  The child's outcome is read like
a bisect step (:func:`harness.modes.predicate.classify`):

======================================  ============================================
the child run                           the mutant
======================================  ============================================
a test failed / kernel-log finding      killed (the failing cases are its killers)
every suite passed                      survived: the tests do not see this bug
does not apply / build / boot, no       error (a mutant that no longer applies must
verdict                                 be rewritten)
======================================  ============================================

Outputs in ``out/<N>/``: ``junit.xml`` (one testcase per mutant: survived is a
failure, error an error), ``summary.txt``, ``mutants.md`` (the kill-rate table),
``mutants.json``, ``metadata.json``, ``runs/<mutant>/`` (each child run).
Exit 0 only if every mutant was killed; 2 if any could not be judged; else 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import EXIT_FAIL, EXIT_NO_VERDICT, EXIT_PASS, UserError
from harness.modes import child as rundir
from harness.modes.child import ChildRunner

if TYPE_CHECKING:
    from harness.model import Options

log = logging.getLogger(__name__)

DEFAULT_SUITES = ("recharge", "scenarios")
_EXPECT = re.compile(r"^Expect-killed-by:\s*(.+)$", re.M | re.I)


@dataclass(frozen=True)
class Mutant:
    name: str  # file stem
    path: Path
    expect: tuple[str, ...] = ()  # "Expect-killed-by:" case names (optional)


@dataclass
class MutantResult:
    mutant: Mutant
    verdict: str  # killed | survived | error
    detail: str
    killers: list[str] = field(default_factory=list)  # failing cases, kernel-log signatures
    duration_s: float = 0.0
    run_dir: str = ""
    notes: list[str] = field(default_factory=list)


def find_mutants(directory: Path, only: list[str] | None = None) -> list[Mutant]:
    """``directory/*.patch`` in name order (``only``: these stems); UserError if none."""
    paths = sorted(directory.glob("*.patch")) if directory.is_dir() else []
    if only:
        unknown = sorted(set(only) - {p.stem for p in paths})
        if unknown:
            raise UserError(f"--mutant {', '.join(unknown)}: not in {directory}")
        paths = [p for p in paths if p.stem in only]
    if not paths:
        raise UserError(f"{directory}: no mutants (*.patch; see mutants/README)")
    out = []
    for p in paths:
        text = p.read_text(encoding="utf-8", errors="replace")
        m = _EXPECT.search(text.split("\n---\n", 1)[0])
        expect = tuple(x for x in re.split(r"[,\s]+", m.group(1)) if x) if m else ()
        out.append(Mutant(p.stem, p, expect))
    return out


def mutant_series(series_file: Path | None, mutant: Mutant, dest: Path) -> Path:
    """``dest/series``: the series' patches, then the mutant (copies: the series file
    format wants every patch next to it)."""
    from harness.stages import apply as seriesmod

    dest.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    if series_file is not None and series_file.is_file():
        for p in seriesmod.read_series(series_file, required=True).patches:
            (dest / p.name).write_bytes(p.path.read_bytes())
            names.append(p.name)
    own = f"mutant-{mutant.path.name}"
    (dest / own).write_bytes(mutant.path.read_bytes())
    names.append(own)
    series = dest / "series"
    series.write_text(f"# recharge-harness mutants: the series + {mutant.path.name}\n"
                      + "".join(n + "\n" for n in names))
    return series


def judge(mutant: Mutant, child: rundir.ChildRun) -> MutantResult:
    """A finished child run -> killed / survived / error (harness.modes.predicate.classify)."""
    from harness.modes.predicate import Verdict, classify

    obs = classify(child)
    ev = dict(obs.evidence)
    res = MutantResult(mutant, "error", obs.detail, duration_s=child.duration_s,
                       run_dir=str(child.run_dir or ""))
    if obs.verdict is Verdict.BAD:
        res.verdict = "killed"
        res.killers = [c.split(":")[0] for c in ev.get("failed_cases", [])] + \
            [f"kernel log: {s}" for s in ev.get("signatures", [])]
        if mutant.expect and not any(k.split(".")[-1] in mutant.expect or k in mutant.expect
                                     for k in res.killers):
            res.notes.append(f"killed, but not by the expected {', '.join(mutant.expect)}")
    elif obs.verdict is Verdict.GOOD:
        res.verdict, res.detail = "survived", "every selected suite passed with the bug in"
    elif ev.get("failed_stage", {}).get("stage") == "apply":
        res.detail = f"does not apply on top of the series: {obs.detail}"
    return res


def exit_code(results: list[MutantResult]) -> int:
    verdicts = {r.verdict for r in results}
    if "error" in verdicts or not results:
        return EXIT_NO_VERDICT
    return EXIT_FAIL if "survived" in verdicts else EXIT_PASS


# ---------------------------------------------------------------- reports --


def _dur(s: float) -> str:
    return f"{int(s) // 60}m{int(s) % 60:02d}s" if s >= 60 else f"{s:.0f}s"


def render_md(results: list[MutantResult], header: str) -> str:
    """mutants.md: the kill-rate table."""
    killed = sum(r.verdict == "killed" for r in results)
    rate = f"{killed}/{len(results)} killed ({100 * killed / len(results):.0f}%)" \
        if results else "no mutants"
    lines = [f"# {header}", "", f"Kill rate: **{rate}**", "",
             "| mutant | verdict | killed by | time | detail |", "|---|---|---|---|---|"]
    for r in results:
        killers = ", ".join(r.killers[:4]) + (" ..." if len(r.killers) > 4 else "")
        detail = "; ".join([r.detail if r.verdict != "killed" else ""] + r.notes).strip("; ")
        lines.append(f"| {r.mutant.name} | {r.verdict.upper() if r.verdict != 'killed' else 'killed'}"
                     f" | {killers or '-'} | {_dur(r.duration_s)} | "
                     f"{detail.replace('|', '/')[:200] or '-'} |")
    return "\n".join(lines) + "\n"


def write_junit(results: list[MutantResult], path: Path) -> None:
    from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

    ts = TestSuite("mutants")
    for r in results:
        tc = TestCase(name=r.mutant.name, classname="mutants", time=round(r.duration_s, 1))
        if r.verdict == "survived":
            tc.result = [Failure(message=f"survived: {r.detail}", type_="survived")]
        elif r.verdict == "error":
            tc.result = [Error(message=r.detail[:2000] or "error", type_="error")]
        tc.system_out = "\n".join([f"killed by: {k}" for k in r.killers] + r.notes
                                  + [f"run: {r.run_dir}"])
        ts.append(tc)
    xml = JUnitXml()
    xml.append(ts)
    xml.update_statistics()
    tmp = path.with_name(path.name + ".tmp")
    xml.write(str(tmp), pretty=True)
    os.replace(tmp, path)


def write_reports(results: list[MutantResult], run_dir: Path, header: str) -> str:
    from harness.paths import atomic_write

    write_junit(results, run_dir / "junit.xml")
    md = render_md(results, header)
    atomic_write(run_dir / "mutants.md", md)
    atomic_write(run_dir / "summary.txt", md)
    data = [dict(asdict(r), mutant={"name": r.mutant.name, "path": str(r.mutant.path),
                                    "expect": list(r.mutant.expect)}) for r in results]
    atomic_write(run_dir / "mutants.json", json.dumps(data, indent=2, default=str) + "\n")
    return md


# -------------------------------------------------------------------- cli --


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("mutants")
    g.add_argument("--mutants", type=Path, metavar="DIR",
                   help="directory of mutant patches (default: <project>/mutants)")
    g.add_argument("--mutant", action="append", default=[], metavar="NAME",
                   help="only this mutant (file name without .patch; repeatable)")
    g.add_argument("--targeted", action="store_true",
                   help="run each mutant against its Expect-killed-by cases only (--case), "
                        "not the whole suites: minutes instead of a quarter hour each; a "
                        "survivor then only says those cases miss it")


def targeted_args(m: Mutant, args: argparse.Namespace) -> list[str]:
    """``--case`` for each Expect-killed-by name that is a case of the project's
    suites, with ``--targeted``; nothing otherwise (the whole suites run)."""
    if not getattr(args, "targeted", False):
        return []
    from harness.stages.suites import SUITES

    known = {c for s in SUITES if s.origin == "own" for c in s.cases}
    return [x for c in m.expect if c in known for x in ("--case", c)]


def run_mutants(opts: "Options", args: argparse.Namespace, run_dir: Path,
                mutants: list[Mutant], runner: ChildRunner | None = None) -> list[MutantResult]:
    run = runner or (lambda label, a, out, lp: rundir.run_child(
        label, a, out, lp, verbose=bool(getattr(args, "verbose", False))))
    fwd = rundir.forward_args(args, drop=("out", "series"))
    if not getattr(args, "suite", None):
        fwd += [x for s in DEFAULT_SUITES for x in ("--suite", s)]
    series_file = opts.series or (opts.project / "patches" / "series")
    results: list[MutantResult] = []
    for i, m in enumerate(mutants, 1):
        log.info("mutants: [%d/%d] %s", i, len(mutants), m.name)
        series = mutant_series(series_file, m, run_dir / "series" / m.name)
        start = time.monotonic()
        child = run(f"mutant {m.name}", ["run", "--series", str(series), *fwd,
                                         *targeted_args(m, args)],
                    run_dir / "runs" / m.name, run_dir / "runs" / f"{m.name}.log")
        res = judge(m, child)
        res.duration_s = time.monotonic() - start
        log.info("mutants: %s: %s (%s)", m.name, res.verdict, _dur(res.duration_s))
        results.append(res)
    return results


def main(opts: "Options", args: argparse.Namespace,
         runner: ChildRunner | None = None) -> tuple[int, str]:
    from harness.report.mode import mode_run

    mutants = find_mutants(args.mutants or (opts.project / "mutants"), args.mutant or None)
    with mode_run(opts, "mutants", mutants=[str(m.path) for m in mutants]) as mr:
        run_dir = mr.run_dir
        results: list[MutantResult] = []
        try:
            results = run_mutants(opts, args, run_dir, mutants, runner)
        finally:
            code = exit_code(results) if len(results) == len(mutants) else EXIT_NO_VERDICT
            verdict = {EXIT_PASS: "all killed", EXIT_FAIL: "survivors"}.get(code, "no verdict")
            text = write_reports(results, run_dir, f"mutants: {verdict} (exit {code})")
            mr.finish(code, verdict, group=("mutants", {
                "results": [{"name": r.mutant.name, "verdict": r.verdict, "killers": r.killers}
                            for r in results]}))
    sys.stdout.write(text)
    sys.stdout.flush()
    bad = [f"{r.mutant.name}: {r.verdict}" for r in results if r.verdict != "killed"]
    return code, f"mutants: {verdict} (exit {code}): {', '.join(bad) or 'every mutant killed'}" \
                 f" - {run_dir}"
