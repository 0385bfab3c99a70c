"""Series versus upstream: the same scenarios on four kernels, one report.

``recharge-harness contrast [run options]`` runs the harness as a black box
(:mod:`harness.modes.child`), three child runs in ``out/<N>/``:

1. ``base/``: Linux 6.12 as released (``run --series none``): no sysctl, the
   cases only observe; a removed memcg's pages stay charged to it (zombies);
2. ``series/``: 6.12 + the series (``run``, ``--series`` as given): the
   scenarios at ``vm.recharge_offline_memcgs`` 0 and at 1, two columns;
3. ``upstream-7.2/``: Debian sid's Linux 7.2 (``run --source debian:7.2
   --series none``): no sysctl; it reparents the pages to the parent at offline.

Each runs ``--suite scenarios`` (or the ``--suite`` given; ``--case`` narrows
it, the other run options are forwarded).  A child that fails does not stop the
others.  Then, from the children's run directories only (the ``# observe``
lines of ``ktap/*.tap`` and ``metadata.json``), the report in ``out/<N>/``:

* ``report.html``: one self-contained page (figures embedded, no network);
* ``plots/*.png`` + ``*.svg``: dying memcgs over time (zombie and stress
  cases), where the bytes ended up (stacked bars per kernel);
* ``contrast.json``: every number; ``contrast.md``: the table in Markdown;
  ``summary.txt``; ``junit.xml`` (one testcase per kernel: its observations
  were collected or why not); ``metadata.json``.

``contrast --from-runs DIR...`` builds the same report from existing run
directories (or a previous contrast run directory, whose children are found)
without running anything.

Exit 0: every expected kernel gave observations (with ``--from-runs``: at
least one kernel did); 2: one is missing (its child could not build, boot or
run the scenarios; the report shows what there is and says which).  The
scenarios' own verdicts are the child runs' business (their exit codes are
shown), not the contrast's: it measures, it does not judge.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import record
from harness.errors import EXIT_NO_VERDICT, EXIT_PASS, UserError
from harness.modes import child as rundir
from harness.modes.child import ChildRun, ChildRunner
from harness.report import contrast as model

if TYPE_CHECKING:
    from harness.model import Options

log = logging.getLogger(__name__)

UPSTREAM_SOURCE = "debian:7.2"
DEFAULT_SUITES = ("scenarios",)


@dataclass(frozen=True)
class Plan:
    """One child run: its directory label, the kernel kinds it gives, its argv."""

    label: str
    kinds: tuple[str, ...]
    argv: list[str]


#: --kernels names -> (child label, kinds of column it gives).
KERNELS = {
    "base": ("base", ("base",)),
    "series": ("series", ("series-0", "series-1")),
    "upstream": ("upstream-7.2", ("upstream",)),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from-runs", nargs="+", type=Path, metavar="DIR",
                   help="build the report from these run directories (or a previous contrast "
                   "run directory) without running anything")
    p.add_argument("--kernels", default="base,series,upstream", metavar="LIST",
                   help="which child runs: base (6.12), series (6.12 + series at sysctl 0 and "
                   "1), upstream (7.2); comma-separated (default: all three)")
    p.epilog = ("Runs `run --suite scenarios` three times: out/<N>/base (6.12, --series none), "
                "out/<N>/series (6.12 + series: sysctl 0 and 1), out/<N>/upstream-7.2 "
                "(--source debian:7.2 --series none); then report.html, plots/, "
                "contrast.json in out/<N>/. Exit 0 all kernels observed, 2 one missing.")


def parse_kernels(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in KERNELS]
    if bad or not names:
        raise UserError(f"--kernels {text!r}: valid names are {', '.join(KERNELS)}")
    return list(dict.fromkeys(names))


def plan(opts: "Options", args: argparse.Namespace) -> list[Plan]:
    """The child runs, in order."""
    common = rundir.forward_args(args, drop=("out", "series", "source", "suite"))
    suites = list(getattr(args, "suite", None) or DEFAULT_SUITES)
    suite_args = [x for s in suites for x in ("--suite", s)]
    series = ["--series", str(opts.series)] if opts.series else []
    argv = {
        "base": ["run", "--series", "none", *suite_args, *common],
        "series": ["run", *series, *suite_args, *common],
        "upstream": ["run", "--source", UPSTREAM_SOURCE, "--series", "none", *suite_args,
                     *common],
    }
    return [Plan(KERNELS[n][0], KERNELS[n][1], argv[n])
            for n in parse_kernels(getattr(args, "kernels", "base,series,upstream"))]


def check_options(opts: "Options", args: argparse.Namespace) -> None:
    """What contrast decides itself cannot be given (UserError before anything runs)."""
    from harness.stages.debian import DEFAULT_SOURCE

    kernels = parse_kernels(getattr(args, "kernels", "base,series,upstream"))
    if opts.source != DEFAULT_SOURCE:
        raise UserError(f"contrast --source {opts.source}: contrast picks the sources itself "
                        f"(6.12 for base and series, {UPSTREAM_SOURCE} for upstream); leave "
                        "--source out")
    if opts.tree is not None:
        raise UserError("contrast --tree: contrast compares Debian's 6.12 and 7.2 kernels; "
                        "--tree is not supported")
    if opts.no_series and "series" in kernels:
        raise UserError("contrast --series none: the series child needs the series; give a "
                        "series file, or --kernels base,upstream")


# ------------------------------------------------------------- run dirs --


def expand_run_dirs(paths: list[Path]) -> list[Path]:
    """``--from-runs`` arguments -> run directories.

    A run directory (``metadata.json`` of a ``run``/``test``) is taken as is; a
    contrast run directory gives its children's newest runs; an ``--out`` parent
    (numbered run directories) gives its newest.  Anything else is a UserError."""
    out: list[Path] = []
    for p in paths:
        p = p.expanduser().absolute()
        if not p.is_dir():
            raise UserError(f"--from-runs {p}: no such directory")
        meta = record.read_dict(p)
        command = meta.get("build", {}).get("command") if meta else None
        if meta and command != "contrast":
            out.append(p)
            continue
        found: list[Path] = []
        if command == "contrast":
            for sub in sorted(x for x in p.iterdir() if x.is_dir()):
                rd = rundir.find_run_dir(sub)
                if rd is not None and (rd / "metadata.json").is_file():
                    found.append(rd)
        else:
            rd = rundir.find_run_dir(p)
            if rd is not None and (rd / "metadata.json").is_file():
                found.append(rd)
        if not found:
            raise UserError(f"--from-runs {p}: not a run directory (no metadata.json), nor a "
                            "contrast run or an --out directory holding one")
        out.extend(found)
    return list(dict.fromkeys(out))


# ----------------------------------------------------------------- report --


@dataclass
class Outcome:
    exit_code: int
    verdict: str  # complete | incomplete
    detail: str
    contrast: model.Contrast | None = None
    files: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


KIND_NAMES = {"base": "6.12 base", "series-0": "6.12 + series, sysctl 0",
              "series-1": "6.12 + series, sysctl 1", "upstream": "7.2 upstream"}


def write_report(run_dirs: list[Path], out: Path, expected: list[str],
                 children: list[ChildRun] | None = None) -> Outcome:
    """Every report file in ``out`` from ``run_dirs``; ``expected``: kernel kinds that
    must be there (the rest are reported as missing)."""
    from harness.paths import atomic_write
    from harness.report import html, plots

    c = model.build(run_dirs)
    for ch in children or []:
        if ch.run_dir is None:
            c.notes.append(f"{ch.label}: the child run left no run directory (exit "
                           f"{ch.exit_code}; see {ch.output_log})")
        elif not any(k.run_dir == ch.run_dir for k in c.kernels):
            c.notes.append(f"{ch.label}: {rundir.describe(ch)}")
    missing = [k for k in expected if not any(x.kind == k for x in c.kernels)]
    for k in missing:
        c.notes.append(f"no observations of {KIND_NAMES.get(k, k)}")
    figures, notes = plots.render(c, out / "plots")
    c.notes += notes
    files = {"report": "report.html", "json": "contrast.json", "markdown": "contrast.md",
             "summary": "summary.txt", "junit": "junit.xml"}
    data = c.as_dict()
    data["plots"] = [p.as_dict(out) for p in figures]
    data["missing"] = missing
    atomic_write(out / files["json"], json.dumps(data, indent=2, default=str) + "\n")
    atomic_write(out / files["report"], html.render(c, figures))
    atomic_write(out / files["markdown"], model.to_markdown(c))
    atomic_write(out / files["summary"], model.to_text(c))
    if not c.kernels:
        code, verdict = EXIT_NO_VERDICT, "incomplete"
        detail = "no kernel gave observations"
    elif missing:
        code, verdict = EXIT_NO_VERDICT, "incomplete"
        detail = "missing: " + ", ".join(KIND_NAMES.get(k, k) for k in missing)
    else:
        code, verdict = EXIT_PASS, "complete"
        detail = f"{len(c.kernels)} kernels x {len(c.rows)} scenario rows"
    write_junit(c, expected, missing, out / files["junit"])
    return Outcome(code, verdict, detail, c, files, missing)


def write_junit(c: model.Contrast, expected: list[str], missing: list[str], path: Path) -> None:
    """One testcase per kernel: observed (pass) or not (error, why)."""
    from junitparser import Error, JUnitXml, TestCase, TestSuite

    from harness.report.junit import write_xml

    ts = TestSuite("contrast")
    for k in c.kernels:
        tc = TestCase(name=k.label, classname="contrast.kernels")
        n = sum(1 for r in c.rows if k.key in r.cells)
        tc.system_out = f"{n} scenario rows observed; run {k.run_dir} (exit {k.exit_code})"
        ts.append(tc)
    for kind in missing:
        tc = TestCase(name=KIND_NAMES.get(kind, kind), classname="contrast.kernels")
        why = "; ".join(c.notes) or "no run gave its observations"
        tc.result = [Error(message=f"no observations: {why}"[:2000], type_="missing")]
        ts.append(tc)
    ts.add_property("contrast.expected", ",".join(expected))
    xml = JUnitXml()
    xml.append(ts)
    write_xml(xml, path)


# ---------------------------------------------------------------- running --


def run_children(opts: "Options", args: argparse.Namespace, run_dir: Path,
                 runner: ChildRunner | None = None, *,
                 children: list[ChildRun] | None = None,
                 expected: list[str] | None = None) -> tuple[list[ChildRun], list[str]]:
    """Every planned child run, one after the other; (runs, expected kernel kinds).

    ``children``/``expected``: lists to fill as it goes (an interrupted contrast still
    reports the children that finished)."""
    run = runner or (lambda label, a, out, lp: rundir.run_child(
        label, a, out, lp, verbose=bool(getattr(args, "verbose", False))))
    children = [] if children is None else children
    expected = [] if expected is None else expected
    for p in plan(opts, args):
        log.info("contrast: %s", p.label)
        expected += p.kinds
        children.append(run(p.label, p.argv, run_dir / p.label, run_dir / f"{p.label}.log"))
    return children, expected


def main(opts: "Options", args: argparse.Namespace,
         runner: ChildRunner | None = None) -> tuple[int, str]:
    """``contrast``: returns (exit code, verdict line)."""
    import sys

    from harness.report.mode import mode_run

    from_runs = list(getattr(args, "from_runs", None) or [])
    sources = expand_run_dirs(from_runs) if from_runs else []  # bad input: before a run dir
    if not from_runs:
        check_options(opts, args)
    outcome = Outcome(EXIT_NO_VERDICT, "incomplete", "interrupted")
    children: list[ChildRun] = []
    expected: list[str] = []
    with mode_run(opts, "contrast") as mr:
        run_dir = mr.run_dir
        log.info("contrast: run directory %s", run_dir)
        try:
            if not from_runs:
                run_children(opts, args, run_dir, runner, children=children, expected=expected)
                sources = [c.run_dir for c in children if c.run_dir is not None]
            outcome = write_report(sources, run_dir, expected, children)
        except BaseException:
            # Interrupted (or a bug): still report the children that finished, as incomplete.
            if children and outcome.contrast is None:
                outcome = _partial(sources, run_dir, expected, children) or outcome
            raise
        finally:
            mr.finish(outcome.exit_code, outcome.verdict,
                      group=("contrast", _summary(outcome, sources, children)))
    if outcome.contrast is not None:
        sys.stdout.write(model.to_text(outcome.contrast))
        sys.stdout.flush()
    return outcome.exit_code, (f"contrast: {outcome.verdict} (exit {outcome.exit_code}): "
                               f"{outcome.detail} - {run_dir / 'report.html'}")


def _partial(sources: list[Path], run_dir: Path, expected: list[str],
             children: list[ChildRun]) -> Outcome | None:
    """The report of the children that finished (an interrupted contrast), or None."""
    sources[:] = [c.run_dir for c in children if c.run_dir is not None]
    try:
        partial = write_report(sources, run_dir, expected, children)
    except Exception:  # the original error is what matters
        log.debug("contrast: partial report failed", exc_info=True)
        return None
    return Outcome(EXIT_NO_VERDICT, "incomplete", "interrupted: " + partial.detail,
                   partial.contrast, partial.files, partial.missing)


def _summary(o: Outcome, sources: list[Path], children: list[ChildRun]) -> dict[str, Any]:
    return {"verdict": o.verdict, "detail": o.detail, "missing": o.missing,
            "run_dirs": [str(s) for s in sources], "files": o.files,
            "children": [{"label": c.label, "exit_code": c.exit_code,
                          "run_dir": str(c.run_dir or ""), "duration_s": round(c.duration_s, 1)}
                         for c in children],
            "kernels": [k.as_dict() for k in o.contrast.kernels] if o.contrast else []}
