"""Bisect predicates: what judges one commit, and the default one (a harness run).

A predicate is a callable taking a :class:`StepContext` (the commit, a fresh
directory for its outputs, the attempt number, parameters) and returning an
:class:`Observation` (a :class:`Verdict`, one line of detail, JSON-able evidence).
``harness.modes.bisect`` turns verdicts into ``git bisect`` answers.  A predicate is named
by a spec, ``package.module:function`` or ``/path/to/file.py:function``, because
``git bisect run`` calls it from another process.

:func:`harness_predicate` runs ``recharge-harness run --tree T --base <commit>``
as a child (:mod:`harness.modes.child`) and :func:`classify` reads what the run left:

========================================  =============
the run                                   verdict
========================================  =============
exit 0, the kernel lacks the feature and  UNTESTABLE
a suite that only proves it was selected
exit 0                                    GOOD
exit 1 (a test failed, kernel-log splat)  BAD
apply / config / build / selftests ERROR  BUILD
boot / guest-setup ERROR                  BOOT
suites stopped, with a failing finding    BAD
anything else without a verdict           INFRA
========================================  =============
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from harness.errors import UserError

if TYPE_CHECKING:
    from harness.modes.child import ChildRun

__all__ = ["DEFAULT_PREDICATE", "Observation", "Predicate", "StepContext", "Verdict",
           "absolute_spec", "classify", "harness_predicate", "load_predicate"]

DEFAULT_PREDICATE = "harness.modes.predicate:harness_predicate"


class Verdict(enum.Enum):
    GOOD = "good"
    BAD = "bad"
    BUILD = "build-failure"
    BOOT = "boot-failure"
    #: The kernel lacks the feature the selected suites exist to prove: their skips
    #: say nothing, so the commit can be neither good nor bad.
    UNTESTABLE = "untestable"
    INFRA = "no-verdict"


@dataclass(frozen=True)
class Observation:
    """One attempt's result, from the predicate."""

    verdict: Verdict
    detail: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepContext:
    """What a predicate gets: the commit and a fresh directory for its outputs."""

    commit: str
    subject: str
    tree: Path  # the user's tree (read only)
    repo: Path  # the shadow repository the bisect runs in (has the commit)
    attempt_dir: Path
    attempt: int  # 1-based
    params: Mapping[str, Any]


Predicate = Callable[[StepContext], Observation]


def absolute_spec(spec: str) -> str:
    """A ``FILE.py:function`` spec with an absolute path (steps run in another directory)."""
    target, sep, attr = spec.rpartition(":")
    if sep and target.endswith(".py"):
        return f"{Path(target).expanduser().resolve()}:{attr}"
    return spec


def load_predicate(spec: str) -> Predicate:
    """``package.module:function`` or ``/path/to/file.py:function``."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise UserError(f"--predicate {spec!r}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    try:
        if target.endswith(".py"):
            path = Path(target).expanduser().resolve()
            mspec = importlib.util.spec_from_file_location(f"_bisect_predicate_{path.stem}", path)
            if mspec is None or mspec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        fn = getattr(module, attr)
    except (ImportError, AttributeError, OSError) as e:
        raise UserError(f"--predicate {spec!r}: {e}") from e
    if not callable(fn):
        raise UserError(f"--predicate {spec!r}: not callable")
    return fn


def classify(child: "ChildRun") -> Observation:
    """A finished harness run -> verdict, with its evidence."""
    from harness.modes import child as rundir

    rec = child.record()
    ev: dict[str, Any] = {"run_dir": str(child.run_dir or ""), "exit_code": child.exit_code}
    sigs = [f.signature for f in rec.failing_findings()]
    failed: list[str] = []
    junit = child.file("junit.xml")
    if junit is not None:
        try:
            failed = [f"{c.suite}.{c.name}" + (f": {c.message[:120]}" if c.message else "")
                      for c in rundir.read_cases(junit).values() if c.bad]
        except (OSError, ValueError):
            pass
    ev.update({"failed_cases": failed[:20], "signatures": sigs[:10]})
    fs = rec.failed_stage()
    if fs:
        ev["failed_stage"] = {"stage": fs[0], "detail": fs[1]}

    def bad_detail() -> str:
        parts = []
        if failed:
            parts.append(f"{len(failed)} failed: " + ", ".join(f.split(':')[0] for f in failed[:3]))
        if sigs:
            parts.append("kernel log: " + "; ".join(sigs[:2]))
        return "; ".join(parts) or f"exit {child.exit_code}"

    if child.exit_code == 0 and untestable(rec.groups):
        return Observation(Verdict.UNTESTABLE, untestable(rec.groups), ev)
    if child.exit_code == 0:
        return Observation(Verdict.GOOD, "all selected suites passed", ev)
    if child.exit_code == 1:
        return Observation(Verdict.BAD, bad_detail(), ev)
    if not rec.groups:
        return Observation(Verdict.INFRA, f"no run recorded (exit {child.exit_code}, see "
                                          f"{child.output_log})", ev)
    if fs and fs[0] in rundir.BUILD_STAGES:
        return Observation(Verdict.BUILD, f"{fs[0]}: {fs[1]}", ev)
    if fs and fs[0] in rundir.BOOT_STAGES:
        return Observation(Verdict.BOOT, f"{fs[0]}: {fs[1]}", ev)
    if sigs:
        return Observation(Verdict.BAD, bad_detail(), ev)
    why = f"{fs[0]}: {fs[1]}" if fs else "a suite could not run"
    return Observation(Verdict.INFRA, why, ev)


def feature_only_suites(names: list[str]) -> list[str]:
    """Of the suites a run selected, those that exist only to prove the series' feature
    (every case of theirs is a feature case): on a kernel without it they all skip."""
    from harness.stages.suites import SUITES

    table = {s.name: s for s in SUITES}
    return [n for n in names if n in table and table[n].cases
            and set(table[n].cases) == set(table[n].feature_cases)]


def untestable(meta: Mapping[str, Any]) -> str:
    """Why a green run proves nothing ("" if it does): its kernel's ``.config`` lacks
    the feature's option, and it selected suites that only prove the feature."""
    from harness.stages.inventory import FEATURE_OPTION

    config = meta.get("config") or {}
    if not isinstance(config, Mapping) or config.get("feature") is not False:
        return ""
    suites = list(((meta.get("inventory") or {}).get("suites") or {}).keys())
    only = feature_only_suites(suites)
    if not only:
        return ""
    return (f"the kernel has no {FEATURE_OPTION}, so {', '.join(only)} "
            "could only skip")


def _selected(forward: list[str]) -> list[str]:
    from harness.stages.suites import select_suites

    names = [forward[i + 1] for i, a in enumerate(forward[:-1]) if a == "--suite"]
    names += [a.split("=", 1)[1] for a in forward if a.startswith("--suite=")]
    return [s.name for s in select_suites(names or None)]


def _declares_feature(repo: Path, commit: str) -> bool:
    """Whether a Kconfig file of the tree at ``commit`` declares the feature's option."""
    from harness import gitutil
    from harness.stages.inventory import FEATURE_OPTION

    symbol = FEATURE_OPTION.removeprefix("CONFIG_")
    res = gitutil.git(repo, ["grep", "-q", "-E", f"^(menu)?config {symbol}$", commit, "--",
                             "*Kconfig*"], check=False)
    return res.returncode == 0


def _has_patches(series: object) -> bool:
    """Whether a series file names a patch (an empty or missing one tests the commit as is)."""
    try:
        text = Path(str(series)).read_text(encoding="utf-8") if series else ""
    except OSError:
        return False
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


def harness_predicate(ctx: StepContext) -> Observation:
    """The default predicate: ``recharge-harness run --tree T --base <commit>``.

    Without a series, a commit whose Kconfig lacks the feature is UNTESTABLE without
    building it when the run would select suites that only prove the feature."""
    from harness.modes import child as rundir

    p = ctx.params
    only = feature_only_suites(_selected(list(p.get("forward", []))))
    if only and not _has_patches(p.get("series")) and not _declares_feature(ctx.repo,
                                                                             ctx.commit):
        from harness.stages.inventory import FEATURE_OPTION

        return Observation(Verdict.UNTESTABLE,
                           f"no Kconfig declares {FEATURE_OPTION} at this commit, so "
                           f"{', '.join(only)} could only skip (not built)",
                           {"precheck": True})
    args = ["run", "--tree", str(p["tree"]), "--base", ctx.commit, "--series", str(p["series"]),
            *p.get("forward", [])]
    child = rundir.run_child(f"{ctx.commit[:12]}#{ctx.attempt}", args, ctx.attempt_dir,
                             ctx.attempt_dir / "harness.out", verbose=bool(p.get("verbose")))
    return classify(child)
