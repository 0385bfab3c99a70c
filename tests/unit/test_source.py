"""source: Debian import (deterministic, reused) and --tree (never touched)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.errors import SourceError
from harness.stages import source

from fakes import git, make_fake_tree, snapshot

DEBIAN_GITIGNORE = """\
# Normal kernel ignores
*.o
/vmlinux

#
# Debian packaging: ignore everything at the top level, since it isn't
# included in our repository
#
/*
!/debian/
"""


def test_strip_debian_gitignore_drops_only_the_stanza() -> None:
    out = source.strip_debian_gitignore(DEBIAN_GITIGNORE)
    assert "/*" not in out.splitlines() and "!/debian/" not in out
    assert out.endswith("/vmlinux\n\n#\n")  # the lone '#' stays, as in the cache repo
    assert source.strip_debian_gitignore("*.o\n") == "*.o\n"


def test_upstream_version() -> None:
    assert source.upstream_version("6.12.117-1~deb12u1") == "6.12.117"
    assert source.upstream_version("1:6.12.5-2") == "6.12.5"


def _fake_tarball(tmp: Path) -> Path:
    top = tmp / "pkg" / "linux-source-6.12"
    (top / "mm").mkdir(parents=True)
    (top / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\n")
    (top / "mm" / "memcontrol.c").write_text("int x;\n")
    (top / ".gitignore").write_text(DEBIAN_GITIGNORE)
    tarball = tmp / "linux-source-6.12.tar.xz"
    subprocess.run(["tar", "-cJf", str(tarball), "-C", str(tmp / "pkg"), "linux-source-6.12"],
                   check=True)
    return tarball


def test_debian_import_is_deterministic_and_reused(tmp_path: Path, monkeypatch) -> None:
    tarball = _fake_tarball(tmp_path)
    monkeypatch.setattr(source, "SYSTEM_TARBALL", tarball)
    monkeypatch.setattr(source, "debian_version", lambda package="": "6.12.117-1~deb12u1")
    s1 = source.debian_source(tmp_path / "c1")
    repo = tmp_path / "c1" / "src" / "linux-6.12"
    assert s1.repo == repo and s1.base_ref == "v6.12.117-deb" and s1.kind == "debian"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "base"
    files = git(repo, "ls-files").split()
    assert "Makefile" in files and "mm/memcontrol.c" in files  # not hidden by the stanza
    assert "!/debian/" not in (repo / ".gitignore").read_text()
    assert git(repo, "log", "-1", "--format=%an %ad %s", "--date=iso") == (
        "harness 2025-01-01 00:00:00 +0000 "
        "Linux 6.12.117 (Debian linux-source-6.12 6.12.117-1~deb12u1)")
    # Same input in another cache: the same commit id.
    s2 = source.debian_source(tmp_path / "c2")
    assert s2.base_commit == s1.base_commit
    # Reuse: no second import even if the tarball disappears.
    tarball.unlink()
    assert source.debian_source(tmp_path / "c1").base_commit == s1.base_commit
    assert not list((tmp_path / "c1" / "src").glob(".linux-6.12.tmp-*"))


def test_existing_dir_without_tag_is_an_error(tmp_path: Path) -> None:
    repo = tmp_path / "c" / "src" / "linux-6.12"
    repo.mkdir(parents=True)
    git(repo, "init", "-q")
    with pytest.raises(SourceError, match="no v6.12.*-deb tag"):
        source.debian_source(tmp_path / "c")


def test_base_without_tree_is_user_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="--base needs --tree"):
        source.prepare_source(tmp_path, None, "v1")


@pytest.mark.parametrize("kind", ["missing", "notgit", "badref"])
def test_tree_errors(tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "tree"
    base = None
    if kind == "notgit":
        tree.mkdir()
    elif kind == "badref":
        make_fake_tree(tree)
        base = "no-such-ref"
    with pytest.raises(SourceError) as e:
        source.tree_source(tmp_path / "cache", tree, base)
    msg = str(e.value)
    assert "\n" not in msg
    assert {"missing": "no such directory", "notgit": "not a git work tree",
            "badref": "--base no-such-ref: no such commit"}[kind] in msg


def test_dirty_user_tree_is_left_byte_for_byte_untouched(tmp_path: Path) -> None:
    tree = make_fake_tree(tmp_path / "tree")
    (tree / "mm" / "memcontrol.c").write_text("stash me\n")
    git(tree, "stash", "-q")
    (tree / "mm" / "memcontrol.c").write_text("uncommitted edit\n")
    (tree / "untracked.txt").write_text("mine\n")
    git(tree, "add", "untracked.txt")  # staged, too
    (tree / "untracked2.txt").write_text("also mine\n")
    before = snapshot(tree)
    src = source.tree_source(tmp_path / "cache", tree, "v-base")
    assert src.base_commit == git(tree, "rev-parse", "v-base")
    assert src.repo != tree and src.repo.is_relative_to(tmp_path / "cache")
    # The shadow repo sees the user's objects without copying them.
    assert git(src.repo, "cat-file", "-t", src.base_commit) == "commit"
    assert snapshot(tree) == before
