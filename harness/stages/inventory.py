"""The inventory: which cases a suite must report, and when they must pass.

The lists live next to the suite table (``Suite.cases``, ``Suite.feature_cases`` in
harness/stages/suitetable.py).  Applied to every suite a run selects (after ``--suite`` and
``--shard``; ``merge`` checks the union of its shards, :func:`check_merged`):

* a case of ``Suite.cases`` the output lacks -> an ERROR case ("no result"): the
  output ended early (the kernel's suites print no plan, so nothing else notices) or
  the program and harness/stages/suitetable.py disagree.  When the output has names the list
  does not know, the program is another version (a ``--tree`` other than 6.12): only
  the feature cases are then checked;
* when the kernel claims the feature (:func:`claims_feature`), each of
  ``Suite.feature_cases`` must pass: missing or skipped -> a FAIL case naming it
  (an errored one is already an error).  Whether the kernel claims it is judged from
  its ``.config``, never from ``--series``: a ``--tree`` with the series committed,
  or a bisect step, has an empty series but the feature.

Without the feature, skips stay legitimate and say so (harness.stages.suites).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from harness.model import Status, SuiteRun
from harness.parse.ktap import CaseStatus, KtapCase, KtapResult


class Suite(Protocol):
    """What the inventory needs of a suite of the table (harness/stages/suitetable.py)."""

    @property
    def name(self) -> str: ...
    @property
    def cases(self) -> tuple[str, ...]: ...
    @property
    def feature_cases(self) -> tuple[str, ...]: ...


log = logging.getLogger(__name__)

FEATURE_OPTION = "CONFIG_MEMCG_RECHARGE_OFFLINE_ENABLED"
# "=y" or "# ... is not set": either way Kconfig knows the option, so the series is in.
_CLAIM = re.compile(rf"^(?:{FEATURE_OPTION}=|# {FEATURE_OPTION} is not set\s*$)", re.M)


def claims_feature(config_text: str) -> bool:
    """Whether a ``.config`` has a line for the feature's option (set or not)."""
    return bool(_CLAIM.search(config_text))


def config_claims(config: Path | None) -> bool | None:
    """:func:`claims_feature` of a ``.config`` file; None when it cannot be read."""
    if config is None:
        return None
    try:
        return claims_feature(config.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def without_feature(feature: bool | None) -> str:
    """Why a skip is legitimate, for the skip reason."""
    if feature is None:
        return "kernel without the series"
    return f"the kernel's .config has no {FEATURE_OPTION}: kernel without the feature"


def expected(suite: "Suite", feature: bool | None) -> tuple[str, ...]:
    """Every case the suite must report on this kernel, in order."""
    extra = tuple(n for n in suite.feature_cases if n not in suite.cases) if feature else ()
    return suite.cases + extra


def _problems(suite: "Suite", result: KtapResult | None,
              feature: bool | None) -> tuple[list[KtapCase], list[str], list[str]]:
    """(cases after the inventory, names failed by it, names errored by it)."""
    cases = list(result.cases) if result is not None else []
    printed = [c.name for c in cases if not c.missing]
    table = expected(suite, feature)
    required = suite.feature_cases if feature else ()
    foreign = [n for n in printed if n not in table]
    if foreign:
        log.info("inventory: %s prints cases harness/stages/suitetable.py does not list (%s): another "
                 "version of the program; only the feature cases are checked",
                 suite.name, ", ".join(foreign[:3]))
    failed: list[str] = []
    errored: list[str] = []
    by_name = {c.name: i for i, c in enumerate(cases) if not c.missing}
    for name in required:
        i = by_name.get(name)
        if i is None:
            continue
        c = cases[i]
        if c.status is CaseStatus.SKIP:
            why = f"skipped ({c.reason or 'no reason'}), but the kernel has {FEATURE_OPTION}: " \
                  "this case must run and pass"
            cases[i] = replace(c, status=CaseStatus.FAIL, reason=why)
            failed.append(name)
    # Presence of the other cases is checked only in an output of this program version
    # that has results at all (a skip-all or a program not built has nothing to cut).
    presence = bool(printed) and not foreign
    number = max((c.number for c in cases), default=0)
    for name in table:
        if name in by_name or (name not in required and not presence):
            continue
        number += 1
        if name in required:
            why = f"no result, but the kernel has {FEATURE_OPTION}: this case must run and pass"
            cases.append(KtapCase(number, name, CaseStatus.FAIL, why))
            failed.append(name)
        else:
            why = ("no result: the output ended before it, or the program no longer has it "
                   f"(harness/stages/suitetable.py lists {len(table)} cases for {suite.name})")
            cases.append(KtapCase(number, name, CaseStatus.ERROR, why))
            errored.append(name)
    return cases, failed, errored


def check(suite: "Suite", run: SuiteRun, feature: bool | None) -> SuiteRun:
    """``run`` with the inventory applied (see the module doc)."""
    if not suite.cases and not (feature and suite.feature_cases):
        return run
    cases, failed, errored = _problems(suite, run.result, feature)
    if not failed and not errored:
        return run
    parts = []
    if failed:
        parts.append(f"expected to pass ({FEATURE_OPTION}): " + ", ".join(failed))
    if errored:
        parts.append("no result for " + ", ".join(errored))
    text = "inventory: " + "; ".join(parts)
    status = run.status
    if errored and status not in (Status.ERROR, Status.NOTRUN):
        status = Status.ERROR
    elif failed and status in (Status.PASS, Status.SKIP):
        status = Status.FAIL
    result = run.result if run.result is not None else KtapResult(name=run.name)
    log.error("suites: %s: %s", run.name, text)
    return replace(run, status=status, result=replace(result, cases=tuple(cases)),
                   error=f"{run.error}; {text}" if run.error else text)


def record(suites: "Sequence[Suite]", feature: bool | None) -> dict[str, dict[str, list[str]]]:
    """What metadata.json keeps per selected suite, for ``merge`` (:func:`check_merged`)."""
    return {s.name: {"expected": list(expected(s, feature)),
                     "must_pass": list(s.feature_cases) if feature else []} for s in suites}


def check_merged(metas: list[dict[str, Any]], outcomes: dict[tuple[str, str], str],
                 suite_key: Callable[[str], str]) -> list[str]:
    """Problems of the union of shards: every case a shard's kernel required to pass
    must be a pass in the merged JUnit (``outcomes``: (testsuite, testcase) -> outcome;
    ``suite_key``: the table's name of a testsuite)."""
    by_suite: dict[str, dict[str, str]] = {}
    for (ts, name), outcome in outcomes.items():
        by_suite.setdefault(suite_key(ts), {})[name] = outcome
    problems: list[str] = []
    for meta in metas:
        inv = meta.get("inventory") or {}
        for suite, spec in (inv.get("suites") or {}).items():
            for name in spec.get("must_pass") or []:
                got = by_suite.get(suite, {}).get(name)
                if got != "pass":
                    text = (f"inventory: {suite} {name}: {got or 'no result'} (must pass: the "
                            f"kernel claims {FEATURE_OPTION})")
                    if text not in problems:
                        problems.append(text)
    return problems
