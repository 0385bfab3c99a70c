"""kconfig: fragments, the Kconfig index, expression evaluation, verification, make_config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import ConfigError, UserError
from harness.stages import config as kconfig
from harness.stages import kconfig as klang

from fakes import make_fake_tree, write_exe


def test_parse_config_and_fragment_validation(tmp_path: Path) -> None:
    vals = klang.parse_config("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\n# note\n")
    assert vals == {"A": "y", "B": "n", "C": '"x y"'}
    bad = tmp_path / "bad.config"
    bad.write_text("CONFIG_A=y\nMEMCG=y\n")
    with pytest.raises(ConfigError, match=r"bad.config:2: not a CONFIG_ line"):
        klang.Fragment.load(bad)


def test_requested_last_fragment_wins_and_override_is_noted(tmp_path: Path) -> None:
    a, b = tmp_path / "a.config", tmp_path / "b.config"
    a.write_text("CONFIG_X=y\nCONFIG_Y=y\n")
    b.write_text("# CONFIG_X is not set\n")
    req, notes = klang.requested_options([klang.Fragment.load(a), klang.Fragment.load(b)])
    assert req["X"].value == "n" and req["X"].fragment == b and req["Y"].value == "y"
    assert notes == ["CONFIG_X: a.config asks y, b.config overrides with n"]


@pytest.mark.parametrize("expr,cfg,want", [
    ("A && B", {"A": "y", "B": "y"}, 2),
    ("A && B", {"A": "y"}, 0),
    ("A || B", {"B": "m"}, 1),
    ("!A", {}, 2),
    ("A && (B || !C)", {"A": "y", "C": "y"}, 0),
    ('S = "x"', {"S": "x"}, 2),
    ("N >= 3", {"N": "4"}, 2),
    ("$(cc-option,-foo) && A", {"A": "y"}, 2),
])
def test_eval_expr(expr: str, cfg: dict[str, str], want: int) -> None:
    assert klang.eval_expr(expr, cfg) == want


def test_index_follows_source_if_menu_and_skips_help(tmp_path: Path) -> None:
    tree = make_fake_tree(tmp_path / "tree", commit=False)
    idx = klang.KconfigIndex(tree)
    memcg = idx.symbols["MEMCG"][0]
    assert memcg.depends == ["CGROUPS", "BLOCK && !BROKEN"]  # menu dep + own (continued line)
    assert memcg.has_prompt and memcg.file == "Kconfig"
    assert idx.symbols["LRU_GEN"][0].depends == ["MEMCG", "X86_64 || ARM64"]  # if-block
    assert idx.symbols["BLOCK"][0].depends == []  # "depends on" inside help is ignored
    assert not idx.symbols["PAGE_COUNTER"][0].has_prompt
    assert idx.selectors("PAGE_COUNTER") == [("MEMCG", None)]
    assert idx.defined("X86_64")  # via source "arch/$(SRCARCH)/Kconfig"


def test_verify_explains_unmet_dependency_unknown_and_forced(tmp_path: Path) -> None:
    tree = make_fake_tree(tmp_path / "tree", commit=False)
    frag = tmp_path / "f.config"
    frag.write_text("CONFIG_MEMCG=y\nCONFIG_NOT_IN_TREE=y\n# CONFIG_PAGE_COUNTER is not set\n"
                    "CONFIG_CGROUPS=y\n")
    req, _ = klang.requested_options([klang.Fragment.load(frag)])
    final = {"CGROUPS": "y", "BLOCK": "n", "MEMCG": "n", "PAGE_COUNTER": "y",
             "SOMETHING": "y"}
    probs = {p.symbol: p for p in klang.verify(final, req, tree)}
    assert set(probs) == {"MEMCG", "NOT_IN_TREE", "PAGE_COUNTER"}
    m = probs["MEMCG"].describe()
    assert m.startswith("CONFIG_MEMCG=y (from f.config) is is not set") or "CONFIG_MEMCG=y" in m
    assert "unmet dependency 'BLOCK && !BROKEN' [BLOCK=n, BROKEN=n]" in m and "Kconfig:" in m
    assert "unknown to this tree" in probs["NOT_IN_TREE"].reason and probs["NOT_IN_TREE"].fatal
    assert "has no prompt" in probs["PAGE_COUNTER"].reason or "selected by" in \
        probs["PAGE_COUNTER"].reason
    lenient = {p.symbol: p for p in klang.verify(final, req, tree, unknown_is_error=False)}
    assert not lenient["NOT_IN_TREE"].fatal


def test_module_request_satisfied_by_builtin_without_modules(tmp_path: Path) -> None:
    tree = make_fake_tree(tmp_path / "tree", commit=False)
    frag = tmp_path / "f.config"
    frag.write_text("CONFIG_LRU_GEN=m\n")
    req, _ = klang.requested_options([klang.Fragment.load(frag)])
    assert klang.verify({"LRU_GEN": "y", "MODULES": "n"}, req, tree) == []


def _fake_vng(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake virtme-configkernel: `make x86_64_defconfig` in the O= dir, like the real one."""
    exe = write_exe(tmp_path / "bin" / "virtme-configkernel", """
        #!/bin/sh
        for a in "$@"; do case $a in O=*) out=${a#O=};; esac; done
        make O="$out" x86_64_defconfig >/dev/null && printf 'CONFIG_CGROUPS=y\\n' >> "$out/.config"
    """)
    monkeypatch.setattr(kconfig, "vng_tool", lambda name: str(exe))
    return exe


def _frags(tmp_path: Path, extra: str = "") -> list[Path]:
    a = tmp_path / "frags" / "recharge.config"
    a.parent.mkdir(exist_ok=True)
    a.write_text("CONFIG_MEMCG=y\nCONFIG_PAGE_COUNTER=y\n" + extra)
    return [a]


def test_make_config_unchanged_rerun_keeps_config(tmp_path: Path, monkeypatch) -> None:
    tree = make_fake_tree(tmp_path / "tree")
    _fake_vng(tmp_path, monkeypatch)
    kb = tmp_path / "kbuild" / "k"
    frags = _frags(tmp_path)
    r1 = kconfig.make_config(tree, "c1", kb, frags, tmp_path / "config.log")
    assert r1.regenerated and r1.changed and r1.requested == 2
    text = (kb / ".config").read_text()
    assert "CONFIG_MEMCG=y" in text and "CONFIG_PAGE_COUNTER=y" in text
    mtime = (kb / ".config").stat().st_mtime_ns
    r2 = kconfig.make_config(tree, "c1", kb, frags, tmp_path / "config.log")
    assert not r2.regenerated and not r2.changed
    # A new commit regenerates, but identical content is not rewritten.
    r3 = kconfig.make_config(tree, "c2", kb, frags, tmp_path / "config.log")
    assert r3.regenerated and not r3.changed
    assert (kb / ".config").stat().st_mtime_ns == mtime
    assert r1.config_sha256 == r3.config_sha256


def _commit_all(tree: Path, msg: str) -> str:
    import subprocess

    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    if not (tree / ".git").exists():
        subprocess.run(["git", "init", "-q", str(tree)], check=True, env=env)
    subprocess.run(["git", "-C", str(tree), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(tree), "commit", "-q", "-m", msg], check=True, env=env)
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], check=True, env=env,
                          capture_output=True, text=True).stdout.strip()


def test_a_series_that_changes_only_code_keeps_the_config(tmp_path: Path, monkeypatch) -> None:
    """The edit loop: a new commit that touches only C files reuses the .config; one
    that touches a Kconfig file regenerates it."""
    tree = make_fake_tree(tmp_path / "tree")
    _fake_vng(tmp_path, monkeypatch)
    kb = tmp_path / "kbuild" / "k"
    frags = _frags(tmp_path)
    (tree / "mm").mkdir(exist_ok=True)
    (tree / "mm" / "memcontrol.c").write_text("int x;\n")
    c1 = _commit_all(tree, "base")
    assert kconfig.make_config(tree, c1, kb, frags, tmp_path / "config.log").regenerated
    (tree / "mm" / "memcontrol.c").write_text("int x, y;\n")
    c2 = _commit_all(tree, "code only")
    assert not kconfig.make_config(tree, c2, kb, frags, tmp_path / "config.log").regenerated
    with open(tree / "mm" / "Kconfig", "a") as f:
        f.write("\n# a comment\n")
    c3 = _commit_all(tree, "kconfig")
    assert kconfig.make_config(tree, c3, kb, frags, tmp_path / "config.log").regenerated


def test_unmet_dependency_stops_before_compiling(tmp_path: Path, monkeypatch) -> None:
    tree = make_fake_tree(tmp_path / "tree")
    _fake_vng(tmp_path, monkeypatch)
    frags = _frags(tmp_path, "# CONFIG_BLOCK is not set\n")
    kb = tmp_path / "kbuild" / "k"
    with pytest.raises(ConfigError) as e:
        kconfig.make_config(tree, "c1", kb, frags, tmp_path / "config.log")
    msg = str(e.value)
    assert "CONFIG_MEMCG=y (from recharge.config)" in msg
    assert "unmet dependency 'BLOCK && !BROKEN' [BLOCK=n, BROKEN=n]" in msg
    assert "\n" not in msg and e.value.log == tmp_path / "config.log"
    assert not (kb / ".config").exists()  # nothing handed to the build
    assert not (kb / "build-count").exists()


def test_kbuild_key_depends_on_fragment_content(tmp_path: Path) -> None:
    f = tmp_path / "a.config"
    f.write_text("CONFIG_A=y\n")
    k1 = kconfig.kbuild_key("wt", [f])
    f.write_text("CONFIG_A=n\n")
    assert kconfig.kbuild_key("wt", [f]) != k1
    assert kconfig.kbuild_key("other", [f]) != kconfig.kbuild_key("wt", [f])


REAL_TREE = Path(os.environ.get("RECHARGE_HARNESS_CACHE", Path.home() / ".cache/recharge-harness")
                 ) / "src" / "linux-6.12"  # evaluated before the HOME-isolating fixture


def test_real_kconfig_tree_if_available() -> None:
    tree = REAL_TREE
    if not (tree / "Kconfig").is_file():
        pytest.skip("no real kernel tree in the cache")
    idx = klang.KconfigIndex(tree)
    assert "EXT4_FS" in idx.symbols and idx.symbols["EXT4_FS"][0].depends == ["BLOCK"]


def test_profile_base_config_reaches_virtme_configkernel(tmp_path: Path, monkeypatch) -> None:
    """tiny/debug start from --allnoconfig, slim/vng from --defconfig; a change of the
    starting point regenerates the config and gets its own O= directory."""
    from harness.stages import profiles

    tree = make_fake_tree(tmp_path / "tree")
    exe = _fake_vng(tmp_path, monkeypatch)
    seen = tmp_path / "argv"
    exe.write_text(exe.read_text().replace("#!/bin/sh\n", f'#!/bin/sh\necho "$1" >> {seen}\n', 1))
    kb = tmp_path / "kbuild" / "k"
    frags = _frags(tmp_path)
    kconfig.make_config(tree, "c1", kb, frags, tmp_path / "config.log", base_config="--allnoconfig")
    r2 = kconfig.make_config(tree, "c1", kb, frags, tmp_path / "config.log",
                             base_config="--defconfig")
    assert r2.regenerated
    assert seen.read_text().split() == ["--allnoconfig", "--defconfig"]
    with pytest.raises(ValueError):
        kconfig.make_config(tree, "c1", kb, frags, tmp_path / "config.log", base_config="--x")
    assert profiles.get_profile("default").name == profiles.DEFAULT_PROFILE == "tiny"
    assert {p.base for p in profiles.PROFILES.values()} == {"--allnoconfig", "--defconfig"}
    keys = {kconfig.kbuild_for(tmp_path, "wt", frags, p) for p in ("tiny", "slim", "vng", "debug")}
    assert len(keys) == 4
    assert kconfig.kbuild_for(tmp_path, "wt", frags, "tiny", unpatched=True) not in keys
    with pytest.raises(UserError, match="--profile 'nope'"):
        profiles.get_profile("nope")


def test_config_reused_from_another_checkout_of_the_same_fragments(tmp_path: Path,
                                                                    monkeypatch) -> None:
    tree = make_fake_tree(tmp_path / "tree")
    _fake_vng(tmp_path, monkeypatch)
    kb = tmp_path / "kbuild" / "k"
    a = _frags(tmp_path)
    r1 = kconfig.make_config(tree, "c1", kb, a, tmp_path / "config.log")
    clone = tmp_path / "clone" / "recharge.config"
    clone.parent.mkdir()
    clone.write_bytes(a[0].read_bytes())
    r2 = kconfig.make_config(tree, "c1", kb, [clone], tmp_path / "config.log")
    assert r1.regenerated and not r2.regenerated
    clone.write_text(clone.read_text() + "CONFIG_SWAP=y\n")
    assert kconfig.make_config(tree, "c1", kb, [clone], tmp_path / "config.log").regenerated
