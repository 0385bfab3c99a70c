"""The bad-input matrix, with fakes only (no kernel build, no QEMU).

Every case ends with exit code 2, a one-line ``E:`` cause on stderr, the run
directory's logs kept, no process of the run left behind and no ``*.tmp`` file
left in the run directory or the cache.

* in process (``cli.main`` with monkeypatched tools, like ``test_cli``): a guest
  whose kernel panics, a guest whose SSH never answers, QEMU not installed,
  the disk filling up during the build;
* in a subprocess (a real process to send SIGINT/SIGTERM to, and to run two at
  once): every pipeline stage interrupted, two simultaneous runs.

The subprocesses run ``_DRIVER`` (below), not bare ``python -m harness``: the
harness prefers the ``vng`` next to its interpreter (this venv has the real
one, which would start the real QEMU).  The driver points ``vng_tool`` at the
fakes (the kernel-build lock is in the test's own cache) and, when asked,
``harness.stages.ssh.Guest`` at a ``fakes.FakeGuest``;
the rest (git, make, qemu) is found on ``PATH`` like in production.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_vm import _alive

from harness import cli
from harness.stages import build as buildmod
from harness.stages import vm

from fakes import make_patch, write_exe

UNIT_DIR = Path(__file__).resolve().parent
REAL_GIT = shutil.which("git") or "/usr/bin/git"
REAL_MAKE = shutil.which("make") or "/usr/bin/make"
PANIC = "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"

# --------------------------------------------------------------- fakes --

#: Fake tools, steered by environment variables so one set serves every case.
#: Each records "<name>.pid" (its own pid) after "<name>-child.pid" (a child in its
#: process group) in $FAKE_STATE: the test polls for "<name>.pid" to know the stage
#: is blocked, and checks afterwards that both processes are gone.
_HANG = """
hang() {  # hang NAME: a child in our process group, pids recorded, wait forever
  sleep 300 & echo $! > "$FAKE_STATE/$1-child.pid"
  echo $$ > "$FAKE_STATE/$1.pid.new" && mv "$FAKE_STATE/$1.pid.new" "$FAKE_STATE/$1.pid"
  wait; exit 1
}
"""

FAKE_VNG = """#!/bin/sh
{hang}
port=""; prev=""
for a in "$@"; do
  case $a in *hostfwd=tcp:127.0.0.1:*) port=${{a#*hostfwd=tcp:127.0.0.1:}}; port=${{port%%-*}} ;; esac
done
case "$FAKE_VNG_MODE" in
  panic)  # the kernel console (vng -v) goes to stderr, like virtme-run's
    echo "[    0.000000] Linux version 6.12.0-fake" >&2
    echo "[    0.912345] {panic}" >&2
    echo "[    0.912400] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs ]---" >&2
    echo $$ > "$FAKE_STATE/vng.pid"; exit 1 ;;
  sleep) hang vng ;;  # a guest that never brings up sshd (nothing listens on the port)
  *)  # "up": the guest command's ready line (harness.stages.vm.GUEST_READY) on the
      # console; hold the forwarded port like QEMU's hostfwd; accept, never answer
    echo "[    6.661648] RECHARGE-HARNESS-GUEST-READY" >&2
    python3 -c 'import os, socket, sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); held = []
while True:
    held.append(s.accept()[0])
    open(os.environ["FAKE_STATE"] + "/ssh-knock", "a").write("knock")' "$port" &
    echo $! > "$FAKE_STATE/vng-child.pid"
    echo $$ > "$FAKE_STATE/vng.pid.new" && mv "$FAKE_STATE/vng.pid.new" "$FAKE_STATE/vng.pid"
    wait; exit 1 ;;
esac
"""

FAKE_MAKE = """#!/bin/sh
{hang}
for a in "$@"; do
  if [ "$a" = bzImage ]; then
    case "$FAKE_MAKE_MODE" in
      hang) {make} "$@"; hang make ;;  # built, then interrupted before the stamp
      enospc*) cat "$FAKE_STATE/$FAKE_MAKE_MODE.out"; echo $$ > "$FAKE_STATE/make.pid"; exit 2 ;;
    esac
  fi
done
exec {make} "$@"
"""

FAKE_GIT = """#!/bin/sh
{hang}
case "$FAKE_GIT_HANG:$*" in
  # do the real work, then block: interrupted right after changing the cache
  source:*" update-ref "*) {git} "$@"; hang git ;;  # only the source stage runs update-ref
  apply:*" am "*) {git} "$@"; hang git ;;
esac
exec {git} "$@"
"""

FAKE_CONFIGKERNEL = """#!/bin/sh
{hang}
for a in "$@"; do case $a in O=*) out=${{a#O=}};; esac; done
make O="$out" x86_64_defconfig >/dev/null
[ "$FAKE_CFG_MODE" = hang ] && hang cfg
exit 0
"""

FAKE_QEMU = "#!/bin/sh\necho 'QEMU emulator version 7.2.0 (fake)'\n"


def install_fakes(bindir: Path, *, qemu: bool = True) -> Path:
    """The fake vng, make, git, virtme-configkernel (and qemu) in ``bindir``."""
    hang = _HANG
    write_exe(bindir / "vng", FAKE_VNG.format(hang=hang, panic=PANIC))
    write_exe(bindir / "make", FAKE_MAKE.format(hang=hang, make=REAL_MAKE))
    write_exe(bindir / "git", FAKE_GIT.format(hang=hang, git=REAL_GIT))
    write_exe(bindir / "virtme-configkernel", FAKE_CONFIGKERNEL.format(hang=hang))
    if qemu:
        write_exe(bindir / "qemu-system-x86_64", FAKE_QEMU)
    return bindir


_DRIVER = r'''
import os, sys, time
from pathlib import Path
sys.path.insert(0, os.environ["HARNESS_UNIT_TESTS"])
import harness.stages.build, harness.stages.config, harness.paths, harness.stages.vm
from harness.errors import InfraError

BIN = Path(os.environ["FAKE_BIN"])

def vng_tool(name):
    p = BIN / name
    if not p.is_file():
        raise InfraError(f"{name} not found (fake bin {BIN})")
    return str(p)

harness.stages.config.vng_tool = harness.stages.vm.vng_tool = vng_tool
harness.stages.vm.PORT_CHECK_S = 0.3
MODE = os.environ.get("FAKE_GUEST")
if MODE:
    import harness.stages.ssh
    from fakes import FakeGuest, run_programs

    class Guest(FakeGuest):
        def __init__(self, host, port, user, key, host_keys=None):
            super().__init__(port=port, sysctl=None, ncpu=None, programs=run_programs())

        def run(self, command, timeout, **kw):
            if MODE == "hang" and "test_memcontrol" in command:
                state = Path(os.environ["FAKE_STATE"])  # the marker: the harness's pid
                (state / "suites.pid").write_text(f"{os.getpid()}\n")
                time.sleep(300)  # a suite that never ends
            return super().run(command, timeout, **kw)

        def connect(self, deadline_s, alive=None, ready=None):
            meet = os.environ.get("FAKE_RENDEZVOUS")
            if meet:  # hold this guest up until the other run's guest is up too
                Path(meet, str(os.getpid())).write_text("up\n")
                end = time.monotonic() + 30
                while len(os.listdir(meet)) < 2 and time.monotonic() < end:
                    time.sleep(0.05)
            return super().connect(deadline_s, alive)

    harness.stages.ssh.Guest = Guest
from harness.cli import main
sys.exit(main(sys.argv[1:]))
'''


# ------------------------------------------------------------- helpers --


def pids(state: Path) -> dict[str, int]:
    """Every pid the fakes recorded in ``state``."""
    out = {}
    for p in state.glob("*.pid"):
        text = p.read_text().strip()
        if text:
            out[p.stem] = int(text)
    return out


def assert_all_gone(state: Path, deadline_s: float = 3.0) -> dict[str, int]:
    """Every recorded process is gone: ``os.kill(pid, 0)`` raises ProcessLookupError, or
    the pid is a zombie (killed, waiting for a container init that may never reap it).

    The harness kills a child's whole session before it returns; the short deadline
    only gives the kernel time to finish SIGKILLed processes off.
    """
    recorded = pids(state)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return _alive(pid)  # test_vm's check: exists and is not a zombie

    end = time.monotonic() + deadline_s
    while time.monotonic() < end and any(alive(p) for p in recorded.values()):
        time.sleep(0.05)
    left = {k: p for k, p in recorded.items() if alive(p)}
    assert not left, f"processes left behind: {left}"
    return recorded


def tmp_files(*roots: Path) -> list[Path]:
    """Leftover temporary files: atomic-write temporaries, half-made imports, .latest.<pid>."""
    found: list[Path] = []
    for root in roots:
        if not root.exists():
            continue
        for p in root.rglob("*"):
            n = p.name
            if n.endswith(".tmp") or ".tmp-" in n or n.startswith(".latest.") \
                    or n.endswith(".pid.new"):
                found.append(p)
    return found


def e_lines(err: str) -> list[str]:
    return [l for l in err.splitlines() if l.startswith("E: ")]


def assert_one_line_cause(err: str, *needles: str) -> str:
    """The verdict line (the last ``E:``) names the cause; no traceback anywhere."""
    assert "Traceback" not in err, err
    lines = e_lines(err)
    assert lines, err
    last = lines[-1]
    for n in needles:
        assert n in last, f"{n!r} not in {last!r}\n{err}"
    return last


def meta(run: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((run / "metadata.json").read_text())


# ------------------------------------------------- in-process: the guest --


@pytest.fixture
def fakes(env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """test_cli's ``env`` + the fake tools first on PATH + a guest-setup script."""
    tree, project, out = env
    bindir = install_fakes(tmp_path / "fbin")
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("FAKE_STATE", str(state))
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(vm, "vng_tool", lambda name: str(bindir / name))
    monkeypatch.setattr(vm, "PORT_CHECK_S", 0.3)
    (project / "selftests").mkdir()
    (project / "selftests" / "guest-setup.sh").write_text("#!/bin/sh\n")
    return tree, project, out, state


def _run(capsys, tree: Path, project: Path, *extra: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code = cli.main(["run", "--tree", str(tree), "--project", str(project), "--accel", "tcg",
                     "--suite", "test_memcontrol", *extra])
    return code, capsys.readouterr().err


def test_kernel_panic_at_boot_is_a_boot_error_console_kept(fakes, capsys, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                           monkeypatch) -> None:
    tree, project, out, state = fakes
    monkeypatch.setenv("FAKE_VNG_MODE", "panic")
    start = time.monotonic()
    code, err = _run(capsys, tree, project)
    assert code == 2, err
    assert time.monotonic() - start < 30
    run = out / "1"
    last = assert_one_line_cause(err, "NO VERDICT (exit 2)", "boot: guest not reachable: "
                                 "guest died: Kernel panic - not syncing: VFS: Unable to mount "
                                 "root fs")
    assert str(run) in last
    assert f"(log: {run / 'vm' / 'console.log'})" in err  # the stage line points at the console
    assert PANIC in (run / "vm" / "console.log").read_text()  # kept
    m = meta(run)
    assert m["results"]["exit_code"] == 2
    st = m["results"]["stages"]
    assert st["boot"]["status"] == "ERROR" and "Kernel panic" in st["boot"]["detail"]
    assert st["boot"]["log"] == str(run / "vm" / "console.log")
    assert st["guest-setup"]["status"] == "NOTRUN" and st["suites"]["status"] == "NOTRUN"
    assert m["results"]["suites"]["test_memcontrol"]["status"] == "NOTRUN"
    assert any("Kernel panic" in f["signature"] for f in m["kernel_log"]["findings"])
    assert (run / "junit.xml").is_file() and (run / "harness.log").is_file()
    assert not (run / "vm" / "home").exists() and not (run / "vm" / "rhscratch.ext4").exists()
    assert "vng" in assert_all_gone(state)
    assert tmp_files(out, tmp_path / "cache") == []


def test_guest_never_answering_ssh_times_out_and_kills_the_group(fakes, capsys, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                 monkeypatch) -> None:
    tree, project, out, state = fakes
    monkeypatch.setenv("FAKE_VNG_MODE", "sleep")  # up, but sshd never listens
    start = time.monotonic()
    code, err = _run(capsys, tree, project, "--boot-timeout", "3")
    took = time.monotonic() - start
    assert code == 2, err
    run = out / "1"
    port = meta(run)["vm"].get("port") or int(
        (run / "vm" / "vng-cmd.txt").read_text().split("hostfwd=tcp:127.0.0.1:")[1].split("-")[0])
    assert_one_line_cause(err, "NO VERDICT (exit 2)", "boot: guest not reachable: SSH to "
                          f"127.0.0.1:{port} not answering after 3s")
    assert took < 30, took  # the boot timeout, not the default 300 s
    recorded = assert_all_gone(state)  # vng and the child in its process group
    assert {"vng", "vng-child"} <= set(recorded)
    st = meta(run)["results"]["stages"]
    assert st["boot"]["status"] == "ERROR" and "not answering after 3s" in st["boot"]["detail"]
    assert (run / "vm" / "console.log").is_file() and (run / "vm" / "vng-cmd.txt").is_file()
    assert not (run / "vm" / "home").exists()
    assert tmp_files(out, tmp_path / "cache") == []


def _path_without(tmp_path: Path, prefix: str) -> str:
    """A PATH with every tool of the current one except ``prefix*`` (a symlink farm)."""
    farm = tmp_path / "farm"
    farm.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        if not d or not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            src = os.path.join(d, name)
            if name.startswith(prefix) or (farm / name).exists() or (farm / name).is_symlink():
                continue
            if os.path.isfile(src) and os.access(src, os.X_OK):
                (farm / name).symlink_to(src)
    return str(farm)


def test_qemu_not_installed_is_one_line_exit_2(env, capsys, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tree, project, out = env
    bindir = install_fakes(tmp_path / "fbin", qemu=False)
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("FAKE_STATE", str(state))
    monkeypatch.setenv("PATH", f"{bindir}:{_path_without(tmp_path, 'qemu-system')}")
    assert shutil.which("qemu-system-x86_64") is None
    monkeypatch.setattr(vm, "vng_tool", lambda name: str(bindir / name))
    code, err = _run(capsys, tree, project)
    assert code == 2, err
    run = out / "1"
    assert_one_line_cause(err, "NO VERDICT (exit 2)", "source: qemu-system-x86_64 not found "
                          "(apt-get install qemu-system-x86): needed to boot, nothing was built")
    st = meta(run)["results"]["stages"]
    assert st["source"]["status"] == "ERROR" and st["build"]["status"] != "PASS"  # checked first
    assert not (run / "vm" / "vng-cmd.txt").exists() and "vng" not in pids(state)  # never ran
    assert not (run / "build.log").exists() and (run / "harness.log").is_file()
    assert tmp_files(out, tmp_path / "cache") == []


# --------------------------------------------- in-process: disk full --

ENOSPC_OUTPUTS = {
    # GNU ld running out of space while writing vmlinux.o
    "enospc-ld": ("  CC      mm/memcontrol.o\n  LD      vmlinux.o\n"
                  "ld: final link failed: No space left on device\n"
                  "make[2]: *** [scripts/Makefile.vmlinux_o:61: vmlinux.o] Error 1\n"
                  "make[1]: *** [Makefile:1154: vmlinux_o] Error 2\n"
                  "make: *** [Makefile:224: __sub-make] Error 2\n",
                  "ld: final link failed: No space left on device"),
    # the shell of a kbuild rule cannot create its .cmd file
    "enospc-sh": ("  CC      mm/vmscan.o\n"
                  "/bin/sh: 1: cannot create mm/.vmscan.o.cmd: No space left on device\n"
                  "make[3]: *** [scripts/Makefile.build:229: mm/vmscan.o] Error 2\n"
                  "make: *** [Makefile:224: __sub-make] Error 2\n",
                  "/bin/sh: 1: cannot create mm/.vmscan.o.cmd: No space left on device"),
    # the assembler cannot write the object
    "enospc-as": ("  CC      mm/memcontrol.o\n{standard input}: Assembler messages:\n"
                  "{standard input}:5402: Fatal error: can't close mm/memcontrol.o: "
                  "No space left on device\n"
                  "make[3]: *** [scripts/Makefile.build:229: mm/memcontrol.o] Error 1\n",
                  "{standard input}:5402: Fatal error: can't close mm/memcontrol.o: "
                  "No space left on device"),
}


@pytest.mark.parametrize("mode", sorted(ENOSPC_OUTPUTS))
def test_disk_full_during_build_names_it_and_keeps_the_log(fakes, capsys, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                           monkeypatch, mode: str) -> None:
    tree, project, out, state = fakes
    text, first = ENOSPC_OUTPUTS[mode]
    (state / f"{mode}.out").write_text(text)
    monkeypatch.setenv("FAKE_MAKE_MODE", mode)
    code, err = _run(capsys, tree, project)
    assert code == 2, err
    run = out / "1"
    blog = run / "build.log"
    assert_one_line_cause(err, "NO VERDICT (exit 2)", f"build: kernel build failed: {first}",
                          f"(log: {blog})")
    assert "No space left on device" in blog.read_text()  # the log is kept
    m = meta(run)
    assert m["results"]["stages"]["build"]["status"] == "ERROR"
    assert m["results"]["stages"]["boot"]["status"] == "NOTRUN"
    assert not (run / "kernel").exists() and not (run / "vm").exists()
    kbuild = Path(m["config"]["kbuild"])
    assert not (kbuild / ".harness-build-stamp").exists()  # a later build is not skipped
    assert_all_gone(state)
    assert tmp_files(out, tmp_path / "cache") == []


def test_disk_full_inside_the_harness_is_exit_2_not_a_traceback(fakes, capsys, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                monkeypatch) -> None:
    """ENOSPC hitting the harness itself (an OSError, not make's output)."""
    tree, project, out, state = fakes

    def full(*a, **kw):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "cache" / "x"))

    monkeypatch.setattr(buildmod, "make_kernel", full)
    code, err = _run(capsys, tree, project)
    assert code == 2, err
    run = out / "1"
    assert_one_line_cause(err, "NO VERDICT (exit 2)", "build:", "No space left on device")
    m = meta(run)
    assert m["results"]["exit_code"] == 2 and m["results"]["status"] == "no verdict"
    assert m["results"]["stages"]["build"]["status"] == "ERROR"
    assert tmp_files(out, tmp_path / "cache") == []


def test_out_that_cannot_hold_run_dirs_is_one_line_exit_2(env, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``--out`` under a regular file: the run directory cannot be made (was a traceback)."""
    tree, project, _ = env
    (tmp_path / "afile").write_text("")
    bad = tmp_path / "afile" / "out"
    code = cli.main(["source", "--tree", str(tree), "--project", str(project), "--out", str(bad)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert_one_line_cause(err, f"E: Not a directory: {bad}")
    assert len(e_lines(err)) == 1


def test_first_error_prefers_enospc_over_the_make_lines() -> None:
    log = ("  LD      vmlinux.o\nmake[2]: *** [vmlinux.o] Error 1\n"
           "ld: final link failed: No space left on device\n")
    assert buildmod.first_error(log) == "ld: final link failed: No space left on device"
    # ordinary compiler errors are still found as before
    assert buildmod.first_error("a.c:1:2: error: x\nmake: *** [a] Error 1\n") == "a.c:1:2: error: x"


# ------------------------------------------- subprocess: signals, concurrency --


class Harness:
    """A harness run in its own process (fakes on PATH, private cache and HOME)."""

    def __init__(self, tmp_path: Path, tree: Path, project: Path):
        self.tmp = tmp_path
        self.tree = tree
        self.project = project
        self.out = tmp_path / "out"
        self.cache = tmp_path / "cache"
        self.bindir = install_fakes(tmp_path / "fbin")
        self.driver = tmp_path / "driver.py"
        self.driver.write_text(_DRIVER)

    def start(self, command: str, state: Path, *extra: str,
              **fake_env: str) -> subprocess.Popen[str]:
        state.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_")}
        env.update({
            "PATH": f"{self.bindir}:{os.environ['PATH']}",
            "HOME": str(self.tmp / "home"),
            "RECHARGE_HARNESS_CACHE": str(self.cache),
            "HARNESS_UNIT_TESTS": str(UNIT_DIR),
            "FAKE_BIN": str(self.bindir),
            "FAKE_STATE": str(state),
            "PYTHONUNBUFFERED": "1",
            **fake_env,
        })
        argv = [command, "--tree", str(self.tree), "--project", str(self.project),
                "--out", str(self.out)]
        if command in ("run", "boot", "test"):
            argv += ["--accel", "tcg", "--suite", "test_memcontrol", "--boot-timeout", "60"]
        return subprocess.Popen([sys.executable, str(self.driver), *argv, *extra],
                                cwd=self.tmp, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(p: subprocess.Popen[str], marker: Path, deadline_s: float = 40.0) -> None:
    end = time.monotonic() + deadline_s
    while not marker.exists():
        if p.poll() is not None:
            out, err = p.communicate()
            pytest.fail(f"the harness ended (exit {p.returncode}) before {marker.name}:\n{err}")
        if time.monotonic() > end:
            p.kill()
            out, err = p.communicate()
            pytest.fail(f"{marker.name} never appeared:\n{err}")
        time.sleep(0.05)


def _finish(p: subprocess.Popen[str], timeout: float = 40.0) -> tuple[int, str, str]:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        pytest.fail(f"the harness did not finish in {timeout}s:\n{err}")
    return p.returncode, out, err


@pytest.fixture
def harness_proc(env, tmp_path: Path) -> Harness:  # type: ignore[no-untyped-def]
    tree, project, _ = env
    (project / "selftests").mkdir()
    (project / "selftests" / "guest-setup.sh").write_text("#!/bin/sh\n")
    return Harness(tmp_path, tree, project)


#: stage -> (command of the interrupted run, fake settings that block it, marker file,
#: command of the second run, its expected exit code)
SIGNAL_STAGES = {
    "source": ("source", {"FAKE_GIT_HANG": "source"}, "git.pid", "source", 0),
    "apply": ("apply", {"FAKE_GIT_HANG": "apply"}, "git.pid", "apply", 0),
    "config": ("config", {"FAKE_CFG_MODE": "hang"}, "cfg.pid", "config", 0),
    "build": ("build", {"FAKE_MAKE_MODE": "hang"}, "make.pid", "build", 0),
    # blocked in the SSH wait: the fake QEMU accepted a connection and never answers
    "boot": ("run", {"FAKE_VNG_MODE": "up"}, "ssh-knock", "run", 0),
    "suites": ("run", {"FAKE_VNG_MODE": "up", "FAKE_GUEST": "hang"}, "suites.pid", "run", 0),
}


@pytest.mark.parametrize("stage", list(SIGNAL_STAGES))
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_at_every_stage_cleans_up_and_next_run_works(harness_proc: Harness,  # type: ignore[no-untyped-def]
                                                            tmp_path: Path, sig, stage: str) -> None:
    """SIGINT (Ctrl-C) or SIGTERM while a stage blocks: exit 2 (the contract's "interrupted";
    cli.main maps both to EXIT_NO_VERDICT, never 130/143), the stage named, every process
    of the stage killed, no temporary file left, and the caches still usable."""
    h = harness_proc
    command, blockers, marker, again, want = SIGNAL_STAGES[stage]
    if stage == "apply":  # a real patch, so that the apply stage runs git am
        make_patch(h.tree, "mm/memcontrol.c", "int memcg;\nint line2 = 2;\nint line3;\n",
                   "mm: memcg: init line2", h.project / "patches" / "0001-init.patch")
        (h.project / "patches" / "series").write_text("0001-init.patch\n")
    state = tmp_path / "state1"
    p = h.start(command, state, **blockers)
    _wait_for(p, state / marker)
    os.kill(p.pid, sig)
    code, _, err = _finish(p)
    name = signal.Signals(sig).name
    assert code == 2, err
    run = h.out / "1"
    last = assert_one_line_cause(err, "NO VERDICT (exit 2)", f"{stage}: interrupted by {name}")
    assert "guest not reachable" not in last  # a signal is not blamed on the guest
    m = meta(run)
    assert m["results"]["exit_code"] == 2 and m["results"]["status"] == "no verdict"
    assert m["results"]["stages"][stage]["status"] == "ERROR"
    assert f"interrupted by {name}" in m["results"]["error"]
    assert (run / "harness.log").is_file()
    if stage in ("boot", "suites"):
        assert (run / "vm" / "console.log").is_file() and not (run / "vm" / "home").exists()
        assert not (run / "vm" / "rhscratch.ext4").exists()
    recorded = assert_all_gone(state)
    blocked = {"vng", "vng-child"} if stage in ("boot", "suites") else {marker[:-4]}
    assert blocked <= set(recorded), recorded
    assert tmp_files(h.out, h.cache) == []
    # The caches survived: the same job runs again and gets past the interrupted stage.
    state2 = tmp_path / "state2"
    p2 = h.start(again, state2, FAKE_GUEST="ok")
    code2, _, err2 = _finish(p2)
    assert code2 == want, err2
    m2 = meta(h.out / "2")
    assert m2["results"]["stages"][stage]["status"] == "PASS", err2
    if stage == "build":  # built but interrupted before the stamp: not taken as up to date
        assert m2["build_info"]["skipped"] is False
    if stage == "apply":
        assert "1 patches applied on branch" in m2["results"]["stages"]["apply"]["detail"]
    assert_all_gone(state2)
    assert tmp_files(h.out, h.cache) == []


def test_two_runs_at_once_get_their_own_run_dir_and_port(harness_proc: Harness,  # type: ignore[no-untyped-def]
                                                         tmp_path: Path) -> None:
    h = harness_proc
    states = [tmp_path / "stateA", tmp_path / "stateB"]
    meet = tmp_path / "rendezvous"  # both guests are up at the same time
    meet.mkdir()
    procs = [h.start("run", s, FAKE_GUEST="ok", FAKE_VNG_MODE="up", FAKE_RENDEZVOUS=str(meet))
             for s in states]
    results = [_finish(p, timeout=90) for p in procs]
    for code, _, err in results:
        assert code == 0, err
    assert sorted(int(p.name) for p in meet.iterdir()) == sorted(p.pid for p in procs)
    runs = sorted(int(d.name) for d in h.out.iterdir() if d.name.isdigit())
    assert runs == [1, 2]
    metas = [meta(h.out / str(n)) for n in runs]
    assert [m["results"]["exit_code"] for m in metas] == [0, 0]
    assert {m["build"]["run_dir"] for m in metas} == {str(h.out / "1"), str(h.out / "2")}
    ports = [m["vm"]["port"] for m in metas]
    assert ports[0] != ports[1]
    for n in runs:
        assert (h.out / str(n) / "junit.xml").is_file()
    for s in states:
        assert_all_gone(s)
    assert tmp_files(h.out, h.cache) == []
