"""Base versus patched: only what the series changed counts against it.

``recharge-harness compare [run options]`` runs the harness twice as a black box
(:mod:`harness.modes.child`), in ``out/<N>/base/`` and ``out/<N>/patched/``:

1. the base: the same tree, ``--base``, profile, fragments and test selection,
   with an empty series (so options only the series defines, such as
   ``CONFIG_MEMCG_RECHARGE_OFFLINE_ENABLED``, are warnings: docs/design.md);
2. the patched kernel: the series applied (``--series`` or ``patches/series``).

If the base cannot be set up (source, config, build, boot: any stage before the
suites), the verdict is **infrastructure** (exit 2) and the patched kernel is not
run: nothing can be blamed on the series (the syz-cluster rule).

Then only differences are reported:

* **new failure**: a testcase that fails/errors on patched but passed, was
  skipped or did not exist on base (a known failure counts by its raw status:
  base pass, patched xfail is a new failure);
* **gone**: a testcase the base ran (pass/fail/error/xfail) that the patched run
  skipped or did not report: lost coverage, counted like a new failure;
* **new kernel-log signature**: a failing finding on patched whose normalised
  signature the base did not show;
* **new build warning**: a compiler warning (file + message) in the patched build
  log that the base build log lacks, in a file the series touched or that the
  base build compiled (before the base build, the objects of the C files the
  series touches are deleted so both builds recompile them: harness.parse.buildlog).

Failures the base shares are **pre-existing** (shown, not counted).  A patched
kernel that does not apply, build or boot while the base does, a patched run
without a readable ``junit.xml``, or one that ended with no verdict of its own
(exit 2: a suite crashed, timed out or could not run) is verdict
**patched-error** (exit 2; the differences are still listed): missing results
are never a pass.  A base without readable results is **infrastructure**.
Otherwise exit 1 for any regression, else 0.

Outputs in ``out/<N>/``: ``junit.xml`` (one testcase per compared case, one outcome each:
failure for regressions and gone cases, skipped for pre-existing and not-run ones), ``summary.txt`` (the table),
``compare.json`` and ``metadata.json``.
"""

from __future__ import annotations

import argparse
import enum
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import EXIT_FAIL, EXIT_NO_VERDICT, EXIT_PASS
from harness.modes import child as rundir
from harness.modes.child import CaseOutcome, ChildRun, ChildRunner
from harness.parse import buildlog
from harness.record import RunRecord
from harness.stages import config as configmod
from harness.stages.suites import suite_key

if TYPE_CHECKING:
    from harness.model import Options

log = logging.getLogger(__name__)

SUITE_PREFIX = "compare"


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


# ------------------------------------------------------------------ diffing --


#: Outcomes of a case that ran (anything but skipped or absent).
RAN = ("pass", "fail", "error", "xfail")


def diff_cases(base: dict[tuple[str, str], CaseOutcome],
               patched: dict[tuple[str, str], CaseOutcome]) -> list[CaseDiff]:
    """Every case of either run, classified (patched order first, then base-only ones).

    GONE: the base ran it and the patched run did not (absent or skipped), a loss of
    coverage that counts as a regression: a series that stops a test from running
    must not pass."""
    out: list[CaseDiff] = []
    for key in list(patched) + [k for k in base if k not in patched]:
        b, p = base.get(key), patched.get(key)
        if b is not None and b.outcome in RAN and (p is None or p.outcome == "skip"):
            change = Change.GONE
            msg = f"base: {b.outcome}; patched: " + \
                ("absent" if p is None else f"skipped ({p.message})")
        elif p is None:
            change, msg = Change.SAME, f"skipped on base ({b.message if b else ''}), absent"
        elif p.bad:
            change = Change.PRE_EXISTING if b is not None and b.bad else Change.NEW_FAILURE
            msg = p.message
        elif b is None:
            change, msg = Change.NEW_CASE, ""
        elif b.bad:
            change, msg = Change.FIXED, b.message
        else:
            change, msg = Change.SAME, ""
        out.append(CaseDiff(key[0], key[1], b.outcome if b else None,
                            p.outcome if p else None, change, msg))
    return out


def diff_signatures(base_rec: RunRecord, patched_rec: RunRecord) -> list[SignatureDiff]:
    """Failing kernel-log signatures: new on patched, shared with base, or gone."""
    def index(rec: RunRecord) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for f in rec.failing_findings():
            out.setdefault(f.signature, {"suite": f.suite, "case": f.case, "kind": f.kind,
                                         "signature": f.signature})
        return out

    b, p = index(base_rec), index(patched_rec)

    def where(f: dict[str, str]) -> str:
        return ".".join(x for x in (f.get("suite", ""), f.get("case", "")) if x)

    diffs = [SignatureDiff(sig, f.get("kind", ""), where(f),
                           Change.PRE_EXISTING if sig in b else Change.NEW_FAILURE)
             for sig, f in p.items()]
    diffs += [SignatureDiff(sig, f.get("kind", ""), where(f), Change.GONE)
              for sig, f in b.items() if sig not in p]
    return diffs


def diff_warnings(base_log: str, patched_log: str, touched: set[str],
                  tree: Path | None = None) -> list[WarningDiff]:
    """Compiler warnings new on patched.

    Counted (NEW_FAILURE) when located in a file the series touched, or in a file
    the base build compiled (so its absence on base is known); otherwise listed as
    unverified (NEW_CASE): incremental builds do not recompile everything.
    """
    before = buildlog.parse_warnings(base_log, tree)
    after = buildlog.parse_warnings(patched_log, tree)
    compiled = buildlog.compiled_sources(base_log)
    out: list[WarningDiff] = []
    for w in buildlog.new_warnings(before, after):
        known = w.file in touched or w.file in compiled
        out.append(WarningDiff(w, Change.NEW_FAILURE if known else Change.NEW_CASE))
    return out


def series_touched(series_file: Path) -> set[str]:
    """Files the patches of a series file change (read from the patch files)."""
    from harness.stages.apply import read_series

    files: set[str] = set()
    try:
        ser = read_series(series_file, required=False)
    except Exception as e:  # the patched run reports a bad series properly
        log.debug("compare: cannot read %s: %s", series_file, e)
        return files
    for p in ser.patches:
        files.update(buildlog.touched_files(p.path.read_text(encoding="utf-8", errors="replace")))
    return files


# ------------------------------------------------------------------- judge --




def _read_cases(run: ChildRun) -> tuple[dict[tuple[str, str], CaseOutcome], str | None]:
    junit = run.file("junit.xml")
    if junit is None:
        return {}, f"{run.label}: no junit.xml"
    try:
        raw = rundir.read_cases(junit)
    except (OSError, ValueError) as e:
        return {}, f"{run.label}: unreadable junit.xml: {e}"
    out: dict[tuple[str, str], CaseOutcome] = {}
    for (suite, name), case in raw.items():
        key = (suite_key(suite), name)
        # A known failure is written as a pass; compare judges it by what really happened.
        outcome = "xfail" if case.raw == "fail" and case.outcome == "pass" else case.outcome
        out[key] = CaseOutcome(key[0], name, outcome, case.message, case.raw)
    return out, None


def _build_log(run: ChildRun) -> tuple[str, bool]:
    """(build.log text, whether make really ran) of a run."""
    skipped = bool(run.record().group("build_info").get("skipped"))
    p = run.file("build.log")
    text = p.read_text(encoding="utf-8", errors="replace") if p else ""
    return text, bool(p) and not skipped


def _setup_failure(run: ChildRun) -> tuple[str, str] | None:
    """(stage, detail) when the run failed before its suites (or left no metadata)."""
    rec = run.record()
    if not rec.groups:
        return ("harness", f"no metadata.json (exit {run.exit_code}; see {run.output_log})")
    fs = rec.failed_stage()
    if fs and fs[0] in rundir.SETUP_STAGES:
        return fs
    return None


def judge(base: ChildRun, patched: ChildRun | None, touched: set[str],
          tree: Path | None = None) -> Comparison:
    """The comparison of two finished runs (``patched`` None: it was not run).

    Exit 0 only when the patched run produced readable results, had a verdict of its
    own (exit 0 or 1) and nothing regressed; results that are missing are never a pass."""
    bfail = _setup_failure(base)
    if bfail is not None:
        return Comparison("infrastructure", EXIT_NO_VERDICT,
                          f"the base could not be tested ({bfail[0]}: {bfail[1]}); "
                          "nothing is blamed on the series", base, patched)
    assert patched is not None
    pfail = _setup_failure(patched)
    if pfail is not None:
        return Comparison("patched-error", EXIT_NO_VERDICT,
                          f"the patched kernel could not be tested ({pfail[0]}: {pfail[1]}) "
                          "while the base could", base, patched)
    bcases, berr = _read_cases(base)
    if berr is not None:
        return Comparison("infrastructure", EXIT_NO_VERDICT,
                          f"nothing to compare against: {berr}", base, patched)
    pcases, perr = _read_cases(patched)
    if perr is not None:
        return Comparison("patched-error", EXIT_NO_VERDICT,
                          f"{perr} (exit {patched.exit_code}): no results, no pass",
                          base, patched)
    cmp = Comparison("pass", EXIT_PASS, "", base, patched)
    cmp.cases = diff_cases(bcases, pcases)
    _compare_logs(cmp, base, patched, touched, tree)
    n_fail, n_gone = cmp.count(Change.NEW_FAILURE), cmp.count(Change.GONE)
    n_sig, n_warn = len(cmp.new_signatures), len(cmp.new_warnings)
    cmp.detail = ", ".join([f"{n_fail} new failure(s)", f"{n_gone} gone",
                            f"{n_sig} new kernel-log signature(s)",
                            f"{n_warn} new build warning(s)",
                            f"{cmp.count(Change.PRE_EXISTING)} pre-existing"])
    if n_fail or n_gone or n_sig or n_warn:
        cmp.verdict, cmp.exit_code = "regression", EXIT_FAIL
    if patched.exit_code not in (EXIT_PASS, EXIT_FAIL):
        # The patched run itself had no verdict (a suite crashed, timed out, could not
        # run): whatever the differences, it was not shown to pass.
        fs = patched.record().failed_stage()
        why = f"; {fs[0]}: {fs[1][:120]}" if fs else ""
        cmp.verdict, cmp.exit_code = "patched-error", EXIT_NO_VERDICT
        cmp.detail = f"the patched run had no verdict (exit {patched.exit_code}{why}); " \
                     + cmp.detail
    return cmp


def _compare_logs(cmp: Comparison, base: ChildRun, patched: ChildRun, touched: set[str],
                  tree: Path | None) -> None:
    """Kernel-log signatures and build warnings of the two runs, into ``cmp``."""
    bmeta, pmeta = base.record(), patched.record()
    if "kernel_log" not in pmeta.groups:
        cmp.notes.append("patched run recorded no kernel-log scan: signatures not compared")
    cmp.signatures = diff_signatures(bmeta, pmeta)
    blog, bran = _build_log(base)
    plog, pran = _build_log(patched)
    if bran and pran:
        cmp.warnings = diff_warnings(blog, plog, touched, tree)
    else:
        which = " and ".join(n for n, ran in (("base", bran), ("patched", pran)) if not ran)
        cmp.notes.append(f"build warnings not compared: make did not run for the {which} "
                         "(already up to date)")
    cw = bmeta.group("config").get("warnings") or []
    if cw:
        cmp.notes.append(f"base config: {len(cw)} warning(s), e.g. {cw[0]}")


# ---------------------------------------------------------------- running --


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``compare`` takes exactly the ``run`` options (added by the CLI): both runs use them."""
    p.epilog = ("Runs `run` twice: out/<N>/base (empty series) and out/<N>/patched; exit 0 no "
                "regression, 1 regression, 2 base or patched could not be tested.")



def run_compare(opts: "Options", args: argparse.Namespace, run_dir: Path,
                runner: ChildRunner | None = None) -> Comparison:
    """Run base then patched (unless the base fails) and judge them."""
    run = runner or (lambda label, a, out, lp: rundir.run_child(
        label, a, out, lp, verbose=bool(getattr(args, "verbose", False))))
    common = rundir.forward_args(args, drop=("out", "series"))
    series_file = opts.series or (opts.project / "patches" / "series")
    touched = series_touched(series_file)
    _forget_touched_objects(opts, touched)
    empty = run_dir / "base.series"
    empty.write_text("# empty: the base, unpatched (recharge-harness compare)\n")
    base = run("base", ["run", "--series", str(empty), *common], run_dir / "base",
               run_dir / "base.log")
    if _setup_failure(base) is not None:
        log.error("compare: the base could not be tested: not running the patched kernel")
        return judge(base, None, touched)
    patched_args = ["run", *(["--series", str(opts.series)] if opts.series else []), *common]
    patched = run("patched", patched_args, run_dir / "patched", run_dir / "patched.log")
    tree = Path(base.record().group("source").get("worktree", "") or "/nonexistent")
    return judge(base, patched, touched, tree if tree.is_dir() else None)


def _forget_touched_objects(opts: "Options", touched: set[str]) -> None:
    """Make the base build recompile the C files the series touches (see the module doc)."""
    if not buildlog.kernel_c_files(touched):
        return
    try:
        kbuilds = [k for k in (pipeline_kbuild(opts), pipeline_kbuild(opts, unpatched=True))
                   if k is not None]
    except Exception as e:  # best effort: warnings then only compare what was compiled
        log.debug("compare: cannot locate the build dir: %s", e)
        return
    if not kbuilds:
        return
    from harness.paths import file_lock, kbuild_lock

    # The worktree lock: no run is between its config and copying its bzImage; the build
    # lock: nobody is compiling there.
    worktree_lock = opts.cache / "locks" / f"{kbuild_worktree_name(opts)}.lock"
    with file_lock(worktree_lock, "the worktree lock"), \
            file_lock(kbuild_lock(opts.cache), "the kernel build lock"):
        for kbuild in kbuilds:
            gone = buildlog.forget_objects(kbuild, touched)
            if gone:
                log.info("compare: %d object(s) of files the series touches removed from %s, "
                         "so both builds report their warnings", len(gone), kbuild)


def kbuild_worktree_name(opts: "Options") -> str:
    """The cache worktree ``run`` uses (harness.stages.source.Source.worktree_prefix)."""
    import hashlib

    if opts.tree is None:
        from harness.stages.debian import parse_source

        return parse_source(opts.source).worktree_prefix
    return "tree-" + hashlib.sha256(str(opts.tree.expanduser().resolve())
                                    .encode()).hexdigest()[:10]


def pipeline_kbuild(opts: "Options", unpatched: bool = False) -> Path | None:
    """The build directory ``run`` uses for this tree and profile, if it exists.

    Mirrors harness.modes.run (worktree name -> fragments -> kconfig.kbuild_key).
    """

    name = kbuild_worktree_name(opts)
    worktree = opts.cache / "worktrees" / name
    if not worktree.is_dir():
        return None
    from harness.stages import widenet

    frags = configmod.fragments_for(opts.project, worktree, opts.profile) + \
        widenet.suite_fragments(opts.project, widenet.selected_suites(opts))
    kbuild = configmod.kbuild_for(opts.cache, name, frags, opts.profile, unpatched=unpatched)
    return kbuild if kbuild.is_dir() else None


# ---------------------------------------------------------------- reports --


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


def _to_json(cmp: Comparison) -> dict[str, Any]:
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
    atomic_write(run_dir / "compare.json", json.dumps(_to_json(cmp), indent=2) + "\n")
    return text


def main(opts: "Options", args: argparse.Namespace,
         runner: ChildRunner | None = None) -> tuple[int, str]:
    """``compare``: returns (exit code, verdict line)."""
    import sys

    from harness.report.metadata import Metadata
    from harness.report.mode import make_run_dir

    run_dir = make_run_dir(opts.out)
    meta = Metadata(run_dir / "metadata.json", list(opts.argv))
    meta.update("build", {"command": "compare", "run_dir": str(run_dir)})
    log.info("compare: run directory %s", run_dir)
    cmp = Comparison("infrastructure", EXIT_NO_VERDICT, "interrupted")
    try:
        cmp = run_compare(opts, args, run_dir, runner)
    finally:
        text = write_reports(cmp, run_dir)
        meta.update("compare", _to_json(cmp))
        meta.finish(cmp.exit_code, cmp.verdict)
    sys.stdout.write(text)
    sys.stdout.flush()
    return cmp.exit_code, f"compare: {cmp.verdict} (exit {cmp.exit_code}): {cmp.detail} - {run_dir}"
