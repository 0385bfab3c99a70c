"""Shared by every test: each unit test runs with its own HOME and cache root.

The cache root holds the kernel-build lock, the worktrees and the KVM verdict, so a
test never waits for, or touches, a real build.  End-to-end tests (marker ``e2e``)
use the real cache on purpose (a warm kernel build) and are left alone.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolate(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Own HOME, cache root and git config, Python's own SIGINT handler; every process
    started is killed afterwards."""
    if request.node.get_closest_marker("e2e") is not None:
        yield tmp_path
        return
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RECHARGE_HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    # Ctrl-C as in a terminal: a shell starts background jobs (``.ci/run &``, nohup)
    # with SIGINT ignored, and then the tests' simulated Ctrl-C never arrives.
    sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield tmp_path
    signal.signal(signal.SIGINT, sigint)
    import harness.proc

    harness.proc.kill_all()
