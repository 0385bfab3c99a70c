"""Stage 1: the kernel source.

Default: the Debian ``linux-source-6.12`` tarball, imported once into a git
repository in the cache (``<cache>/src/linux-6.12``, branch ``base``, tag
``v<upstream>-deb``).  The import is deterministic (fixed identity and date),
so recreating it elsewhere gives the same commit id.

``--source debian:7.2``: upstream Linux 7.2 from Debian sid, the same way
(``<cache>/src/linux-7.2``, tag ``v7.2.<n>-deb``), downloaded with an apt list of
the harness's own (:mod:`harness.stages.debian`); never patched.

``--tree PATH --base REF``: a user's git tree.  We never write to it: a bare
"shadow" repository in the cache borrows its objects (``objects/info/alternates``)
and every worktree and branch the harness makes lives there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import gitutil, proc
from harness.errors import InfraError, SourceError
from harness.paths import file_lock
from harness.stages.debian import DEFAULT_SOURCE, RELEASES, Release, parse_source

log = logging.getLogger(__name__)

DEBIAN_PACKAGE = "linux-source-6.12"
SRC_DIR_NAME = "linux-6.12"
SYSTEM_TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
IMPORT_DATE = "2025-01-01T00:00:00+0000"
TAG_PATTERN = "v6.12.*-deb"


@dataclass(frozen=True)
class Source:
    """A base commit in a repository the harness may write to."""

    kind: str  # "debian" or "tree"
    repo: Path  # repository owning worktrees and branches (always in the cache)
    base_commit: str
    base_ref: str  # tag or user-supplied ref, for humans
    description: str
    user_tree: Path | None = None
    release: str = "6.12"  # kind "debian": which one (harness.stages.debian.RELEASES)

    @property
    def worktree_prefix(self) -> str:
        if self.kind == "debian":
            return RELEASES[self.release].worktree_prefix
        assert self.user_tree is not None
        return "tree-" + hashlib.sha256(str(self.user_tree).encode()).hexdigest()[:10]


# ---------------------------------------------------------------- Debian --


def _existing_tag(repo: Path, pattern: str = TAG_PATTERN) -> str | None:
    if not (repo / ".git").exists() and not (repo / "HEAD").exists():
        return None
    res = gitutil.git(repo, ["tag", "-l", pattern, "--sort=-version:refname"], check=False)
    tags = res.output.split()
    return tags[0] if res.returncode == 0 and tags else None


def debian_version(package: str = DEBIAN_PACKAGE) -> str | None:
    """Version of the installed linux-source package."""
    res = proc.run(
        ["dpkg-query", "-W", "-f=${Version}", package],
        cwd=Path("/"),
        timeout=30,
        merge_stderr=False,
    )
    return res.output.strip() or None if res.returncode == 0 else None


def upstream_version(debian_ver: str) -> str:
    """``6.12.117-1~deb12u1`` -> ``6.12.117``."""
    return debian_ver.split("-", 1)[0].split(":")[-1]


def strip_debian_gitignore(text: str) -> str:
    """Drop the Debian stanza (``/*`` + ``!/debian/``) that ignores the whole tree."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("# Debian packaging"):
            for j in range(i, len(lines)):
                if lines[j].strip() == "!/debian/":
                    return "".join(lines[:i] + lines[j + 1 :])
    return text


def _fetch_tarball(workdir: Path, log_path: Path | None,
                   release: Release | None = None) -> tuple[Path, str]:
    """Return (tarball, debian version): the system copy or ``apt-get download``."""
    rel = release or RELEASES["6.12"]
    default = rel.name == "6.12"
    system = SYSTEM_TARBALL if default else rel.system_tarball
    if system.is_file():
        ver = (debian_version() if default else debian_version(rel.package)) or "unknown"
        log.info("source: using %s (%s)", system, ver)
        return system, ver
    from harness.stages import debian

    deb = debian.download(rel, workdir, log_path)
    ver = proc.run(
        ["dpkg-deb", "-f", str(deb), "Version"], cwd=workdir, timeout=60, merge_stderr=False
    ).output.strip()
    res = proc.run(
        ["dpkg-deb", "-x", str(deb), str(workdir / "pkg")],
        cwd=workdir,
        timeout=600,
        log_path=log_path,
    )
    tarball = workdir / "pkg" / "usr" / "src" / f"{rel.package}.tar.xz"
    if res.returncode != 0 or not tarball.is_file():
        raise InfraError(f"dpkg-deb -x {deb.name} gave no {tarball.name}", log=log_path)
    deb.unlink()
    return tarball, ver or "unknown"


def create_debian_repo(repo: Path, log_path: Path | None = None,
                       release: Release | None = None) -> str:
    """Import the tarball into a new git repository at ``repo``; return the tag.

    Built in a sibling temporary directory and renamed into place, so an
    interrupted import never leaves a half-made repository behind.
    """
    repo.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{repo.name}.tmp-", dir=repo.parent))
    try:
        rel = release or RELEASES["6.12"]
        tarball, deb_ver = _fetch_tarball(tmp, log_path, rel)
        log.info("source: extracting %s (about 15 s)", tarball.name)
        res = proc.run(
            ["tar", "-xJf", str(tarball), "-C", str(tmp)],
            cwd=tmp,
            timeout=1800,
            log_path=log_path,
        )
        top = tmp / rel.package
        if res.returncode != 0 or not (top / "Makefile").is_file():
            raise InfraError(f"extracting {tarball} failed", log=log_path)
        if upstream_version(deb_ver) == "unknown":
            deb_ver = _makefile_version(top / "Makefile")
        gi = top / ".gitignore"
        if gi.is_file():
            gi.write_text(strip_debian_gitignore(gi.read_text(encoding="utf-8")), encoding="utf-8")
        upstream = upstream_version(deb_ver)
        tag = f"v{upstream}-deb"
        env = gitutil.env_with_date(IMPORT_DATE)
        log.info("source: committing the tree as git base %s (about 30 s)", tag)
        gitutil.git(top, ["init", "-q", "-b", "base"], env=env, log_path=log_path)
        gitutil.git(top, ["add", "-A", "-f"], env=env, timeout=1800, log_path=log_path)
        msg = f"Linux {upstream} (Debian {rel.package} {deb_ver})"
        gitutil.git(top, ["commit", "-q", "--no-verify", "-m", msg], env=env, timeout=1800,
                    log_path=log_path)
        gitutil.git(top, ["tag", tag], env=env, log_path=log_path)
        os.rename(top, repo)
        return tag
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _makefile_version(makefile: Path) -> str:
    vals = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d+)", makefile.read_text(),
                           re.M))
    return f"{vals.get('VERSION', '0')}.{vals.get('PATCHLEVEL', '0')}.{vals.get('SUBLEVEL', '0')}"


def debian_source(cache: Path, log_path: Path | None = None,
                  release: Release | None = None) -> Source:
    """The Debian base repository, created on first use and reused afterwards."""
    rel = release or RELEASES["6.12"]
    repo = cache / "src" / rel.src_dir_name
    with file_lock(cache / "locks" / "source.lock", "the source cache lock"):
        tag = _existing_tag(repo, rel.tag_pattern)
        if tag is None:
            if repo.exists():
                raise SourceError(
                    f"{repo} exists but has no {rel.tag_pattern} tag; move it away to re-import"
                )
            tag = create_debian_repo(repo, log_path, rel)
        else:
            log.info("source: reusing %s (tag %s)", repo, tag)
    sha = gitutil.rev_parse(repo, tag)
    if sha is None:  # pragma: no cover - tag just listed
        raise SourceError(f"tag {tag} in {repo} does not name a commit")
    return Source(
        kind="debian",
        repo=repo,
        base_commit=sha,
        base_ref=tag,
        description=f"Debian {rel.package} ({tag})",
        release=rel.name,
    )


# ------------------------------------------------------------- user tree --


def validate_tree(tree: Path, base: str | None) -> tuple[Path, str, str]:
    """(resolved tree, ref, commit) or SourceError naming what is wrong.  Read-only."""
    tree = tree.expanduser()
    if not tree.exists():
        raise SourceError(f"--tree {tree}: no such directory")
    tree = tree.resolve()
    if not gitutil.is_work_tree(tree):
        raise SourceError(f"--tree {tree}: not a git work tree")
    ref = base or "HEAD"
    sha = gitutil.rev_parse(tree, ref)
    if sha is None:
        raise SourceError(f"--base {ref}: no such commit in {tree}")
    return tree, ref, sha


def tree_source(cache: Path, tree: Path, base: str | None) -> Source:
    """A commit of the user's tree, made available read-only to a shadow repo."""
    tree, ref, sha = validate_tree(tree, base)
    if not (tree / "Makefile").is_file() or not (tree / "Kconfig").is_file():
        log.warning("%s does not look like a kernel tree (no Makefile/Kconfig at the top)", tree)
    dirty = gitutil.git(tree, ["status", "--porcelain", "--untracked-files=no"], check=False)
    if dirty.output.strip():
        log.warning(
            "note: %s has uncommitted changes; they are NOT tested (using %s = %s) "
            "and the harness leaves them untouched",
            tree, ref, sha[:12],
        )
    objects = gitutil.common_dir(tree) / "objects"
    shadow = cache / "src" / ("tree-" + hashlib.sha256(str(tree).encode()).hexdigest()[:10])
    with file_lock(cache / "locks" / "source.lock", "the source cache lock"):
        if not (shadow / "HEAD").exists():
            shadow.parent.mkdir(parents=True, exist_ok=True)
            gitutil.git(shadow.parent, ["init", "-q", "--bare", str(shadow)])
            (shadow / "tree-path").write_text(f"{tree}\n")
        alt = shadow / "objects" / "info" / "alternates"
        alt.parent.mkdir(parents=True, exist_ok=True)
        if not alt.is_file() or alt.read_text().strip() != str(objects):
            alt.write_text(f"{objects}\n")
        gitutil.git(shadow, ["update-ref", "refs/harness/base", sha])
    log.info("source: %s at %s (%s), via shadow repo %s", tree, ref, sha[:12], shadow)
    return Source(
        kind="tree",
        repo=shadow,
        base_commit=sha,
        base_ref=ref,
        description=f"{tree} @ {ref} ({sha[:12]})",
        user_tree=tree,
    )


def prepare_source(
    cache: Path, tree: Path | None = None, base: str | None = None, log_path: Path | None = None,
    source: str = DEFAULT_SOURCE,
) -> Source:
    """``--tree`` (with ``--base``), else the Debian release ``source`` names."""
    if tree is None:
        if base is not None:
            raise SourceError("--base needs --tree (the Debian source has one fixed base)")
        try:
            rel = parse_source(source)
        except ValueError as e:
            raise SourceError(f"--source: {e}") from e
        return debian_source(cache, log_path, rel)
    if source != DEFAULT_SOURCE:
        raise SourceError(f"--source {source} and --tree: give one of them")
    return tree_source(cache, tree, base)
