"""Fakes shared by the harness unit tests: the fake kernel tree, git repos, a guest, vng.

Imported by the test modules (``from fakes import ...``).  The isolating fixture
(own HOME and cache for every test) is in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.stages.ssh import CmdResult

#: The checked-in fake kernel tree (copied, never used in place).
FAKE_LINUX = Path(__file__).resolve().parents[1] / "fakelinux"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+0000",
}


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def write_exe(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def make_fake_tree(root: Path, *, commit: bool = True) -> Path:
    """A copy of ``tests/fakelinux/`` (a tree that looks enough like a kernel tree for
    source/series/kconfig/build: Kconfig files, a Makefile with kbuild's targets, a fake
    ``olddefconfig`` and ``merge_config.sh``), as a git repo tagged ``v-base``."""
    shutil.copytree(FAKE_LINUX, root, dirs_exist_ok=True)
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
        "mmtests.config": "CONFIG_MIGRATION=y\n",
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


def write_fake_vng(bindir: Path) -> Path:
    """A ``vng`` that starts nothing: it sleeps until the harness kills its session."""
    return write_exe(bindir / "vng", "#!/bin/sh\nexec sleep 300\n")


#: What a :class:`FakeGuest` answers to a command that contains a key: a result, or a
#: function of the guest and the command (e.g. output that depends on the sysctl).
Answer = CmdResult | Callable[["FakeGuest", str], CmdResult]


@dataclass
class FakeGuest:
    """Stands in for :class:`harness.stages.ssh.Guest`: answers the harness's guest commands.

    The probes of the sysctl (``cat``/``echo`` on /proc/sys/vm/recharge_offline_memcgs),
    ``guest-setup.sh`` and ``dmesg`` are answered from its state; any other command by
    the first entry of ``programs`` whose key it contains, else ``program``, else an
    empty success.  Every command is recorded in ``calls``.
    """

    sysctl: str | None = "0"  # None: the kernel has no such sysctl
    program: CmdResult | None = None
    programs: dict[str, Answer] = field(default_factory=dict)
    cwd_ok: bool = True
    ncpu: str | None = "2"  # the guest's online CPUs (None: not reported)
    debug: bool | None = False  # a debug kernel (/proc/lockdep; None: not reported)
    port: int = 0
    calls: list[tuple[str, float, str | None]] = field(default_factory=list)
    #: the ``ready`` callable the harness passed to ``connect`` (the guest's GUEST_READY)
    ready: Callable[[], bool] | None = None
    #: what ``dmesg`` prints
    dmesg: str = "[    0.0] Linux version 6.12\n"
    #: each command's host-side bound (``run``'s ``deadline_s``), in the order of ``calls``
    deadlines: list[float | None] = field(default_factory=list)
    #: set by ``abort()`` (the harness cuts off the command in flight)
    aborted: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def factory(cls, **kw: object) -> Callable[..., FakeGuest]:
        """A replacement for the ``Guest`` class: ``(host, port, user, key, host_keys)``."""
        def make(host: str, port: int, user: str, key: Path,
                 host_keys: list[Path] | None = None) -> FakeGuest:
            return cls(port=port, **kw)  # type: ignore[arg-type]
        return make

    @property
    def commands(self) -> list[str]:
        return [c for c, _, _ in self.calls]

    def connect(self, deadline_s: float, alive: Callable[[], bool] | None = None,
                ready: Callable[[], bool] | None = None) -> float:
        assert alive is None or alive()
        self.ready = ready
        return 0.1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.aborted.set()

    def run(self, command: str, timeout: float, *, cwd: str | None = None,
            kill_after: float = 10.0, on_line: Callable[[str], None] | None = None,
            deadline_s: float | None = None) -> CmdResult:
        self.deadlines.append(deadline_s)
        res = self._answer(command, timeout, cwd)
        if on_line is not None:  # as the real one: stdout line by line, then the result
            for l in res.stdout.splitlines():
                on_line(l)
        return res

    def _answer(self, command: str, timeout: float, cwd: str | None) -> CmdResult:
        self.calls.append((command, timeout, cwd))
        if command.startswith("cat /proc/sys/vm/recharge"):
            out = (self.sysctl or "absent") + "\n"
            if "cwd=" in command:  # the suites' probe
                out += ("cwd=ok\n" if self.cwd_ok else "cwd=missing\n") + \
                    (f"ncpu={self.ncpu}\n" if self.ncpu else "") + \
                    ("" if self.debug is None else f"debug={int(self.debug)}\n")
            return CmdResult(command, 0, out, "", 0.0)
        m = re.match(r"echo (\d) > /proc/sys/vm/recharge_offline_memcgs", command)
        if m:
            if self.sysctl is None:
                return CmdResult(command, 1, "", "No such file", 0.0)
            self.sysctl = m.group(1)
            return CmdResult(command, 0, self.sysctl + "\n", "", 0.0)
        if command.startswith("bash ") and command.endswith("guest-setup.sh"):
            return CmdResult(command, 0, "scratch=/mnt/rhscratch\nswap=/dev/vdb\n", "", 0.1)
        if command == "dmesg":
            return CmdResult(command, 0, self.dmesg, "", 0.0)
        for key, answer in self.programs.items():
            if key in command:
                return answer(self, command) if callable(answer) else answer
        if self.program is not None:
            return self.program
        return CmdResult(command, 0, "", "", 0.0)


DEFAULT_KTAP = "TAP version 13\n1..1\nok 1 subtree_control\n"


def run_programs(code: int = 0, ktap: str = DEFAULT_KTAP) -> dict[str, Answer]:
    """The guest programs of a whole fake run: ``test_memcontrol`` prints ``ktap``."""
    return {"test_memcontrol": CmdResult("x", code, ktap, "", 0.5)}
