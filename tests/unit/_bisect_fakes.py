"""Fake bisect predicates: loaded by file path, in the test and in `git bisect run`'s steps.

They judge a commit by its content in the user's tree (``git show <commit>:<file>``):

* ``BROKEN`` in ``build.txt``  -> build failure (git bisect skip);
* ``BUG`` in ``src/value.c``   -> bad (a test failed);
* otherwise                    -> good.

Every call is appended to the file ``$FAKE_BISECT_CALLS`` as ``<commit> <attempt>``, so
a test can see which commits were evaluated and how often (environment variables reach
the step processes `git bisect run` starts).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness.modes.predicate import Observation, StepContext, Verdict


def _show(ctx: StepContext, path: str) -> str:
    res = subprocess.run(["git", "-C", str(ctx.tree), "show", f"{ctx.commit}:{path}"],
                         capture_output=True, text=True)
    return res.stdout if res.returncode == 0 else ""


def _record(ctx: StepContext) -> None:
    calls = os.environ.get("FAKE_BISECT_CALLS")
    if calls:
        with open(calls, "a") as f:
            # GIT_DIR: what a child run would inherit (git bisect run exports it)
            f.write(f"{ctx.commit} {ctx.attempt} GIT_DIR={os.environ.get('GIT_DIR', '')}\n")


def planted_bug(ctx: StepContext) -> Observation:
    _record(ctx)
    if "BROKEN" in _show(ctx, "build.txt"):
        return Observation(Verdict.BUILD, "build: src/value.c:1: error: fake", {"stage": "build"})
    if "BUG" in _show(ctx, "src/value.c"):
        return Observation(Verdict.BAD, "1 failed: fake[sysctl=1].value_is_sane",
                           {"failed_cases": ["fake[sysctl=1].value_is_sane"],
                            "signatures": ["WARNING in value_check"]})
    return Observation(Verdict.GOOD, "all selected suites passed")


def flaky_first_attempt(ctx: StepContext) -> Observation:
    """Like planted_bug, but the first attempt at every commit fails (a flaky test)."""
    if ctx.attempt == 1:
        _record(ctx)
        return Observation(Verdict.BAD, "flaky: timed out waiting for reclaim")
    return planted_bug(ctx)


def infra_until_flag_removed(ctx: StepContext) -> Observation:
    """No verdict (e.g. SSH down) for bad commits other than ``$FAKE_BISECT_TIP`` while the
    file ``$FAKE_BISECT_FLAG`` exists."""
    flag = os.environ.get("FAKE_BISECT_FLAG")
    if flag and Path(flag).exists() and "BUG" in _show(ctx, "src/value.c") \
            and ctx.commit != os.environ.get("FAKE_BISECT_TIP"):
        _record(ctx)
        return Observation(Verdict.INFRA, "guest not reachable: fake SSH outage")
    return planted_bug(ctx)


def boots_never(ctx: StepContext) -> Observation:
    _record(ctx)
    return Observation(Verdict.BOOT, "boot: guest not reachable: kernel panic")


def feature_gate(ctx: StepContext) -> Observation:
    """Like planted_bug, but a commit whose ``Kconfig`` does not declare the feature is
    UNTESTABLE (the recharge suites could only skip there), as the default predicate
    judges commits before the series' sysctl exists."""
    _record(ctx)
    if "config MEMCG_RECHARGE_OFFLINE_ENABLED" not in _show(ctx, "Kconfig"):
        return Observation(Verdict.UNTESTABLE, "no Kconfig declares the feature")
    return planted_bug(ctx)
