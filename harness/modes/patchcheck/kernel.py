"""patchcheck's :class:`~harness.modes.patchcheck.check.Steps` on a real kernel tree: the
harness's stages (Python API) in the cache worktree and its one ``O=`` directory."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from harness.modes.patchcheck.check import Built
from harness.parse import buildlog
from harness.stages import config as configmod
from harness.stages.profiles import get_profile

if TYPE_CHECKING:
    from harness.model import Options
    from harness.stages.apply import Patch

log = logging.getLogger(__name__)


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
