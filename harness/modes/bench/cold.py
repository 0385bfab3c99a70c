"""Cold builds: the ``tiny`` profile and the ``vng-full`` anchor from scratch.

No ccache (``CCACHE_DISABLE=1`` in make's environment), fresh ``O=`` directories under
the cache, one private checkout of the series' head; configured by
:func:`harness.stages.config.make_config` with the fragments
:func:`harness.stages.config.fragments_for` gives the profile, like a ``run``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from harness import gitutil
from harness.errors import HarnessError, InfraError, UserError
from harness.modes.bench.records import ColdBuild, ColdStep
from harness.modes.bench.session import Session
from harness.modes.bench.timing import timed_make
from harness.parse import buildlog
from harness.stages import config as kconfig
from harness.stages.build import first_error
from harness.stages.kconfig import parse_config
from harness.stages.profiles import get_profile

log = logging.getLogger(__name__)

#: Cold-build labels -> config profile (harness.stages.profiles): "tiny" is the default
#: test profile, "vng-full" the ``vng`` profile (virtme-ng's default config with the
#: same fragments).
COLD_PROFILES = {"tiny": "tiny", "vng-full": "vng"}
GOAL_COLD_RATIO = 0.33  # cold tiny build <= 0.33 x the vng-full anchor


def cold_fragments(project: Path, tree: Path, label: str) -> tuple[str, list[Path]]:
    """(virtme-configkernel starting point, fragments) of a cold-build label."""
    profile = COLD_PROFILES[label]
    try:
        return get_profile(profile).base, kconfig.fragments_for(project, tree, profile)
    except UserError as e:
        raise InfraError(f"cold build {label}: {e}") from e


def cold_build(project: Path, tree: Path, tree_commit: str, kbuild: Path, label: str,
               log_dir: Path, jobs: int, cache: Path) -> ColdBuild:
    """Configure and build ``label`` from scratch in a fresh ``kbuild`` (no ccache)."""
    mode, frags = cold_fragments(project, tree, label)
    if kbuild.exists():
        shutil.rmtree(kbuild)
    kbuild.mkdir(parents=True)
    clog = log_dir / f"cold-{label}-config.log"
    blog = log_dir / f"cold-{label}-build.log"
    out = ColdBuild(profile=label, base_config=mode, tree_commit=tree_commit,
                    fragments=[str(f) for f in frags], kbuild=str(kbuild), config_log=str(clog),
                    build_log=str(blog))
    t0 = time.monotonic()
    try:
        cfg = kconfig.make_config(tree, tree_commit, kbuild, frags, clog, base_config=mode,
                                  fatal_problems=False)
    except HarnessError as e:
        raise InfraError(f"cold build {label}: {e}", log=clog) from e
    out.config_s = round(time.monotonic() - t0, 2)
    final = parse_config(cfg.config.read_text(encoding="utf-8"))
    out.config_problems = list(cfg.problems)
    out.options_y = sum(1 for v in final.values() if v == "y")
    out.options_m = sum(1 for v in final.values() if v == "m")
    shutil.copy(cfg.config, log_dir / f"cold-{label}.config")
    wait0 = time.monotonic()
    with kconfig.build_lock(cache):
        out.lock_wait_s = round(time.monotonic() - wait0, 2)
        out.loadavg_before = list(os.getloadavg())
        log.info("bench: cold build of %s (%s), no ccache, in %s", label, mode, kbuild)
        mk = timed_make(["make", f"O={kbuild}", f"-j{jobs}", "bzImage"], tree, blog,
                        env={"CCACHE_DISABLE": "1"})
        out.loadavg_after = list(os.getloadavg())
    out.build_s, out.cc_count, out.exit_code = mk.duration_s, mk.cc_count, mk.exit_code
    out.cpu_user_s, out.cpu_sys_s, out.first_seen_s = mk.cpu_user_s, mk.cpu_sys_s, mk.first_seen_s
    bz = kbuild / "arch/x86/boot/bzImage"
    if mk.exit_code != 0 or not bz.is_file():
        out.error = (_first_error(blog) or "; ".join(mk.tail))[:300]
    else:
        out.bzimage_bytes = bz.stat().st_size
        shutil.copy(bz, log_dir / f"cold-{label}.bzImage")
    out.cc_by_dir = _by_dir(blog)
    return out


def _by_dir(blog: Path) -> dict[str, int]:
    """Files compiled per top directory (two levels for drivers, arch, fs, net): top 15."""
    by_dir: dict[str, int] = {}
    for src in buildlog.compiled_sources(blog.read_text(encoding="utf-8", errors="replace")):
        parts = src.split("/")
        key = "/".join(parts[:2]) if parts[0] in ("drivers", "arch", "fs", "net") \
            and len(parts) > 2 else parts[0]
        by_dir[key] = by_dir.get(key, 0) + 1
    return dict(sorted(by_dir.items(), key=lambda kv: -kv[1])[:15])


def _first_error(path: Path) -> str:
    try:
        return first_error(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ""


def run_cold(s: Session, src: dict[str, Any]) -> None:
    """Both cold builds from one private checkout of the series' head; their ratio."""
    info = ColdStep()
    s.steps["cold"] = info
    repo, head = Path(src["repo"]), src["head_commit"]
    tree = s.opts.cache / "bench" / f"cold-tree-{os.getpid()}"
    jobs = s.opts.jobs or os.cpu_count() or 1
    try:
        t0 = time.monotonic()
        gitutil.git(repo, ["worktree", "add", "-f", "--detach", str(tree), head], timeout=1800)
        info.checkout_s = round(time.monotonic() - t0, 2)
        info.tree = str(tree)
        for label in COLD_PROFILES:
            kbuild = s.opts.cache / "kbuild" / f"bench-cold-{label}-{os.getpid()}"
            try:
                info.builds[label] = cold_build(s.opts.project, tree, head, kbuild, label,
                                                s.run_dir, jobs, s.opts.cache)
            except HarnessError as e:
                s.error("cold", f"{label}: {e}")
            finally:
                shutil.rmtree(kbuild, ignore_errors=True)
                shutil.rmtree(kbuild.with_name(kbuild.name + ".config-stage"), ignore_errors=True)
    finally:
        gitutil.git(repo, ["worktree", "remove", "--force", str(tree)], check=False, timeout=600)
        shutil.rmtree(tree, ignore_errors=True)
        gitutil.git(repo, ["worktree", "prune"], check=False)
    t, v = info.builds.get("tiny"), info.builds.get("vng-full")
    if t and v and t.build_s and v.build_s and not t.error and not v.error:
        info.ratio = round(t.build_s / v.build_s, 3)
        info.cpu_ratio = round((t.cpu_user_s + t.cpu_sys_s)
                               / max(1e-9, v.cpu_user_s + v.cpu_sys_s), 3)
