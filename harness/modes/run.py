"""The spine of ``run`` (and ``source`` ... ``test``): stages in order, each one recorded.

source -> apply -> config -> build -> selftests -> boot -> guest-setup -> suites -> report

Each stage is a function of its module in ``harness/stages/``; this module only
sequences them, records each as a :class:`StageResult` in the run record
(``metadata.json``, :mod:`harness.report.metadata`), and cleans up.  Every run gets
a numbered directory ``<out>/<N>/`` (:func:`harness.report.mode.make_run_dir`) with
one log per stage, the ``.config``, console and kernel logs, raw KTAP per suite,
``junit.xml`` and ``summary.txt``.  The guest is started only by
:func:`harness.stages.boot.boot`, which stops it on every way out; with ``--parallel``
(more than one guest) :mod:`harness.modes.parallel` boots and uses the guests.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import (
    HarnessError,
    InfraError,
    Interrupted,
    UserError,
    is_interrupt,
    is_termination,
    stop_reason,
)
from harness.model import Options, StageResult, Status, SuiteRun
from harness.modes import parallel, runreport
from harness.modes.runreport import LAST_STAGE, STAGES
from harness.report.metadata import Metadata
from harness.report.mode import file_log, make_run_dir
from harness.stages import apply as seriesmod
from harness.stages import boot as bootmod
from harness.stages import build as buildmod
from harness.stages import config as configmod
from harness.stages import inventory, kerneldir, widenet
from harness.stages import source as sourcemod
from harness.stages import suites as suitesmod
from harness.stages.accel import AccelChoice
from harness.stages.profiles import get_profile
from harness.stages.vm import Vm

log = logging.getLogger(__name__)

__all__ = ["LAST_STAGE", "STAGES", "Context", "Pipeline"]


@dataclass
class Context:
    """What the stages hand each other (mutable, lives for one run)."""

    src: sourcemod.Source | None = None
    applied: seriesmod.AppliedTree | None = None
    config: configmod.ConfigResult | None = None
    kernel: buildmod.BuildResult | None = None
    selftests: buildmod.SelftestsResult | None = None
    bzimage: Path | None = None
    guest_dirs: dict[str, Path | None] = field(default_factory=dict)
    vm: Vm | None = None
    guest: Any = None
    accel: AccelChoice | None = None
    runs: list[SuiteRun] = field(default_factory=list)
    #: Whether the kernel's .config claims the series' feature (harness.stages.inventory).
    feature: bool | None = None
    #: ``--kernel-dir``: the commits its kernel was built from (its metadata.json)
    kernel_source: dict[str, str] = field(default_factory=dict)
    #: ``--parallel``: the guests' directories (``guest-K``) and which one runs each
    #: suite; empty with one guest
    guests: list[str] = field(default_factory=list)
    guest_of: dict[str, str] = field(default_factory=dict)


class Pipeline:
    def __init__(self, opts: Options, *, on_ready: Callable[[Pipeline], None] | None = None,
                 guest_factory: bootmod.GuestFactory | None = None):
        self.o = opts
        self.on_ready = on_ready  # `boot`: called once the guest is up
        #: How the boot stage makes its SSH session (default harness.stages.ssh.Guest).
        self.guest_factory = guest_factory
        self.stages: list[StageResult] = []
        self.ctx = Context()
        self.run_dir = make_run_dir(opts.out)
        self.meta = Metadata(self.run_dir / "metadata.json", list(opts.argv))
        self.last = LAST_STAGE[opts.command]
        self.findings: Any = None

    def path(self, name: str) -> Path:
        return self.run_dir / name

    @contextlib.contextmanager
    def stage(self, name: str, log_name: str | None = None) -> Iterator[dict[str, str]]:
        """Time a stage; an exception becomes an ERROR StageResult and propagates."""
        info: dict[str, str] = {"detail": "", "status": "PASS"}
        logp = self.path(log_name) if log_name else None
        start = time.monotonic()
        log.info("== %s", name)
        try:
            yield info
        except HarnessError as e:
            self.record(StageResult(name, Status.ERROR, time.monotonic() - start, e.log or logp,
                                    e.describe()))
            raise
        except BaseException as e:
            self.record(StageResult(name, Status.ERROR, time.monotonic() - start, logp,
                                    stop_reason(e)))
            raise
        self.record(StageResult(name, Status[info["status"]], time.monotonic() - start, logp,
                                info["detail"]))

    def record(self, st: StageResult) -> None:
        self.stages.append(st)
        self.meta.stage(st)
        if st.status in (Status.ERROR, Status.FAIL):
            log.error("%s: %s", st.name, st.detail)
        else:
            log.info("%s: %s (%.1fs)", st.name, st.detail or st.status.name.lower(),
                     st.duration_s)

    def wants(self, stage: str) -> bool:
        return STAGES.index(stage) <= STAGES.index(self.last)

    def selected(self) -> list[suitesmod.Suite]:
        return suitesmod.select_suites(list(self.o.suites) or None, cases=self.o.cases)

    # -------------------------------------------------------------- run --

    def run(self) -> int:
        with file_log(self.path("harness.log")):
            log.info("run directory: %s", self.run_dir)
            self.meta.update("build", {
                "command": self.o.command, "run_dir": str(self.run_dir),
                "options": {k: (str(v) if isinstance(v, Path) else v)
                            for k, v in self.o.__dict__.items() if k != "argv"},
            })
            error: HarnessError | None = None
            try:
                self._run_stages()
            except HarnessError as e:
                error = e
            except KeyboardInterrupt:
                error = Interrupted("SIGINT")
            except OSError as e:  # e.g. ENOSPC writing a log or copying the kernel: no verdict
                error = InfraError(f"{type(e).__name__}: {e}")
            return runreport.finish(self, error)

    def _run_stages(self) -> None:
        o, c = self.o, self.ctx
        if o.kernel_dir is not None:
            self._use_kernel_dir(o.kernel_dir)
            self._boot_and_test()
            return
        with self.stage("source", "source.log") as st:
            if self.wants("boot") and shutil.which("qemu-system-x86_64") is None:
                # Before minutes of building a kernel that could not be booted.
                raise InfraError("qemu-system-x86_64 not found (apt-get install "
                                 "qemu-system-x86): needed to boot, nothing was built")
            c.src = sourcemod.prepare_source(o.cache, o.tree, o.base, self.path("source.log"),
                                             source=o.source)
            st["detail"] = f"{c.src.description} {c.src.base_commit[:12]}"
            self.meta.update("source", runreport.source_facts(c.src))
        if not self.wants("apply"):
            return
        worktree = o.cache / "worktrees" / c.src.worktree_prefix
        # One run at a time per worktree from apply until the build outputs are copied.
        with configmod.worktree_lock(o.cache, worktree.name):
            self._apply(worktree)
            if self.wants("config"):
                self._config(worktree)
            if self.wants("build"):
                self._build()
        if self.wants("boot"):
            self._boot_and_test()

    def _use_kernel_dir(self, d: Path) -> None:
        """``test --kernel-dir``: stage ``build`` takes another run's kernel and selftests."""
        c = self.ctx
        with self.stage("build") as st:
            k = kerneldir.use_kernel_dir(d, self.run_dir)
            c.bzimage, c.guest_dirs, c.feature = k.bzimage, k.guest_dirs, k.feature
            c.kernel_source = k.commits
            self.meta.update("inventory", {"option": inventory.FEATURE_OPTION,
                                           "feature": c.feature})
            self.meta.update("source", k.source)
            st["detail"] = k.detail

    def _apply(self, worktree: Path) -> None:
        o, c = self.o, self.ctx
        assert c.src is not None
        with self.stage("apply") as st:
            ser = (seriesmod.Series(None, ()) if o.no_series else  # --series none
                   seriesmod.read_series(o.series or (o.project / "patches" / "series"),
                                         required=o.series is not None))
            c.applied = a = seriesmod.apply_series(c.src, ser, worktree, self.path("series"))
            st["detail"] = (f"empty series: testing the base {c.src.base_ref} unpatched"
                            if ser.empty else f"{len(a.patches)} patches "
                            f"{'reused' if a.reused else 'applied'} on branch {a.branch}")
            self.meta.update("source", runreport.applied_facts(a, ser))

    def _config(self, worktree: Path) -> None:
        o, c = self.o, self.ctx
        assert c.applied is not None
        with self.stage("config", "config.log") as st:
            c.config = cfg = configmod.configure(
                o.project, c.applied.worktree, c.applied.head_commit, o.cache, worktree.name,
                o.profile, self.path("config.log"), unpatched=not c.applied.patches,
                extra_fragments=widenet.suite_fragments(o.project, self.selected()),
                fragments_dir=self.path("fragments"))
            shutil.copy(cfg.config, self.path("config"))
            c.feature = inventory.config_claims(cfg.config)
            self.meta.update("inventory", {"option": inventory.FEATURE_OPTION,
                                           "feature": c.feature})
            st["detail"] = runreport.config_detail(cfg)
            prof = get_profile(o.profile)
            self.meta.update("config", {"kbuild": str(cfg.kbuild), "sha256": cfg.config_sha256,
                                        "profile": prof.name, "base_config": prof.base,
                                        "fragments": [str(f) for f in cfg.fragments],
                                        "warnings": list(cfg.warnings)})

    def _build(self) -> None:
        o, c = self.o, self.ctx
        assert c.applied is not None and c.config is not None
        kbuild, head = c.config.kbuild, c.applied.head_commit
        if o.command == "test":
            with self.stage("build") as st:
                c.kernel, c.selftests = buildmod.existing_build(
                    head, kbuild, self.path("build.log"),
                    widenet.existing_mm_dir(kbuild, self.selected()))
                st["detail"] = f"using the existing {c.kernel.bzimage}"
        else:
            # Kernel build, then headers and selftests under one hold of the cache's
            # build lock (no second wait behind someone else's kernel build).
            with (configmod.build_lock(o.cache) if not buildmod.kernel_up_to_date(head, kbuild)
                  else contextlib.nullcontext()):
                self._make(c.applied.worktree, kbuild)
        if c.kernel is not None and c.selftests is not None and self.wants("selftests"):
            c.bzimage, c.guest_dirs = buildmod.copy_outputs(c.kernel, c.selftests, self.run_dir,
                                                            widenet.MM_ORIGIN)

    def _make(self, tree: Path, kbuild: Path) -> None:
        o, c = self.o, self.ctx
        assert c.applied is not None
        with self.stage("build", "build.log") as st:
            c.kernel = k = buildmod.make_kernel(tree, c.applied.head_commit, kbuild, o.cache,
                                                self.path("build.log"), jobs=o.jobs)
            st["detail"] = ("up to date, make skipped" if k.skipped else
                            f"{k.compiled} files compiled in {k.duration_s:.0f}s, "
                            f"{k.warnings} warnings")
            self.meta.update("build_info", {"bzimage": str(k.bzimage), "skipped": k.skipped,
                                            "duration_s": round(k.duration_s, 1),
                                            "compiled": k.compiled, "warnings": k.warnings})
        if not self.wants("selftests"):
            return
        with self.stage("selftests", "selftests.log") as st:
            c.selftests = buildmod.make_selftests(tree, kbuild, o.project,
                                                  self.path("selftests.log"), jobs=o.jobs,
                                                  cache=o.cache, tree_commit=c.applied.head_commit)
            if widenet.needs_mm(self.selected()):  # only then: the default's time
                c.selftests = widenet.add_mm_selftests(
                    c.selftests, tree, kbuild, o.project, self.path("selftests.log"),
                    jobs=o.jobs, cache=o.cache)
            st["detail"] = "; ".join(c.selftests.problems) or "cgroup + project selftests built"
            if c.selftests.problems:
                st["status"] = "ERROR" if c.selftests.cgroup_dir is None else "PASS"

    def _boot_and_test(self) -> None:
        o, c = self.o, self.ctx
        assert c.bzimage is not None
        selected = self.selected()
        n = parallel.guests_for(self, selected)
        if n > 1:
            parallel.boot_and_test(self, selected, n)
            return
        # The guest's own lifetime bound (it runs `sleep <budget>`): enough for every
        # selected suite, so even a SIGKILLed harness leaves no guest for long.
        budget = o.budget_s if not self.wants("suites") else min(
            o.budget_s, sum(s.timeout_s for s in selected) + 900)
        with contextlib.ExitStack() as stack:
            with self.stage("boot", "vm/console.log") as st:
                b = stack.enter_context(bootmod.boot(
                    c.bzimage, self.path("vm"), bootmod.BootSpec.from_options(o, budget),
                    o.cache, guest_factory=self.guest_factory, on_accel=self._on_accel))
                # Run last-in first-out before the guest stops: dmesg, keep or not.
                stack.push(functools.partial(self._keep_vm, b))
                stack.push(self._dmesg_on_exit)
                c.vm, c.guest = b.vm, b.guest
                st["detail"] = (f"{b.accel.accel.upper()} guest up, SSH after "
                                f"{b.boot_to_ssh_s:.1f}s, first command {b.first_command_s:.2f}s "
                                f"later (port {b.vm.port})")
                self.meta.update("vm", {"port": b.vm.port, "boot_to_ssh_s": round(b.boot_to_ssh_s, 1),
                                        "boot_to_shell_s": round(b.boot_to_shell_s, 1),
                                        "first_command_s": b.first_command_s,
                                        "guest_ready_s": b.guest_ready_s,
                                        "ssh_wait_s": round(b.ssh_wait_s, 1)})
            with self.stage("guest-setup", "guest-setup.log") as st:
                setup = bootmod.guest_setup(b.guest, o.project, self.path("guest-setup.log"))
                if setup.exit_code is not None:
                    self.meta.update("guest", setup.facts)
                st["status"], st["detail"] = ("PASS" if setup.ok else "ERROR"), setup.detail
            if self.on_ready is not None:
                self.on_ready(self)
            if self.wants("suites"):
                self._suites(b, selected)
                self._collect_dmesg_once()

    def _on_accel(self, choice: AccelChoice) -> None:
        self.ctx.accel = choice
        self.meta.update("vm", {"accel": choice.accel, "accel_reason": choice.reason,
                                "memory": self.o.memory, "cpus": self.o.cpus,
                                **bootmod.host_facts()})

    def _suites(self, b: bootmod.Booted, selected: list[suitesmod.Suite]) -> None:
        o, c = self.o, self.ctx
        with self.stage("suites") as st:
            selected = suitesmod.with_stress_seconds(selected, o.stress_s)
            selected = widenet.with_soak_seconds(selected, o.soak_s)
            self.meta.update("inventory", {"suites": inventory.record(selected, c.feature)})
            # Filled as each suite ends: an interrupt keeps the suites that finished.
            c.runs = []
            suitesmod.run_suites(b.guest, selected, c.guest_dirs, self.path("ktap"),
                                 alive=b.vm.alive, feature=c.feature, into=c.runs)
            self.meta.suites(c.runs)
            counts: dict[str, int] = {}
            for r in c.runs:
                counts[r.status.name] = counts.get(r.status.name, 0) + 1
            st["detail"] = ", ".join(f"{v} {k.lower()}" for k, v in counts.items())

    def _collect_dmesg_once(self, brief: bool = False) -> None:
        """The guest's dmesg into ``dmesg.log`` (once, while it is alive)."""
        c = self.ctx
        if c.guest is not None and c.vm is not None:
            bootmod.collect_dmesg(c.guest, c.vm, self.path("dmesg.log"), brief=brief)

    def _dmesg_on_exit(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                       tb: TracebackType | None) -> None:
        """Leaving the guest: its dmesg, if the suites did not get it; after an exception
        (Ctrl-C, an error) one brief try (:func:`harness.stages.boot.collect_dmesg`); after
        SIGTERM none: the guest is stopped at once (its console log has the kernel's)."""
        if exc is not None and is_termination(exc):
            return
        self._collect_dmesg_once(brief=exc is not None)

    def _keep_vm(self, b: bootmod.Booted, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        """``--keep-vm-on-failure``: keep the guest after a stage error, never after an
        interrupt (Ctrl-C, SIGTERM: the user wants the run to end)."""
        failed = any(s.status == Status.ERROR for s in self.stages)
        b.keep = (failed and self.o.keep_vm_on_failure and b.vm.alive()
                  and not (exc is not None and is_interrupt(exc)))

    def not_run_suites(self, error: HarnessError | None) -> None:
        """Selected suites that never ran, recorded as NOTRUN."""
        got = {r.name for r in self.ctx.runs}
        try:
            selected = self.selected()
        except UserError:
            selected = []
        reason = ("not run" if error is None else
                  suitesmod.halted(error)[1] if is_interrupt(error) else
                  "not run: the run stopped before the suites")
        for s in selected:
            if s.name not in got:
                self.ctx.runs.append(suitesmod.not_run(s, reason))
        self.meta.suites(self.ctx.runs, self.ctx.guest_of)
