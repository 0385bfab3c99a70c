"""The one-line edit loop: a change in ``mm/memcontrol.c`` -> the recharge suites' verdict.

The change is an extra patch in a private copy of the series (in the cache), applied
by the harness in its own worktree: never in anybody's tree.  After the timed run, a
``build`` puts the shared build back and a no-op ``make`` gives the floor of any
incremental build.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from harness import gitutil
from harness.modes import child as rundir
from harness.modes.bench.records import EditStep, MakeTiming
from harness.modes.bench.session import Session
from harness.modes.bench.timing import build_phases, summarize_child, timed_make
from harness.modes.child import ChildRun
from harness.paths import write_if_changed
from harness.stages import apply as seriesmod
from harness.stages import build as buildmod
from harness.stages.config import build_lock, worktree_lock

EDIT_PATCH_NAME = "9999-bench-one-line-edit-in-mm-memcontrol.c.patch"
EDIT_LINE = ('static void __maybe_unused rh_bench_edit(void) '
             '{ pr_debug("recharge-harness bench: one-line edit\\n"); }')


def read_blob(repo: Path, commit: str, path: str) -> str:
    """``path`` at ``commit``, byte for byte (``git show``; no stripping)."""
    res = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"],
                         capture_output=True, check=True, timeout=120)
    return res.stdout.decode("utf-8", "surrogateescape")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def edit_patch(original: str, line: str = EDIT_LINE) -> str:
    """An mbox patch appending ``line`` to ``mm/memcontrol.c`` (whose text is ``original``)."""
    if not original.endswith("\n"):
        original += "\n"  # pragma: no cover - kernel sources end with a newline
    lines = original.splitlines(keepends=True)
    ctx = lines[-3:]
    start = len(lines) - len(ctx) + 1
    new = original + line + "\n"
    hunk = "".join(" " + c for c in ctx) + "+" + line + "\n"
    old_id = git_blob_id(original.encode("utf-8", "surrogateescape"))
    new_id = git_blob_id(new.encode("utf-8", "surrogateescape"))
    return (
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: recharge-harness bench <bench@localhost>\n"
        "Date: Wed, 1 Jan 2025 00:00:00 +0000\n"
        "Subject: [PATCH] bench: one-line edit in mm/memcontrol.c\n"
        "\n"
        "Added by `recharge-harness bench` to a private copy of the series, to time\n"
        "edit -> verdict.  Never applied to anybody's tree.\n"
        "---\n"
        "diff --git a/mm/memcontrol.c b/mm/memcontrol.c\n"
        f"index {old_id[:12]}..{new_id[:12]} 100644\n"
        "--- a/mm/memcontrol.c\n"
        "+++ b/mm/memcontrol.c\n"
        f"@@ -{start},{len(ctx)} +{start},{len(ctx) + 1} @@\n"
        f"{hunk}"
        "-- \n2.39.5\n\n"
    )


def make_edit_series(series_file: Path | None, memcontrol: str, dest: Path) -> Path:
    """``dest/series``: the series of ``series_file`` (may be None/empty) + the edit patch.

    Rewritten only when the content changes, so the harness's branch for it
    (named after a hash of the patches) is reused from one bench run to the next.
    """

    names: list[str] = []
    if series_file is not None and series_file.is_file():
        ser = seriesmod.read_series(series_file, required=True)
        for p in ser.patches:
            target = dest / p.name
            target.parent.mkdir(parents=True, exist_ok=True)
            write_if_changed(target, p.path.read_text(encoding="utf-8", errors="surrogateescape"))
            names.append(p.name)
    dest.mkdir(parents=True, exist_ok=True)
    write_if_changed(dest / EDIT_PATCH_NAME, edit_patch(memcontrol))
    names.append(EDIT_PATCH_NAME)
    series = dest / "series"
    write_if_changed(series, "# recharge-harness bench: the series + a one-line edit\n"
                     + "".join(n + "\n" for n in names))
    return series


def edit_branch_exists(repo: Path, worktree_name: str, base_commit: str, series: Path) -> bool:
    key = seriesmod.series_key(base_commit, seriesmod.read_series(series))
    return gitutil.rev_parse(repo, f"refs/heads/harness/{worktree_name}/{key[:16]}") is not None


# ------------------------------------------------------------------ the step --


def prepare_edit(s: Session, src: dict[str, Any]) -> Path | None:
    """The edit series (its branch created on first use); None when it cannot be made."""
    repo, head = Path(src.get("repo", "")), src["head_commit"]
    try:
        text = read_blob(repo, head, "mm/memcontrol.c")
    except (OSError, subprocess.SubprocessError) as e:
        s.error("edit", f"cannot read mm/memcontrol.c at {head[:12]}: {e}")
        return None
    series_file = s.opts.series or (s.opts.project / "patches" / "series")
    # Stable place (the cache), so the harness's branch for it is reused next time.
    dest = s.opts.cache / "bench" / f"edit-series-{Path(src['worktree']).name}"
    edit = make_edit_series(series_file, text, dest)
    info = EditStep(series=str(edit), line=EDIT_LINE)
    if not edit_branch_exists(repo, Path(src["worktree"]).name, src["base_commit"], edit):
        # First time: the harness applies it from the base, which rewrites every file
        # the series touches; done before the priming build so that it absorbs that.
        a = s.child("edit-apply", ["apply", "--series", str(edit),
                                   *rundir.forward_args(s.args, drop=("out", "series"),
                                                       command="apply")])
        info.branch_created = a.exit_code == 0
        if a.exit_code != 0:
            s.error("edit", f"the edit series did not apply: {rundir.describe(a)}")
            return None
    s.steps["edit"] = info
    return edit


def run_edit(s: Session, edit: Path, no_series: list[str], common_no_suite: list[str]) -> None:
    """The timed run of the edit to a verdict, then the build that puts the cache back."""
    info = s.steps.setdefault("edit", EditStep(series=str(edit), line=EDIT_LINE))
    # CCACHE_RECACHE: the edited file is really compiled (a new edit is never cached).
    ch = s.child("edit", ["run", "--series", str(edit), "--suite", "recharge", *no_series],
                 env={"CCACHE_RECACHE": "1"})
    run = summarize_child(ch)
    run.build_phases = build_phases(ch, run)
    info.run = run
    info.verdict_s = run.wall_s
    if ch.exit_code not in (0, 1):
        s.error("edit", f"no verdict: {rundir.describe(ch)}")
    # Put the cache back (the shared build now matches the real series again).
    back = s.child("revert", ["build", *common_no_suite])
    r = summarize_child(back)
    r.build_phases = build_phases(back, r)
    info.revert_build = r
    if back.exit_code != 0:
        s.error("edit", f"restoring build failed: {rundir.describe(back)}")
        return
    info.make_noop = make_noop(s, back)


def make_noop(s: Session, child: ChildRun) -> MakeTiming | dict[str, str]:
    """``make bzImage`` with nothing to do: the floor of every incremental build."""
    rec = child.record()
    kbuild = Path(str(rec.group("config").get("kbuild", "") or "/nonexistent"))
    src = rec.group("source")
    tree, head = Path(src.get("worktree", "/nonexistent")), src.get("head_commit", "")
    if not kbuild.is_dir() or not tree.is_dir():
        return {"error": "no build directory"}
    with worktree_lock(s.opts.cache, tree.name):
        checked_out = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()
        if not buildmod.kernel_up_to_date(head, kbuild) or checked_out != head:
            return {"error": "the build changed under us (another run); not measured"}
        wait0 = time.monotonic()
        with build_lock(s.opts.cache):
            waited = time.monotonic() - wait0
            argv = ["make", f"O={kbuild}", f"-j{s.opts.jobs or os.cpu_count() or 1}",
                    "CC=ccache gcc", "bzImage"]
            mk = timed_make(argv, tree, s.run_dir / "make-noop.log",
                            env=buildmod.ccache_env(s.opts.cache))
    mk.lock_wait_s = round(waited, 2)
    return mk
