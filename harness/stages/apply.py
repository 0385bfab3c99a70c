"""Stage 2: read ``patches/series`` and apply it with ``git am --3way``.

The series is applied on a branch named after a hash of (base commit, patch
names and contents) in a worktree under the cache.  An unchanged series reuses
that branch: nothing is re-applied, and because the same worktree directory is
reused, unchanged files keep their mtimes and kernel builds stay incremental.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from dataclasses import dataclass
from email.header import decode_header, make_header
from pathlib import Path

from harness import gitutil
from harness.errors import SeriesError
from harness.stages.source import Source

log = logging.getLogger(__name__)

_PATCH_OPTS = {"-p1"}  # quilt compatibility; anything else is malformed


@dataclass(frozen=True)
class Patch:
    index: int  # 1-based position in the series
    name: str  # as written in the series file
    path: Path
    subject: str
    sha256: str


@dataclass(frozen=True)
class Series:
    series_file: Path | None  # None: no series file (testing the base)
    patches: tuple[Patch, ...]

    @property
    def empty(self) -> bool:
        return not self.patches


@dataclass(frozen=True)
class AppliedPatch:
    index: int
    name: str
    subject: str
    commit: str


@dataclass(frozen=True)
class AppliedTree:
    worktree: Path
    branch: str | None  # None for an empty series (detached at the base)
    base_commit: str
    head_commit: str
    series_key: str
    patches: tuple[AppliedPatch, ...]
    reused: bool


def _subject(text: str) -> str:
    m = re.search(r"^Subject:[ \t]*(.*(?:\n[ \t].*)*)", text, re.M)
    if not m:
        return ""
    raw = re.sub(r"\s*\n\s*", " ", m.group(1)).strip()
    try:
        return str(make_header(decode_header(raw)))
    except Exception:  # malformed encoded-word: keep the raw text
        return raw


def read_series(series_file: Path, *, required: bool = True) -> Series:
    """Parse and validate a quilt-style series file.

    One patch file name per line (relative to the file's directory), optional
    ``-p1``, ``#`` comments and blank lines.  Every problem names the file and line.
    """
    if not series_file.is_file():
        if required:
            raise SeriesError(f"series file {series_file} not found")
        log.info("apply: no %s: testing the base without patches", series_file)
        return Series(series_file=None, patches=())
    directory = series_file.parent
    patches: list[Patch] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(series_file.read_text(encoding="utf-8", errors="replace")
                                 .splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        where = f"{series_file}:{lineno}"
        tokens = line.split()
        name, opts = tokens[0], tokens[1:]
        if any(o not in _PATCH_OPTS for o in opts):
            raise SeriesError(
                f"{where}: malformed line {raw.strip()!r} (expected one patch file name per line)",
                patch=name,
            )
        if name.startswith("/") or ".." in Path(name).parts:
            raise SeriesError(f"{where}: patch path {name!r} must stay inside {directory}",
                              patch=name)
        if name in seen:
            raise SeriesError(f"{where}: {name} already listed on line {seen[name]}", patch=name)
        seen[name] = lineno
        path = directory / name
        if not path.is_file():
            raise SeriesError(f"{where}: patch file {name} not found in {directory}", patch=name)
        data = path.read_bytes()
        text = data.decode("utf-8", errors="replace")
        if "\ndiff --git " not in text and not text.startswith("diff --git ") \
                and "\n--- " not in text:
            raise SeriesError(f"{where}: {name} contains no diff", patch=name)
        patches.append(
            Patch(
                index=len(patches) + 1,
                name=name,
                path=path,
                subject=_subject(text) or name,
                sha256=hashlib.sha256(data).hexdigest(),
            )
        )
    return Series(series_file=series_file, patches=tuple(patches))


def series_key(base_commit: str, series: Series) -> str:
    h = hashlib.sha256(f"base {base_commit}\n".encode())
    for p in series.patches:
        h.update(f"patch {p.name} {p.sha256}\n".encode())
    return h.hexdigest()


_FAILED_FILE_RES = (
    re.compile(r"^error: patch failed: (\S+?):\d+$", re.M),
    re.compile(r"^error: (\S+): patch does not apply$", re.M),
    re.compile(r"^error: (\S+): does not exist in index$", re.M),
    re.compile(r"^error: (\S+): already exists in (?:index|working directory)$", re.M),
    re.compile(r"^CONFLICT \([^)]*\): .*? in (\S+)$", re.M),
)


def failed_files(am_output: str) -> tuple[str, ...]:
    """File names git am / apply complained about, in order, without repeats."""
    found: list[tuple[int, str]] = []
    for rx in _FAILED_FILE_RES:
        found.extend((m.start(), m.group(1)) for m in rx.finditer(am_output))
    names: list[str] = []
    for _, name in sorted(found):
        if name not in names:
            names.append(name)
    return tuple(names)


def _in_progress_am(worktree: Path) -> bool:
    return (gitutil.git_dir_of_worktree(worktree) / "rebase-apply").exists()


def ensure_worktree(source: Source, worktree: Path) -> None:
    """Create (or repair) a worktree of ``source.repo`` at ``worktree``, detached at the base."""
    gitutil.git(source.repo, ["worktree", "prune"], check=False)
    registered = gitutil.git(source.repo, ["worktree", "list", "--porcelain"]).output
    is_registered = f"worktree {worktree}\n" in registered + "\n"
    if worktree.exists() and not is_registered:
        log.warning("apply: %s is not a registered worktree; recreating it", worktree)
        shutil.rmtree(worktree)
    if not worktree.exists():
        worktree.parent.mkdir(parents=True, exist_ok=True)
        log.info("apply: creating worktree %s (checking out the tree takes a while)", worktree)
        gitutil.git(
            source.repo,
            ["worktree", "add", "-f", "--detach", str(worktree), source.base_commit],
            timeout=1800,
        )
        return
    if _in_progress_am(worktree):
        log.warning("apply: aborting an interrupted git am in %s", worktree)
        gitutil.git(worktree, ["am", "--abort"], env=gitutil.HARNESS_IDENT, check=False)
        if _in_progress_am(worktree):
            gitutil.git(worktree, ["am", "--quit"], env=gitutil.HARNESS_IDENT, check=False)


def _checkout(worktree: Path, rev: str, *, branch: str | None = None) -> None:
    """Switch the worktree to ``rev``; only changed files are rewritten."""
    if branch is None:
        args = ["checkout", "-q", "-f", "--detach", rev]
    else:
        args = ["checkout", "-q", "-f", "-B", branch, rev]
    gitutil.git(worktree, args, timeout=1800)
    if not gitutil.is_clean(worktree):
        gitutil.git(worktree, ["clean", "-fdq"], timeout=600)


def _applied(worktree: Path, base: str) -> tuple[AppliedPatch, ...]:
    out = gitutil.out(worktree, ["log", "--reverse", "--format=%H %s", f"{base}..HEAD"])
    result = []
    for i, line in enumerate(out.splitlines(), 1):
        sha, _, subject = line.partition(" ")
        result.append(AppliedPatch(index=i, name="", subject=subject, commit=sha))
    return tuple(result)


def apply_series(
    source: Source,
    series: Series,
    worktree: Path,
    log_dir: Path,
) -> AppliedTree:
    """Check out base + series in ``worktree``; reuse an earlier application if unchanged.

    On a conflict: ``git am --abort``, the half-made branch is deleted, the
    worktree is left clean at the base, and :class:`SeriesError` names the patch
    and the files that failed.
    """
    key = series_key(source.base_commit, series)
    ensure_worktree(source, worktree)
    repo = source.repo
    if series.empty:
        _checkout(worktree, source.base_commit)
        log.info("apply: the series is empty: testing the base %s as is", source.base_ref)
        return AppliedTree(worktree, None, source.base_commit, source.base_commit, key, (), True)

    branch = f"harness/{worktree.name}/{key[:16]}"
    tip = gitutil.rev_parse(repo, f"refs/heads/{branch}")
    if tip is not None:
        _checkout(worktree, tip, branch=branch)
        patches = _name_patches(_applied(worktree, source.base_commit), series)
        log.info("apply: series unchanged: reusing branch %s (%d patches)", branch, len(patches))
        return AppliedTree(worktree, branch, source.base_commit, tip, key, patches, True)

    tmp_branch = f"{branch}-applying"
    _checkout(worktree, source.base_commit, branch=tmp_branch)
    env = dict(gitutil.HARNESS_IDENT)
    log_dir.mkdir(parents=True, exist_ok=True)
    for p in series.patches:
        plog = log_dir / f"{p.index:02d}-{gitutil.safe_name(p.path.stem)}.log"
        res = gitutil.git(
            worktree,
            ["am", "--3way", "--keep-cr", "--committer-date-is-author-date", str(p.path)],
            env=env,
            check=False,
            timeout=600,
            log_path=plog,
        )
        if res.returncode != 0:
            text = res.output + res.stderr
            files = failed_files(text)
            unmerged = gitutil.git(worktree, ["diff", "--name-only", "--diff-filter=U"],
                                   check=False).output.split()
            files = tuple(dict.fromkeys([*files, *unmerged]))
            ab = gitutil.git(worktree, ["am", "--abort"], env=env, check=False, log_path=plog)
            if ab.returncode != 0 or _in_progress_am(worktree):
                gitutil.git(worktree, ["am", "--quit"], env=env, check=False, log_path=plog)
            _checkout(worktree, source.base_commit)
            gitutil.git(repo, ["branch", "-q", "-D", tmp_branch], check=False)
            where = f" ({', '.join(files)})" if files else ""
            raise SeriesError(
                f"patch {p.index}/{len(series.patches)} {p.name} does not apply on "
                f"{source.base_ref}{where}; git am aborted, worktree left clean",
                patch=p.name,
                files=files,
                log=plog,
            )
        log.info("apply: [%d/%d] %s", p.index, len(series.patches), p.subject)
    head = gitutil.out(worktree, ["rev-parse", "HEAD"])
    # Publish under the final name only once every patch applied.
    gitutil.git(worktree, ["branch", "-q", "-M", tmp_branch, branch])
    patches = _name_patches(_applied(worktree, source.base_commit), series)
    return AppliedTree(worktree, branch, source.base_commit, head, key, patches, False)


def _name_patches(applied: tuple[AppliedPatch, ...], series: Series) -> tuple[AppliedPatch, ...]:
    if len(applied) != len(series.patches):  # e.g. an empty patch was skipped
        return applied
    return tuple(
        AppliedPatch(index=a.index, name=p.name, subject=a.subject, commit=a.commit)
        for a, p in zip(applied, series.patches)
    )
