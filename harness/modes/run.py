"""The spine: stages in order, each recorded as a StageResult, cleanup in ``finally``.

source -> apply -> config -> build -> selftests -> boot -> guest-setup -> suites -> report

Every run gets a numbered directory ``<out>/<N>/`` (created race-free) holding
``metadata.json`` (written first, updated atomically), one log per stage, the
``.config``, console and kernel logs, raw KTAP per suite, ``junit.xml`` and
``summary.txt``.  The VM is always stopped, even on SIGINT/SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from harness import verdict
from harness.errors import (
    EXIT_FAIL,
    EXIT_NO_VERDICT,
    EXIT_PASS,
    BootError,
    HarnessError,
    InfraError,
    Interrupted,
    UserError,
)
from harness.model import Options, StageResult, Status, SuiteRun
from harness.parse import logscan
from harness.paths import file_lock, kbuild_lock
from harness.report.junit import write_junit
from harness.report.metadata import Metadata
from harness.report.summary import render_summary
from harness.stages import apply as seriesmod
from harness.stages import boot as vmmod
from harness.stages import build as buildmod
from harness.stages import config as kconfig
from harness.stages import inventory, widenet
from harness.stages import source as sourcemod
from harness.stages import suites as suitesmod
from harness.stages.profiles import BASE_FRAGMENTS, DEFAULT_PROFILE, PROFILES, get_profile  # noqa: F401

log = logging.getLogger(__name__)

STAGES = ("source", "apply", "config", "build", "selftests", "boot", "guest-setup", "suites",
          "report")
#: Last stage of each subcommand.
LAST_STAGE = {"source": "source", "apply": "apply", "config": "config", "build": "selftests",
              "boot": "guest-setup", "test": "report", "run": "report"}




def make_run_dir(out: Path) -> Path:
    """``out/<N>`` with N one more than the highest existing; mkdir is the arbiter."""
    out.mkdir(parents=True, exist_ok=True)
    nums = [int(p.name) for p in out.iterdir() if p.name.isdigit()]
    n = max(nums, default=0) + 1
    while True:
        d = out / str(n)
        try:
            d.mkdir()
            break
        except FileExistsError:
            n += 1
    latest = out / "latest"
    tmp = out / f".latest.{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(str(n))
        os.replace(tmp, latest)
    except OSError:
        pass
    return d


def kbuild_for(cache: Path, worktree_name: str, fragments: list[Path], profile: str,
               unpatched: bool = False) -> Path:
    """The persistent ``O=`` directory of a tree + profile + fragment contents.

    The unpatched base gets its own: the series touches headers that nearly every file
    includes (linux/memcontrol.h), so base and patched builds sharing one directory
    would recompile almost everything each time ``compare`` or a bisect switches."""
    prof = get_profile(profile)
    extra = f"{prof.name} {prof.base}" + (" unpatched" if unpatched else "")
    return cache / "kbuild" / kconfig.kbuild_key(worktree_name, fragments, extra)


def fragments_for(project: Path, tree: Path, profile: str) -> list[Path]:
    prof = get_profile(profile)
    kdir = project / "kconfig"
    frags = []
    selftest_cfg = tree / "tools/testing/selftests/cgroup/config"
    if selftest_cfg.is_file():
        frags.append(selftest_cfg)
    for name in BASE_FRAGMENTS + prof.fragments:
        p = kdir / name
        if not p.is_file():
            raise UserError(f"config fragment {p} not found (profile {prof.name})")
        frags.append(p)
    return frags


@dataclass
class Context:
    """What the stages hand each other (mutable, lives for one run)."""

    src: sourcemod.Source | None = None
    applied: seriesmod.AppliedTree | None = None
    config: kconfig.ConfigResult | None = None
    kernel: buildmod.BuildResult | None = None
    selftests: buildmod.SelftestsResult | None = None
    bzimage: Path | None = None
    guest_dirs: dict[str, Path | None] = field(default_factory=dict)
    vm: vmmod.Vm | None = None
    guest: Any = None
    accel: vmmod.AccelChoice | None = None
    runs: list[SuiteRun] = field(default_factory=list)
    #: Whether the kernel's .config claims the series' feature (harness.stages.inventory).
    feature: bool | None = None


def _log_buffer_wrapped(dmesg: Path, console: Path) -> bool:
    """dmesg lacks the boot banner that the console has: its start was overwritten."""
    banner = "Linux version "
    try:
        with open(dmesg, encoding="utf-8", errors="replace") as f:
            if any(banner in line for line, _ in zip(f, range(50))):
                return False
        with open(console, encoding="utf-8", errors="replace") as f:
            return any(banner in line for line in f)
    except OSError:
        return False


class Pipeline:
    def __init__(self, opts: Options, *, on_ready: Callable[["Pipeline"], None] | None = None,
                 guest_factory: Callable[..., Any] | None = None):
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
        self._file_handler = logging.FileHandler(self.run_dir / "harness.log", encoding="utf-8")
        self._file_handler.setLevel(logging.DEBUG)
        self._file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname).1s %(name)s: %(message)s"))

    # ------------------------------------------------------------ helpers --

    def path(self, name: str) -> Path:
        return self.run_dir / name

    @contextmanager
    def stage(self, name: str, log_name: str | None = None) -> Iterator[dict[str, str]]:
        """Time a stage; an exception becomes an ERROR StageResult and propagates."""
        info: dict[str, str] = {"detail": "", "status": "PASS"}
        logp = self.path(log_name) if log_name else None
        start = time.monotonic()
        log.info("== %s", name)
        try:
            yield info
        except HarnessError as e:
            st = StageResult(name, Status.ERROR, time.monotonic() - start, e.log or logp,
                             e.describe())
            self._record(st)
            raise
        except BaseException as e:
            detail = ("interrupted by SIGINT" if isinstance(e, KeyboardInterrupt) else
                      f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
            st = StageResult(name, Status.ERROR, time.monotonic() - start, logp, detail)
            self._record(st)
            raise
        st = StageResult(name, Status[info["status"]], time.monotonic() - start, logp,
                         info["detail"])
        self._record(st)

    def _record(self, st: StageResult) -> None:
        self.stages.append(st)
        self.meta.stage(st)
        if st.status in (Status.ERROR, Status.FAIL):
            log.error("%s: %s", st.name, st.detail)
        else:
            log.info("%s: %s (%.1fs)", st.name, st.detail or st.status.name.lower(),
                     st.duration_s)

    def wants(self, stage: str) -> bool:
        return STAGES.index(stage) <= STAGES.index(self.last)

    # -------------------------------------------------------------- run --

    def run(self) -> int:
        logging.getLogger().addHandler(self._file_handler)
        log.info("run directory: %s", self.run_dir)
        self.meta.update("build", {
            "command": self.o.command, "run_dir": str(self.run_dir),
            "options": {k: (str(v) if isinstance(v, Path) else v)
                        for k, v in self.o.__dict__.items() if k != "argv"},
        })
        exit_code = EXIT_NO_VERDICT
        error: HarnessError | None = None
        try:
            self._run_stages()
        except HarnessError as e:
            error = e
        except KeyboardInterrupt:
            error = HarnessError("interrupted by SIGINT")
        except OSError as e:  # e.g. ENOSPC writing a log or copying the kernel: no verdict
            error = InfraError(f"{type(e).__name__}: {e}")
        finally:
            self._cleanup()
            exit_code = self._verdict(error)
            logging.getLogger().removeHandler(self._file_handler)
            self._file_handler.close()
        return exit_code

    def _run_stages(self) -> None:
        o, c = self.o, self.ctx
        with self.stage("source", "source.log") as st:
            if self.wants("boot") and shutil.which("qemu-system-x86_64") is None:
                # Before minutes of building a kernel that could not be booted.
                raise InfraError("qemu-system-x86_64 not found (apt-get install "
                                 "qemu-system-x86): needed to boot, nothing was built")
            c.src = sourcemod.prepare_source(o.cache, o.tree, o.base, self.path("source.log"),
                                             source=o.source)
            st["detail"] = f"{c.src.description} {c.src.base_commit[:12]}"
            self.meta.update("source", {"kind": c.src.kind, "repo": str(c.src.repo),
                                        "release": c.src.release if c.src.kind == "debian" else "",
                                        "base_ref": c.src.base_ref,
                                        "base_commit": c.src.base_commit,
                                        "user_tree": str(c.src.user_tree or "")})
        if not self.wants("apply"):
            return
        worktree = o.cache / "worktrees" / c.src.worktree_prefix
        # One run at a time per worktree from apply until the build outputs are copied.
        with file_lock(o.cache / "locks" / f"{worktree.name}.lock", f"worktree {worktree.name}"):
            self._apply_config_build(worktree)
        if not self.wants("boot"):
            return
        self._boot_and_test()

    def _apply_config_build(self, worktree: Path) -> None:
        o, c = self.o, self.ctx
        assert c.src is not None
        with self.stage("apply") as st:
            series_file = o.series or (o.project / "patches" / "series")
            ser = (seriesmod.Series(None, ()) if o.no_series else  # --series none
                   seriesmod.read_series(series_file, required=o.series is not None))
            c.applied = seriesmod.apply_series(c.src, ser, worktree, self.path("series"))
            a = c.applied
            if ser.empty:
                st["detail"] = f"empty series: testing the base {c.src.base_ref} unpatched"
            else:
                st["detail"] = (f"{len(a.patches)} patches {'reused' if a.reused else 'applied'}"
                                f" on branch {a.branch}")
            self.meta.update("source", {
                "worktree": str(a.worktree), "branch": a.branch, "head_commit": a.head_commit,
                "series_file": str(ser.series_file or ""), "series_key": a.series_key,
                "patches": [{"index": p.index, "name": p.name, "subject": p.subject,
                             "commit": p.commit} for p in a.patches],
            })
        if not self.wants("config"):
            return
        assert c.applied is not None
        tree = c.applied.worktree
        with self.stage("config", "config.log") as st:
            frags = fragments_for(o.project, tree, o.profile) + widenet.suite_fragments(
                o.project, widenet.selected_suites(o))  # the mm suite's kconfig/mmtests.config
            prof = get_profile(o.profile)
            kbuild = kbuild_for(o.cache, worktree.name, frags, o.profile,
                                unpatched=not c.applied.patches)
            fdir = self.path("fragments")
            fdir.mkdir(exist_ok=True)
            for i, f in enumerate(frags):
                shutil.copy(f, fdir / f"{i}-{f.name}")
            # With no patches the tree *is* the base: options only the series adds
            # (e.g. MEMCG_RECHARGE_OFFLINE_ENABLED) are "unknown to this tree" warnings.
            c.config = kconfig.make_config(tree, c.applied.head_commit, kbuild, frags,
                                           self.path("config.log"),
                                           unknown_is_error=bool(c.applied.patches),
                                           base_config=prof.base)
            shutil.copy(c.config.config, self.path("config"))
            c.feature = inventory.config_claims(c.config.config)
            self.meta.update("inventory", {"option": inventory.FEATURE_OPTION,
                                           "feature": c.feature})
            st["detail"] = (f"{c.config.config} "
                            f"({'reused' if not c.config.regenerated else 'regenerated'}, "
                            f"{'changed' if c.config.changed else 'unchanged'}), "
                            f"{c.config.requested} requested options verified"
                            + (f", {len(c.config.warnings)} warning(s)" if c.config.warnings
                               else ""))
            self.meta.update("config", {"kbuild": str(kbuild), "sha256": c.config.config_sha256,
                                        "profile": prof.name,
                                        "base_config": prof.base,
                                        "fragments": [str(f) for f in frags],
                                        "warnings": list(c.config.warnings)})
        if not self.wants("build"):
            return
        assert c.config is not None
        kbuild = c.config.kbuild
        if o.command == "test":
            with self.stage("build") as st:
                bz = kbuild / "arch/x86/boot/bzImage"
                if not buildmod.kernel_up_to_date(c.applied.head_commit, kbuild):
                    raise UserError("no up-to-date kernel build for this tree and config: "
                                    "run `recharge-harness build` (or `run`) first")
                st["detail"] = f"using the existing {bz}"
                c.kernel = buildmod.BuildResult(kbuild, bz, self.path("build.log"), 0, True, 0, 0)
            st2 = kbuild / "kselftest" / "cgroup"
            own = kbuild / "recharge-selftests"
            c.selftests = buildmod.SelftestsResult(
                st2 if st2.is_dir() else None, own if own.is_dir() else None,
                kbuild / "usr/include", (),
                mm_dir=widenet.existing_mm_dir(kbuild, widenet.selected_suites(o)))
        else:
            # Kernel build, then headers and selftests under one hold of the cache's
            # build lock (no second wait behind someone else's kernel build).
            need_lock = not buildmod.kernel_up_to_date(c.applied.head_commit, kbuild)
            with (file_lock(kbuild_lock(o.cache), "the kernel build lock") if need_lock
                  else contextlib.nullcontext()):
                self._build_stages(tree, kbuild)
                if not self.wants("selftests"):
                    return
        # Private copies: the guest runs these even if another run rebuilds the cache.
        assert c.kernel is not None and c.selftests is not None
        kdir = self.path("kernel")
        kdir.mkdir(exist_ok=True)
        c.bzimage = kdir / "bzImage"
        shutil.copy(c.kernel.bzimage, c.bzimage)
        for origin, d in (("cgroup", c.selftests.cgroup_dir), ("own", c.selftests.own_dir),
                          (widenet.MM_ORIGIN, c.selftests.mm_dir)):
            if d is None:
                c.guest_dirs[origin] = None
                continue
            dst = self.path("guest") / origin
            shutil.copytree(d, dst, symlinks=True, dirs_exist_ok=True)
            c.guest_dirs[origin] = dst

    def _build_stages(self, tree: Path, kbuild: Path) -> None:
        o, c = self.o, self.ctx
        assert c.applied is not None
        with self.stage("build", "build.log") as st:
            c.kernel = buildmod.make_kernel(tree, c.applied.head_commit, kbuild, o.cache,
                                            self.path("build.log"), jobs=o.jobs)
            k = c.kernel
            st["detail"] = ("up to date, make skipped" if k.skipped else
                            f"{k.compiled} files compiled in {k.duration_s:.0f}s, "
                            f"{k.warnings} warnings")
            self.meta.update("build_info", {"bzimage": str(k.bzimage),
                                            "skipped": k.skipped,
                                            "duration_s": round(k.duration_s, 1),
                                            "compiled": k.compiled,
                                            "warnings": k.warnings})
        if not self.wants("selftests"):
            return
        with self.stage("selftests", "selftests.log") as st:
            c.selftests = buildmod.make_selftests(tree, kbuild, o.project,
                                                  self.path("selftests.log"), jobs=o.jobs, cache=o.cache,
                                                  tree_commit=c.applied.head_commit)
            if widenet.needs_mm(widenet.selected_suites(o)):  # only then: the default's time
                c.selftests = widenet.add_mm_selftests(
                    c.selftests, tree, kbuild, o.project, self.path("selftests.log"),
                    jobs=o.jobs, cache=o.cache)
            st["detail"] = "; ".join(c.selftests.problems) or "cgroup + project selftests built"
            if c.selftests.problems:
                st["status"] = "ERROR" if c.selftests.cgroup_dir is None else "PASS"

    def _boot_and_test(self) -> None:
        o, c = self.o, self.ctx
        assert c.bzimage is not None
        selected = suitesmod.select_suites(list(o.suites) or None, cases=o.cases)
        with self.stage("boot", "vm/console.log") as st:
            if shutil.which("qemu-system-x86_64") is None:
                raise InfraError("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
            vmdir = self.path("vm")
            ext4, swap = vmmod.make_scratch_images(vmdir, log_path=vmdir / "scratch.log")
            c.accel = vmmod.choose_accel(o.accel, c.bzimage, o.cache, vmdir)
            log.info("vm: accelerator %s: %s", c.accel.accel.upper(), c.accel.reason)
            # The guest's own lifetime bound (it runs `sleep <budget>`): enough for
            # every selected suite, so even a SIGKILLed harness leaves no guest for long.
            budget = o.budget_s if not self.wants("suites") else min(
                o.budget_s, sum(s.timeout_s for s in selected) + 900)
            spec = vmmod.VmSpec(bzimage=c.bzimage, memory=o.memory, cpus=o.cpus,
                                accel=c.accel.accel, disks=(ext4, swap), budget_s=budget,
                                force_9p=not vmmod.virtiofsd_available(),
                                tcg_multithread=o.tcg_multithread)
            self.meta.update("vm", {"accel": c.accel.accel, "accel_reason": c.accel.reason,
                                    "memory": o.memory, "cpus": o.cpus, **vmmod.host_facts()})
            c.vm = vmmod.Vm(spec, vmdir)
            c.vm.start()
            from harness.stages import ssh

            c.guest = (self.guest_factory or ssh.Guest)("127.0.0.1", c.vm.port, "root", c.vm.key_path,
                            c.vm.host_key_files())
            deadline = o.boot_timeout_s if c.accel.accel == "tcg" else min(o.boot_timeout_s, 120)
            try:
                waited = c.guest.connect(deadline, alive=c.vm.alive)
            except Interrupted:  # SIGTERM while waiting: not the guest's fault
                raise
            except HarnessError as e:
                reason = c.vm.death_reason() if not c.vm.alive() else str(e)
                raise BootError(f"guest not reachable: {reason}", log=c.vm.console_log) from e
            boot_s = time.monotonic() - c.vm.started_at
            first = c.guest.run("true", 120)  # opens the persistent shell
            if first.exit_code != 0:
                raise BootError(f"guest shell not usable: {first.error or first.stderr}",
                                log=c.vm.console_log)
            shell_s = time.monotonic() - c.vm.started_at
            st["detail"] = (f"{c.accel.accel.upper()} guest up, SSH after {boot_s:.1f}s, "
                            f"shell after {shell_s:.1f}s (port {c.vm.port})")
            self.meta.update("vm", {"port": c.vm.port, "boot_to_ssh_s": round(boot_s, 1),
                                    "boot_to_shell_s": round(shell_s, 1),
                                    "ssh_wait_s": round(waited, 1)})
        with self.stage("guest-setup", "guest-setup.log") as st:
            script = o.project / "selftests" / "guest-setup.sh"
            if not script.is_file():
                st["status"] = "ERROR"
                st["detail"] = (f"{script} missing: no scratch ext4/swap/tmpfs in the guest; "
                                "suites that need them will fail")
            else:
                res = c.guest.run(f"bash {script}", 300)
                self.path("guest-setup.log").write_text(
                    f"$ bash {script}\n{res.stdout}\n--- stderr ---\n{res.stderr}"
                    f"\n[exit {res.exit_code}]\n")
                facts = dict(l.split("=", 1) for l in res.stdout.splitlines()
                             if "=" in l and not l.startswith("#") and " " not in l.split("=")[0])
                self.meta.update("guest", facts)
                if res.exit_code != 0:
                    st["status"] = "ERROR"
                    st["detail"] = (f"guest-setup.sh exited {res.exit_code}: "
                                    f"{(res.stderr or res.error or '').strip()[-160:]}")
                else:
                    st["detail"] = f"{len(facts)} guest facts recorded"
        if self.on_ready is not None:
            self.on_ready(self)
        if not self.wants("suites"):
            return
        with self.stage("suites") as st:
            selected = suitesmod.with_stress_seconds(selected, o.stress_s)
            selected = widenet.with_soak_seconds(selected, o.soak_s)
            self.meta.update("inventory", {"suites": inventory.record(selected, c.feature)})
            c.runs = suitesmod.run_suites(c.guest, selected, c.guest_dirs, self.path("ktap"),
                                          alive=c.vm.alive if c.vm else None,
                                          feature=c.feature)
            self.meta.suites(c.runs)
            counts: dict[str, int] = {}
            for r in c.runs:
                counts[r.status.name] = counts.get(r.status.name, 0) + 1
            st["detail"] = ", ".join(f"{v} {k.lower()}" for k, v in counts.items())
        self._collect_guest_logs()

    def _collect_guest_logs(self) -> None:
        c = self.ctx
        if c.guest is None or c.vm is None or not c.vm.alive():
            return
        res = c.guest.run("dmesg", 60)
        if res.exit_code == 0:
            self.path("dmesg.log").write_text(res.stdout)

    # ---------------------------------------------------------- cleanup --

    def _cleanup(self) -> None:
        c = self.ctx
        if c.guest is not None and c.vm is not None and c.vm.alive() \
                and not self.path("dmesg.log").exists():
            try:
                self._collect_guest_logs()
            except Exception:
                log.debug("dmesg collection failed", exc_info=True)
        if c.guest is not None:
            c.guest.close()
        if c.vm is not None:
            failed = any(s.status == Status.ERROR for s in self.stages)
            if failed and self.o.keep_vm_on_failure and c.vm.alive():
                log.warning("keeping the VM (pid %s, ssh port %s) as asked; kill its session "
                            "when done: kill -- -%s", c.vm.process.pid if c.vm.process else "?",
                            c.vm.port, c.vm.process.pid if c.vm.process else "?")
            else:
                c.vm.stop()
        # Scratch images are big (sparse) and useless after the run.
        for img in ("rhscratch.ext4", "rhswap.img"):
            (self.path("vm") / img).unlink(missing_ok=True)

    def _verdict(self, error: HarnessError | None) -> int:
        """Mark stages never reached as NOTRUN, write reports, return the exit code."""
        c = self.ctx
        done = {s.name for s in self.stages}
        for name in STAGES:
            if name not in done and self.wants(name) and name != "report":
                if self.o.command == "test" and name == "selftests":
                    continue
                self._record(StageResult(name, Status.NOTRUN, 0.0, None,
                                         "not reached" if error else "skipped"))
        if self.wants("suites"):
            got = {r.name for r in c.runs}
            try:
                selected = suitesmod.select_suites(list(self.o.suites) or None,
                                                   cases=self.o.cases)
            except UserError:
                selected = []
            for s in selected:
                if s.name not in got:
                    c.runs.append(suitesmod.not_run(s, "not run: the run stopped before the "
                                                    "suites" if error else "not run"))
            self.meta.suites(c.runs)
        if self.wants("report"):
            self._report()
        code = verdict.exit_code(self.stages, c.runs if self.wants("suites") else [],
                                 self.findings, suites_expected=self.wants("suites"))
        word = {EXIT_PASS: "pass", EXIT_FAIL: "fail"}.get(code, "no verdict")
        if error is not None:
            self.meta.set("results", "error", error.describe())
        self.meta.finish(code, word)
        return code

    def _scan_kernel_log(self) -> Any:
        """Kernel-log findings per (suite, case) from dmesg (or the console if the guest died)."""
        src = self.path("dmesg.log")
        console = self.path("vm") / "console.log"
        if not src.is_file():
            src = console
        elif console.is_file() and _log_buffer_wrapped(src, console):
            # The ring buffer (LOG_BUF_SHIFT) lost the start of the log, markers included:
            # findings would land in the wrong suite. The serial console has it all.
            log.info("kernel log: dmesg lost its start (ring buffer wrapped); using %s", console)
            src = console
        if not src.is_file():
            return None
        ignore_file = self.o.project / "logscan.ignore"
        ignore = logscan.load_ignore(ignore_file) if ignore_file.is_file() else []
        findings = logscan.scan_by_case(src.read_text(encoding="utf-8", errors="replace"),
                                        ignore)
        bad = [f for fs in findings.values() for f in fs if logscan.is_failure(f)]
        self.meta.update("kernel_log", {
            "source": str(src),
            "findings": [{"suite": k[0], "case": k[1], "kind": f.kind,
                          "signature": f.signature}
                         for k, fs in findings.items() for f in fs],
        })
        if bad:
            log.error("kernel log: %d finding(s), first: %s", len(bad), bad[0].signature)
        return findings

    def _report(self) -> None:
        c = self.ctx
        start = time.monotonic()
        detail = []
        status = Status.PASS
        props = {
            "base_commit": c.src.base_commit if c.src else "",
            "head_commit": c.applied.head_commit if c.applied else "",
            "config_sha256": c.config.config_sha256 if c.config else "",
            "accel": c.accel.accel if c.accel else "",
            "accel_reason": c.accel.reason if c.accel else "",
            "virtme_ng": kconfig.vng_version(),
            "run_dir": str(self.run_dir),
        }
        self.findings = self._scan_kernel_log()
        try:
            write_junit(c.runs, self.path("junit.xml"), props, self.findings)
            detail.append(f"junit: {self.path('junit.xml')}")
        except Exception as e:
            status = Status.ERROR
            detail.append(f"junit writer failed: {type(e).__name__}: {e}")
            log.debug("junit", exc_info=True)
        stages = list(self.stages) + [StageResult("report", status, time.monotonic() - start,
                                                  None, "; ".join(detail))]
        text = render_summary(c.runs, stages, self.findings)
        self.path("summary.txt").write_text(text)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        self._record(stages[-1])
