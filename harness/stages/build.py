"""Stage 4: build the kernel (out of tree, ccache, serialised) and the selftests.

Every kernel build takes the cache's build lock (:func:`harness.paths.kbuild_lock`:
one kernel build at a time per cache).  A build whose inputs (tree commit and
``.config``) match the last successful one is skipped entirely.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from harness import proc
from harness.errors import BuildError, UserError
from harness.paths import cache_root, file_lock, kbuild_lock, write_if_changed

log = logging.getLogger(__name__)

_STEP_RE = re.compile(r"^\s+(CC|AS|LD|AR|HOSTCC|HOSTLD|CC \[M\]|OBJCOPY|GEN|AS \[M\])\s+(\S+)")
_ERROR_RES = (
    # A full disk (or quota) is the root cause of whatever compiler/make error follows.
    re.compile(r"^.*(?:No space left on device|Disk quota exceeded).*$", re.M),
    re.compile(r"^(?P<loc>[^\s:]+:\d+(?::\d+)?): (?:fatal )?error: .*$", re.M),
    re.compile(r"^.*\berror: .*$", re.M),
    re.compile(r"^.*undefined reference to .*$", re.M),
    re.compile(r"^make(?:\[\d+\])?: \*\*\* .*$", re.M),
)
_WARNING_RE = re.compile(r"^[^\s:]+:\d+:\d+: warning: ", re.M)


@dataclass(frozen=True)
class BuildResult:
    kbuild: Path
    bzimage: Path
    log: Path
    duration_s: float
    skipped: bool  # nothing to do: same commit and .config as the last build
    compiled: int  # CC lines seen
    warnings: int


@dataclass(frozen=True)
class SelftestsResult:
    cgroup_dir: Path | None  # directory with test_memcontrol & co.
    own_dir: Path | None  # the project's selftests/ build output
    headers: Path
    problems: tuple[str, ...]  # one line each: what could not be built
    #: the tree's mm selftests, built only for the mm suite (harness.stages.widenet)
    mm_dir: Path | None = None


def first_error(text: str) -> str:
    """The first compiler/linker error of a build log (or the first make error)."""
    for rx in _ERROR_RES:
        m = rx.search(text)
        if m:
            return m.group(0).strip()
    return ""


def ccache_env(cache: Path) -> dict[str, str]:
    return {
        "CCACHE_DIR": str(cache / "ccache"),
        "CCACHE_BASEDIR": str(cache),
        "CCACHE_NOHASHDIR": "1",
        "CCACHE_MAXSIZE": os.environ.get("CCACHE_MAXSIZE", "5G"),
    }


def _mmss(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


@dataclass(frozen=True)
class LastBuild:
    """What the previous build of a build directory did (``.harness-last-build.json``):
    the expectation of the next one's progress line."""

    compiled: int
    duration_s: float | None = None
    #: seconds from the last CC line to the end (vmlinux link, bzImage)
    tail_s: float | None = None


LAST_BUILD_FILE = ".harness-last-build.json"
_LEGACY_COUNT_FILE = ".harness-cc-count"


def read_last_build(kbuild: Path) -> LastBuild | None:
    """The last build's record in ``kbuild`` (or the older count-only file), if any."""
    try:
        data = json.loads((kbuild / LAST_BUILD_FILE).read_text())
        return LastBuild(int(data["compiled"]), _opt_float(data.get("duration_s")),
                         _opt_float(data.get("tail_s")))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        n = int((kbuild / _LEGACY_COUNT_FILE).read_text().strip())
        return LastBuild(n) if n > 0 else None
    except (OSError, ValueError):
        return None


def _opt_float(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) else None


def write_last_build(kbuild: Path, progress: "Progress", duration_s: float) -> None:
    rec = {"compiled": progress.count, "duration_s": round(duration_s, 1),
           "tail_s": round(progress.tail_s(), 1) if progress.count else None}
    write_if_changed(kbuild / LAST_BUILD_FILE, json.dumps(rec) + "\n")
    write_if_changed(kbuild / _LEGACY_COUNT_FILE, f"{progress.count}\n")


class Progress:
    """A live line on a TTY; a log line every ``period_s`` otherwise.

    ``build: 812/2000 (40%) compiled, 2:10 elapsed, ETA 3:25, mm/memcontrol.o``: the
    expected count is what the last build of the same build directory compiled
    (:class:`LastBuild`); the ETA is the remaining files at this build's own rate so far,
    plus the last build's tail after its last compile (the link).  Before the first
    file, the ETA is the last build's duration minus the time elapsed.
    """

    def __init__(self, what: str, expected: int | None, stream: TextIO | None = None,
                 period_s: float = 60.0, last: LastBuild | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.what = what
        self.expected = expected
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.period_s = period_s
        self.last_build = last
        self.clock = clock
        self.start = clock()
        self.last_print = 0.0
        self.count = 0
        self.last = ""
        self.last_cc_at: float | None = None

    def line(self, text: str) -> None:
        m = _STEP_RE.match(text)
        if m:
            if m.group(1).startswith("CC"):
                self.count += 1
                self.last_cc_at = self.clock()
            self.last = m.group(2)
        self.tick()

    def tail_s(self) -> float:
        """Seconds since the last compile (at the end: the link's share)."""
        return self.clock() - (self.last_cc_at if self.last_cc_at is not None else self.start)

    def eta_s(self) -> float | None:
        """Seconds left, or None when there is nothing to go by."""
        el = self.clock() - self.start
        tail = (self.last_build.tail_s if self.last_build and self.last_build.tail_s else 0.0)
        if self.count == 0:
            if self.last_build and self.last_build.duration_s:
                return max(0.0, self.last_build.duration_s - el)
            return None
        if not self.expected:
            return None
        if self.count >= self.expected:  # more than last time: the link is what is left
            return max(0.0, tail - self.tail_s()) if tail else None
        assert self.last_cc_at is not None
        rate_el = self.last_cc_at - self.start
        return rate_el * (self.expected - self.count) / self.count + tail

    def render(self) -> str:
        el = self.clock() - self.start
        frac = ""
        if self.expected:
            pct = min(99, 100 * self.count // max(1, self.expected))
            frac = f"/{self.expected} ({pct}%)"
        eta = self.eta_s()
        return (f"{self.what}: {self.count}{frac} compiled, {_mmss(el)} elapsed"
                + (f", ETA {_mmss(eta)}" if eta is not None else "")
                + (f", {self.last}" if self.last else ""))

    def tick(self) -> None:
        now = self.clock()
        if self.tty:
            if now - self.last_print >= 0.5:
                cols = shutil.get_terminal_size((100, 20)).columns
                self.stream.write("\r\x1b[K" + self.render()[: cols - 1])
                self.stream.flush()
                self.last_print = now
        elif now - self.last_print >= self.period_s:
            if self.last_print:
                log.info("%s", self.render())
            self.last_print = now

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _stamp(tree_commit: str, config: Path) -> str:
    h = hashlib.sha256(f"commit {tree_commit}\n".encode())
    h.update(config.read_bytes())
    return h.hexdigest()


def kernel_up_to_date(tree_commit: str, kbuild: Path) -> bool:
    """Would :func:`make_kernel` skip make? (same commit and .config as the last build)"""
    config = kbuild / ".config"
    stamp_file = kbuild / ".harness-build-stamp"
    bz = kbuild / "arch" / "x86" / "boot" / "bzImage"
    return (config.is_file() and bz.is_file() and stamp_file.is_file()
            and stamp_file.read_text().strip() == _stamp(tree_commit, config))


def make_kernel(
    tree: Path,
    tree_commit: str,
    kbuild: Path,
    cache: Path,
    log_path: Path,
    *,
    jobs: int | None = None,
    timeout: float = 3 * 3600.0,
    progress_stream: TextIO | None = None,
    lock_path: Path | None = None,
) -> BuildResult:
    """``make O=<kbuild> -j<jobs> CC="ccache gcc" bzImage``; BuildError on failure."""
    jobs = jobs or os.cpu_count() or 1
    config = kbuild / ".config"
    bzimage = kbuild / "arch" / "x86" / "boot" / "bzImage"
    stamp_file = kbuild / ".harness-build-stamp"
    stamp = _stamp(tree_commit, config)
    if bzimage.is_file() and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        log.info("build: %s is up to date (same commit and .config): skipping make", bzimage)
        return BuildResult(kbuild, bzimage, log_path, 0.0, True, 0, 0)
    last = read_last_build(kbuild)
    expected = last.compiled if last and last.compiled else None
    env = ccache_env(cache)
    argv = ["make", f"O={kbuild}", f"-j{jobs}", "CC=ccache gcc", "bzImage"]
    if shutil.which("ccache") is None:
        log.warning("build: ccache not found; building without it")
        argv = ["make", f"O={kbuild}", f"-j{jobs}", "bzImage"]
    with file_lock(lock_path or kbuild_lock(cache), "the kernel build lock"):
        log.info("build: %s (log: %s)", " ".join(argv), log_path)
        progress = Progress("build", expected, progress_stream, last=last)
        start = time.monotonic()
        try:
            res = proc.run(argv, cwd=tree, timeout=timeout, log_path=log_path, env=env,
                           on_line=progress.line, on_tick=progress.tick, capture=False)
        finally:
            progress.done()
    duration = time.monotonic() - start
    text = log_path.read_text(encoding="utf-8", errors="replace")
    warnings = len(_WARNING_RE.findall(text))
    if res.returncode != 0 or not bzimage.is_file():
        err = first_error(text) or (res.tail[-1] if res.tail else "no output")
        raise BuildError(f"kernel build failed: {err}", log=log_path, first_error=err)
    write_last_build(kbuild, progress, duration)
    write_if_changed(stamp_file, stamp + "\n")
    log.info("build: %s in %.0fs (%d compiled, %d warnings)", bzimage, duration,
             progress.count, warnings)
    return BuildResult(kbuild, bzimage, log_path, duration, False, progress.count, warnings)


def _selftests_stamp(tree_commit: str, kbuild: Path, project: Path) -> str:
    h = hashlib.sha256(f"commit {tree_commit}\n".encode())
    cfg = kbuild / ".config"
    if cfg.is_file():
        h.update(cfg.read_bytes())
    src = project / "selftests"
    if src.is_dir():
        for p in sorted(src.rglob("*")):
            rel = p.relative_to(src)
            if p.is_file() and rel.parts[0] != "build":
                h.update(f"\n{rel}\n".encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def make_selftests(
    tree: Path,
    kbuild: Path,
    project: Path,
    log_path: Path,
    *,
    tree_commit: str | None = None,
    jobs: int | None = None,
    timeout: float = 1800.0,
    lock_path: Path | None = None,
    cache: Path | None = None,
    on_line: Callable[[str], None] | None = None,
) -> SelftestsResult:
    """Kernel headers, the tree's cgroup selftests, and the project's ``selftests/``.

    A part that does not build is reported in ``problems`` (its suites will say
    so), it does not stop the others.
    """
    jobs = jobs or os.cpu_count() or 1
    problems: list[str] = []
    headers = kbuild / "usr" / "include"
    cgroup_dir: Path | None = None
    own_dir: Path | None = None
    mk = project / "selftests" / "Makefile"
    stamp_file = kbuild / ".harness-selftests-stamp"
    stamp = _selftests_stamp(tree_commit, kbuild, project) if tree_commit else None
    cg_out, own_out = kbuild / "kselftest" / "cgroup", kbuild / "recharge-selftests"
    if (stamp and stamp_file.is_file() and stamp_file.read_text().strip() == stamp
            and (cg_out / "test_memcontrol").is_file() and (own_out.is_dir() or not mk.is_file())):
        log.info("selftests: up to date (same commit, .config and selftests/): skipping make")
        return SelftestsResult(cg_out, own_out if mk.is_file() else None, headers,
                               () if mk.is_file() else (f"no {mk}: the project's selftests "
                                                        "are not available",))
    stamp_file.unlink(missing_ok=True)
    with file_lock(lock_path or kbuild_lock(cache or cache_root()), "the kernel build lock"):
        res = proc.run(["make", f"O={kbuild}", f"-j{jobs}", "headers"], cwd=tree,
                       timeout=timeout, log_path=log_path, on_line=on_line)
        if res.returncode != 0:
            text = "\n".join(res.tail)
            raise BuildError(f"make headers failed: {first_error(text) or res.tail[-1:]}",
                             log=log_path)
        res = proc.run(
            ["make", "-C", str(tree / "tools/testing/selftests"), f"-j{jobs}",
             "TARGETS=cgroup", f"O={kbuild}"],
            cwd=tree, timeout=timeout, log_path=log_path, on_line=on_line,
        )
        out = kbuild / "kselftest" / "cgroup"
        if res.returncode == 0 and (out / "test_memcontrol").is_file():
            cgroup_dir = out
        else:
            err = first_error("\n".join(res.tail)) or "see log"
            problems.append(f"cgroup selftests did not build: {err}")
            log.error("build: cgroup selftests did not build: %s (log %s)", err, log_path)
    if mk.is_file():
        own_out.mkdir(parents=True, exist_ok=True)
        res = proc.run(
            ["make", "-C", str(project / "selftests"), f"-j{jobs}", f"O={own_out}",
             f"KHDR_INCLUDES=-I{headers}"],
            cwd=project, timeout=timeout, log_path=log_path, on_line=on_line,
        )
        if res.returncode == 0:
            own_dir = own_out
        else:
            err = first_error("\n".join(res.tail)) or "see log"
            problems.append(f"project selftests did not build: {err}")
            log.error("build: project selftests did not build: %s (log %s)", err, log_path)
    else:
        problems.append(f"no {mk}: the project's selftests are not available")
        log.warning("build: no %s: the project's own suites will be reported as not available",
                    mk)
    if stamp and cgroup_dir is not None and (own_dir is not None or not mk.is_file()):
        write_if_changed(stamp_file, stamp + "\n")
    return SelftestsResult(cgroup_dir, own_dir, headers, tuple(problems))


def existing_build(tree_commit: str, kbuild: Path, log_path: Path,
                   mm_dir: Path | None = None) -> tuple[BuildResult, SelftestsResult]:
    """``test``: the kernel and selftests an earlier ``build``/``run`` left in ``kbuild``
    (UserError when the kernel there is not the one of this tree and config)."""
    bz = kbuild / "arch/x86/boot/bzImage"
    if not kernel_up_to_date(tree_commit, kbuild):
        raise UserError("no up-to-date kernel build for this tree and config: "
                        "run `recharge-harness build` (or `run`) first")
    cgroup, own = kbuild / "kselftest" / "cgroup", kbuild / "recharge-selftests"
    return (BuildResult(kbuild, bz, log_path, 0, True, 0, 0),
            SelftestsResult(cgroup if cgroup.is_dir() else None, own if own.is_dir() else None,
                            kbuild / "usr/include", (), mm_dir=mm_dir))


def copy_outputs(kernel: BuildResult, selftests: SelftestsResult, run_dir: Path,
                 mm_origin: str) -> tuple[Path, dict[str, Path | None]]:
    """Private copies in the run directory (``kernel/bzImage``, ``guest/<origin>/``): the
    guest runs these even if another run rebuilds the cache.  (bzImage, origin -> dir)."""
    kdir = run_dir / "kernel"
    kdir.mkdir(exist_ok=True)
    bzimage = kdir / "bzImage"
    shutil.copy(kernel.bzimage, bzimage)
    dirs: dict[str, Path | None] = {}
    for origin, d in (("cgroup", selftests.cgroup_dir), ("own", selftests.own_dir),
                      (mm_origin, selftests.mm_dir)):
        if d is None:
            dirs[origin] = None
            continue
        dst = run_dir / "guest" / origin
        shutil.copytree(d, dst, symlinks=True, dirs_exist_ok=True)
        dirs[origin] = dst
    return bzimage, dirs
