"""``recharge-harness bench``: how fast is the loop, and does the series cost anything?

One run measures, on this machine, and writes ``bench.json`` (raw seconds, every
stage split) and ``bench.md`` (the table) in ``<out>/<N>/``:

* ``cold`` (only with ``--cold``): cold kernel builds (``CCACHE_DISABLE=1``, fresh
  ``O=`` dirs under the cache) of the ``tiny`` profile and of the ``vng-full``
  anchor from one private checkout of the same commit; ratio tiny / vng-full.
* ``warm``: ``build`` (to prime), then ``run`` again with nothing changed: the build
  stage should be skipped; its boot and suite stages give boot -> SSH and the
  whole-suite duration.
* ``edit``: a one-line change in ``mm/memcontrol.c`` -> the recharge suites' verdict
  (``run --suite recharge``), split by stage, with what the build recompiled and
  where its time went (object and link mtimes), then a ``build`` that puts the
  cache back and a timed no-op ``make`` (the floor of any incremental build).
  The change is an extra patch in a private copy of the series (in the cache),
  applied by the harness in its own worktree: never in anybody's tree.
* ``hotpath``: ``selftests/bench/hotpath.c`` in the guest at sysctl 0 and 1 on the
  patched kernel, and on the unpatched base kernel if one was built before (or
  ``--with-base`` / ``--base-kernel``): page-cache read and page-fault throughput
  (median, spread), recharge throughput; patched / base ratios.

The child runs are ordinary harness runs (``python -m harness ...`` via
:mod:`harness.modes.child`), with their own run directories under ``<out>/<N>/runs/``.
Every number in the report is measured in this run; nothing is hard-coded but the
goals.

Layout: :mod:`~harness.modes.bench.runner` runs the steps in order
(:mod:`~harness.modes.bench.session` is its state), each step in its module
(:mod:`~harness.modes.bench.edit`, :mod:`~harness.modes.bench.hotpath` with
:mod:`~harness.modes.bench.basekernel`, :mod:`~harness.modes.bench.cold`);
:mod:`~harness.modes.bench.timing` reads where a child run's time went,
:mod:`~harness.modes.bench.records` types what each step measured, and
:mod:`~harness.modes.bench.report` writes the goals and ``bench.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from pathlib import Path

from harness.errors import HarnessError
from harness.model import Options
from harness.modes import child as rundir
from harness.modes.bench import report
from harness.modes.bench.hotpath import default_kernel_bench
from harness.modes.bench.runner import header, to_json
from harness.modes.bench.runner import run as run_steps
from harness.modes.bench.session import STEPS, BenchConfig, BenchRunner, KernelBench, Session
from harness.modes.child import ChildRun
from harness.report.mode import mode_run

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("bench")
    g.add_argument("--cold", action="store_true",
                   help="also time cold builds (no ccache, fresh O= dirs) of the tiny profile "
                        "and of the vng-full anchor: about 30 min of CPU on 2 cores")
    g.add_argument("--steps", default=",".join(STEPS),
                   help=f"comma-separated subset of {','.join(STEPS)},cold or 'none' (default: "
                        f"{','.join(STEPS)}; --cold adds cold)")
    g.add_argument("--with-base", action="store_true",
                   help="build the unpatched base kernel (empty series) for the hot-path "
                        "ratios if no earlier run has one")
    g.add_argument("--base-kernel", type=Path, metavar="BZIMAGE",
                   help="unpatched base kernel to compare the hot path against")
    g.add_argument("--reps", type=int, default=7,
                   help="hot-path repetitions per program run (default 7)")
    g.add_argument("--rounds", type=int, default=2,
                   help="program runs per kernel and sysctl value, alternating 0/1 "
                        "(default 2; recharge cases only in the first)")
    g.add_argument("--insn-windows", type=int, default=3,
                   help="instruction-count windows per hot-path case, counted by a QEMU TCG "
                        "plugin built on demand (harness/stages/insncount/; default 3, 0: off)")
    g.add_argument("--boots", type=int, default=1,
                   help="boots of each kernel for the hot path, interleaved patched, base, "
                        "patched, ... (default 1): the first counts instructions, the others "
                        "(plugin-free, hot-path cases only) give the wall-clock ratios; "
                        "4 gives 3 timing boots each")
    p.epilog = ("Writes <out>/<N>/bench.json and bench.md; exit 0 when everything was "
                "measured (goals missed or not), 1 when a hot-path case found a functional "
                "failure, 2 when a measurement could not be made.")



def _default_runner(verbose: bool) -> BenchRunner:
    def run(label: str, args: list[str], out: Path, log_path: Path, *,
            env: Mapping[str, str] | None = None) -> ChildRun:
        return rundir.run_child(label, args, out, log_path, verbose=verbose, env=env)
    return run


def main(opts: Options, args: argparse.Namespace, runner: BenchRunner | None = None,
         kernel_bench: KernelBench | None = None) -> tuple[int, str]:
    """``bench``: returns (exit code, one line)."""
    cfg = BenchConfig.from_args(args)
    with mode_run(opts, "bench", log_name="bench.log") as mr:
        kb = kernel_bench or default_kernel_bench(opts, reps=cfg.reps, rounds=cfg.rounds,
                                                  insn_windows=cfg.insn_windows)
        s = Session(opts, args, cfg, mr.run_dir, runner or _default_runner(cfg.verbose), kb)
        log.info("bench: run directory %s (steps: %s%s)", mr.run_dir, ",".join(cfg.steps),
                 ", cold" if cfg.cold else "")
        head = header(s)
        data = head
        try:
            run_steps(s)
        except HarnessError as e:
            s.error("bench", e.describe())
        except KeyboardInterrupt:
            s.error("bench", "interrupted")
            raise
        finally:
            data = to_json(s, head)
            text = report.write_results(data, mr.run_dir)
            code = report.exit_code(data)
            mr.finish(code, {0: "pass", 1: "fail"}.get(code, "no verdict"),
                      group=("bench", {"goals": data.get("goals", []),
                                       "errors": data.get("errors", [])}))
    sys.stdout.write(text)
    sys.stdout.flush()
    missed = [g["goal"] for g in data.get("goals", []) if g.get("met") is False]
    return code, (f"bench: {mr.run_dir / 'bench.md'} ({len(missed)} goal(s) missed"
                  + (f": {', '.join(missed)}" if missed else "") + ")")


__all__ = ["STEPS", "BenchConfig", "add_arguments", "main"]
