"""Kernel build logs: compiler warnings, compiled sources, files a patch touches.

Shared by ``compare`` (base vs patched) and ``patchcheck`` (prefix k vs k-1).
Pure functions, except :func:`forget_objects` (deletes files in a build dir).

Builds are incremental, so a build log only shows warnings of the files that
were recompiled.  To compare warnings of a set of files, callers first
:func:`forget_objects` of those files: the next build recompiles them (ccache
replays the compiler's warnings on a cache hit), so their warnings are in its
log whatever state the build directory was in.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

_WARNING = re.compile(
    r"^(?P<file>[^\s:][^:\n]*):(?P<line>\d+):(?:(?P<col>\d+):)? warning: (?P<msg>.+?)\s*$", re.M)
_CC_LINE = re.compile(r"^\s+CC(?: \[M\])?\s+(?P<obj>\S+)\.o\s*$", re.M)
_DIFF_GIT = re.compile(r"^diff --git a/(?P<a>\S+) b/(?P<b>\S+)$", re.M)
_NEW_FILE = re.compile(r"^\+\+\+ (?:b/)?(?P<path>\S+)", re.M)
_CACHE_WORKTREE = re.compile(r"(?:^|/)worktrees/[^/]+/(?P<rel>.+)$")

#: Directories whose C files are not part of the kernel image build.
_NOT_KERNEL = ("tools/", "scripts/", "Documentation/", "samples/", "usr/")


@dataclass(frozen=True, order=True)
class CompilerWarning:
    """One ``file:line:col: warning: message [-Wflag]`` line; ``file`` relative to the tree."""

    file: str
    message: str
    line: int = 0

    @property
    def key(self) -> tuple[str, str]:
        """Identity across trees: file and message, not the line (patches shift lines)."""
        return (self.file, self.message)

    def describe(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def normalize_path(path: str, tree: Path | None = None) -> str:
    """A compiler's file name, relative to the source tree when we can tell."""
    p = path.strip()
    if tree is not None:
        prefix = str(tree).rstrip("/") + "/"
        if p.startswith(prefix):
            return p[len(prefix):]
    m = _CACHE_WORKTREE.search(p)
    if m:
        return m.group("rel")
    p = re.sub(r"^(?:\./)+", "", p)
    return p


def parse_warnings(text: str, tree: Path | None = None) -> list[CompilerWarning]:
    """Compiler warnings of a build log, in order, each (file, line, message) once."""
    seen: set[tuple[str, str, int]] = set()
    out: list[CompilerWarning] = []
    for m in _WARNING.finditer(text):
        w = CompilerWarning(normalize_path(m.group("file"), tree), m.group("msg"),
                            int(m.group("line")))
        ident = (w.file, w.message, w.line)
        if ident not in seen:
            seen.add(ident)
            out.append(w)
    return out


def compiled_sources(text: str) -> set[str]:
    """``mm/vmscan.c`` for every ``  CC      mm/vmscan.o`` line of a build log."""
    return {m.group("obj") + ".c" for m in _CC_LINE.finditer(text)}


def touched_files(patch_text: str) -> tuple[str, ...]:
    """Files a patch (mbox or plain diff) changes or creates, in order, without repeats."""
    names = [m.group("b") for m in _DIFF_GIT.finditer(patch_text)]
    if not names:  # a plain unified diff
        names = [m.group("path") for m in _NEW_FILE.finditer(patch_text)
                 if m.group("path") != "/dev/null"]
    return tuple(dict.fromkeys(names))


def kernel_c_files(files: Iterable[str]) -> list[str]:
    """The C files among ``files`` that belong to the kernel image (not tools/, scripts/...)."""
    return [f for f in files if f.endswith(".c") and not f.startswith(_NOT_KERNEL)]


def forget_objects(kbuild: Path, files: Iterable[str]) -> list[Path]:
    """Delete the objects of ``files`` (C sources) in the build dir ``kbuild``.

    If any object was deleted, ``arch/x86/boot/bzImage`` goes too, so that a
    build that would otherwise be skipped as up to date runs ``make`` (which then
    recompiles exactly those files and relinks).  Returns the deleted paths.
    """
    gone: list[Path] = []
    for f in kernel_c_files(files):
        obj = kbuild / (f[:-2] + ".o")
        if obj.is_file():
            obj.unlink()
            gone.append(obj)
    if gone:
        bz = kbuild / "arch" / "x86" / "boot" / "bzImage"
        if bz.is_file():
            bz.unlink()
            gone.append(bz)
        log.debug("forgot %d object(s) in %s so they are recompiled", len(gone), kbuild)
    return gone


def new_warnings(
    before: Iterable[CompilerWarning],
    after: Iterable[CompilerWarning],
    files: Iterable[str] | None = None,
) -> list[CompilerWarning]:
    """Warnings of ``after`` whose (file, message) is not in ``before``.

    With ``files``, only warnings located in those files count.
    """
    known = {w.key for w in before}
    only = set(files) if files is not None else None
    out: list[CompilerWarning] = []
    seen: set[tuple[str, str]] = set()
    for w in after:
        if w.key in known or w.key in seen:
            continue
        if only is not None and w.file not in only:
            continue
        seen.add(w.key)
        out.append(w)
    return out
