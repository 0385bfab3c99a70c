"""The suite table: which programs the ``suites`` stage runs, and what each must report.

A table, not classes: each :class:`Suite` names a program (in the tree's cgroup
selftests, in the project's ``selftests/`` or the tree's mm selftests), the guest
directory it runs in, its timeout, how long it usually takes (``expected_s``: how
``--parallel`` spreads the suites over its guests, harness.stages.schedule) and the
value of ``vm.recharge_offline_memcgs`` it needs.  Next to it the inventory: every
case each program reports (harness.stages.inventory) and the known failures.

How a suite is selected and run is :mod:`harness.stages.suites`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
    #: Roughly how long it runs in a TCG guest (seconds), when no earlier run in the same
    #: ``--out`` recorded it: how ``--parallel`` balances its guests (harness.stages.schedule).
    expected_s: float = 60.0
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
    #: Measured on a debug kernel (the debug profile: KASAN, lockdep, ...), whose
    #: allocations differ in size: evidence holds only for the kind it was measured on.
    debug: bool = False

    def applies(self, debug: bool | None) -> bool:
        """Evidence from a debug kernel needs one (a kernel that does not say is not one);
        other evidence holds anywhere but on a debug kernel."""
        return debug is True if self.debug else debug is not True

    def mismatch(self, diagnostics: tuple[str, ...], cpus: int | None,
                 debug: bool | None = None) -> str | None:
        """None when a failure of ``case`` matches the evidence, else why not."""
        if not self.applies(debug):
            return f"measured on a {'debug' if self.debug else 'non-debug'} kernel"
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
#: The debug profile, 2 guest CPUs: memory.current 12,320,768 on the base and the patched
#: kernel alike, percpu 5,760,000 on the base and 5,742,720 patched (docs/measurements.md).
PERCPU_BASIC_DEBUG = KnownFailure(
    "test_percpu_basic", PERCPU_BASIC_WHY, cpus=2, debug=True,
    measured=(("memory.current", 12_320_768), ("percpu", 5_760_000)))

#: test_memcontrol's test_memcg_reclaim on the debug profile under TCG: it gives its
#: 100 MB allocation (50 MB of page cache written, 50 MB of anon touched) 5 s to arrive,
#: then checks that memory.reclaim's success left usage within 3 % of 30 MB; a KASAN and
#: lockdep kernel writes 50 MB in 5-7 s under TCG when another guest shares the host, so
#: the allocation is late ("failed to allocate 104857600") or still growing while it
#: reclaims.  Side by side on the same loaded host the unpatched base failed it like the
#: patched kernel; alone, the base passed it (docs/measurements.md).  Prints no numbers:
#: any failure of it on a debug kernel with two CPUs is this one.
MEMCG_RECLAIM_DEBUG = KnownFailure(
    "test_memcg_reclaim", "fails on the unpatched base too on a debug kernel under TCG on a "
    "loaded host: it gives its 100 MB allocation 5 s and races it with memory.reclaim",
    cpus=2, debug=True, measured=())

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
    "zombie_shmem", "zombie_file", "offline_churn", "anon_migrate", "compaction_owner",
    "limit_max",
    "limit_high", "thp_shmem", "thp_anon", "mglru_on", "mglru_off", "mlock", "kernel_writeback", "kernel_exit",
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
          timeout_s=900, expected_s=30, description="recharging scenarios, feature on",
          cases=RECHARGE_CASES, feature_cases=RECHARGE_CASES),
    Suite("recharge[sysctl=0]", "own", "test_recharge", args=("--control", "--concurrent"), sysctl=0,
          needs_sysctl=False, timeout_s=900, expected_s=45,
          description="the same scenarios as control, feature off: memory must stay with the dead memcg",
          cases=RECHARGE_CASES, feature_cases=RECHARGE_CASES),
    Suite("scenarios[sysctl=1]", "own", "scenarios", sysctl=1, needs_sysctl=True,
          timeout_s=1800, expected_s=370, description="extra scenarios (zombies, anon, limits, THP, ...), on",
          cases=SCENARIOS_CASES, feature_cases=SCENARIOS_CASES),
    Suite("scenarios[sysctl=0]", "own", "scenarios", sysctl=0, needs_sysctl=False,
          timeout_s=1800, expected_s=340, description="the same scenarios as negative control, off",
          cases=SCENARIOS_CASES, feature_cases=SCENARIOS_CASES),
    # The kernel's own cgroup selftests run with recharging on where the kernel has
    # it (a defined state, not whatever the previous suite left), plainly elsewhere.
    Suite("test_memcontrol", "cgroup", "test_memcontrol", sysctl=1, timeout_s=900, expected_s=20,
          description="kernel cgroup selftest: memory controller",
          known_failures=(MEMCG_RECLAIM_DEBUG,),
          cases=MEMCONTROL_CASES, feature_cases=MEMCONTROL_FEATURE_CASES),
    # test_kmem_basic needs negative dentries under "/" to stay cached; the 9p root
    # keeps none (see selftests/ext4-root.sh).
    Suite("test_kmem", "cgroup", "test_kmem", sysctl=1, timeout_s=600, expected_s=12,
          wrapper="ext4-root.sh",
          description="kernel cgroup selftest: kernel memory accounting",
          known_failures=(PERCPU_BASIC, PERCPU_BASIC_DEBUG), cases=KMEM_CASES),
    Suite("test_core", "cgroup", "test_core", sysctl=1, timeout_s=300, expected_s=2,
          description="kernel cgroup selftest: cgroup core", cases=CORE_CASES),
    # Not in the default selection (harness/stages/widenet.py): --suite soak, --suite mm.
    # soak: 120 s of stress-ng in churning memcgs (--soak-seconds), then its checks.
    Suite("soak", "own", "soak", sysctl=1, timeout_s=900, expected_s=200, default=False,
          case_arg=None,
          description="memory soak: memcg churn under stress-ng, then the system in order",
          cases=SOAK_CASES, feature_cases=SOAK_FEATURE_CASES),
    # mm: the tree's mm selftests (a subset, each with its own timeout in mm-run.sh).
    Suite("mm", "mm-tree", "mm-run.sh", sysctl=1, timeout_s=7200, expected_s=480, default=False,
          case_arg="", runs_dir=True,
          description="kernel mm selftests (subset: selftests/mm-run.sh -l)", cases=MM_CASES),
)
