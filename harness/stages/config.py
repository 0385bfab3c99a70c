"""Stage ``config``: the kernel ``.config``, produced and verified before any compiling.

Procedure (docs/design.md): ``virtme-configkernel --defconfig O=<stage>`` ->
``scripts/kconfig/merge_config.sh -m -O <stage> <stage>/.config <fragments>`` ->
``make O=<stage> olddefconfig`` -> verify that every requested value landed
(:mod:`harness.stages.kconfig`).  The result is copied into the build directory only
if its content changed, so an unchanged configuration never triggers a rebuild.

:func:`configure` is the stage for every caller (``run``, ``bench``'s cold builds,
``compare``'s lookups): it owns which fragments a profile merges
(:func:`fragments_for`), the key of the persistent build directory
(:func:`kbuild_for`), and the locks that guard a worktree (:func:`worktree_lock`)
and the cache's kernel builds (:func:`build_lock`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from harness import gitutil, proc
from harness.errors import ConfigError, InfraError, UserError
from harness.paths import file_lock, kbuild_lock, write_if_changed
from harness.stages.kconfig import ARCH, Fragment, parse_config, requested_options, verify
from harness.stages.profiles import BASE_FRAGMENTS, get_profile

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ConfigResult:
    kbuild: Path
    config: Path
    config_sha256: str
    fragments: tuple[Path, ...]
    regenerated: bool  # False: inputs unchanged, .config reused as is
    changed: bool  # True: .config content changed (the build will redo work)
    warnings: tuple[str, ...]
    requested: int = 0  # number of options the fragments ask for
    #: every requested option that did not land (fatal or not), described
    problems: tuple[str, ...] = ()


def kbuild_key(worktree_name: str, fragments: Iterable[Path], extra: str = "") -> str:
    h = hashlib.sha256(f"tree {worktree_name}\narch {ARCH}\n{extra}\n".encode())
    for f in fragments:
        h.update(f"fragment {f.name}\n".encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _config_relevant(path: str) -> bool:
    """Whether a file of the tree can change what Kconfig makes of the fragments: every
    ``Kconfig*`` file, Kconfig itself and the scripts its ``$(shell ...)`` calls,
    the architecture's defconfigs, the top Makefile (the version)."""
    name = path.rsplit("/", 1)[-1]
    return (name.startswith("Kconfig") or path == "Makefile"
            or path.startswith(("scripts/kconfig/", f"arch/{ARCH}/configs/"))
            or (path.startswith("scripts/") and path.count("/") == 1))


def config_digest(tree: Path, tree_commit: str) -> str:
    """What the configuration depends on in ``tree`` at ``tree_commit``: the blobs of
    the files :func:`_config_relevant` selects and the compiler's version line.  A
    series that changes only C files leaves it unchanged, so the edit loop reuses the
    ``.config`` instead of regenerating it (10 s).  Not a git tree (or git failing):
    the commit itself, as before."""
    res = gitutil.git(tree, ["ls-tree", "-r", "--full-tree", tree_commit], check=False,
                      timeout=60)
    if res.returncode != 0 or not res.output:
        return f"commit {tree_commit}"
    h = hashlib.sha256()
    for line in res.output.splitlines():
        meta, _, path = line.partition("\t")
        if _config_relevant(path):
            h.update(f"{meta.split()[-1]} {path}\n".encode())
    try:
        cc = proc.run(["gcc", "--version"], cwd=tree, timeout=30)
        first = cc.output.splitlines()[0] if cc.returncode == 0 and cc.output else "no gcc"
    except InfraError:
        first = "no gcc"
    h.update(f"cc {first}\n".encode())
    return "kconfig " + h.hexdigest()


def _inputs_hash(tree_digest: str, fragments: Iterable[Path], vng_version: str,
                 base_config: str = "--defconfig") -> str:
    h = hashlib.sha256(f"{tree_digest}\nvng {vng_version}\nbase {base_config}\n".encode())
    for f in fragments:
        # Name and content, not the path: another checkout of the same project (a CI
        # clone) must not regenerate a config that would come out the same.
        h.update(f"{f.name}\n".encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def vng_tool(name: str) -> str:
    """Path of a virtme-ng tool: next to this interpreter (venv) or on PATH."""
    import shutil
    import sys

    cand = Path(sys.executable).parent / name
    if cand.is_file() and os.access(cand, os.X_OK):
        return str(cand)
    found = shutil.which(name)
    if not found:
        raise InfraError(f"{name} not found (install virtme-ng: pip install virtme-ng)")
    return found


def vng_version() -> str:
    try:
        from importlib.metadata import version

        return version("virtme-ng")
    except Exception:
        return "unknown"


def make_config(
    tree: Path,
    tree_commit: str,
    kbuild: Path,
    fragments: list[Path],
    log_path: Path,
    *,
    unknown_is_error: bool = True,
    timeout: float = 900.0,
    base_config: str = "--defconfig",
    fatal_problems: bool = True,
) -> ConfigResult:
    """Produce ``kbuild/.config`` from the fragments and verify it (no compiling).

    ``base_config``: virtme-configkernel's starting point, ``--defconfig`` (its minimal
    config for virtme-ng) or ``--allnoconfig``.  ``fatal_problems=False``: a requested
    option that did not land is reported in ``problems``, not raised (bench's cold builds)."""
    if base_config not in ("--defconfig", "--allnoconfig"):
        raise ValueError(f"base_config {base_config!r}")
    frags = [Fragment.load(p) for p in fragments]
    requested, notes = requested_options(frags)
    for n in notes:
        log.info("config: %s", n)
    kbuild.mkdir(parents=True, exist_ok=True)
    config = kbuild / ".config"
    stamp = kbuild / ".harness-config-inputs"
    inputs = _inputs_hash(config_digest(tree, tree_commit), fragments, vng_version(), base_config)
    regenerated = False
    changed = False
    if config.is_file() and stamp.is_file() and stamp.read_text().strip() == inputs:
        log.info("config: inputs unchanged, reusing %s", config)
        text = config.read_text(encoding="utf-8")
    else:
        text = _generate(tree, kbuild, fragments, log_path, timeout, base_config)
        regenerated = True
    final = parse_config(text)
    problems = verify(final, requested, tree, unknown_is_error=unknown_is_error)
    warnings = list(notes)
    fatal = [p for p in problems if p.fatal] if fatal_problems else []
    with open(log_path, "a", encoding="utf-8") as f:
        for p in problems:
            f.write(("ERROR: " if p.fatal else "WARNING: ") + p.describe() + "\n")
    for p in problems:
        if not p.fatal:
            log.warning("config: %s", p.describe())
            warnings.append(p.describe())
    if fatal:
        for p in fatal:
            log.error("config: %s", p.describe())
        more = f" (+{len(fatal) - 1} more, see log)" if len(fatal) > 1 else ""
        raise ConfigError(fatal[0].describe() + more, log=log_path)
    if regenerated:
        changed = write_if_changed(config, text)
        write_if_changed(stamp, inputs + "\n")
        log.info("config: %s %s", config, "updated" if changed else "unchanged")
    return ConfigResult(
        kbuild=kbuild,
        config=config,
        config_sha256=hashlib.sha256(text.encode()).hexdigest(),
        fragments=tuple(fragments),
        regenerated=regenerated,
        changed=changed,
        warnings=tuple(warnings),
        requested=len(requested),
        problems=tuple(p.describe() for p in problems),
    )


def _generate(tree: Path, kbuild: Path, fragments: list[Path], log_path: Path, timeout: float,
              base_config: str) -> str:
    """The three configuration steps in a staging directory; the ``.config`` they made."""
    stage = kbuild.with_name(kbuild.name + ".config-stage")
    stage.mkdir(parents=True, exist_ok=True)
    (stage / ".config").unlink(missing_ok=True)
    steps = [
        [vng_tool("virtme-configkernel"), base_config, f"O={stage}"],
        [str(tree / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(stage),
         str(stage / ".config"), *map(str, fragments)],
        ["make", f"O={stage}", "olddefconfig"],
    ]
    for argv in steps:
        res = proc.run(argv, cwd=tree, timeout=timeout, log_path=log_path)
        if res.returncode != 0:
            last = next((l for l in reversed(res.tail) if l.strip()), "no output")
            raise ConfigError(f"{Path(argv[0]).name} failed: {last}", log=log_path)
    return (stage / ".config").read_text(encoding="utf-8")


# ------------------------------------------------- fragments, build dirs, locks --


def fragments_for(project: Path, tree: Path, profile: str, extra: Iterable[Path] = ()) -> list[Path]:
    """The fragments a profile merges, in order: the tree's cgroup selftest config,
    ``kconfig/recharge.config`` and ``testenv.config``, the profile's own, then ``extra``
    (e.g. the mm suite's fragment, harness.stages.widenet)."""
    prof = get_profile(profile)
    kdir = project / "kconfig"
    frags = []
    selftest_cfg = tree / "tools/testing/selftests/cgroup/config"
    if selftest_cfg.is_file():
        frags.append(selftest_cfg)
    for name in BASE_FRAGMENTS + prof.fragments:
        p = kdir / name
        if not p.is_file():
            raise UserError(f"config fragment {p} not found (profile {prof.name})")
        frags.append(p)
    return frags + list(extra)


def kbuild_for(cache: Path, worktree_name: str, fragments: list[Path], profile: str,
               unpatched: bool = False) -> Path:
    """The persistent ``O=`` directory of a tree + profile + fragment contents.

    The unpatched base gets its own: the series touches headers that nearly every file
    includes (linux/memcontrol.h), so base and patched builds sharing one directory
    would recompile almost everything each time ``compare`` or a bisect switches."""
    prof = get_profile(profile)
    extra = f"{prof.name} {prof.base}" + (" unpatched" if unpatched else "")
    return cache / "kbuild" / kbuild_key(worktree_name, fragments, extra)


@contextlib.contextmanager
def worktree_lock(cache: Path, worktree_name: str) -> Iterator[None]:
    """One run at a time per cache worktree (from apply until the build outputs are copied)."""
    with file_lock(cache / "locks" / f"{worktree_name}.lock", f"worktree {worktree_name}"):
        yield


@contextlib.contextmanager
def build_lock(cache: Path) -> Iterator[None]:
    """One kernel build at a time per cache (re-entrant within this process)."""
    with file_lock(kbuild_lock(cache), "the kernel build lock"):
        yield


def configure(project: Path, tree: Path, tree_commit: str, cache: Path, worktree_name: str,
              profile: str, log_path: Path, *, extra_fragments: Iterable[Path] = (),
              unpatched: bool = False, fragments_dir: Path | None = None) -> ConfigResult:
    """Stage ``config`` for a cache worktree: the profile's fragments (copied, numbered, into
    ``fragments_dir``), its build directory, the verified ``.config``.

    With no patches the tree *is* the base: options only the series adds (e.g.
    MEMCG_RECHARGE_OFFLINE_ENABLED) are "unknown to this tree" warnings, not errors."""
    frags = fragments_for(project, tree, profile, extra_fragments)
    kbuild = kbuild_for(cache, worktree_name, frags, profile, unpatched=unpatched)
    if fragments_dir is not None:
        fragments_dir.mkdir(exist_ok=True)
        for i, f in enumerate(frags):
            shutil.copy(f, fragments_dir / f"{i}-{f.name}")
    return make_config(tree, tree_commit, kbuild, frags, log_path, unknown_is_error=not unpatched,
                       base_config=get_profile(profile).base)
