"""Per-patch check (ktest's patchcheck, our way): every prefix of the series.

``recharge-harness patchcheck [--boot] [--checkpatch-allow FILE] [run options]``

In the harness's cache worktree (never the user's checkout) and its one build
directory (``O=``, shared with ``run``, so every build is incremental):

0. the base is configured and built; its warnings are the starting point;
1. for patch k = 1..n: check out base + patches 1..k (the series is applied once
   with ``git am --3way``; a patch that does not apply is reported, later ones
   are not run), configure (options only later patches define are warnings
   until the last prefix, where every option must be there, as in ``run``), build;
   then ``scripts/checkpatch.pl --strict`` on patch k, and the **new compiler
   warnings in the files patch k touches**: warnings located in those files
   whose (file, message) no earlier prefix showed.  So that an incremental
   build reports them, the objects of the C files that patch k and patch k+1
   touch are deleted before building (harness.parse.buildlog);
2. ``--boot``: ``run`` on the final prefix (as a child run: selftests, boot,
   suites; the kernel build is reused).

Checkpatch findings listed in the allow-list are reported as "allowed", not
failures.  The list is ``--checkpatch-allow FILE``, else ``checkpatch-allow.txt``
next to the series file, else the project's ``checkpatch-allow.txt`` (kept out
of ``patches/``, which exporting the series regenerates).  Its format is in
harness.parse.checkpatch: ``<patch file or glob> <regex>  # reason`` per finding.

One table (``summary.txt``), ``patchcheck.json``, ``junit.xml``; one exit code:
0 every patch clean; 1 a checkpatch finding, a new warning or a failed suite;
2 something could not be checked (the base or a prefix does not apply, configure
or build; checkpatch could not run; the boot run had no verdict).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol, Sequence

from harness.errors import EXIT_FAIL, EXIT_NO_VERDICT, EXIT_PASS, HarnessError, UserError
from harness.model import Status
from harness.parse import buildlog
from harness.parse.buildlog import CompilerWarning
from harness.parse.checkpatch import LEVELS, AllowRule, Finding, apply_allow, load_allow, parse_checkpatch
from harness.stages import config as configmod
from harness.stages.profiles import get_profile

if TYPE_CHECKING:
    from harness.model import Options
    from harness.stages.apply import Patch

log = logging.getLogger(__name__)

ALLOW_FILE = "checkpatch-allow.txt"
_PATCH_TAG = re.compile(r"^\[[^\]]*\]\s*")

# ------------------------------------------------------------------ steps --


@dataclass(frozen=True)
class Built:
    log_text: str
    detail: str
    duration_s: float


class Steps(Protocol):
    """What patchcheck needs from the harness; :class:`KernelSteps` is the real one."""

    def apply_all(self, patches: Sequence["Patch"]) -> list[str]:
        """Apply the whole series once; commit per patch.  SeriesError names a bad patch."""

    def checkout(self, k: int) -> None:
        """Put the tree at base + the first ``k`` patches (0 = the base)."""

    def configure(self, k: int, final: bool) -> None:
        """Produce and verify the .config; ``final``: unknown options are errors."""

    def build(self, k: int, forget: list[str]) -> Built:
        """Incremental kernel build after deleting the objects of ``forget``."""

    def checkpatch(self, k: int, patch: Path) -> str:
        """Output of ``checkpatch.pl --strict --show-types`` on the patch file."""


@dataclass
class Row:
    index: int  # 0 = the base
    name: str
    subject: str
    touched: tuple[str, ...] = ()
    apply: Status = Status.NOTRUN
    build: Status = Status.NOTRUN
    checkpatch: Status = Status.NOTRUN
    detail: list[str] = field(default_factory=list)
    build_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    new_warnings: list[CompilerWarning] = field(default_factory=list)

    @property
    def verdict(self) -> Status:
        parts = (self.apply, self.build) + ((self.checkpatch,) if self.index else ())
        if any(s in (Status.ERROR, Status.NOTRUN) for s in parts):
            return Status.ERROR
        if self.checkpatch is Status.FAIL or self.new_warnings:
            return Status.FAIL
        return Status.PASS


@dataclass
class Result:
    rows: list[Row]
    unused_rules: list[str] = field(default_factory=list)
    boot: tuple[Status, str] | None = None  # (status, detail) of --boot

    @property
    def exit_code(self) -> int:
        statuses = [r.verdict for r in self.rows] + ([self.boot[0]] if self.boot else [])
        if any(s in (Status.ERROR, Status.NOTRUN) for s in statuses):
            return EXIT_NO_VERDICT
        if any(s is Status.FAIL for s in statuses):
            return EXIT_FAIL
        return EXIT_PASS


def check_series(patches: Sequence["Patch"], steps: Steps, rules: Sequence[AllowRule], *,
                 fail_on: str = "CHECK", base_label: str = "the base") -> Result:
    """The per-patch table (pure logic over :class:`Steps`)."""
    counted = LEVELS[: LEVELS.index(fail_on) + 1]
    n = len(patches)
    touched = [buildlog.touched_files(p.path.read_text(encoding="utf-8", errors="replace"))
               for p in patches]
    base = Row(0, "(base)", base_label, apply=Status.PASS)
    rows = [base] + [Row(p.index, p.name, _PATCH_TAG.sub("", p.subject), touched[i])
                     for i, p in enumerate(patches)]
    applicable = n
    try:
        steps.apply_all(patches)
    except HarnessError as e:
        bad = getattr(e, "patch", None)
        applicable = next((i for i, p in enumerate(patches) if p.name == bad), 0)
        rows[applicable + 1].apply = Status.ERROR
        rows[applicable + 1].detail.append(f"apply: {e.describe()}")
    for r in rows[applicable + 2:]:
        r.detail.append("apply: not run (an earlier patch does not apply)")
    seen: list[CompilerWarning] = []
    tree_ok = True
    for k, row in enumerate(rows):
        if k > applicable:
            break
        files = list(touched[k - 1]) if k else []
        if k < n:
            files += touched[k]  # the next patch's files: their warnings before it
        try:
            steps.checkout(k)
            row.apply = Status.PASS
        except HarnessError as e:
            row.apply = Status.ERROR
            row.detail.append(f"checkout: {e.describe()}")
            tree_ok = False
            break
        if base.build is Status.ERROR:
            row.detail.append("build: not run (the base does not build)")
            continue
        try:
            steps.configure(k, final=k == n)
            built = steps.build(k, list(dict.fromkeys(buildlog.kernel_c_files(files))))
        except HarnessError as e:
            row.build = Status.ERROR
            row.detail.append(f"build: {e.describe()}")
            continue
        row.build, row.build_s = Status.PASS, built.duration_s
        warnings = buildlog.parse_warnings(built.log_text)
        if k:
            row.new_warnings = buildlog.new_warnings(seen, warnings, touched[k - 1])
        seen += warnings
    used: set[str] = set()
    for k, row in enumerate(rows[1:], 1):
        if not tree_ok:
            break
        try:
            out = steps.checkpatch(k, patches[k - 1].path)
        except HarnessError as e:
            row.checkpatch = Status.ERROR
            row.detail.append(f"checkpatch: {e.describe()}")
            continue
        found, totals = parse_checkpatch(out)
        if totals is None:
            row.checkpatch = Status.ERROR
            row.detail.append("checkpatch: no 'total:' line in its output (see the log)")
            continue
        row.findings, u = apply_allow(found, row.name, rules)
        used |= u
        bad = [f for f in row.findings if f.allowed is None and f.level in counted]
        row.checkpatch = Status.FAIL if bad else Status.PASS
        if sum(totals.values()) != len(found):
            row.detail.append(f"checkpatch: totals {totals} but {len(found)} findings parsed")
    return Result(rows, [r.where for r in rules if r.where not in used])


# ---------------------------------------------------------- the real steps --


class KernelSteps:
    """Drive the harness's stages (Python API) in the cache worktree, one ``O=`` dir.

    Use as a context manager: it holds the worktree lock that ``run`` takes, so no
    run switches the tree under us.
    """

    def __init__(self, opts: "Options", run_dir: Path):
        self.o = opts
        self.run_dir = run_dir
        self.commits: list[str] = []
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "KernelSteps":
        from harness.paths import file_lock
        from harness.stages import source

        o = self.o
        self.src = source.prepare_source(o.cache, o.tree, o.base, self.run_dir / "source.log")
        self.worktree = o.cache / "worktrees" / self.src.worktree_prefix
        self._stack.enter_context(file_lock(o.cache / "locks" / f"{self.worktree.name}.lock",
                                            f"worktree {self.worktree.name}"))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _dir(self, k: int) -> Path:
        d = self.run_dir / "prefix" / f"{k:02d}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def apply_all(self, patches: Sequence["Patch"]) -> list[str]:
        from harness.errors import SeriesError
        from harness.stages import apply as series

        ser = series.Series(series_file=None, patches=tuple(patches))
        try:
            applied = series.apply_series(self.src, ser, self.worktree, self.run_dir / "series")
        except SeriesError as e:
            # git am aborted and dropped everything: re-apply the patches before the bad one.
            j = next((i for i, p in enumerate(patches) if p.name == e.patch), 0)
            if j:
                prefix = series.Series(series_file=None, patches=tuple(patches[:j]))
                applied = series.apply_series(self.src, prefix, self.worktree,
                                              self.run_dir / "series-prefix")
                self.commits = [p.commit for p in applied.patches]
            raise
        self.commits = [p.commit for p in applied.patches]
        return self.commits

    def checkout(self, k: int) -> None:
        from harness import gitutil

        rev = self.src.base_commit if k == 0 else self.commits[k - 1]
        gitutil.git(self.worktree, ["checkout", "-q", "-f", "--detach", rev], timeout=1800)
        if not gitutil.is_clean(self.worktree):
            gitutil.git(self.worktree, ["clean", "-fdq"], timeout=600)
        self.head = rev

    def configure(self, k: int, final: bool) -> None:
        o = self.o
        frags = configmod.fragments_for(o.project, self.worktree, o.profile)
        self.kbuild = configmod.kbuild_for(o.cache, self.worktree.name, frags, o.profile)
        res = configmod.make_config(self.worktree, self.head, self.kbuild, frags,
                                  self._dir(k) / "config.log", unknown_is_error=final,
                                  base_config=get_profile(o.profile).base)
        for w in res.warnings:
            log.debug("patchcheck [%d]: config: %s", k, w)

    def build(self, k: int, forget: list[str]) -> Built:
        from harness.stages import build

        gone = buildlog.forget_objects(self.kbuild, forget)
        if gone:
            log.info("patchcheck [%d]: recompiling %s for their warnings", k,
                     ", ".join(forget))
        lp = self._dir(k) / "build.log"
        res = build.make_kernel(self.worktree, self.head, self.kbuild, self.o.cache, lp,
                                jobs=self.o.jobs)
        text = lp.read_text(encoding="utf-8", errors="replace") if lp.is_file() else ""
        detail = "up to date" if res.skipped else f"{res.compiled} compiled"
        return Built(text.replace(str(self.worktree) + "/", ""), detail, res.duration_s)

    def checkpatch(self, k: int, patch: Path) -> str:
        from harness import proc
        from harness.errors import InfraError

        script = self.worktree / "scripts" / "checkpatch.pl"
        if not script.is_file():
            raise InfraError(f"{script} not found")
        res = proc.run(["perl", str(script), "--strict", "--show-types", "--color=never",
                        str(patch)], cwd=self.worktree, timeout=600,
                       log_path=self._dir(k) / "checkpatch.log", log_mode="w")
        return res.output


# ---------------------------------------------------------------- reports --


def _dur(s: float) -> str:
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
        build = _cell(r.build, _dur(r.build_s) if r.build is Status.PASS else "")
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


# -------------------------------------------------------------------- cli --


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("patchcheck")
    g.add_argument("--boot", action="store_true",
                   help="also boot the final prefix and run the suites (a `run`)")
    g.add_argument("--checkpatch-allow", type=Path, metavar="FILE",
                   help=f"allowed checkpatch findings (default: {ALLOW_FILE} next to the "
                        "series file, else in the project)")
    g.add_argument("--fail-on", choices=[lv.lower() for lv in LEVELS], default="check",
                   help="lowest checkpatch level that fails a patch (default: check, "
                        "i.e. everything --strict reports)")


def default_allow_list(series_file: Path, project: Path, given: Path | None) -> Path | None:
    """The allow-list to use (see the module doc); None when there is none."""
    if given is not None:
        if not given.is_file():
            raise UserError(f"--checkpatch-allow {given}: no such file")
        return given
    for cand in (series_file.parent / ALLOW_FILE, project / ALLOW_FILE):
        if cand.is_file():
            return cand
    return None


@contextlib.contextmanager
def _timed(what: str) -> Iterator[None]:
    start = time.monotonic()
    yield
    log.info("patchcheck: %s took %s", what, _dur(time.monotonic() - start))


def main(opts: "Options", args: argparse.Namespace,
         steps: Steps | None = None) -> tuple[int, str]:
    from harness.modes import child as rundir
    from harness.paths import atomic_write
    from harness.report.metadata import Metadata
    from harness.report.mode import make_run_dir
    from harness.stages import apply as series

    series_file = opts.series or (opts.project / "patches" / "series")
    ser = series.read_series(series_file, required=True)
    if ser.empty:
        raise UserError(f"{series_file}: no patches: nothing to check")
    allow = default_allow_list(series_file, opts.project, args.checkpatch_allow)
    rules = load_allow(allow)
    run_dir = make_run_dir(opts.out)
    meta = Metadata(run_dir / "metadata.json", list(opts.argv))
    meta.update("build", {"command": "patchcheck", "run_dir": str(run_dir),
                          "series": str(series_file), "allow_list": str(allow or "")})
    log.info("patchcheck: %d patches from %s; run directory %s", len(ser.patches),
             series_file, run_dir)
    result = Result([])
    header = f"patchcheck: {len(ser.patches)} patches ({series_file})"
    try:
        if steps is None:
            with KernelSteps(opts, run_dir) as ks, _timed("apply + build of every prefix"):
                base = f"{ks.src.base_ref} ({ks.src.base_commit[:12]})"
                header += f" on {base}"
                result = check_series(ser.patches, ks, rules, fail_on=args.fail_on.upper(),
                                      base_label=f"base {base}")
        else:
            result = check_series(ser.patches, steps, rules, fail_on=args.fail_on.upper())
        final_ok = bool(result.rows) and result.rows[-1].build is Status.PASS
        if args.boot and final_ok:
            fwd = rundir.forward_args(args, drop=("out", "series"))
            series_arg = ["--series", str(opts.series)] if opts.series else []
            child = rundir.run_child("boot", ["run", *series_arg, *fwd], run_dir / "boot",
                                     run_dir / "boot.log",
                                     verbose=bool(getattr(args, "verbose", False)))
            st = {0: Status.PASS, 1: Status.FAIL}.get(child.exit_code, Status.ERROR)
            result.boot = (st, rundir.describe(child))
        elif args.boot:
            result.boot = (Status.NOTRUN, "not run: the final prefix did not build")
    finally:
        code = result.exit_code if result.rows else EXIT_NO_VERDICT
        verdict = {EXIT_PASS: "PASS", EXIT_FAIL: "FAIL"}.get(code, "NO VERDICT")
        text = render(result, f"{header} - {verdict} (exit {code})") if result.rows else \
            f"{header} - interrupted\n"
        atomic_write(run_dir / "summary.txt", text)
        data = to_json(result)
        atomic_write(run_dir / "patchcheck.json", json.dumps(data, indent=2) + "\n")
        if result.rows:
            write_junit(result, run_dir / "junit.xml")
        meta.update("patchcheck", data)
        meta.finish(code, verdict.lower())
    sys.stdout.write(text)
    sys.stdout.flush()
    bad = [r for r in result.rows if r.verdict is not Status.PASS]
    why = ", ".join(f"{r.index}: {r.verdict.name.lower()}" for r in bad) or "every patch clean"
    return code, f"patchcheck: {verdict} (exit {code}): {why} - {run_dir}"
