"""Thin git helpers: every call passes ``cwd=`` (via ``git -C``), never chdir."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

from harness import proc
from harness.errors import InfraError

log = logging.getLogger(__name__)

#: Deterministic identity for commits the harness makes (base import, git am).
HARNESS_IDENT = {
    "GIT_AUTHOR_NAME": "harness",
    "GIT_AUTHOR_EMAIL": "harness@localhost",
    "GIT_COMMITTER_NAME": "harness",
    "GIT_COMMITTER_EMAIL": "harness@localhost",
}

#: Never take optional locks (``git status`` would otherwise refresh a user's index).
READ_ONLY_ENV = {"GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}


class GitError(InfraError):
    def __init__(self, message: str, *, returncode: int, output: str, log: Path | None = None):
        super().__init__(message, log=log)
        self.returncode = returncode
        self.output = output


def git(
    repo: Path,
    args: Sequence[str],
    *,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    log_path: Path | None = None,
) -> proc.ProcResult:
    """Run ``git -C repo args`` (stderr kept apart from stdout)."""
    full_env = dict(READ_ONLY_ENV)
    if env:
        full_env.update(env)
    res = proc.run(
        ["git", "-C", str(repo), *args],
        cwd=repo if repo.is_dir() else Path("/"),
        timeout=timeout,
        env=full_env,
        merge_stderr=False,
        log_path=log_path,
    )
    if check and res.returncode != 0:
        msg = (res.stderr.strip() or res.output.strip()).splitlines()
        first = msg[-1] if msg else f"exit {res.returncode}"
        raise GitError(
            f"git {' '.join(args[:3])} failed in {repo}: {first}",
            returncode=res.returncode,
            output=res.output + res.stderr,
            log=log_path,
        )
    return res


def out(repo: Path, args: Sequence[str], **kw: object) -> str:
    """stdout of a git command, stripped."""
    return git(repo, args, **kw).output.strip()  # type: ignore[arg-type]


def rev_parse(repo: Path, rev: str) -> str | None:
    """Full commit sha of ``rev`` or None if it does not name a commit."""
    res = git(repo, ["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], check=False)
    sha = res.output.strip()
    return sha if res.returncode == 0 and sha else None


def is_work_tree(path: Path) -> bool:
    if not path.is_dir():
        return False
    res = git(path, ["rev-parse", "--is-inside-work-tree"], check=False)
    return res.returncode == 0 and res.output.strip() == "true"


def common_dir(path: Path) -> Path:
    """Absolute path of the repository's common git dir (shared by worktrees)."""
    d = Path(out(path, ["rev-parse", "--git-common-dir"]))
    return d if d.is_absolute() else (path / d).resolve()


def is_clean(worktree: Path) -> bool:
    return out(worktree, ["status", "--porcelain", "--untracked-files=normal"]) == ""


def env_with_date(date: str) -> dict[str, str]:
    env = dict(HARNESS_IDENT)
    env["GIT_AUTHOR_DATE"] = date
    env["GIT_COMMITTER_DATE"] = date
    return env


def git_dir_of_worktree(worktree: Path) -> Path:
    d = Path(out(worktree, ["rev-parse", "--git-dir"]))
    return d if d.is_absolute() else (worktree / d).resolve()


def safe_name(text: str) -> str:
    """A file/branch-safe rendering of ``text``."""
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in text)
    return keep.strip("-.")[:60] or "x"


def which(name: str) -> str | None:
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None
