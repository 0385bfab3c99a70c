"""Checks of the end-to-end test, kept apart so the unit tests can exercise them on
fakes (tests/unit/test_e2e_checks.py): the e2e test itself needs a real kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.modes import child as rundir


def blkid_devices(res: Any) -> list[str]:
    """The two scratch devices ``blkid -L rhscratch && blkid -L rhswap`` found.

    The exit code is checked first: two words of output prove nothing if blkid failed."""
    assert res.exit_code == 0, f"blkid exit {res.exit_code}: {res}"
    devs = res.stdout.split()
    assert len(devs) == 2 and all(d.startswith("/dev/") for d in devs), res
    return devs


def inventory_misses(junit: Path, table: Mapping[str, Sequence[str]]) -> list[str]:
    """``suite.case: outcome`` for every listed case that is not a pass in ``junit``."""
    cases = rundir.read_cases(junit)
    misses = []
    for suite, names in table.items():
        for name in names:
            c = cases.get((suite, name))
            if c is None or c.outcome != "pass":
                misses.append(f"{suite}.{name}: {c.outcome if c else 'absent'}")
    return misses
