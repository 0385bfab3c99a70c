"""patchcheck: checkpatch output and the allow-list (harness.parse.checkpatch), the per-prefix
logic with fake steps, and the real steps on a fake kernel tree (git am, config, make)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pytest

from harness import cli
from harness.errors import BuildError, SeriesError, UserError
from harness.model import Status
from harness.modes import patchcheck
from harness.modes.patchcheck.check import Built, check_series
from harness.modes.patchcheck.report import render
from harness.parse import checkpatch
from harness.stages import config as kconfig
from harness.stages.apply import Patch

from fakes import git, make_fake_tree, make_patch, make_project, snapshot, write_exe

ROOT = Path(__file__).resolve().parents[2]
PATCH2 = "0002-mm-vmscan-add-lruvec_for_each_list-helper.patch"

#: checkpatch.pl --strict --show-types on patches/0002 (6.12 tree), verbatim.
OPEN_BRACE = """\
ERROR:OPEN_BRACE: that open brace { should be on the previous line
#71: FILE: mm/vmscan.c:5717:
+void lruvec_for_each_list(struct lruvec *lruvec, lruvec_list_fn_t fn, void *arg)
+{

total: 1 errors, 0 warnings, 0 checks, 53 lines checked

NOTE: For some of the reported defects, checkpatch may be able to
      mechanically convert to the typical style using --fix or --fix-inplace.

0002-mm-vmscan-add-lruvec_for_each_list-helper.patch has style problems, please review.
"""
CLEAN = "total: 0 errors, 0 warnings, 0 checks, 374 lines checked\n\nx has no obvious style problems.\n"
LONG_LINE = """\
WARNING:LONG_LINE: line length of 104 exceeds 100 columns
#40: FILE: mm/memcontrol.c:120:
+	if (very_long_condition_that_goes_on_and_on && another_condition_that_goes_on(folio, memcg))

CHECK:PARENTHESIS_ALIGNMENT: Alignment should match open parenthesis
#52: FILE: mm/memcontrol.c:130:
+	foo(a,
+	    b);

total: 0 errors, 1 warnings, 1 checks, 60 lines checked
"""


def test_parse_checkpatch() -> None:
    found, totals = checkpatch.parse_checkpatch(OPEN_BRACE)
    assert totals == {"ERROR": 1, "WARNING": 0, "CHECK": 0}
    assert [(f.level, f.type, f.where) for f in found] == [("ERROR", "OPEN_BRACE",
                                                            "mm/vmscan.c:5717")]
    assert "lruvec_for_each_list(" in found[0].text
    found, totals = checkpatch.parse_checkpatch(LONG_LINE)
    assert [f.type for f in found] == ["LONG_LINE", "PARENTHESIS_ALIGNMENT"]
    assert totals == {"ERROR": 0, "WARNING": 1, "CHECK": 1}
    assert checkpatch.parse_checkpatch(CLEAN) == ([], {"ERROR": 0, "WARNING": 0, "CHECK": 0})


def test_project_allow_list_allows_exactly_the_patch2_false_positive() -> None:
    rules = checkpatch.load_allow(ROOT / "checkpatch-allow.txt")
    found, _ = checkpatch.parse_checkpatch(OPEN_BRACE)
    marked, used = checkpatch.apply_allow(found, PATCH2, rules)
    assert marked[0].allowed and "for_each" in marked[0].allowed and used
    # the same finding in another patch, or another finding in patch 2, is not allowed
    assert checkpatch.apply_allow(found, "0003-other.patch", rules)[0][0].allowed is None
    other, _ = checkpatch.parse_checkpatch(OPEN_BRACE.replace("lruvec_for_each_list",
                                                              "lruvec_walk"))
    assert checkpatch.apply_allow(other, PATCH2, rules)[0][0].allowed is None
    long_line, _ = checkpatch.parse_checkpatch(LONG_LINE)
    assert all(f.allowed is None for f in checkpatch.apply_allow(long_line, PATCH2, rules)[0])


@pytest.mark.parametrize("text,msg", [
    ("0001-x.patch LONG_LINE\n", "needs a reason"),
    ("0001-x.patch\n", "expected '<patch> <regex>  # reason'"),
    ("0001-x.patch (unclosed  # why\n", "invalid regex"),
])
def test_allow_list_errors_name_the_line(text: str, msg: str) -> None:
    with pytest.raises(UserError, match=msg) as e:
        checkpatch.parse_allow("# comment\n\n" + text, "allow.txt")
    assert "allow.txt:3" in str(e.value)


# ------------------------------------------------------------ the per-prefix logic --


def _patches(tmp_path: Path, files: Sequence[Sequence[str]]) -> list[Patch]:
    out = []
    for i, fs in enumerate(files, 1):
        p = tmp_path / f"{i:04d}-p{i}.patch"
        p.write_text(f"Subject: [PATCH {i}/{len(files)}] patch {i}\n\n---\n" + "".join(
            f"diff --git a/{f} b/{f}\n--- a/{f}\n+++ b/{f}\n@@ -1 +1 @@\n-x\n+y\n" for f in fs))
        out.append(Patch(i, p.name, p, f"patch {i}", "0" * 64))
    return out


class FakeSteps:
    def __init__(self, logs: dict[int, str], checkpatch: dict[int, str] | None = None, *,
                 apply_fails: str | None = None, build_fails: int | None = None):
        self.logs, self.cp = logs, checkpatch or {}
        self.apply_fails, self.build_fails = apply_fails, build_fails
        self.calls: list[tuple[str, int, object]] = []

    def apply_all(self, patches: Sequence[Patch]) -> list[str]:
        if self.apply_fails:
            raise SeriesError(f"patch {self.apply_fails} does not apply", patch=self.apply_fails)
        return [f"c{p.index}" for p in patches]

    def checkout(self, k: int) -> None:
        self.calls.append(("checkout", k, None))

    def configure(self, k: int, final: bool) -> None:
        self.calls.append(("configure", k, final))

    def build(self, k: int, forget: list[str]) -> Built:
        self.calls.append(("build", k, list(forget)))
        if k == self.build_fails:
            raise BuildError("kernel build failed: mm/b.c:3:1: error: 'x' undeclared")
        return Built(self.logs.get(k, ""), "", 12.0)

    def checkpatch(self, k: int, patch: Path) -> str:
        self.calls.append(("checkpatch", k, patch.name))
        return self.cp.get(k, CLEAN)


W_OLD = "/c/worktrees/debian-6.12/mm/a.c:10:3: warning: old [-Wold]\n"
W_NEW_B = "/c/worktrees/debian-6.12/mm/b.c:7:1: warning: unused variable 'n' [-Wunused-variable]\n"
W_ELSEWHERE = "/c/worktrees/debian-6.12/fs/c.c:1:1: warning: far away [-Wfoo]\n"


def test_clean_series_with_an_allowed_finding_passes(tmp_path: Path) -> None:
    patches = _patches(tmp_path, [["mm/a.c"], ["mm/b.c", "include/linux/b.h"], ["mm/a.c"]])
    steps = FakeSteps({0: W_OLD, 1: W_OLD.replace(":10:", ":12:"), 2: W_OLD},
                      {2: OPEN_BRACE})
    rule = checkpatch.parse_allow("0002-p2.patch OPEN_BRACE  # a reason\n")
    res = check_series(patches, steps, rule)
    assert [r.verdict for r in res.rows] == [Status.PASS] * 4
    assert res.exit_code == 0 and res.unused_rules == []
    assert res.rows[2].findings[0].allowed == "a reason"
    # base and every prefix configured and built; only the last prefix is strict
    assert [(c[1], c[2]) for c in steps.calls if c[0] == "configure"] == [
        (0, False), (1, False), (2, False), (3, True)]
    # objects forgotten: this patch's C files and the next one's (for its baseline)
    forgets = {c[1]: c[2] for c in steps.calls if c[0] == "build"}
    assert forgets == {0: ["mm/a.c"], 1: ["mm/a.c", "mm/b.c"], 2: ["mm/b.c", "mm/a.c"],
                       3: ["mm/a.c"]}
    text = render(res, "patchcheck: test")
    assert "ok, 1 allowed" in text and "allowed (a reason): ERROR:OPEN_BRACE:" in text


def test_new_warning_in_touched_file_fails_that_patch_only(tmp_path: Path) -> None:
    patches = _patches(tmp_path, [["mm/a.c"], ["mm/b.c"], ["mm/a.c"]])
    steps = FakeSteps({0: W_OLD, 1: W_OLD + W_ELSEWHERE, 2: W_OLD + W_NEW_B, 3: W_NEW_B})
    res = check_series(patches, steps, [])
    assert [r.verdict for r in res.rows] == [Status.PASS, Status.PASS, Status.FAIL, Status.PASS]
    assert [w.describe() for w in res.rows[2].new_warnings] == [
        "mm/b.c:7: unused variable 'n' [-Wunused-variable]"]
    assert res.exit_code == 1


def test_checkpatch_levels(tmp_path: Path) -> None:
    patches = _patches(tmp_path, [["mm/a.c"]])
    res = check_series(patches, FakeSteps({}, {1: LONG_LINE}), [])
    assert res.rows[1].checkpatch is Status.FAIL and res.exit_code == 1
    only_check = LONG_LINE.split("\n\n", 1)[1].replace("1 warnings", "0 warnings")
    res = check_series(patches, FakeSteps({}, {1: only_check}), [], fail_on="WARNING")
    assert res.rows[1].checkpatch is Status.PASS and res.exit_code == 0
    res = check_series(patches, FakeSteps({}, {1: "perl: not found\n"}), [])
    assert res.rows[1].checkpatch is Status.ERROR and res.exit_code == 2


def test_build_failure_is_exit_2_and_later_prefixes_still_checked(tmp_path: Path) -> None:
    patches = _patches(tmp_path, [["mm/a.c"], ["mm/b.c"], ["mm/a.c"]])
    steps = FakeSteps({}, build_fails=2)
    res = check_series(patches, steps, [])
    assert [r.build for r in res.rows] == [Status.PASS, Status.PASS, Status.ERROR, Status.PASS]
    assert res.rows[2].verdict is Status.ERROR and res.exit_code == 2
    assert "'x' undeclared" in render(res, "h")


def test_patch_that_does_not_apply(tmp_path: Path) -> None:
    patches = _patches(tmp_path, [["mm/a.c"], ["mm/b.c"], ["mm/a.c"]])
    steps = FakeSteps({}, apply_fails="0002-p2.patch")
    res = check_series(patches, steps, [])
    assert [r.apply for r in res.rows] == [Status.PASS, Status.PASS, Status.ERROR,
                                           Status.NOTRUN]
    assert [r.build for r in res.rows] == [Status.PASS, Status.PASS, Status.NOTRUN,
                                           Status.NOTRUN]
    assert res.exit_code == 2
    # checkpatch still looked at every patch
    assert [c[1] for c in steps.calls if c[0] == "checkpatch"] == [1, 2, 3]


def test_base_that_does_not_build(tmp_path: Path) -> None:
    patches = _patches(tmp_path, [["mm/a.c"]])
    res = check_series(patches, FakeSteps({}, build_fails=0), [])
    assert res.rows[0].verdict is Status.ERROR and res.rows[1].build is Status.NOTRUN
    assert res.exit_code == 2


# ------------------------------------------------ the real steps on a fake kernel tree --

WARN_MAKEFILE = r"""
O ?= .
.PHONY: x86_64_defconfig olddefconfig bzImage
x86_64_defconfig:
	mkdir -p $(O) && printf 'CONFIG_CGROUPS=y\nCONFIG_BLOCK=y\nCONFIG_X86_64=y\n' > $(O)/.config
olddefconfig:
	python3 $(CURDIR)/scripts/fake_olddefconfig.py $(O)/.config $(CURDIR)/deps.txt
bzImage:
	@for f in mm/*.c; do echo "  CC      $${f%.c}.o"; \
		grep -n WARNME $$f | sed "s|^\([0-9]*\):.*|$(CURDIR)/$$f:\1:5: warning: WARNME here [-Wfake]|"; done
	mkdir -p $(O)/arch/x86/boot && echo kernel > $(O)/arch/x86/boot/bzImage
"""

FAKE_CHECKPATCH = r"""#!/usr/bin/perl
local $/; open(my $fh, '<', $ARGV[-1]) or die; my $t = <$fh>;
if ($t =~ /BADSTYLE/) {
    print "WARNING:LONG_LINE: line length of 120 exceeds 100 columns\n#20: FILE: mm/memcontrol.c:2:\n+BADSTYLE\n\n";
    print "total: 0 errors, 1 warnings, 0 checks, 10 lines checked\n"; exit 1;
}
print "total: 0 errors, 0 warnings, 0 checks, 10 lines checked\n"; exit 0;
"""


def test_cli_patchcheck_on_a_fake_kernel_tree(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tree = make_fake_tree(tmp_path / "tree")
    (tree / "Makefile").write_text(WARN_MAKEFILE)
    write_exe(tree / "scripts" / "checkpatch.pl", FAKE_CHECKPATCH)
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "fake kbuild with warnings, checkpatch")
    project = make_project(tmp_path / "project")
    pdir = project / "patches"
    make_patch(tree, "mm/memcontrol.c", "int memcg;\nint line2;\nint line3b;\n",
               "memcg: a clean change", pdir / "0001-clean.patch")
    git(tree, "checkout", "-q", "-b", "tmp-base")
    (tree / "mm" / "memcontrol.c").write_text("int memcg;\nint line2;\nint line3b;\n")
    git(tree, "commit", "-q", "-am", "p1")
    make_patch(tree, "mm/vmscan.c", "int lru;\nint unused; /* WARNME */\n",
               "mm: vmscan: a change that warns", pdir / "0002-warns.patch")
    git(tree, "checkout", "-q", "-b", "tmp-base2")
    (tree / "mm" / "vmscan.c").write_text("int lru;\nint unused; /* WARNME */\n")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "p2")
    make_patch(tree, "mm/memcontrol.c", "int memcg;\nBADSTYLE;\nint line3b;\n",
               "memcg: a style problem, allowed", pdir / "0003-style.patch")
    git(tree, "checkout", "-q", "main")
    git(tree, "branch", "-q", "-D", "tmp-base", "tmp-base2")
    (pdir / "series").write_text("0001-clean.patch\n0002-warns.patch\n0003-style.patch\n")
    (pdir / "checkpatch-allow.txt").write_text(
        "0003-*.patch  ^WARNING:LONG_LINE:(?s:.*)BADSTYLE  # the test says so\n")
    cfgk = write_exe(tmp_path / "bin" / "virtme-configkernel", """
        #!/bin/sh
        for a in "$@"; do case $a in O=*) out=${a#O=};; esac; done
        make O="$out" x86_64_defconfig >/dev/null
    """)
    monkeypatch.setattr(kconfig, "vng_tool", lambda name: str(cfgk))
    before = snapshot(tree)
    out = tmp_path / "out"
    code = cli.main(["patchcheck", "--tree", str(tree), "--project", str(project),
                     "--out", str(out)])
    cap = capsys.readouterr()
    assert code == 1, cap.err
    data = json.loads((out / "1" / "patchcheck.json").read_text())
    rows = {r["index"]: r for r in data["rows"]}
    assert [rows[i]["verdict"] for i in range(4)] == ["PASS", "PASS", "FAIL", "PASS"]
    assert rows[2]["new_warnings"] == ["mm/vmscan.c:2: WARNME here [-Wfake]"]
    assert rows[3]["findings"][0]["allowed"] == "the test says so"
    assert rows[3]["new_warnings"] == []  # the WARNME line is old by then
    assert "1 allowed" in cap.out and "new warning: mm/vmscan.c:2" in cap.out
    assert snapshot(tree) == before  # applied in the cache's worktree, not here
    assert (out / "1" / "prefix" / "02" / "build.log").is_file()
    assert (out / "1" / "junit.xml").is_file()


def test_allow_list_lookup_order(tmp_path: Path) -> None:
    series = tmp_path / "patches" / "series"
    series.parent.mkdir()
    project = tmp_path
    assert patchcheck.default_allow_list(series, project, None) is None
    (project / "checkpatch-allow.txt").write_text("")
    assert patchcheck.default_allow_list(series, project, None) == project / "checkpatch-allow.txt"
    (series.parent / "checkpatch-allow.txt").write_text("")
    assert patchcheck.default_allow_list(series, project, None) == \
        series.parent / "checkpatch-allow.txt"
    with pytest.raises(UserError, match="no such file"):
        patchcheck.default_allow_list(series, project, tmp_path / "missing.txt")


def test_a_commit_message_with_the_editor_template_fails(tmp_path: Path) -> None:
    patches = _patches(tmp_path, [["mm/a.c"], ["mm/a.c"]])
    text = patches[0].path.read_text()
    patches[0].path.write_text(text.replace(
        "\n---\n", "\nSigned-off-by: A <a@b>\n\nwith '#' will be ignored, and an empty message "
        "aborts the commit. # # interactive rebase in progress; onto 54a828beb\n---\n"))
    res = check_series(patches, FakeSteps({}), [])
    assert res.rows[1].checkpatch is Status.FAIL and res.rows[2].checkpatch is Status.PASS
    assert res.exit_code == 1
    assert any("editor" in f.message for f in res.rows[1].findings)
    assert "COMMIT_MESSAGE_TEMPLATE" in render(res, "patchcheck: test")
