"""Stage ``boot`` (and ``guest-setup``): the only way to start a guest.

:func:`boot` is a context manager: scratch disks, the accelerator (KVM or TCG,
:mod:`harness.stages.accel`), the VM (:mod:`harness.stages.vm`), the SSH session and
its first shell.  Whatever happens inside the ``with`` block (normal exit, an
exception, Ctrl-C, SIGTERM) the guest's whole session (vng, QEMU, virtiofsd) is
stopped on the way out and the scratch images removed; the one exception is a guest
the caller explicitly keeps (``Booted.keep``, ``--keep-vm-on-failure``).

``run`` (harness.modes.run), ``bench`` (harness.modes.bench.hotpath) and
``scripts/insncount-check.py`` boot through it, with the same vng flags and disks.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from harness import proc
from harness.errors import BootError, HarnessError, InfraError, Interrupted
from harness.model import Options
from harness.stages import accel as accelmod
from harness.stages import vm as vmmod
from harness.stages.config import vng_version

log = logging.getLogger(__name__)

#: Makes the SSH session to a started VM: ``(host, port, user, key, host_key_files)``
#: (harness.stages.ssh.Guest; the unit tests inject a fake guest).
GuestFactory = Callable[..., Any]


@dataclass(frozen=True)
class BootSpec:
    """How to boot: the run options that concern the guest."""

    memory: str = "3G"
    cpus: int = 2
    accel: str = "auto"  # auto | kvm | tcg
    tcg_multithread: bool = False
    boot_timeout_s: float = 300.0
    #: the guest's own lifetime bound (it runs ``sleep <budget>``)
    budget_s: int = 3600

    @classmethod
    def from_options(cls, opts: Options, budget_s: int = 3600) -> BootSpec:
        return cls(memory=opts.memory, cpus=opts.cpus, accel=opts.accel,
                   tcg_multithread=opts.tcg_multithread, boot_timeout_s=opts.boot_timeout_s,
                   budget_s=budget_s)


@dataclass
class Booted:
    """A guest that is up: its VM, its SSH session, and how long it took."""

    vm: vmmod.Vm
    guest: Any
    accel: accelmod.AccelChoice
    boot_to_ssh_s: float
    boot_to_shell_s: float
    ssh_wait_s: float
    #: host seconds from vng start to the guest clock's 0 (from /proc/uptime)
    guest_zero_s: float | None
    #: host seconds from vng start to the guest command's ready line
    #: (:data:`harness.stages.vm.GUEST_READY`; None: not seen, connected anyway)
    guest_ready_s: float | None = None
    #: set by the caller to leave the guest running on exit (--keep-vm-on-failure)
    keep: bool = False

    @property
    def first_command_s(self) -> float:
        """SSH ready -> first command done: a new session's start-up (sshd, root's
        login shell; none of the host root's start-up files: harness.stages.vm)."""
        return round(self.boot_to_shell_s - self.boot_to_ssh_s, 2)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM/SIGHUP raise :class:`Interrupted` while a guest runs (so the ``finally``
    below stops it), unless the program installed its own handler (harness.cli does)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            saved[sig] = signal.signal(sig, _raise_interrupted)
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def _guest_factory(factory: GuestFactory | None) -> GuestFactory:
    if factory is not None:
        return factory
    from harness.stages.ssh import Guest

    return Guest


@contextlib.contextmanager
def boot(bzimage: Path, workdir: Path, spec: BootSpec, cache: Path, *,
         qemu_opts: Callable[[str], tuple[str, ...]] | None = None,
         guest_factory: GuestFactory | None = None,
         on_accel: Callable[[accelmod.AccelChoice], None] | None = None,
         accel: accelmod.AccelChoice | None = None,
         on_vm: Callable[[vmmod.Vm], None] | None = None) -> Iterator[Booted]:
    """Boot ``bzImage`` with its console, vng command and scratch disks in ``workdir``.

    ``qemu_opts(accel)``: extra QEMU options for the chosen accelerator (e.g. a TCG
    plugin); ``on_accel``: told the accelerator before the guest starts (recorded even
    if the boot then fails); ``accel``: the accelerator already chosen (no probe: the
    guests of ``--parallel`` share one choice); ``on_vm``: given the VM before it starts,
    so that another thread can stop it (an interrupt while several guests boot).
    Raises :class:`BootError` when the guest is not reachable.
    """
    if shutil.which("qemu-system-x86_64") is None:
        raise InfraError("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    with signals_raise():
        ext4, swap = vmmod.make_scratch_images(workdir, log_path=workdir / "scratch.log")
        vm: vmmod.Vm | None = None
        guest: Any = None
        booted: Booted | None = None
        try:
            choice = accel or accelmod.choose_accel(spec.accel, bzimage, cache, workdir)
            if accel is None:
                log.info("vm: accelerator %s: %s", choice.accel.upper(), choice.reason)
            if on_accel is not None:
                on_accel(choice)
            vm = vmmod.Vm(vmmod.VmSpec(
                bzimage=bzimage, memory=spec.memory, cpus=spec.cpus, accel=choice.accel,
                disks=(ext4, swap), budget_s=spec.budget_s,
                force_9p=not vmmod.virtiofsd_available(), tcg_multithread=spec.tcg_multithread,
                qemu_opts=qemu_opts(choice.accel) if qemu_opts else ()), workdir)
            if on_vm is not None:
                on_vm(vm)
            vm.start()
            guest = _guest_factory(guest_factory)("127.0.0.1", vm.port, "root", vm.key_path,
                                                  vm.host_key_files())
            booted = _connect(vm, guest, choice, spec)
            yield booted
        finally:
            if guest is not None:
                guest.close()
            if vm is not None:
                if booted is not None and booted.keep and vm.alive():
                    pid = vm.process.pid if vm.process else "?"
                    log.warning("keeping the VM (pid %s, ssh port %s) as asked; kill its "
                                "session when done: kill -- -%s", pid, vm.port, pid)
                else:
                    vm.stop()
            # Scratch images are big (sparse) and useless once the guest is gone.
            for img in (ext4, swap):
                img.unlink(missing_ok=True)


def _connect(vm: vmmod.Vm, guest: Any, choice: accelmod.AccelChoice, spec: BootSpec) -> Booted:
    """Wait for the guest's ready line and SSH, open the first shell; the timings."""
    deadline = spec.boot_timeout_s if choice.accel == "tcg" else min(spec.boot_timeout_s, 120)
    try:
        waited = guest.connect(deadline, alive=vm.alive, ready=vm.guest_ready)
    except (Interrupted, BootError):  # SIGTERM while waiting; the guest said why
        raise
    except HarnessError as e:
        reason = vm.death_reason() if not vm.alive() else str(e)
        raise BootError(f"guest not reachable: {reason}", log=vm.console_log) from e
    ssh_s = time.monotonic() - vm.started_at
    first = guest.run("cat /proc/uptime", 120)  # opens the persistent shell
    if first.exit_code != 0:
        raise BootError(f"guest shell not usable: {first.error or first.stderr}",
                        log=vm.console_log)
    shell_s = time.monotonic() - vm.started_at
    zero = None
    with contextlib.suppress(ValueError, IndexError):
        zero = round(shell_s - float((first.stdout or "").split()[0]), 2)
    ready_s = round(vm.ready_at - vm.started_at, 1) if vm.ready_at is not None else None
    booted = Booted(vm, guest, choice, round(ssh_s, 2), round(shell_s, 2), round(waited, 2), zero,
                    guest_ready_s=ready_s)
    log.info("vm: SSH ready -> first command done in %.2fs", booted.first_command_s)
    return booted


@dataclass(frozen=True)
class SetupResult:
    """What ``selftests/guest-setup.sh`` did: its exit code and the facts it printed."""

    exit_code: int | None
    facts: dict[str, str]
    detail: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def guest_setup(guest: Any, project: Path, log_path: Path) -> SetupResult:
    """Stage ``guest-setup``: scratch ext4, swap and tmpfs mounts in the guest."""
    script = project / "selftests" / "guest-setup.sh"
    if not script.is_file():
        return SetupResult(None, {}, f"{script} missing: no scratch ext4/swap/tmpfs in the "
                                     "guest; suites that need them will fail")
    res = guest.run(f"bash {script}", 300)
    log_path.write_text(f"$ bash {script}\n{res.stdout}\n--- stderr ---\n{res.stderr}"
                        f"\n[exit {res.exit_code}]\n")
    facts = dict(l.split("=", 1) for l in (res.stdout or "").splitlines()
                 if "=" in l and not l.startswith("#") and " " not in l.split("=")[0])
    if res.exit_code != 0:
        return SetupResult(res.exit_code, facts, f"guest-setup.sh exited {res.exit_code}: "
                           f"{(res.stderr or res.error or '').strip()[-160:]}")
    return SetupResult(0, facts, f"{len(facts)} guest facts recorded")


#: After an interrupt or an error, the most seconds the harness waits for the guest's
#: dmesg (on a fresh shell: the old one may still run the interrupted program).
DMESG_BRIEF_S = 20.0


def collect_dmesg(guest: Any, vm: vmmod.Vm, path: Path, *, brief: bool = False) -> None:
    """The guest's dmesg into ``path`` (once, while it is alive).

    ``brief``: the run is stopping (Ctrl-C, SIGTERM, an error): one try of at most
    :data:`DMESG_BRIEF_S` seconds, so that the way out takes seconds, not minutes."""
    if not vm.alive() or path.exists():
        return
    try:
        if brief:
            res = guest.run("dmesg", DMESG_BRIEF_S - 5, kill_after=2, deadline_s=DMESG_BRIEF_S)
        else:
            res = guest.run("dmesg", 60)
    except Exception:
        log.debug("dmesg collection failed", exc_info=True)
        return
    if res.exit_code == 0:
        path.write_text(res.stdout)
    elif brief:
        log.warning("vm: no dmesg (%s); the kernel log is the console's",
                    res.error or f"exit {res.exit_code}")


def qemu_version() -> str:
    q = shutil.which("qemu-system-x86_64")
    if not q:
        return "not installed"
    try:
        res = proc.run([q, "--version"], cwd=Path("/"), timeout=20)
        return res.output.splitlines()[0].strip() if res.output else "unknown"
    except InfraError:
        return "unknown"


def host_facts() -> dict[str, str]:
    return {"qemu": qemu_version(), "virtme-ng": vng_version(),
            "virtiofsd": "yes" if vmmod.virtiofsd_available() else "no (9p root)"}
