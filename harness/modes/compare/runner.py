"""Running the two children (base, then patched) and finding the build directories the
base build must recompile in (see the package doc)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from harness.modes import child as rundir
from harness.modes.child import ChildRunner
from harness.modes.compare.diff import series_touched
from harness.modes.compare.judge import judge, setup_failure
from harness.modes.compare.model import Comparison
from harness.parse import buildlog
from harness.stages import config as configmod

if TYPE_CHECKING:
    from harness.model import Options

log = logging.getLogger(__name__)


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
    if setup_failure(base) is not None:
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
