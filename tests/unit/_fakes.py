"""Fakes shared by the harness unit tests: a tiny kernel tree, git repos, a fake vng.

Imported by the test modules (``from _fakes import ...``); fixtures defined here
become available in a module that imports them.
"""

from __future__ import annotations

import os
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+0000",
}


@pytest.fixture(autouse=True)
def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Each test gets its own HOME and cache root (so its own kernel-build lock)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RECHARGE_HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    yield tmp_path
    import harness.proc

    harness.proc.kill_all()


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def write_exe(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


FAKE_KCONFIG = """\
mainmenu "fake"
source "arch/$(SRCARCH)/Kconfig"
source "mm/Kconfig"

config CGROUPS
\tbool "cgroups"

config BLOCK
\tbool "block layer"
\thelp
\t  depends on NOTHING (help text must be ignored)

menu "Memory"
\tdepends on CGROUPS

config MEMCG
\tbool "memcg"
\tdepends on BLOCK && \\
\t\t!BROKEN
\tselect PAGE_COUNTER

config PAGE_COUNTER
\tbool

endmenu
"""

FAKE_MM_KCONFIG = """\
if MEMCG
config LRU_GEN
\ttristate "mglru"
\tdepends on X86_64 || ARM64
endif
config THERMAL
\tbool "thermal"
"""

FAKE_MAKEFILE = r"""
# A fake kernel Makefile: just enough of kbuild's targets for the harness.
O ?= .
.PHONY: x86_64_defconfig olddefconfig bzImage headers
x86_64_defconfig:
	mkdir -p $(O) && printf 'CONFIG_CGROUPS=y\nCONFIG_BLOCK=y\nCONFIG_X86_64=y\n' > $(O)/.config
olddefconfig:
	python3 $(CURDIR)/scripts/fake_olddefconfig.py $(O)/.config $(CURDIR)/deps.txt
bzImage:
	@echo "  CC      mm/memcontrol.o"
	@echo "  CC      mm/vmscan.o"
	@if [ -n "$(FAIL)" ] || [ -e $(CURDIR)/FAIL ]; then \
		echo "mm/memcontrol.c:12:5: error: 'nope' undeclared"; \
		echo "make[2]: *** [mm/memcontrol.o] Error 1"; exit 2; fi
	@echo "  LD      vmlinux"
	mkdir -p $(O)/arch/x86/boot && echo kernel > $(O)/arch/x86/boot/bzImage
	@date +%s%N >> $(O)/build-count
headers:
	mkdir -p $(O)/usr/include/linux && echo '/* hdr */' > $(O)/usr/include/linux/memcontrol.h
"""

FAKE_OLDDEFCONFIG = r'''
import re, sys
cfg, deps = sys.argv[1], sys.argv[2]
vals = {}
for line in open(cfg):
    m = re.match(r"^CONFIG_(\w+)=(.*)$", line.strip())
    n = re.match(r"^# CONFIG_(\w+) is not set$", line.strip())
    if m: vals[m.group(1)] = m.group(2)
    elif n: vals[n.group(1)] = "n"
for line in open(deps):
    sym, _, need = line.partition(":")
    if vals.get(sym.strip()) not in (None, "n") and any(vals.get(d) in (None, "n") for d in need.split()):
        vals[sym.strip()] = "n"
for line in open(deps):
    pass
if vals.get("MEMCG") == "y":
    vals["PAGE_COUNTER"] = "y"
with open(cfg, "w") as f:
    for k in sorted(vals):
        f.write(f"# CONFIG_{k} is not set\n" if vals[k] == "n" else f"CONFIG_{k}={vals[k]}\n")
'''

FAKE_MERGE = r"""#!/bin/sh
# fake merge_config.sh -m -O DIR BASE FRAGMENTS...: concatenate (last wins later)
[ "$1" = -m ] && shift
[ "$1" = -O ] && { out=$2; shift 2; }
base=$1; shift
cat "$base" "$@" > "$out/.config.merged"
mv "$out/.config.merged" "$out/.config"
"""

FAKE_SELFTESTS_MAKEFILE = r"""
O ?= .
all:
	mkdir -p $(O)/kselftest/cgroup
	printf '#!/bin/sh\necho "ok 1 test_memcg_subtree_control"\n' > $(O)/kselftest/cgroup/test_memcontrol
	chmod +x $(O)/kselftest/cgroup/test_memcontrol
"""


def make_fake_tree(root: Path, *, commit: bool = True) -> Path:
    """A git repo that looks enough like a kernel tree for source/series/kconfig/build."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Kconfig").write_text(FAKE_KCONFIG)
    (root / "mm").mkdir(exist_ok=True)
    (root / "mm" / "Kconfig").write_text(FAKE_MM_KCONFIG)
    (root / "arch" / "x86").mkdir(parents=True, exist_ok=True)
    (root / "arch" / "x86" / "Kconfig").write_text("config X86_64\n\tdef_bool y\n")
    (root / "Makefile").write_text(FAKE_MAKEFILE)
    (root / "deps.txt").write_text("MEMCG: BLOCK\nLRU_GEN: MEMCG\n")
    (root / "scripts").mkdir(exist_ok=True)
    (root / "scripts" / "fake_olddefconfig.py").write_text(FAKE_OLDDEFCONFIG)
    write_exe(root / "scripts" / "kconfig" / "merge_config.sh", FAKE_MERGE)
    st = root / "tools" / "testing" / "selftests"
    (st / "cgroup").mkdir(parents=True, exist_ok=True)
    (st / "Makefile").write_text(FAKE_SELFTESTS_MAKEFILE)
    (st / "cgroup" / "config").write_text("CONFIG_CGROUPS=y\n")
    (root / "mm" / "memcontrol.c").write_text("int memcg;\nint line2;\nint line3;\n")
    if commit:
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "base")
        git(root, "tag", "v-base")
    return root


def make_patch(repo: Path, rel: str, new_text: str, subject: str, out: Path) -> Path:
    """Commit a change on a temporary branch, export it with format-patch, drop the branch."""
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "tmp-patch")
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).write_text(new_text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", subject)
    text = git(repo, "format-patch", "--stdout", "-1", "HEAD")
    git(repo, "checkout", "-q", head)
    git(repo, "branch", "-q", "-D", "tmp-patch")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    return out


def make_project(root: Path, fragments: dict[str, str] | None = None) -> Path:
    """A project checkout: kconfig/ fragments, patches/, no selftests/."""
    kdir = root / "kconfig"
    kdir.mkdir(parents=True, exist_ok=True)
    frags = fragments or {
        "recharge.config": "CONFIG_MEMCG=y\nCONFIG_PAGE_COUNTER=y\n",
        "testenv.config": "CONFIG_BLOCK=y\n",
        "slim.config": "# CONFIG_THERMAL is not set\n",
        "tiny.config": "# CONFIG_THERMAL is not set\n",
    }
    for name, text in frags.items():
        (kdir / name).write_text(text)
    (root / "patches").mkdir(exist_ok=True)
    return root


def snapshot(tree: Path) -> dict[str, bytes]:
    """Every file under ``tree`` (including .git) -> content, for byte-for-byte checks."""
    out: dict[str, bytes] = {}
    for p in sorted(tree.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(tree))] = p.read_bytes()
        elif p.is_symlink():
            out[str(p.relative_to(tree))] = os.readlink(p).encode()
    return out
