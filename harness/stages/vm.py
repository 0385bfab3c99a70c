"""The guest machine with virtme-ng: the vng command line, its scratch disks, the VM.

``vng --run <bzImage> --user root --memory M --cpus C -v --append net.ifnames=0 ...
[--disable-kvm --qemu-opts=-accel tcg,thread=single] --qemu-opts=<user-mode NIC with
hostfwd 127.0.0.1:PORT -> 10.0.2.15:22> --disk <ext4> --disk <swap> -- sh guest-init.sh
READY BUDGET SSHD_CONFIG``: a headless guest whose lifetime is bounded by ``budget``
even if the harness dies, reachable over SSH on 127.0.0.1:PORT.

vng runs in its own session; stopping the VM kills the whole session (QEMU,
virtiofsd, vng's shell).  vng's HOME is a private 0700 directory of the run.
Nothing here starts a guest by itself: :func:`harness.stages.boot.boot` does.

**The guest's sshd is the harness's, not virtme-ng's.**  With ``--ssh``, virtme-ng's
init runs the guest command only after DHCP (busybox udhcpc and a bash script) and its
``virtme-sshd-script`` (a bash script of a dozen programs) are done: under TCG the
command started ~7.6 s into the guest's life, and vng made an RSA host key on the host
first (1.2 s).  Now vng gets no ``--ssh``: the QEMU NIC and its port forward come from
:func:`net_qemu_opts`, and the guest command (:func:`guest_command`: the script
``guest-init.sh`` next to this module, read from the host's file system, the guest's
root) starts ~3.5 s in, gives eth0 QEMU's user-mode address itself, and starts the
host's sshd with :mod:`harness.stages.sshd`'s per-run config (Ed25519 keys made for the
run, no PAM).

**The guest's SSH sessions read none of the host root's start-up files.**  The guest's
``/`` is the host's ``/`` (9p), and sshd runs every command, the harness's shell
included, as ``$SHELL -c ...`` of root's passwd entry with ``HOME`` from it; Debian's
bash then reads ``~/.bashrc`` (it was started by sshd: SSH_CLIENT is set), i.e. the
*host* root's (pyenv, cargo, ...: 3-9 s under TCG before the first command of every
session).  ``guest-init.sh`` gives root, in the guest only (its /etc is a tmpfs
overlay), the home ``/run/recharge-harness/root`` (an empty tmpfs directory) and
``/bin/sh`` as login shell before it starts sshd, then prints :data:`GUEST_READY` on
the console; :func:`harness.stages.boot.boot` connects only once it has seen that line
(:meth:`Vm.guest_ready`).  A step that fails prints :data:`GUEST_FAILED` with the
cause, and the boot fails with it at once.  The earlier attempt, vng's ``--rwdir
/root=<empty dir>``, hid everything under the host's /root, the run directory included
when it lives there.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import socket
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import proc
from harness.errors import BootError, InfraError, UserError
from harness.stages import sshd as sshdmod
from harness.stages.config import vng_tool

log = logging.getLogger(__name__)

#: How long to watch a fresh vng for an immediate exit (e.g. QEMU could not bind the port).
PORT_CHECK_S = 3.0
TCG_QEMU_OPTS = "-accel tcg,thread=single"
_VIRTIOFSD_CANDIDATES = ("/usr/libexec/virtiofsd", "/usr/lib/virtiofsd", "/usr/lib/qemu/virtiofsd")
_PORT_BUSY_RE = re.compile(r"host forwarding rule|Could not set up host forwarding|Address already in use",
                           re.I)
_PANIC_RE = re.compile(r"Kernel panic - not syncing.*|BUG: .*|Oops: .*")


@dataclass(frozen=True)
class VmSpec:
    bzimage: Path
    memory: str = "3G"
    cpus: int = 2
    accel: str = "tcg"
    disks: tuple[Path, ...] = ()
    budget_s: int = 3600
    force_9p: bool = False
    tcg_multithread: bool = False
    extra_append: tuple[str, ...] = ()
    #: more QEMU options, each one ``--qemu-opts=`` (e.g. a TCG plugin: harness.stages.insncount)
    qemu_opts: tuple[str, ...] = ()


def parse_memory(text: str) -> str:
    """Validate ``--memory`` (e.g. 3G, 1536M, 2048); return it unchanged."""
    if not re.fullmatch(r"\d+[MGmg]?", text) or int(re.sub(r"\D", "", text)) == 0:
        raise UserError(f"--memory {text!r}: expected a size like 3G or 1536M")
    return text.upper()


@functools.lru_cache(maxsize=1)
def virtiofsd_available() -> bool:
    """True if a *Rust* virtiofsd is installed (the one vng can use).

    QEMU 7.2's C virtiofsd (Debian 12: /usr/lib/qemu/virtiofsd) answers
    ``--version`` too, but cannot start the way vng runs it: vng then waits ~3 s
    and falls back to 9p.  Passing ``--force-9p`` right away saves that wait.
    """
    cands = [shutil.which("virtiofsd"), *_VIRTIOFSD_CANDIDATES, "/usr/lib/virtiofsd/virtiofsd"]
    for c in cands:
        if not c or not os.access(c, os.X_OK) or os.path.isdir(c):
            continue
        try:
            res = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        text = res.stdout + res.stderr
        if res.returncode == 0 and "QEMU" not in text and "Fabrice Bellard" not in text:
            return True
    return False


#: The kernel hands this ``--append`` to the guest's init as an environment variable,
#: and udevd (virtme-ng's init starts it when the host has one) takes it as its kernel
#: command line.  Needed when the host is a container (its /.dockerenv is the guest's
#: too): systemd then reads PID 1's arguments instead of /proc/cmdline, misses
#: net.ifnames=0 and renames eth0: no network, no SSH.
UDEV_CMDLINE_ENV = "SYSTEMD_PROC_CMDLINE"
#: What the guest command prints (on a line of its own, console and kmsg) once the
#: guest's sshd runs and its sessions start without the host root's start-up files.
GUEST_READY = "RECHARGE-HARNESS-GUEST-READY"
#: ... and, followed by ": <cause>", when one of its steps failed.
GUEST_FAILED = GUEST_READY + "-FAILED"
#: The guest's private directory (its /run: tmpfs): root's home, sshd's pid file, the
#: passwd and shadow copies where /etc is read-only
GUEST_PRIVATE = "/run/recharge-harness"
#: Where the guest's sshd writes its pid once it listens (guest-init.sh waits for it)
GUEST_SSHD_PID = f"{GUEST_PRIVATE}/sshd.pid"
#: The guest's address on QEMU's user-mode network (guest-init.sh sets it: no DHCP)
GUEST_ADDR = "10.0.2.15"
_LINE_START = r"^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s*)?"
_READY_LINE = re.compile(rf"{_LINE_START}{GUEST_READY}\s*$", re.M)
_FAILED_LINE = re.compile(rf"{_LINE_START}{GUEST_FAILED}: (.*?)\s*$", re.M)


#: The guest command's script (see the module's doc and the script's own header).
GUEST_INIT = Path(__file__).with_name("guest-init.sh")


def guest_command(budget_s: int, sshd_config: Path) -> list[str]:
    """The command vng runs in an SSH guest: :data:`GUEST_INIT` (network, root's home and
    login shell, the harness's sshd with ``sshd_config``), :data:`GUEST_READY` printed,
    then ``sleep budget`` (the guest's lifetime bound).  The script is read from the
    host's file system (the guest's root): only its path travels on the kernel command
    line (base64-encoded, 2048 bytes on x86)."""
    return ["sh", str(GUEST_INIT), GUEST_READY, str(int(budget_s)), str(sshd_config),
            GUEST_SSHD_PID]


def net_qemu_opts(port: int) -> str:
    """QEMU's options for the guest's NIC: user-mode network, host port -> guest's sshd."""
    return (f"-netdev user,id=rhnet,net=10.0.2.0/24,"
            f"hostfwd=tcp:127.0.0.1:{port}-{GUEST_ADDR}:22 -device virtio-net-pci,netdev=rhnet")


def vng_argv(spec: VmSpec, port: int, command: list[str] | None = None) -> list[str]:
    """The exact vng command line (pure function, unit tested).  With a ``port``, the
    guest has a NIC forwarded from it and ``command`` is the guest command
    (:func:`guest_command`); without, no network and ``sleep budget`` by default."""
    argv = [vng_tool("vng"), "--run", str(spec.bzimage), "--user", "root",
            "--memory", spec.memory, "--cpus", str(spec.cpus), "-v"]
    if port:
        argv += ["--append", "net.ifnames=0", "--append", f"{UDEV_CMDLINE_ENV}=net.ifnames=0"]
    if spec.force_9p:
        argv.append("--force-9p")
    for a in spec.extra_append:
        argv += ["--append", a]
    for d in spec.disks:
        if any(c in str(d) for c in "=, "):
            raise UserError(f"disk image path {d} must not contain '=', ',' or spaces (vng)")
        argv += ["--disk", str(d)]
    if spec.accel == "tcg":
        argv.append("--disable-kvm")
        if not spec.tcg_multithread:
            argv.append(f"--qemu-opts={TCG_QEMU_OPTS}")
    elif port and not spec.force_9p:
        # vng picks QEMU's microvm machine for KVM with virtio-fs; the NIC is PCI
        argv.append("--disable-microvm")
    if port:
        argv.append(f"--qemu-opts={net_qemu_opts(port)}")
    argv += [f"--qemu-opts={o}" for o in spec.qemu_opts]
    if command is None:
        if port:
            raise ValueError("vng_argv: a guest with SSH needs its guest command")
        command = ["sleep", str(spec.budget_s)]
    argv += ["--", *command]
    return argv


def vng_env(home: Path) -> dict[str, str]:
    """Environment for vng: a private HOME, and its own bin dir on PATH (vng runs
    ``virtme-run`` through the shell, so an un-activated venv would not find it)."""
    bindir = str(Path(vng_tool("vng")).parent)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        path = bindir + os.pathsep + path
    return {"HOME": str(home), "PATH": path}


#: Ports of this process's guests, from the pick until the guest stops: two guests
#: started at once (``--parallel``) never pick the same one before QEMU binds it.
_PORTS_TAKEN: set[int] = set()
_PORTS_LOCK = threading.Lock()


def free_port(avoid: set[int] | None = None) -> int:
    """A currently free TCP port on 127.0.0.1 (the kernel picks it), none of ``avoid``
    and none another guest of this process holds."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with _PORTS_LOCK:
            if port not in _PORTS_TAKEN and (not avoid or port not in avoid):
                _PORTS_TAKEN.add(port)
                return port
    raise InfraError("could not find a free TCP port on 127.0.0.1")  # pragma: no cover


def release_port(port: int) -> None:
    """A port :func:`free_port` returned is no longer held."""
    with _PORTS_LOCK:
        _PORTS_TAKEN.discard(port)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# --------------------------------------------------------------- scratch --


def make_scratch_images(directory: Path, ext4_mib: int = 1024, swap_mib: int = 512,
                        log_path: Path | None = None) -> tuple[Path, Path]:
    """Sparse ``rhscratch.ext4`` (mkfs.ext4 -L rhscratch) and ``rhswap.img`` (mkswap -L rhswap)."""
    directory.mkdir(parents=True, exist_ok=True)
    ext4 = directory / "rhscratch.ext4"
    swap = directory / "rhswap.img"
    for path, size in ((ext4, ext4_mib), (swap, swap_mib)):
        with open(path, "wb") as f:
            f.truncate(size * 1024 * 1024)
    for argv in (
        [_sbin("mkfs.ext4"), "-F", "-q", "-L", "rhscratch", str(ext4)],
        [_sbin("mkswap"), "-L", "rhswap", str(swap)],
    ):
        res = proc.run(argv, cwd=directory, timeout=120, log_path=log_path)
        if res.returncode != 0:
            raise InfraError(f"{Path(argv[0]).name} failed: {res.tail[-1] if res.tail else ''}",
                             log=log_path)
    return ext4, swap


def _sbin(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()), None)
    if not found:
        raise InfraError(f"{name} not found (apt-get install e2fsprogs util-linux)")
    return found


# -------------------------------------------------------------------- VM --


def private_home(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, stat.S_IRWXU)
    return path


@dataclass
class Vm:
    """A running guest.  ``stop()`` (or leaving the ``with`` block) kills everything."""

    spec: VmSpec
    workdir: Path  # console.log, vng.stdout, vng-cmd.txt, home/, ssh/
    port: int = 0
    process: proc.Background | None = None
    started_at: float = 0.0
    #: when the guest printed GUEST_READY (monotonic; None: not seen yet)
    ready_at: float | None = None
    attempts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # vng runs in workdir: its disks and the guest's sshd files need absolute paths
        self.workdir = self.workdir.absolute()

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    @property
    def home(self) -> Path:
        return self.workdir / "home"

    @property
    def sshd(self) -> sshdmod.SshdFiles:
        """The guest sshd's per-run keys and config (made by :meth:`start`)."""
        return sshdmod.SshdFiles(self.workdir / "ssh")

    @property
    def key_path(self) -> Path:
        return self.sshd.client_key

    def host_key_files(self) -> list[Path]:
        pub = self.sshd.host_key_pub
        return [pub] if pub.is_file() else []

    def start(self, port_retries: int = 3) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        private_home(self.home)
        files = sshdmod.write_files(self.sshd.directory, GUEST_SSHD_PID)
        command = guest_command(self.spec.budget_s, files.config)
        tried: set[int] = set()
        for _attempt in range(1, port_retries + 1):
            release_port(self.port)
            self.port = free_port(tried)
            tried.add(self.port)
            argv = vng_argv(self.spec, self.port, command)
            (self.workdir / "vng-cmd.txt").write_text(" ".join(argv) + "\n")
            log.info("vm: starting %s guest, ssh on 127.0.0.1:%d (console: %s)",
                     self.spec.accel.upper(), self.port, self.console_log)
            self.started_at = time.monotonic()
            self.ready_at = None
            self.process = proc.Background(
                argv, cwd=self.workdir, stdout_path=self.workdir / "vng.stdout",
                stderr_path=self.console_log, env=vng_env(self.home),
            )
            # A port grabbed by someone else between free_port() and QEMU's bind
            # makes QEMU exit at once; detect that and pick another port.
            deadline = time.monotonic() + PORT_CHECK_S
            while time.monotonic() < deadline and self.process.poll() is None:
                time.sleep(0.2)
            if self.process.poll() is not None and _PORT_BUSY_RE.search(self.console_text()):
                self.attempts.append(f"port {self.port} taken")
                log.warning("vm: port %d was taken, retrying with another one", self.port)
                self.process.stop()
                continue
            return
        raise BootError(f"could not start the guest: ports {sorted(tried)} all taken",
                        log=self.console_log)

    def console_text(self) -> str:
        try:
            return self.console_log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def guest_ready(self) -> bool:
        """Whether the guest command printed :data:`GUEST_READY` (console or vng's stdout;
        a line of its own: vng -v echoes the command itself).  Raises :class:`BootError`
        with the cause when it printed :data:`GUEST_FAILED` instead."""
        if self.ready_at is None:
            for f in (self.console_log, self.workdir / "vng.stdout"):
                try:
                    text = f.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                failed = _FAILED_LINE.search(text)
                if failed:
                    raise BootError(f"guest set-up failed: {failed.group(1)}",
                                    log=self.console_log)
                if _READY_LINE.search(text):
                    self.ready_at = time.monotonic()
                    break
        return self.ready_at is not None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def death_reason(self) -> str:
        """Why the guest is gone, from the console log."""
        text = self.console_text()
        rc = self.process.poll() if self.process else None
        m = _PANIC_RE.search(text)
        if m:
            return f"guest died: {m.group(0).strip()[:200]}"
        tail = [l for l in text.splitlines() if l.strip()][-1:] or ["no console output"]
        return f"vng exited with status {rc}: {tail[0].strip()[:200]}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        release_port(self.port)
        # The private keys are of no use once the guest is gone.
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.sshd.directory, ignore_errors=True)

    def __enter__(self) -> "Vm":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


