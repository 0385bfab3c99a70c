"""The checks the end-to-end test applies to a real guest and a real run, on fakes
(the e2e test itself needs a kernel build and cannot run in the unit tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.stages.ssh import CmdResult
from harness.stages.suites import RECHARGE_CASES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from e2e_checks import blkid_devices, inventory_misses  # noqa: E402


def test_blkid_needs_exit_0_and_two_devices() -> None:
    ok = CmdResult("blkid", 0, "/dev/vda\n/dev/vdb\n", "", 0.1)
    assert blkid_devices(ok) == ["/dev/vda", "/dev/vdb"]
    with pytest.raises(AssertionError, match="exit"):
        blkid_devices(CmdResult("blkid", 2, "/dev/vda\n/dev/vdb\n", "err", 0.1))
    with pytest.raises(AssertionError):
        blkid_devices(CmdResult("blkid", 0, "/dev/vda\n", "", 0.1))


def test_inventory_misses_names_every_case_that_did_not_pass(tmp_path: Path) -> None:
    cases = "".join(
        f'<testcase name="{n}" classname="recharge[sysctl=1]">'
        + ('<skipped message="x"/>' if n == "file_read_after" else "") + "</testcase>"
        for n in RECHARGE_CASES if n != "shmem_mapped_after")
    (tmp_path / "junit.xml").write_text(
        f'<testsuites><testsuite name="recharge[sysctl=1]">{cases}</testsuite></testsuites>')
    misses = inventory_misses(tmp_path / "junit.xml", {"recharge[sysctl=1]": RECHARGE_CASES,
                                                      "recharge[sysctl=0]": ("x",)})
    assert misses == ["recharge[sysctl=1].shmem_mapped_after: absent",
                      "recharge[sysctl=1].file_read_after: skip",
                      "recharge[sysctl=0].x: absent"]
