"""build: make command, progress, first error, skip when up to date, selftests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from harness.errors import BuildError
from harness.stages import build

from fakes import make_fake_tree


def _kbuild(tmp_path: Path) -> Path:
    kb = tmp_path / "kbuild" / "k"
    kb.mkdir(parents=True)
    (kb / ".config").write_text("CONFIG_MEMCG=y\n")
    return kb


def test_first_error_prefers_compiler_errors() -> None:
    log = ("  CC      a.o\nmake[2]: *** [a.o] Error 1\n"
           "mm/memcontrol.c:12:5: error: 'nope' undeclared\nld: undefined reference to `x'\n")
    assert build.first_error(log) == "mm/memcontrol.c:12:5: error: 'nope' undeclared"
    assert build.first_error("make: *** [x] Error 2\n") == "make: *** [x] Error 2"
    assert build.first_error("all good\n") == ""


def test_make_kernel_builds_then_skips(tmp_path: Path) -> None:
    tree = make_fake_tree(tmp_path / "tree")
    kb = _kbuild(tmp_path)
    r = build.make_kernel(tree, "c1", kb, tmp_path / "cache", tmp_path / "b.log",
                          progress_stream=io.StringIO())
    assert not r.skipped and r.bzimage.is_file() and r.compiled == 2
    log = (tmp_path / "b.log").read_text()
    assert f"make O={kb} -j" in log and "CC=ccache gcc" in log and "bzImage" in log
    assert (kb / ".harness-cc-count").read_text().strip() == "2"
    r2 = build.make_kernel(tree, "c1", kb, tmp_path / "cache", tmp_path / "b2.log")
    assert r2.skipped and (kb / "build-count").read_text().count("\n") == 1
    # a new commit (or .config) means make runs again
    r3 = build.make_kernel(tree, "c2", kb, tmp_path / "cache", tmp_path / "b3.log")
    assert not r3.skipped and (kb / "build-count").read_text().count("\n") == 2


def test_build_error_names_first_error_and_log(tmp_path: Path) -> None:
    tree = make_fake_tree(tmp_path / "tree")
    (tree / "FAIL").write_text("1")
    kb = _kbuild(tmp_path)
    with pytest.raises(BuildError) as e:
        build.make_kernel(tree, "c1", kb, tmp_path / "cache", tmp_path / "b.log")
    assert "kernel build failed: mm/memcontrol.c:12:5: error: 'nope' undeclared" in str(e.value)
    assert e.value.log == tmp_path / "b.log"
    assert not (kb / ".harness-build-stamp").exists()


def test_ccache_env() -> None:
    env = build.ccache_env(Path("/c"))
    assert env["CCACHE_DIR"] == "/c/ccache" and env["CCACHE_BASEDIR"] == "/c"
    assert env["CCACHE_NOHASHDIR"] == "1"


def test_progress_non_tty_and_tty() -> None:
    s = io.StringIO()
    p = build.Progress("build", expected=4, stream=s, period_s=0)
    p.line("  CC      mm/a.o")
    p.line("  CC      mm/b.o")
    assert p.count == 2 and "2/4 (50%) compiled" in p.render() and "mm/b.o" in p.render()

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    t = Tty()
    p2 = build.Progress("build", None, stream=t)
    p2.line("  CC      x.o")
    p2.done()
    assert "\r" in t.getvalue() and "1 compiled" in t.getvalue()


def test_make_selftests_reports_missing_project_selftests(tmp_path: Path) -> None:
    tree = make_fake_tree(tmp_path / "tree")
    kb = _kbuild(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    r = build.make_selftests(tree, kb, project, tmp_path / "s.log")
    assert r.cgroup_dir == kb / "kselftest" / "cgroup"
    assert (r.cgroup_dir / "test_memcontrol").is_file()
    assert (kb / "usr" / "include" / "linux" / "memcontrol.h").is_file()
    assert r.own_dir is None and "selftests are not available" in r.problems[0]
    # with a project Makefile: called with O= and KHDR_INCLUDES
    (project / "selftests").mkdir()
    (project / "selftests" / "Makefile").write_text(
        "all:\n\tmkdir -p $(O) && echo '$(KHDR_INCLUDES)' > $(O)/khdr\n")
    r2 = build.make_selftests(tree, kb, project, tmp_path / "s.log")
    assert r2.own_dir == kb / "recharge-selftests" and r2.problems == ()
    assert (r2.own_dir / "khdr").read_text().strip() == f"-I{kb / 'usr' / 'include'}"


def test_make_selftests_skips_when_nothing_changed(tmp_path: Path) -> None:
    tree = make_fake_tree(tmp_path / "tree")
    kb = _kbuild(tmp_path)
    project = tmp_path / "project"
    (project / "selftests").mkdir(parents=True)
    (project / "selftests" / "Makefile").write_text("all:\n\tmkdir -p $(O) && date +%s%N >> $(O)/n\n")
    build.make_selftests(tree, kb, project, tmp_path / "s.log", tree_commit="c1")
    build.make_selftests(tree, kb, project, tmp_path / "s.log", tree_commit="c1")
    assert len((kb / "recharge-selftests" / "n").read_text().split()) == 1
    (project / "selftests" / "t.c").write_text("int main(){}\n")  # a source changed
    build.make_selftests(tree, kb, project, tmp_path / "s.log", tree_commit="c1")
    assert len((kb / "recharge-selftests" / "n").read_text().split()) == 2


def test_kernel_up_to_date_and_reentrant_lock(tmp_path: Path) -> None:
    from harness.paths import file_lock

    tree = make_fake_tree(tmp_path / "tree")
    kb = _kbuild(tmp_path)
    assert not build.kernel_up_to_date("c1", kb)
    lock = tmp_path / "kbuild.lock"
    with file_lock(lock, "outer"):  # make_kernel takes the same lock inside: no deadlock
        build.make_kernel(tree, "c1", kb, tmp_path / "cache", tmp_path / "b.log", lock_path=lock)
    assert build.kernel_up_to_date("c1", kb) and not build.kernel_up_to_date("c2", kb)


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_progress_eta_from_own_rate_plus_last_link_tail() -> None:
    clock = _Clock()
    last = build.LastBuild(compiled=10, duration_s=120.0, tail_s=20.0)
    p = build.Progress("build", 10, stream=io.StringIO(), period_s=0, last=last, clock=clock)
    clock.t += 5
    # nothing compiled yet: the last build's duration minus the time elapsed
    assert p.eta_s() == pytest.approx(115.0) and "ETA 1:55" in p.render()
    for i in range(4):
        clock.t += 10
        p.line(f"  CC      mm/f{i}.o")
    # 4 files in 45 s -> 6 more at the same rate (67.5 s) + the link (20 s)
    assert p.eta_s() == pytest.approx(87.5)
    r = p.render()
    assert "4/10 (40%) compiled, 0:45 elapsed, ETA 1:28, mm/f3.o" in r
    for i in range(6):
        clock.t += 10
        p.line(f"  CC      mm/g{i}.o")
    clock.t += 5
    assert p.eta_s() == pytest.approx(15.0)  # linking: 20 s last time, 5 s gone
    p.line("  CC      mm/extra.o")  # more than last time: only the link is left
    assert p.eta_s() == pytest.approx(20.0) and "11/10 (99%)" in p.render()


def test_progress_without_history_has_no_eta() -> None:
    p = build.Progress("build", None, stream=io.StringIO())
    p.line("  CC      a.o")
    assert "ETA" not in p.render() and "1 compiled" in p.render()


def test_last_build_record_round_trip_and_legacy(tmp_path: Path) -> None:
    assert build.read_last_build(tmp_path) is None
    (tmp_path / ".harness-cc-count").write_text("1234\n")
    assert build.read_last_build(tmp_path) == build.LastBuild(1234)
    clock = _Clock()
    p = build.Progress("build", None, stream=io.StringIO(), clock=clock)
    clock.t += 30
    p.line("  CC      a.o")
    clock.t += 12
    build.write_last_build(tmp_path, p, 42.0)
    assert build.read_last_build(tmp_path) == build.LastBuild(1, 42.0, 12.0)


def test_make_kernel_expects_what_the_last_build_compiled(tmp_path: Path) -> None:
    tree = make_fake_tree(tmp_path / "tree")
    kb = _kbuild(tmp_path)
    (kb / build.LAST_BUILD_FILE).write_text('{"compiled": 7, "duration_s": 3.0, "tail_s": 1.0}\n')
    seen: list[build.Progress] = []
    real = build.Progress

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        p = real(*a, **kw)
        seen.append(p)
        return p

    import unittest.mock as um
    with um.patch.object(build, "Progress", spy):
        r = build.make_kernel(tree, "c1", kb, tmp_path / "cache", tmp_path / "b.log",
                              progress_stream=io.StringIO())
    assert seen[0].expected == 7 and seen[0].last_build == build.LastBuild(7, 3.0, 1.0)
    # the record is now this build's (2 files), even though fewer than last time
    assert build.read_last_build(kb).compiled == r.compiled == 2  # type: ignore[union-attr]
