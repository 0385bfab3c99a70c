"""A wider net: the memory soak and the kernel's own mm selftests (suites ``soak``, ``mm``).

Both are in the suite table (harness/stages/suitetable.py) but not in the default selection:
``--suite soak`` / ``--suite mm``.  What they need outside the table lives here:

* ``--soak-seconds N``: the soak's ``--seconds`` (default 120); the suite's timeout
  grows by the difference.  Not ``--stress-seconds``: that one is the scenarios'
  stress case (default 60, from 1 s), the soak wants at least 10 s and has its own
  default, and one option for both would lengthen one whenever the other is.
* the ``mm`` suite runs the tested tree's ``tools/testing/selftests/mm`` binaries
  through the project's ``selftests/mm-run.sh`` (origin ``mm-tree``).  When it is
  selected, the selftests stage also builds ``TARGETS=mm`` (``make -k``: a binary
  whose library is missing is just not built, mm-run.sh reports it as SKIP "not
  built"); what its tests need of the kernel (``kconfig/mmtests.config``) is in every
  profile, so it runs on the default build.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from harness import proc

if TYPE_CHECKING:
    from harness.model import Options
    from harness.stages.build import SelftestsResult
    from harness.stages.suites import Suite

log = logging.getLogger(__name__)

#: The soak program's default ``--seconds`` (selftests/recharge/soak.c).
SOAK_DEFAULT_S = 120
#: soak.c refuses shorter soaks.
SOAK_MIN_S = 10
#: The suite origin of the tree's mm selftests.
MM_ORIGIN = "mm-tree"
#: The config fragment (in the project's kconfig/) the mm suite needs.
MM_FRAGMENT = "mmtests.config"
#: The project's runner of the mm selftests (selftests/).
MM_RUNNER = "mm-run.sh"


# ------------------------------------------------------------------- the soak --


def soak_seconds(text: str) -> int:
    """argparse type of ``--soak-seconds``."""
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if v < SOAK_MIN_S:
        raise argparse.ArgumentTypeError(f"{text!r}: the soak needs at least {SOAK_MIN_S} s")
    return v


def with_soak_seconds(chosen: "list[Suite]", seconds: int | None) -> "list[Suite]":
    """``--soak-seconds``: the soak's ``--seconds``; its timeout and its expected duration
    grow (or shrink) by the difference to the program's default."""
    if seconds is None:
        return chosen
    return [replace(s, args=(*s.args, "--seconds", str(seconds)),
                    timeout_s=s.timeout_s + seconds - SOAK_DEFAULT_S,
                    expected_s=max(1.0, s.expected_s + seconds - SOAK_DEFAULT_S))
            if s.program == "soak" else s for s in chosen]


# ------------------------------------------------------------ the mm selftests --


def selected_suites(opts: "Options") -> "list[Suite]":
    """The suites a run's options select (as the suites stage will)."""
    from harness.stages.suites import select_suites

    return select_suites(list(opts.suites) or None, cases=tuple(opts.cases))


def needs_mm(selected: "list[Suite]") -> bool:
    return any(s.origin == MM_ORIGIN for s in selected)


def suite_fragments(project: Path, selected: "list[Suite]") -> list[Path]:
    """Config fragments the selected suites add to the profile's: none any more, the mm
    suite's ``kconfig/mmtests.config`` is one of every profile's (BASE_FRAGMENTS), so
    that ``--suite mm`` needs no build of its own."""
    return []


def mm_binaries(project: Path) -> list[str]:
    """The binaries mm-run.sh's default subset runs (its ``-l`` table, 4th column)."""
    script = project / "selftests" / MM_RUNNER
    try:
        out = subprocess.run(["bash", str(script), "-l"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("mm: cannot list %s: %s", script, e)
        return []
    names: list[str] = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            b = parts[3].removeprefix("./")
            if b not in names:
                names.append(b)
    return names


def make_mm_selftests(
    tree: Path,
    kbuild: Path,
    project: Path,
    log_path: Path,
    *,
    jobs: int | None = None,
    timeout: float = 1800.0,
    lock_path: Path | None = None,
    cache: Path | None = None,
    on_line: Callable[[str], None] | None = None,
) -> tuple[Path | None, list[str]]:
    """``make -k -C tools/testing/selftests TARGETS=mm O=<kbuild>`` (after ``make headers``,
    which harness.build.make_selftests did): (``<kbuild>/kselftest/mm`` or None, problems).

    Binaries of the default subset that did not build are one problem line (their
    cases SKIP "not built"); the directory is None only when nothing was built.
    Not stamped: make itself skips what is up to date."""
    import os

    from harness.paths import cache_root, file_lock, kbuild_lock
    from harness.stages.build import first_error

    jobs = jobs or os.cpu_count() or 1
    out = kbuild / "kselftest" / "mm"
    with file_lock(lock_path or kbuild_lock(cache or cache_root()), "the kernel build lock"):
        res = proc.run(["make", "-k", "-C", str(tree / "tools/testing/selftests"), f"-j{jobs}",
                        "TARGETS=mm", f"O={kbuild}"],
                       cwd=tree, timeout=timeout, log_path=log_path, on_line=on_line)
    wanted = mm_binaries(project)
    missing = [b for b in wanted if not (out / b).is_file()]
    problems: list[str] = []
    if not out.is_dir() or (wanted and len(missing) == len(wanted)):
        err = first_error("\n".join(res.tail)) or "see log"
        problems.append(f"mm selftests did not build: {err}")
        log.error("build: mm selftests did not build: %s (log %s)", err, log_path)
        return None, problems
    if missing:
        problems.append(f"mm selftests: {len(missing)} of {len(wanted)} binaries not built "
                        f"(their cases SKIP): {', '.join(missing)}")
        log.warning("build: %s (log %s)", problems[-1], log_path)
    elif res.returncode != 0:
        log.info("build: mm selftests: make exited %d, but every binary the mm suite runs "
                 "was built (log %s)", res.returncode, log_path)
    return out, problems


def add_mm_selftests(result: "SelftestsResult", tree: Path, kbuild: Path, project: Path,
                     log_path: Path, *, jobs: int | None = None,
                     cache: Path | None = None) -> "SelftestsResult":
    """``result`` with the mm selftests built (:func:`make_mm_selftests`)."""
    mm_dir, problems = make_mm_selftests(tree, kbuild, project, log_path, jobs=jobs,
                                         cache=cache)
    return replace(result, mm_dir=mm_dir, problems=result.problems + tuple(problems))


def existing_mm_dir(kbuild: Path, selected: "list[Suite]") -> Path | None:
    """``test`` (no build): the mm selftests an earlier ``run --suite mm`` built."""
    d = kbuild / "kselftest" / "mm"
    return d if needs_mm(selected) and d.is_dir() else None
