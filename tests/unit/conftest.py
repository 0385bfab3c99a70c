"""Fixtures of the unit tests that several modules use (the isolation is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.stages import config as kconfig

from fakes import make_fake_tree, make_project, write_exe


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A fake kernel tree, a project, fake virtme tools, out dir."""
    tree = make_fake_tree(tmp_path / "tree")
    project = make_project(tmp_path / "project")
    cfgk = write_exe(tmp_path / "bin" / "virtme-configkernel", """
        #!/bin/sh
        for a in "$@"; do case $a in O=*) out=${a#O=};; esac; done
        make O="$out" x86_64_defconfig >/dev/null
    """)
    monkeypatch.setattr(kconfig, "vng_tool", lambda name: str(cfgk))
    monkeypatch.chdir(tmp_path)
    return tree, project, tmp_path / "out"
