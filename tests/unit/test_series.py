"""series: parse/validate patches/series, git am on a cache branch, reuse, conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import SeriesError
from harness.stages import apply as series
from harness.stages import source

from fakes import git, make_fake_tree, make_patch, snapshot


def _series(d: Path, text: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "series").write_text(text)
    return d / "series"


def test_read_series_comments_blanks_and_subjects(tmp_path: Path) -> None:
    tree = make_fake_tree(tmp_path / "tree")
    pdir = tmp_path / "patches"
    make_patch(tree, "mm/memcontrol.c", "int memcg;\nint changed;\nint line3;\n",
               "mm: memcg: change line 2", pdir / "0001-a.patch")
    sf = _series(pdir, "# the series\n\n0001-a.patch   # trailing comment\n")
    s = series.read_series(sf)
    assert [p.name for p in s.patches] == ["0001-a.patch"]
    assert s.patches[0].subject == "[PATCH] mm: memcg: change line 2"
    assert not s.empty


@pytest.mark.parametrize("text,msg", [
    ("0001-a.patch extra words\n", "series:1: malformed line"),
    ("missing.patch\n", "series:1: patch file missing.patch not found"),
    ("ok.patch\nok.patch\n", "series:2: ok.patch already listed on line 1"),
    ("../escape.patch\n", "must stay inside"),
    ("nodiff.patch\n", "nodiff.patch contains no diff"),
])
def test_bad_series_lines_name_file_and_line(tmp_path: Path, text: str, msg: str) -> None:
    pdir = tmp_path / "patches"
    pdir.mkdir()
    (pdir / "ok.patch").write_text("Subject: x\n\ndiff --git a/x b/x\n")
    (pdir / "nodiff.patch").write_text("Subject: x\n\njust text\n")
    (pdir / "0001-a.patch").write_text("diff --git a/x b/x\n")
    with pytest.raises(SeriesError) as e:
        series.read_series(_series(pdir, text))
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_missing_series_file(tmp_path: Path) -> None:
    with pytest.raises(SeriesError, match="not found"):
        series.read_series(tmp_path / "nope" / "series")
    assert series.read_series(tmp_path / "nope" / "series", required=False).empty


def test_failed_files_parsing() -> None:
    out = ("Applying: x\nerror: patch failed: mm/memcontrol.c:12\n"
           "error: mm/memcontrol.c: patch does not apply\n"
           "CONFLICT (content): Merge conflict in include/linux/memcontrol.h\n"
           "error: mm/new.c: does not exist in index\n")
    assert series.failed_files(out) == ("mm/memcontrol.c", "include/linux/memcontrol.h",
                                        "mm/new.c")


def _setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    tree = make_fake_tree(tmp_path / "tree")
    src = source.tree_source(tmp_path / "cache", tree, "v-base")
    return tree, src, tmp_path / "cache" / "worktrees" / src.worktree_prefix


def test_apply_then_reuse(tmp_path: Path) -> None:
    tree, src, wt = _setup(tmp_path)
    pdir = tmp_path / "patches"
    make_patch(tree, "mm/memcontrol.c", "int memcg;\nint changed;\nint line3;\n",
               "mm: one", pdir / "0001-one.patch")
    make_patch(tree, "mm/new.c", "int new;\n", "mm: two", pdir / "0002-two.patch")
    # the second patch must apply on top of the first: rebuild it on top
    sf = _series(pdir, "0001-one.patch\n0002-two.patch\n")
    before = snapshot(tree)
    a = series.apply_series(src, series.read_series(sf), wt, tmp_path / "logs")
    assert not a.reused and a.branch and len(a.patches) == 2
    assert [p.subject for p in a.patches] == ["mm: one", "mm: two"]
    assert (wt / "mm" / "new.c").read_text() == "int new;\n"
    assert "int changed;" in (wt / "mm" / "memcontrol.c").read_text()
    assert git(wt, "rev-parse", "HEAD") == a.head_commit
    assert len(list((tmp_path / "logs").glob("*.log"))) == 2
    b = series.apply_series(src, series.read_series(sf), wt, tmp_path / "logs2")
    assert b.reused and b.head_commit == a.head_commit and b.branch == a.branch
    assert not (tmp_path / "logs2").exists()
    assert snapshot(tree) == before  # the user's tree never changes
    # Deterministic: the same series on a fresh cache gives the same commits.
    src2 = source.tree_source(tmp_path / "cache2", tree, "v-base")
    c = series.apply_series(src2, series.read_series(sf),
                            tmp_path / "cache2" / "worktrees" / "x", tmp_path / "logs3")
    assert c.head_commit == a.head_commit


def test_conflict_names_patch_and_files_and_leaves_clean_worktree(tmp_path: Path) -> None:
    tree, src, wt = _setup(tmp_path)
    pdir = tmp_path / "patches"
    # Made against a different version of the file: cannot apply on the base.
    git(tree, "checkout", "-q", "-b", "other")
    (tree / "mm" / "memcontrol.c").write_text("totally\ndifferent\ncontent\n")
    git(tree, "commit", "-q", "-am", "other")
    make_patch(tree, "mm/memcontrol.c", "totally\nchanged\ncontent\n", "mm: conflicting",
               pdir / "0001-bad.patch")
    git(tree, "checkout", "-q", "main")
    sf = _series(pdir, "0001-bad.patch\n")
    with pytest.raises(SeriesError) as e:
        series.apply_series(src, series.read_series(sf), wt, tmp_path / "logs")
    err = e.value
    assert err.patch == "0001-bad.patch" and "mm/memcontrol.c" in err.files
    assert "patch 1/1 0001-bad.patch does not apply" in str(err)
    assert "mm/memcontrol.c" in str(err) and err.log is not None and err.log.exists()
    assert git(wt, "status", "--porcelain") == ""
    assert git(wt, "rev-parse", "HEAD") == src.base_commit
    assert not (Path(git(wt, "rev-parse", "--git-dir")) / "rebase-apply").exists()
    assert git(src.repo, "branch", "--list", "harness/*") == ""


def test_empty_series_tests_the_base(tmp_path: Path) -> None:
    _tree, src, wt = _setup(tmp_path)
    sf = _series(tmp_path / "patches", "# nothing yet\n")
    a = series.apply_series(src, series.read_series(sf), wt, tmp_path / "logs")
    assert a.branch is None and a.head_commit == src.base_commit and a.patches == ()


def test_dirty_cache_worktree_and_interrupted_am_are_repaired(tmp_path: Path) -> None:
    tree, src, wt = _setup(tmp_path)
    pdir = tmp_path / "patches"
    make_patch(tree, "mm/new.c", "int new;\n", "mm: two", pdir / "0001-two.patch")
    sf = _series(pdir, "0001-two.patch\n")
    series.apply_series(src, series.read_series(sf), wt, tmp_path / "l1")
    (wt / "mm" / "memcontrol.c").write_text("scribbled\n")
    (wt / "junk.txt").write_text("junk\n")
    a = series.apply_series(src, series.read_series(sf), wt, tmp_path / "l2")
    assert a.reused and git(wt, "status", "--porcelain") == ""
