"""Stage 7: the test suites, run in the guest over SSH.

The suites are a table (:mod:`harness.stages.suitetable`: programs, cases, known
failures); this module selects from it (``--suite``, ``--case``) and runs them.

Programs print KTAP and exit 0 pass / 1 fail / 4 skip (kselftest codes).
Raw output goes to ``ktap/<suite>.tap``; the text is handed to
``harness.parse.ktap.parse_ktap``.  Each suite's start and end are written to
``/dev/kmsg`` so kernel-log findings can be attributed to it.
"""

from __future__ import annotations

import logging
import re
import shlex
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Protocol, TextIO

from harness.errors import UserError, is_interrupt, stop_reason
from harness.model import Status, SuiteRun
from harness.parse.ktap import KtapResult, parse_ktap
from harness.stages.suitetable import (
    CORE_CASES,
    KMEM_CASES,
    MEMCONTROL_CASES,
    MEMCONTROL_FEATURE_CASES,
    MM_CASES,
    PERCPU_BASIC,
    PERCPU_BASIC_WHY,
    RECHARGE_CASES,
    SCENARIOS_CASES,
    SCRATCH,
    SOAK_CASES,
    SOAK_FEATURE_CASES,
    SUITES,
    KnownFailure,
    Suite,
)
from harness.verdict import suite_status

__all__ = [
    "CORE_CASES", "KMEM_CASES", "MARKER", "MEMCONTROL_CASES", "MEMCONTROL_FEATURE_CASES",
    "MM_CASES", "PERCPU_BASIC", "PERCPU_BASIC_WHY", "RECHARGE_CASES", "SCENARIOS_CASES",
    "SCRATCH", "SOAK_CASES", "SOAK_FEATURE_CASES", "STRESS_DEFAULT_S", "SUITES", "SYSCTL",
    "SYSCTL_PATH", "KnownFailure", "Runner", "Suite", "apply_known_failures", "halted",
    "narrow_to_cases", "not_run", "run_suite", "run_suites", "select_suites", "suite_key",
    "with_stress_seconds",
]

log = logging.getLogger(__name__)

SYSCTL = "vm.recharge_offline_memcgs"
SYSCTL_PATH = "/proc/sys/vm/recharge_offline_memcgs"
#: kernel-log marker understood by harness.parse.logscan (``<MARKER> begin|end <suite>``).
MARKER = "RECHARGE-HARNESS:"
#: The scenarios' stress case's default duration (selftests/recharge/scenarios).
STRESS_DEFAULT_S = 60


def select_suites(names: list[str] | None, table: tuple[Suite, ...] = SUITES,
                  cases: tuple[str, ...] = ()) -> list[Suite]:
    """``--suite`` selection: exact names, or a base name matching all its variants;
    then ``--case``: see :func:`narrow_to_cases`."""
    chosen = _select_by_name(names, table)
    return narrow_to_cases(chosen, cases) if cases else chosen


def narrow_to_cases(suites: list[Suite], cases: tuple[str, ...]) -> list[Suite]:
    """Only the suites that have one of ``cases``, each running just those
    (``Suite.case_arg``: ``-t NAME`` for the project's C programs) and expecting just
    those.  The kernel's cgroup programs and the soak cannot run single cases and are
    dropped."""
    known = {n for s in suites for n in s.cases}
    unknown = [c for c in cases if c not in known]
    if unknown:
        raise UserError(f"--case {unknown[0]!r}: no selected suite of the project's programs "
                        "has it (harness/stages/suitetable.py lists the cases)")
    out: list[Suite] = []
    for s in suites:
        mine = tuple(c for c in s.cases if c in cases)
        if s.origin == "cgroup" or s.case_arg is None or not mine:
            continue
        args = s.args + tuple(x for c in mine for x in ((s.case_arg, c) if s.case_arg else (c,)))
        out.append(replace(s, args=args, cases=mine,
                           feature_cases=tuple(c for c in s.feature_cases if c in mine),
                           expected_s=s.expected_s * len(mine) / len(s.cases)))
    if not out:
        raise UserError(f"--case {cases[0]!r}: the selected suites that have it cannot run "
                        "single cases (harness/stages/suitetable.py: case_arg)")
    return out


def _select_by_name(names: list[str] | None, table: tuple[Suite, ...]) -> list[Suite]:
    if not names:
        return [s for s in table if s.default]
    chosen: list[Suite] = []
    for n in names:
        hits = [s for s in table if s.name == n or s.name.split("[")[0] == n]
        if not hits:
            valid = ", ".join(dict.fromkeys(s.name for s in table))
            raise UserError(f"--suite {n!r}: unknown suite (valid: {valid})")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def apply_known_failures(result: Any, known: tuple[KnownFailure, ...],
                         cpus: int | None, debug: bool | None = None) -> tuple[Any, list[str]]:
    """Known failures that match their evidence -> XFAIL; those that pass -> marked
    XPASS (still a pass).  A case may have several pieces of evidence (e.g. one for the
    debug kernel): a failure is known when one of them matches.  Returns (result, names
    turned XFAIL)."""
    if result is None or not known or not hasattr(result, "cases"):
        return result, []
    from dataclasses import replace as dc_replace

    from harness.parse.ktap import CaseStatus

    by_case: dict[str, list[KnownFailure]] = {}
    for k in known:
        by_case.setdefault(k.case, []).append(k)
    hit: list[str] = []
    cases = []
    for case in result.cases:
        kfs = by_case.get(case.name, [])
        if kfs and case.status is CaseStatus.FAIL:
            whys = [(kf, kf.mismatch(case.diagnostics, cpus, debug)) for kf in kfs]
            match = next((kf for kf, why in whys if why is None), None)
            if match is not None:
                case = dc_replace(case, status=CaseStatus.XFAIL, known="xfail",
                                  reason=f"known failure: {match.why}")
                hit.append(case.name)
            else:
                why = "; ".join(str(w) for _, w in whys)
                case = dc_replace(case, reason=(f"{case.reason}; " if case.reason else "")
                                  + f"not the known failure: {why}")
        elif case.status is CaseStatus.PASS and any(kf.applies(debug) for kf in kfs):
            why = next(kf.why for kf in kfs if kf.applies(debug))
            case = dc_replace(case, known="xpass", reason=f"known failure passed (XPASS): {why}")
        cases.append(case)
    return dc_replace(result, cases=tuple(cases)), hit


def with_stress_seconds(chosen: list[Suite], seconds: int | None) -> list[Suite]:
    """``--stress-seconds``: the duration of the scenarios' stress case (default: the
    program's, 60 s); each scenarios suite's timeout grows by the same amount, its
    expected duration by the difference."""
    if seconds is None:
        return chosen
    return [replace(s, args=(*s.args, "--stress-seconds", str(seconds)),
                    timeout_s=s.timeout_s + seconds,
                    expected_s=max(1.0, s.expected_s + seconds - STRESS_DEFAULT_S))
            if s.program == "scenarios" else s for s in chosen]


class Runner(Protocol):
    def run(self, command: str, timeout: float, *, cwd: str | None = None,
            kill_after: float = 10.0, on_line: Callable[[str], None] | None = None) -> Any: ...


def _parse(text: str, name: str) -> KtapResult | None:
    try:
        return parse_ktap(text, name)
    except Exception as e:  # a parser bug must not lose the run
        log.error("suites: KTAP parser failed on %s: %s", name, e)
        return None


def _judge(result: KtapResult | None, exit_code: int | None) -> tuple[Status, str | None]:
    status, why = suite_status(result, exit_code)
    return status, (why or None)


def not_run(suite: Suite, reason: str, status: Status = Status.NOTRUN) -> SuiteRun:
    return SuiteRun(name=suite.name, status=status, duration_s=0.0, raw_output="",
                    exit_code=None, error=reason, sysctl=None, result=None)


def run_suite(
    guest: Runner,
    suite: Suite,
    program_dir: Path | None,
    ktap_dir: Path,
    *,
    timeout_scale: float = 1.0,
    wrapper_dir: Path | None = None,
    feature: bool | None = None,
    progress_stream: TextIO | None = None,
) -> SuiteRun:
    """Run one suite in the guest and apply the inventory; never raises for a test outcome.

    ``feature``: whether the kernel's .config claims the series' feature
    (harness.stages.inventory); None when unknown (then nothing is required of it).
    ``progress_stream`` (default stderr): each case as it finishes, if a terminal
    (harness.report.progress)."""
    from harness.stages import inventory

    run = _run_suite(guest, suite, program_dir, ktap_dir, timeout_scale=timeout_scale,
                     wrapper_dir=wrapper_dir, feature=feature, progress_stream=progress_stream)
    run = inventory.check(suite, run, feature)
    log.info("suites: %s -> %s%s (%s)", suite.name, run.status.name,
             f" ({run.error})" if run.error else "", _case_counts(run))
    return run


def _case_counts(run: SuiteRun) -> str:
    """``27 cases: 26 ok, 1 skip, 5:12``: the suite's one line when not on a terminal."""
    from harness.report.progress import mmss

    cases = list(run.result.cases) if run.result is not None else []
    by: dict[str, int] = {}
    for c in cases:
        word = "ok" if c.status.value == "pass" else c.status.value
        by[word] = by.get(word, 0) + 1
    parts = [f"{len(cases)} case{'s' if len(cases) != 1 else ''}"]
    if by:
        parts[0] += ": " + ", ".join(f"{v} {k}" for k, v in by.items())
    return ", ".join([*parts, mmss(run.duration_s)])


def _program(suite: Suite, program_dir: Path | None,
             wrapper_dir: Path | None) -> tuple[list[str], SuiteRun | None]:
    """The suite's argv (wrapper, program, arguments), or why it cannot run."""
    if program_dir is None:
        return [], not_run(suite, f"{suite.origin} selftests not available (not built)")
    program, args = program_dir / suite.program, suite.args
    if suite.runs_dir:  # the project's script runs the origin's directory: mm-run.sh DIR
        if wrapper_dir is None:
            return [], not_run(suite, "own selftests not available (not built)")
        program, args = wrapper_dir / suite.program, (str(program_dir), *args)
    if not program.is_file():
        return [], not_run(suite, f"{program} not built")
    prefix: list[str] = []
    if suite.wrapper:
        wrapper = (wrapper_dir / suite.wrapper) if wrapper_dir is not None else None
        if wrapper is None or not wrapper.is_file():
            return [], not_run(suite, f"wrapper {suite.wrapper} not built (project selftests)")
        prefix = [str(wrapper)]
    return [*prefix, *(["stdbuf", "-oL", "-eL"] if suite.line_buffered else []),
            str(program), *args], None


@dataclass(frozen=True)
class _GuestState:
    """What the suite's probe found (or why it cannot run): the sysctl's value, CPUs,
    whether the kernel is a debug one (lockdep: the debug profile)."""

    sysctl: int | None = None
    ncpu: int | None = None
    refused: SuiteRun | None = None
    debug: bool | None = None


def _prepare_guest(guest: Runner, suite: Suite, feature: bool | None) -> _GuestState:
    """Probe the guest (one round trip: the sysctl's value or "absent", the cwd, the online
    CPUs) and set the sysctl the suite needs."""
    probe = guest.run(f"cat {SYSCTL_PATH} 2>/dev/null || echo absent; "
                      f"test -d {shlex.quote(suite.cwd)} && echo cwd=ok || echo cwd=missing; "
                      "echo ncpu=$(getconf _NPROCESSORS_ONLN); "
                      "test -e /proc/lockdep && echo debug=1 || echo debug=0", 30)
    facts = probe.stdout.split()
    current = facts[0] if facts else ""
    # Online CPUs, as the cgroup selftests count them (get_nprocs): known failures'
    # evidence is tied to it.
    ncpu = next((int(f[5:]) for f in facts if f.startswith("ncpu=") and f[5:].isdigit()),
                None)
    debug = True if "debug=1" in facts else False if "debug=0" in facts else None
    present = probe.exit_code == 0 and current.isdigit()
    if "cwd=ok" not in facts:
        return _GuestState(refused=not_run(
            suite, f"guest directory {suite.cwd} missing (did guest-setup.sh run?)"
            if probe.exit_code == 0 else f"guest not answering: {probe.error}", Status.ERROR))
    if suite.sysctl is None:
        return _GuestState(int(current) if present else None, ncpu, debug=debug)
    if not present:
        from harness.stages.inventory import FEATURE_OPTION, without_feature

        if feature:  # the series is in, its sysctl is not: the kernel is broken
            return _GuestState(refused=not_run(
                suite, f"sysctl {SYSCTL} absent although the kernel's .config has "
                f"{FEATURE_OPTION}: the series' sysctl did not register", Status.FAIL))
        if suite.needs_sysctl:
            return _GuestState(refused=not_run(
                suite, f"sysctl {SYSCTL} absent ({without_feature(feature)})", Status.SKIP))
        return _GuestState(None, ncpu, debug=debug)
    res = guest.run(f"echo {suite.sysctl} > {SYSCTL_PATH} && cat {SYSCTL_PATH}", 30)
    if res.exit_code != 0 or res.stdout.strip() != str(suite.sysctl):
        return _GuestState(refused=not_run(
            suite, f"could not set {SYSCTL}={suite.sysctl}: "
            f"{(res.stderr or res.error or '').strip()[:120]}", Status.ERROR))
    return _GuestState(suite.sysctl, ncpu, debug=debug)


def _run_suite(guest: Runner, suite: Suite, program_dir: Path | None, ktap_dir: Path, *,
               timeout_scale: float, wrapper_dir: Path | None,
               feature: bool | None, progress_stream: TextIO | None = None) -> SuiteRun:
    argv, refused = _program(suite, program_dir, wrapper_dir)
    if refused is not None:
        return refused
    state = _prepare_guest(guest, suite, feature)
    if state.refused is not None:
        return state.refused
    timeout = int(suite.timeout_s * timeout_scale)
    # Kernel-log markers around the program (same command: no extra round trips).
    begin = shlex.quote(f"{MARKER} begin {suite.name}")
    end = shlex.quote(f"{MARKER} end {suite.name}")
    command = (f"echo {begin} > /dev/kmsg; {shlex.join(argv)}; rc=$?; "
               f"echo {end} > /dev/kmsg; exit $rc")
    log.info("suites: %s (timeout %ds, cwd %s)", suite.name, timeout, suite.cwd)
    from harness.report.progress import CaseProgress

    progress = CaseProgress(suite.name, len(suite.cases) or None, progress_stream)
    start = time.monotonic()
    res = guest.run(command, timeout, cwd=suite.cwd, on_line=progress.line)
    return _judge_output(suite, res, time.monotonic() - start, ktap_dir, timeout, state)


def _judge_output(suite: Suite, res: Any, duration: float, ktap_dir: Path, timeout: int,
                  state: _GuestState) -> SuiteRun:
    """The program's output kept (``ktap/``), parsed, its known failures applied, judged."""
    text = res.stdout
    ktap_dir.mkdir(parents=True, exist_ok=True)
    (ktap_dir / f"{suite.name}.tap").write_text(text, encoding="utf-8")
    if res.stderr:
        (ktap_dir / f"{suite.name}.stderr").write_text(res.stderr, encoding="utf-8")
    result = _parse(text, suite.name)
    exit_code = res.exit_code
    result, known = apply_known_failures(result, suite.known_failures, state.ncpu,
                                         state.debug)
    if known:
        log.info("suites: %s: known failure(s): %s", suite.name, ", ".join(known))
        failing = [n for n, c in result.walk() if c.status.failed]
        if exit_code == 1 and not failing:
            exit_code = 0  # the program failed only because of the known failures
    if res.exit_code is None:
        status, error = Status.ERROR, res.error or "no exit status"
    elif res.timed_out:
        status, error = Status.ERROR, f"timed out after {timeout}s (killed)"
    else:
        status, error = _judge(result, exit_code)
    return SuiteRun(name=suite.name, status=status, duration_s=duration, raw_output=text,
                    exit_code=res.exit_code, error=error, sysctl=state.sysctl, result=result)


def run_suites(
    guest: Runner,
    suites: list[Suite],
    dirs: dict[str, Path | None],
    ktap_dir: Path,
    *,
    timeout_scale: float = 1.0,
    alive: Callable[[], bool] | None = None,
    feature: bool | None = None,
    progress_stream: TextIO | None = None,
    into: list[SuiteRun] | None = None,
    stopped: Callable[[], BaseException | None] | None = None,
) -> list[SuiteRun]:
    """Run ``suites`` in order; once the guest is gone the rest are NOTRUN.

    ``into``: the list each run is appended to as it ends (and returned).  When an
    exception ends the suites early (Ctrl-C, SIGTERM, a full disk) the exception goes on,
    and ``into`` holds the suites that finished, the one it cut off (ERROR) and the rest
    (NOTRUN): see :func:`halted`.
    ``stopped``: what stopped the run from elsewhere, if anything (a ``--parallel`` run:
    harness.stages.guests); then the suite whose command it cut off is an ERROR, no other
    starts, and this returns.
    """
    from harness.stages import inventory

    runs: list[SuiteRun] = [] if into is None else into
    dead: str | None = None
    for i, s in enumerate(suites):
        why = stopped() if stopped is not None else None
        if why is not None:
            runs.extend(not_run(x, halted(why)[1]) for x in suites[i:])
            break
        if dead is not None:
            runs.append(inventory.check(s, not_run(s, dead), feature))
            continue
        start = time.monotonic()
        try:
            r = run_suite(guest, s, dirs.get(s.origin), ktap_dir, timeout_scale=timeout_scale,
                          wrapper_dir=dirs.get("own"), feature=feature,
                          progress_stream=progress_stream)
        except BaseException as e:
            error, rest = halted(e)
            log.error("suites: %s -> ERROR (%s)", s.name, error)
            runs.append(replace(not_run(s, error, Status.ERROR),
                                duration_s=time.monotonic() - start))
            runs.extend(not_run(x, rest) for x in suites[i + 1:])
            raise
        why = stopped() if stopped is not None else None
        if why is not None and r.status is Status.ERROR and r.exit_code is None:
            r = replace(not_run(s, halted(why)[0], Status.ERROR), duration_s=r.duration_s)
            log.error("suites: %s -> ERROR (%s)", s.name, r.error)
        runs.append(r)
        if r.status == Status.ERROR and alive is not None and not alive():
            dead = f"not run: the guest died during {s.name}"
    return runs


def halted(e: BaseException) -> tuple[str, str]:
    """How ``e``, which stopped the run, is told in its suites: (the error of the suite it
    cut off, the reason of those it kept from starting).  The inventory is not applied to
    them: their cases are missing because of the stop, not because of the kernel."""
    if is_interrupt(e):
        return stop_reason(e), "not run: the run was interrupted"
    why = f"the run stopped: {stop_reason(e)}"
    return why, f"not run: {why}"


_SYSCTL_SUFFIX = re.compile(r"\[sysctl=\d+\]$")


def suite_key(name: str, table: set[str] | None = None) -> str:
    """The suite-table name of a JUnit testsuite name.

    The kernel's own suites set the sysctl only where it exists, so their JUnit name is
    ``test_kmem[sysctl=1]`` on the patched kernel and ``test_kmem`` on the base: both
    are the table's ``test_kmem``.  Suites whose table name carries the variant
    (``recharge[sysctl=0]``) keep it."""
    if table is None:
        table = {s.name for s in SUITES}
    if name in table:
        return name
    stripped = _SYSCTL_SUFFIX.sub("", name)
    return stripped if stripped in table else name
