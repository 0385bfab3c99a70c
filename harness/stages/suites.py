"""Stage 7: the test suites, run in the guest over SSH.

A table, not classes: each :class:`Suite` names a program (in the tree's cgroup
selftests or in the project's ``selftests/``), the guest directory it runs in,
its timeout and the value of ``vm.recharge_offline_memcgs`` it needs.

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

from harness.errors import UserError
from harness.model import Status, SuiteRun
from harness.parse.ktap import KtapResult, parse_ktap
from harness.verdict import suite_status

log = logging.getLogger(__name__)

SYSCTL = "vm.recharge_offline_memcgs"
SYSCTL_PATH = "/proc/sys/vm/recharge_offline_memcgs"
#: kernel-log marker understood by harness.parse.logscan (``<MARKER> begin|end <suite>``).
MARKER = "RECHARGE-HARNESS:"
#: ext4 scratch disk mounted by selftests/guest-setup.sh: real page cache + O_TMPFILE.
SCRATCH = "/mnt/rhscratch"


@dataclass(frozen=True)
class Suite:
    name: str  # unique; used for ktap/<name>.tap and the JUnit testsuite
    origin: str  # "cgroup" (the tree's selftests), "own" (the project's selftests/), "mm-tree"
    program: str  # relative to the origin's build directory
    args: tuple[str, ...] = ()
    cwd: str = SCRATCH
    timeout_s: int = 600
    sysctl: int | None = None  # value to set before running; None = leave alone
    needs_sysctl: bool = False  # skip (with reason) when the kernel has no such sysctl
    description: str = ""
    #: Run under ``stdbuf -oL -eL``: over SSH stdout is a pipe, and a program that
    #: forks with unflushed stdio (6.12's test_memcontrol) prints its lines twice.
    line_buffered: bool = True
    #: A program of the project's selftests/ the suite runs under (argv prefix), e.g.
    #: ``ext4-root.sh``: "/" on the ext4 scratch disk instead of the 9p root.
    wrapper: str | None = None
    #: Failures that the unpatched base shows too in this guest, for a reason outside
    #: the series, each narrowed to its evidence (:class:`KnownFailure`).  Only a failure
    #: that matches it is reported as XFAIL (not counted); any other failure, of that
    #: case too, still counts.  A known failure that passes is reported as XPASS.
    known_failures: tuple["KnownFailure", ...] = ()
    #: The inventory (harness.stages.inventory): every case the program reports, in its order.
    #: A run whose output lacks one of them ended early or runs another program version
    #: (the kernel's suites print no plan: this is how a cut stream is noticed).
    cases: tuple[str, ...] = ()
    #: Cases that prove the series works: when the kernel's .config has the feature's
    #: option, each must run and pass (missing, skipped or errored fails the run).
    #: Those not in ``cases`` exist only on such kernels (test_memcg_recharge).
    feature_cases: tuple[str, ...] = ()
    #: In the default selection (no ``--suite``); the others run only when named.
    default: bool = True
    #: How ``--case`` runs single cases: "-t" (``-t NAME`` each), "" (the names as
    #: arguments) or None (it cannot: the suite is left out).  Never for "cgroup".
    case_arg: str | None = "-t"
    #: ``program`` is a script of the project's selftests/ that runs this origin's
    #: build directory: ``program DIR args`` (mm-run.sh).
    runs_dir: bool = False


@dataclass(frozen=True)
class KnownFailure:
    """A known failure and the evidence it was explained with.

    The case's diagnostic lines must carry each ``measured`` number (a line
    ``<key> <number>``, as the program prints it on failure) within ``tolerance`` of the
    value measured, with the guest CPU count it was measured with: another failure of
    the same case (other numbers, no numbers, more CPUs) is not this one and counts."""

    case: str
    why: str
    cpus: int
    measured: tuple[tuple[str, int], ...]
    tolerance: float = 0.10

    def mismatch(self, diagnostics: tuple[str, ...], cpus: int | None) -> str | None:
        """None when a failure of ``case`` matches the evidence, else why not."""
        if cpus != self.cpus:
            return f"measured with {self.cpus} guest CPUs, this guest has {cpus or 'unknown'}"
        text = "\n".join(diagnostics)
        for key, value in self.measured:
            m = re.search(rf"^{re.escape(key)}\s+(-?\d+)\s*$", text, re.M)
            if m is None:
                return f"no '{key} N' line in its output"
            got = int(m.group(1))
            if abs(got - value) > self.tolerance * abs(value):
                return (f"{key} {got}, measured {value} "
                        f"(+-{self.tolerance:.0%})")
        return None


PERCPU_BASIC_WHY = (
    "fails on the unpatched base too: it expects the parent's memory.current of 1000 empty "
    "children to be percpu memory within 256 KB per CPU, but their slab (kernfs nodes, "
    "css) is over half as large as their percpu memory with the guest's two CPUs")
#: Measured on the base and the patched kernel alike, 2 guest CPUs (the tiny profile has
#: ACPI, so --cpus is what the guest gets): memory.current 8,912,896 on both, percpu
#: 5,750,400 on the base and 5,746,560 patched (docs/measurements.md).
PERCPU_BASIC = KnownFailure(
    "test_percpu_basic", PERCPU_BASIC_WHY, cpus=2,
    measured=(("memory.current", 8_912_896), ("percpu", 5_750_400)))

# The inventory.  One list per program, the only place a case name is written: both
# variants of a suite use it, and tests/unit/test_inventory.py checks each list against
# the program's C source (cases[] tables, patch 8's T() line), so they cannot drift.
# A new scenario in selftests/recharge/scenarios/main.c goes into SCENARIOS_CASES, nowhere else.

#: selftests/recharge/test_recharge.c: setups x scenario_names (what ``-l`` prints).
RECHARGE_CASES: tuple[str, ...] = tuple(
    f"{setup}_{scenario}" for setup in ("shmem", "file")
    for scenario in ("mapped_before", "mapped_after", "written_after", "read_after"))
#: selftests/recharge/scenarios/main.c: its cases[] table (what ``-l`` prints).
SCENARIOS_CASES: tuple[str, ...] = (
    "zombie_shmem", "zombie_file", "anon_migrate", "limit_max", "limit_high", "thp_shmem",
    "thp_anon", "mglru_on", "mglru_off", "mlock", "kernel_writeback", "kernel_exit",
    "root_mapper", "root_accessor", "root_pass_leak", "truncated_pinned", "ancestor_read",
    "ancestor_map", "write_dirty_file", "write_dirty_shmem", "lru_hold", "stuck_zombies",
    "refuse_backoff", "mlock_count", "bdev_metadata", "many_sources", "one_access", "toggle",
    "stress")
#: Linux 6.12's tools/testing/selftests/cgroup T() tables (no plan printed: see Suite.cases).
MEMCONTROL_CASES: tuple[str, ...] = (
    "test_memcg_subtree_control", "test_memcg_current_peak", "test_memcg_min",
    "test_memcg_low", "test_memcg_high", "test_memcg_high_sync", "test_memcg_max",
    "test_memcg_reclaim", "test_memcg_oom_events", "test_memcg_swap_max_peak",
    "test_memcg_sock", "test_memcg_oom_group_leaf_events",
    "test_memcg_oom_group_parent_events", "test_memcg_oom_group_score_events")
#: Added to test_memcontrol by patch 8.
MEMCONTROL_FEATURE_CASES: tuple[str, ...] = ("test_memcg_recharge",)
KMEM_CASES: tuple[str, ...] = (
    "test_kmem_basic", "test_kmem_memcg_deletion", "test_kmem_proc_kpagecgroup",
    "test_kmem_kernel_stacks", "test_kmem_dead_cgroups", "test_percpu_basic")
CORE_CASES: tuple[str, ...] = (
    "test_cgcore_internal_process_constraint", "test_cgcore_top_down_constraint_enable",
    "test_cgcore_top_down_constraint_disable",
    "test_cgcore_no_internal_process_constraint_on_threads",
    "test_cgcore_parent_becomes_threaded", "test_cgcore_invalid_domain",
    "test_cgcore_populated", "test_cgcore_proc_migration", "test_cgcore_thread_migration",
    "test_cgcore_destroy", "test_cgcore_lesser_euid_open", "test_cgcore_lesser_ns_open")
#: selftests/recharge/soak.c: its case_names[] (what ``-l`` prints).
SOAK_CASES: tuple[str, ...] = (
    "soak_churn", "oom_confined", "kernel_log", "recharge_counters", "memcgs_freed",
    "memavailable")
#: Must pass on a kernel with the feature: the soak ran (stress-ng is installed by
#: scripts/install.sh, so its absence is a broken setup there, not a skip) and the
#: series' counters stayed consistent under the churn.  The other four check the
#: kernel's health after it, on any kernel.
SOAK_FEATURE_CASES: tuple[str, ...] = ("soak_churn", "recharge_counters")
#: selftests/mm-run.sh's default subset (what ``-l`` prints, first column); why the
#: other mm selftests are left out is written there.
MM_CASES: tuple[str, ...] = (
    "cow", "gup_test_u", "gup_test_a", "gup_test_ct", "gup_longterm", "migration",
    "mlock2-tests", "mlock-random-test", "madv_populate", "map_populate", "mkdirty",
    "split_huge_page_test", "transhuge-stress", "khugepaged", "khugepaged_shmem",
    "khugepaged_mthp", "ksm_functional_tests", "mremap_test", "mrelease_test",
    "uffd-unit-tests", "soft-dirty", "pagemap_ioctl", "memfd_secret", "hugepage-mmap",
    "hugepage-mremap", "hugetlb-madvise", "map_hugetlb")

#: The default suite table.  The project's programs come from selftests/Makefile.
SUITES: tuple[Suite, ...] = (
    Suite("recharge[sysctl=1]", "own", "test_recharge", sysctl=1, needs_sysctl=True,
          timeout_s=900, description="recharging scenarios, feature on",
          cases=RECHARGE_CASES, feature_cases=RECHARGE_CASES),
    Suite("recharge[sysctl=0]", "own", "test_recharge", args=("--control",), sysctl=0,
          needs_sysctl=False, timeout_s=900,
          description="the same scenarios as control, feature off: memory must stay with the dead memcg",
          cases=RECHARGE_CASES, feature_cases=RECHARGE_CASES),
    Suite("scenarios[sysctl=1]", "own", "scenarios", sysctl=1, needs_sysctl=True,
          timeout_s=1800, description="extra scenarios (zombies, anon, limits, THP, ...), on",
          cases=SCENARIOS_CASES, feature_cases=SCENARIOS_CASES),
    Suite("scenarios[sysctl=0]", "own", "scenarios", sysctl=0, needs_sysctl=False,
          timeout_s=1800, description="the same scenarios as negative control, off",
          cases=SCENARIOS_CASES, feature_cases=SCENARIOS_CASES),
    # The kernel's own cgroup selftests run with recharging on where the kernel has
    # it (a defined state, not whatever the previous suite left), plainly elsewhere.
    Suite("test_memcontrol", "cgroup", "test_memcontrol", sysctl=1, timeout_s=900,
          description="kernel cgroup selftest: memory controller",
          cases=MEMCONTROL_CASES, feature_cases=MEMCONTROL_FEATURE_CASES),
    # test_kmem_basic needs negative dentries under "/" to stay cached; the 9p root
    # keeps none (see selftests/ext4-root.sh).
    Suite("test_kmem", "cgroup", "test_kmem", sysctl=1, timeout_s=600, wrapper="ext4-root.sh",
          description="kernel cgroup selftest: kernel memory accounting",
          known_failures=(PERCPU_BASIC,), cases=KMEM_CASES),
    Suite("test_core", "cgroup", "test_core", sysctl=1, timeout_s=300,
          description="kernel cgroup selftest: cgroup core", cases=CORE_CASES),
    # Not in the default selection (harness/stages/widenet.py): --suite soak, --suite mm.
    # soak: 120 s of stress-ng in churning memcgs (--soak-seconds), then its checks.
    Suite("soak", "own", "soak", sysctl=1, timeout_s=900, default=False, case_arg=None,
          description="memory soak: memcg churn under stress-ng, then the system in order",
          cases=SOAK_CASES, feature_cases=SOAK_FEATURE_CASES),
    # mm: the tree's mm selftests (a subset, each with its own timeout in mm-run.sh).
    Suite("mm", "mm-tree", "mm-run.sh", sysctl=1, timeout_s=7200, default=False,
          case_arg="", runs_dir=True,
          description="kernel mm selftests (subset: selftests/mm-run.sh -l)", cases=MM_CASES),
)


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
                        "has it (harness/suites.py lists the cases)")
    out: list[Suite] = []
    for s in suites:
        mine = tuple(c for c in s.cases if c in cases)
        if s.origin == "cgroup" or s.case_arg is None or not mine:
            continue
        args = s.args + tuple(x for c in mine for x in ((s.case_arg, c) if s.case_arg else (c,)))
        out.append(replace(s, args=args, cases=mine,
                           feature_cases=tuple(c for c in s.feature_cases if c in mine)))
    if not out:
        raise UserError(f"--case {cases[0]!r}: the selected suites that have it cannot run "
                        "single cases (harness/suites.py: case_arg)")
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
                         cpus: int | None) -> tuple[Any, list[str]]:
    """Known failures that match their evidence -> XFAIL; those that pass -> marked
    XPASS (still a pass).  Returns (result, names turned XFAIL)."""
    if result is None or not known or not hasattr(result, "cases"):
        return result, []
    from dataclasses import replace as dc_replace

    from harness.parse.ktap import CaseStatus

    by_case = {k.case: k for k in known}
    hit: list[str] = []
    cases = []
    for case in result.cases:
        kf = by_case.get(case.name)
        if kf is not None and case.status is CaseStatus.FAIL:
            why = kf.mismatch(case.diagnostics, cpus)
            if why is None:
                case = dc_replace(case, status=CaseStatus.XFAIL, known="xfail",
                                  reason=f"known failure: {kf.why}")
                hit.append(case.name)
            else:
                case = dc_replace(case, reason=(f"{case.reason}; " if case.reason else "")
                                  + f"not the known failure: {why}")
        elif kf is not None and case.status is CaseStatus.PASS:
            case = dc_replace(case, known="xpass",
                              reason=f"known failure passed (XPASS): {kf.why}")
        cases.append(case)
    return dc_replace(result, cases=tuple(cases)), hit


def with_stress_seconds(chosen: list[Suite], seconds: int | None) -> list[Suite]:
    """``--stress-seconds``: the duration of the scenarios' stress case (default: the
    program's, 60 s); each scenarios suite's timeout grows by the same amount."""
    if seconds is None:
        return chosen
    return [replace(s, args=(*s.args, "--stress-seconds", str(seconds)),
                    timeout_s=s.timeout_s + seconds) if s.program == "scenarios" else s
            for s in chosen]


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


def _run_suite(guest: Runner, suite: Suite, program_dir: Path | None, ktap_dir: Path, *,
               timeout_scale: float, wrapper_dir: Path | None,
               feature: bool | None, progress_stream: TextIO | None = None) -> SuiteRun:
    if program_dir is None:
        return not_run(suite, f"{suite.origin} selftests not available (not built)")
    program, args = program_dir / suite.program, suite.args
    if suite.runs_dir:  # the project's script runs the origin's directory: mm-run.sh DIR
        if wrapper_dir is None:
            return not_run(suite, "own selftests not available (not built)")
        program, args = wrapper_dir / suite.program, (str(program_dir), *args)
    if not program.is_file():
        return not_run(suite, f"{program} not built")
    prefix: list[str] = []
    if suite.wrapper:
        wrapper = (wrapper_dir / suite.wrapper) if wrapper_dir is not None else None
        if wrapper is None or not wrapper.is_file():
            return not_run(suite, f"wrapper {suite.wrapper} not built (project selftests)")
        prefix = [str(wrapper)]
    sysctl_value: int | None = None
    # One round trip for the facts: the sysctl's value (or "absent") and the cwd.
    probe = guest.run(f"cat {SYSCTL_PATH} 2>/dev/null || echo absent; "
                      f"test -d {shlex.quote(suite.cwd)} && echo cwd=ok || echo cwd=missing; "
                      "echo ncpu=$(getconf _NPROCESSORS_ONLN)", 30)
    facts = probe.stdout.split()
    current = facts[0] if facts else ""
    # Online CPUs, as the cgroup selftests count them (get_nprocs): known failures'
    # evidence is tied to it.
    ncpu = next((int(f[5:]) for f in facts if f.startswith("ncpu=") and f[5:].isdigit()),
                None)
    present = probe.exit_code == 0 and current.isdigit()
    if "cwd=ok" not in facts:
        return not_run(suite, f"guest directory {suite.cwd} missing (did guest-setup.sh run?)"
                       if probe.exit_code == 0 else f"guest not answering: {probe.error}",
                       Status.ERROR)
    if suite.sysctl is not None:
        if not present:
            from harness.stages.inventory import FEATURE_OPTION, without_feature

            if feature:  # the series is in, its sysctl is not: the kernel is broken
                return not_run(suite, f"sysctl {SYSCTL} absent although the kernel's .config "
                               f"has {FEATURE_OPTION}: the series' sysctl did not register",
                               Status.FAIL)
            if suite.needs_sysctl:
                return not_run(suite, f"sysctl {SYSCTL} absent ({without_feature(feature)})",
                               Status.SKIP)
        else:
            res = guest.run(f"echo {suite.sysctl} > {SYSCTL_PATH} && cat {SYSCTL_PATH}", 30)
            if res.exit_code != 0 or res.stdout.strip() != str(suite.sysctl):
                return not_run(suite, f"could not set {SYSCTL}={suite.sysctl}: "
                               f"{(res.stderr or res.error or '').strip()[:120]}", Status.ERROR)
            sysctl_value = suite.sysctl
    elif present:
        sysctl_value = int(current)
    timeout = int(suite.timeout_s * timeout_scale)
    argv = shlex.join([*prefix, *(["stdbuf", "-oL", "-eL"] if suite.line_buffered else []),
                       str(program), *args])
    # Kernel-log markers around the program (same command: no extra round trips).
    begin = shlex.quote(f"{MARKER} begin {suite.name}")
    end = shlex.quote(f"{MARKER} end {suite.name}")
    command = (f"echo {begin} > /dev/kmsg; {argv}; rc=$?; "
               f"echo {end} > /dev/kmsg; exit $rc")
    log.info("suites: %s (timeout %ds, cwd %s)", suite.name, timeout, suite.cwd)
    from harness.report.progress import CaseProgress

    progress = CaseProgress(suite.name, len(suite.cases) or None, progress_stream)
    start = time.monotonic()
    res = guest.run(command, timeout, cwd=suite.cwd, on_line=progress.line)
    duration = time.monotonic() - start
    text = res.stdout
    ktap_dir.mkdir(parents=True, exist_ok=True)
    (ktap_dir / f"{suite.name}.tap").write_text(text, encoding="utf-8")
    if res.stderr:
        (ktap_dir / f"{suite.name}.stderr").write_text(res.stderr, encoding="utf-8")
    result = _parse(text, suite.name)
    exit_code = res.exit_code
    result, known = apply_known_failures(result, suite.known_failures, ncpu)
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
                    exit_code=res.exit_code, error=error, sysctl=sysctl_value, result=result)


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
) -> list[SuiteRun]:
    """Run ``suites`` in order; once the guest is gone the rest are NOTRUN."""
    from harness.stages import inventory

    runs: list[SuiteRun] = []
    dead: str | None = None
    for s in suites:
        if dead is not None:
            runs.append(inventory.check(s, not_run(s, dead), feature))
            continue
        r = run_suite(guest, s, dirs.get(s.origin), ktap_dir, timeout_scale=timeout_scale,
                      wrapper_dir=dirs.get("own"), feature=feature,
                      progress_stream=progress_stream)
        runs.append(r)
        if r.status == Status.ERROR and alive is not None and not alive():
            dead = f"not run: the guest died during {s.name}"
    return runs


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
