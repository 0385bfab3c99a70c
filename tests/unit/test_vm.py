"""vm: vng command line, KVM probe + TCG fallback, ports, process cleanup."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness.errors import BootError, InfraError, UserError
from harness.stages import accel, vm

from fakes import write_exe


@pytest.fixture
def fake_vng(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Install a fake `vng`; its behaviour is chosen by the test via FAKE_VNG_MODE."""
    exe = write_exe(tmp_path / "bin" / "vng", f"""
        #!/bin/sh
        echo "$@" >> {tmp_path}/vng-calls
        echo "HOME=$HOME" >> {tmp_path}/vng-calls
        case "$FAKE_VNG_MODE" in
          hang) exec sleep 300 ;;
          halt) echo RECHARGE-HARNESS-KVM-PROBE-OK; exec sleep 300 ;;
          fail) echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0" >&2; exit 1 ;;
          ok) echo RECHARGE-HARNESS-KVM-PROBE-OK; exit 0 ;;
          nomark) exit 0 ;;
          broken) echo "/bin/sh: 1: virtme-run: not found" >&2; exit 127 ;;
          busy)
            # first port is "taken": report it like QEMU does
            if [ ! -e {tmp_path}/busy-once ]; then
              touch {tmp_path}/busy-once
              echo "qemu-system-x86_64: Could not set up host forwarding rule 'tcp:127.0.0.1:1-:22'" >&2
              exit 1
            fi
            sleep 300 & echo $! > {tmp_path}/qemu.pid; wait ;;
          *) sleep 300 & echo $! > {tmp_path}/qemu.pid; wait ;;
        esac
    """)
    monkeypatch.setattr(vm, "vng_tool", lambda name: str(exe))
    monkeypatch.setattr(vm, "PORT_CHECK_S", 0.5)
    return exe


def test_vng_argv_tcg_default() -> None:
    spec = vm.VmSpec(bzimage=Path("/k/bzImage"), memory="3G", cpus=2, accel="tcg",
                     disks=(Path("/r/a.ext4"), Path("/r/b.img")), budget_s=600, force_9p=True)
    command = vm.guest_command(600, Path("/r/ssh/sshd_config"))
    argv = vm.vng_argv(spec, 4242, command)
    assert argv[1:] == [
        "--run", "/k/bzImage", "--user", "root", "--memory", "3G", "--cpus", "2", "-v",
        "--append", "net.ifnames=0", "--append", "SYSTEMD_PROC_CMDLINE=net.ifnames=0",
        "--force-9p", "--disk", "/r/a.ext4", "--disk", "/r/b.img",
        "--disable-kvm", "--qemu-opts=-accel tcg,thread=single",
        "--qemu-opts=-netdev user,id=rhnet,net=10.0.2.0/24,"
        "hostfwd=tcp:127.0.0.1:4242-10.0.2.15:22 -device virtio-net-pci,netdev=rhnet",
        "--", "sh", str(vm.GUEST_INIT), vm.GUEST_READY, "600", "/r/ssh/sshd_config",
        vm.GUEST_SSHD_PID]
    # vng's own SSH (DHCP and its sshd script before the guest command) is not used
    assert "--ssh" not in argv and "--ssh-tcp" not in argv
    with pytest.raises(ValueError):
        vm.vng_argv(spec, 4242)


def test_vng_argv_kvm_and_multithread() -> None:
    argv = vm.vng_argv(vm.VmSpec(bzimage=Path("/k"), accel="kvm"), 0, ["true"])
    assert "--disable-kvm" not in argv and "--ssh" not in argv and argv[-2:] == ["--", "true"]
    # KVM with virtio-fs would get vng's microvm machine: the NIC is PCI
    assert "--disable-microvm" in vm.vng_argv(vm.VmSpec(bzimage=Path("/k"), accel="kvm"), 9,
                                              ["true"])
    assert "--disable-microvm" not in vm.vng_argv(
        vm.VmSpec(bzimage=Path("/k"), accel="kvm", force_9p=True), 9, ["true"])
    mt = vm.vng_argv(vm.VmSpec(bzimage=Path("/k"), accel="tcg", tcg_multithread=True), 0)
    assert "--disable-kvm" in mt and not any(a.startswith("--qemu-opts") for a in mt)
    assert "net.ifnames=0" not in mt  # no NIC without a port


def test_vng_argv_rejects_disk_paths_vng_cannot_take() -> None:
    with pytest.raises(UserError, match="must not contain"):
        vm.vng_argv(vm.VmSpec(bzimage=Path("/k"), disks=(Path("/a,b.img"),)), 1, ["true"])


@pytest.mark.parametrize("text,ok", [("3G", True), ("1536M", True), ("2048", True),
                                     ("lots", False), ("0", False), ("3T", False)])
def test_parse_memory(text: str, ok: bool) -> None:
    if ok:
        assert vm.parse_memory(text) == text.upper()
    else:
        with pytest.raises(UserError):
            vm.parse_memory(text)


def test_free_port_is_bindable_and_avoids() -> None:
    p = vm.free_port()
    assert vm.port_is_free(p)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        taken = s.getsockname()[1]
        assert not vm.port_is_free(taken)


def test_scratch_images_are_sparse_and_labelled(tmp_path: Path) -> None:
    ext4, swap = vm.make_scratch_images(tmp_path / "vm", ext4_mib=64, swap_mib=16)
    assert ext4.stat().st_size == 64 << 20 and ext4.stat().st_blocks * 512 < 64 << 20
    assert b"rhswap" in swap.read_bytes()[:8192] and b"SWAPSPACE2" in swap.read_bytes()[:8192]


@pytest.mark.parametrize("mode,want,why", [
    ("hang", "tcg", "did not finish booting within 1s"),
    ("fail", "tcg", "failed to set MSR 0x10a"),
    ("ok", "kvm", "KVM test boot succeeded"),
    ("halt", "kvm", "guest halted; killed at the deadline"),
])
def test_kvm_probe(tmp_path: Path, monkeypatch, fake_vng, mode: str, want: str, why: str) -> None:
    monkeypatch.setenv("FAKE_VNG_MODE", mode)
    monkeypatch.setattr(accel, "_kvm_usable_device", lambda: None)
    monkeypatch.setattr(accel, "PROBE_TIMEOUT_S", 1.0)
    start = time.monotonic()
    choice = accel.probe_kvm(Path("/k/bzImage"), tmp_path / "work", timeout_s=1.0)
    assert time.monotonic() - start < 8
    assert choice.accel == want and why in choice.reason and choice.probed
    calls = (tmp_path / "vng-calls").read_text()
    assert "--disable-kvm" not in calls and "RECHARGE-HARNESS-KVM-PROBE-OK" in calls


def test_probe_that_never_reached_qemu_is_an_error_not_a_verdict(tmp_path: Path, monkeypatch,
                                                                 fake_vng) -> None:
    monkeypatch.setenv("FAKE_VNG_MODE", "broken")
    monkeypatch.setattr(accel, "_kvm_usable_device", lambda: None)
    with pytest.raises(InfraError, match="vng failed before QEMU ran .*virtme-run: not found"):
        accel.choose_accel("auto", Path("/k"), tmp_path / "cache", tmp_path / "w")
    assert not (tmp_path / "cache" / "kvm-probe.json").exists()


def test_vng_env_puts_vng_dir_on_path(tmp_path: Path, monkeypatch, fake_vng) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = vm.vng_env(tmp_path / "h")
    assert env["HOME"] == str(tmp_path / "h")
    assert env["PATH"].split(":")[0] == str(fake_vng.parent)


def test_choose_accel_caches_the_probe(tmp_path: Path, monkeypatch, fake_vng) -> None:
    monkeypatch.setenv("FAKE_VNG_MODE", "fail")
    monkeypatch.setattr(accel, "_kvm_usable_device", lambda: None)
    c1 = accel.choose_accel("auto", Path("/k"), tmp_path / "cache", tmp_path / "w")
    assert c1.accel == "tcg" and "cached" not in c1.reason
    assert json.loads((tmp_path / "cache" / "kvm-probe.json").read_text())["accel"] == "tcg"
    monkeypatch.setenv("FAKE_VNG_MODE", "ok")  # would say KVM, but the verdict is cached
    c2 = accel.choose_accel("auto", Path("/k"), tmp_path / "cache", tmp_path / "w")
    assert c2.accel == "tcg" and "cached probe result" in c2.reason
    assert accel.choose_accel("tcg", Path("/k"), tmp_path, tmp_path).reason == "--accel tcg"


def test_no_kvm_device_means_tcg_without_probe(tmp_path: Path, monkeypatch, fake_vng) -> None:
    monkeypatch.setattr(accel, "_kvm_usable_device", lambda: "no /dev/kvm on this host")
    c = accel.choose_accel("auto", Path("/k"), tmp_path / "cache", tmp_path / "w")
    assert c == accel.AccelChoice("tcg", "no /dev/kvm on this host")
    assert not (tmp_path / "vng-calls").exists()
    with pytest.raises(UserError, match="--accel kvm: no /dev/kvm"):
        accel.choose_accel("kvm", Path("/k"), tmp_path, tmp_path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_vm_start_stop_leaves_no_process_and_private_home(tmp_path: Path, fake_vng) -> None:
    v = vm.Vm(vm.VmSpec(bzimage=Path("/k/bzImage")), tmp_path / "run" / "vm")
    v.start()
    deadline = time.monotonic() + 5
    while not (tmp_path / "qemu.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    qemu = int((tmp_path / "qemu.pid").read_text())
    assert v.alive() and _alive(qemu)
    assert (v.home.stat().st_mode & 0o777) == 0o700
    assert f"HOME={v.home}" in (tmp_path / "vng-calls").read_text()
    assert v.key_path == v.workdir / "ssh" / "id_ed25519" and v.key_path.is_file()
    assert v.host_key_files() == [v.workdir / "ssh" / "ssh_host_ed25519_key.pub"]
    assert (v.workdir / "vng-cmd.txt").read_text().split()[-4:] == [
        vm.GUEST_READY, "3600", str(v.workdir / "ssh" / "sshd_config"), vm.GUEST_SSHD_PID]
    v.stop()
    assert not v.alive() and not _alive(qemu) and not v.home.exists()
    assert not (v.workdir / "ssh").exists()  # the private keys go with the guest


def test_vm_retries_when_port_taken(tmp_path: Path, monkeypatch, fake_vng) -> None:
    monkeypatch.setenv("FAKE_VNG_MODE", "busy")
    with vm.Vm(vm.VmSpec(bzimage=Path("/k")), tmp_path / "vm") as v:
        v.start()
        assert v.alive() and v.attempts and "taken" in v.attempts[0]
        calls = (tmp_path / "vng-calls").read_text().splitlines()
        ports = [c.split("hostfwd=tcp:127.0.0.1:")[1].split("-")[0] for c in calls
                 if "hostfwd=" in c]
        assert len(ports) == 2 and ports[0] != ports[1]


def test_death_reason_reads_console(tmp_path: Path) -> None:
    v = vm.Vm(vm.VmSpec(bzimage=Path("/k")), tmp_path)
    tmp_path.mkdir(exist_ok=True)
    v.console_log.write_text("[ 1.0] boot\n[ 2.0] Kernel panic - not syncing: VFS: Unable to "
                             "mount root fs\n")
    assert "Kernel panic - not syncing: VFS" in v.death_reason()


def _run_guest_command(tmp_path: Path, passwd: str, *, shadow: str | None = "root:!:::::::\n",
                       etc_writable: bool = True, ip_ok: bool = True,
                       sshd_status: int = 0, budget: int = 0,
                       sshd_listens: bool = True) -> dict[str, str]:
    """Run the guest command's script on the host with every guest path moved under
    ``tmp_path``; ``ip``, ``mount`` and sshd are fakes that log their arguments."""
    config = tmp_path / "ssh" / "sshd_config"
    argv = vm.guest_command(budget, config)
    assert argv == ["sh", str(vm.GUEST_INIT), vm.GUEST_READY, str(budget), str(config),
                    vm.GUEST_SSHD_PID]
    argv[-1] = str(tmp_path / "sshd.pid")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(passwd)
    if shadow is not None:
        (etc / "shadow").write_text(shadow)
    if not etc_writable:  # a read-only /etc: copies are bind-mounted instead
        if os.geteuid() != 0:
            for f in etc.iterdir():
                f.chmod(0o444)
        elif shutil.which("unshare"):  # root writes read-only files: a read-only mount
            argv = ["unshare", "--mount", "sh", "-c", f"/bin/mount --bind {etc} {etc} && "
                    f"/bin/mount -o remount,bind,ro {etc} && exec \"$@\"", "sh", *argv]
        else:
            pytest.skip("running as root without unshare: no read-only /etc to test with")
    bindir = tmp_path / "bin"
    for name, status in (("mount", 0), ("ip", 0 if ip_ok else 1), ("sshd", sshd_status)):
        write_exe(bindir / name, f"""
            #!/bin/sh
            echo "$@" >> {tmp_path}/{name}.args
            [ {name} = ip ] && cat >> {tmp_path}/ip.args
            [ {name} = sshd ] && [ {status} = 0 ] && [ {int(sshd_listens)} = 1 ] && \
                echo 4242 > {tmp_path}/sshd.pid
            exit {status}
        """)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}",
           "RH_PRIVATE": str(tmp_path / "private"), "RH_ETC": str(etc),
           "RH_KMSG": str(tmp_path / "kmsg"), "RH_SSH_SCRATCH": str(tmp_path / "ssh-scratch"),
           "RH_SSHD": str(bindir / "sshd"), "RH_SSHD_DIR": str(tmp_path / "sshd-dir"),
           "RH_PID_TRIES": "3"}
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    assert res.returncode == 0, res.stderr

    def text(name: str) -> str:
        f = tmp_path / name
        return f.read_text() if f.exists() else ""
    out = {n: text(n) for n in ("etc/passwd", "etc/shadow", "private/passwd", "private/shadow",
                                "mount.args", "ip.args", "sshd.args", "kmsg")}
    out["stdout"] = res.stdout
    return out


PASSWD = ("root:x:0:0:root:/root:/bin/bash\n"
          "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
          "rootless:x:1000:1000::/root:/bin/sh\n")


def test_guest_command_sets_up_network_root_and_sshd(tmp_path: Path) -> None:
    out = _run_guest_command(tmp_path, PASSWD, shadow="root:!:::::::\ndaemon:!:::::::\n")
    private = tmp_path / "private"
    # root: an empty private home and a plain shell; the others untouched
    assert out["etc/passwd"].splitlines() == [f"root:x:0:0:root:{private}/root:/bin/sh",
                                              *PASSWD.splitlines()[1:]]
    # root's shadow entry not "!": sshd without PAM refuses locked accounts
    assert out["etc/shadow"].splitlines() == ["root:*:::::::", "daemon:!:::::::"]
    assert out["mount.args"] == ""  # written in place: the guest's /etc is a tmpfs overlay
    assert out["ip.args"].splitlines() == ["-batch -", "link set dev eth0 up",
                                           f"addr add {vm.GUEST_ADDR}/24 dev eth0",
                                           "route add default via 10.0.2.2 dev eth0"]
    assert out["sshd.args"].split() == ["-f", str(tmp_path / "ssh" / "sshd_config"),
                                        "-E", str(tmp_path / "kmsg")]
    assert (private / "root").is_dir() and not any((private / "root").iterdir())
    assert ((private / "root").stat().st_mode & 0o777) == 0o700
    assert (tmp_path / "ssh-scratch").is_dir() and (tmp_path / "sshd-dir").is_dir()
    assert out["stdout"] == out["kmsg"] == vm.GUEST_READY + "\n"


def test_guest_command_bind_mounts_copies_over_a_read_only_etc(tmp_path: Path) -> None:
    out = _run_guest_command(tmp_path, PASSWD, etc_writable=False)
    private = tmp_path / "private"
    assert out["mount.args"].splitlines() == [f"--bind {private}/passwd {tmp_path}/etc/passwd",
                                              f"--bind {private}/shadow {tmp_path}/etc/shadow"]
    assert out["private/passwd"].startswith(f"root:x:0:0:root:{private}/root:/bin/sh\n")
    assert out["private/shadow"] == "root:*:::::::\n"
    # the copy of shadow is root's alone; passwd's is for everyone
    assert ((private / "shadow").stat().st_mode & 0o777) == 0o600
    assert ((private / "passwd").stat().st_mode & 0o777) == 0o644


def test_guest_command_leaves_files_without_a_root_entry_alone(tmp_path: Path) -> None:
    out = _run_guest_command(tmp_path, "daemon:x:1:1::/:/bin/false", shadow=None)
    assert out["etc/passwd"] == "daemon:x:1:1::/:/bin/false" and out["etc/shadow"] == ""
    assert out["stdout"] == vm.GUEST_READY + "\n"


@pytest.mark.parametrize("what, kwargs", [
    ("network", {"ip_ok": False}), ("sshd exited with status 3", {"sshd_status": 3}),
    ("sshd did not start listening", {"sshd_listens": False})])
def test_guest_command_reports_a_failed_step(tmp_path: Path, what: str, kwargs: dict) -> None:  # type: ignore[type-arg]
    out = _run_guest_command(tmp_path, PASSWD, **kwargs)
    assert out["stdout"] == out["kmsg"]
    assert out["stdout"].startswith(f"{vm.GUEST_FAILED}: {what}")
    assert vm.GUEST_READY + "\n" not in out["stdout"]
    # ... and the harness stops waiting with that cause
    v = vm.Vm(vm.VmSpec(bzimage=Path("/k")), tmp_path / "vm")
    v.workdir.mkdir()
    v.console_log.write_text("[    3.9] " + out["kmsg"])
    with pytest.raises(BootError, match=f"guest set-up failed: {what}"):
        v.guest_ready()


def test_guest_command_fits_the_kernel_command_line() -> None:
    import base64
    import shlex

    # vng puts the command, base64-encoded, on a command line of at most 2048 bytes
    # (x86), next to its own parameters (about 1000 with long paths): only the
    # script's path travels
    command = vm.guest_command(10**6, Path("/" + "r" * 150) / "vm" / "ssh" / "sshd_config")
    assert len(base64.b64encode(shlex.join(command).encode())) < 700
    # without SSH (e.g. the KVM probe's own command) nothing changes
    assert vm.vng_argv(vm.VmSpec(bzimage=Path("/k"), budget_s=5), 0)[-2:] == ["sleep", "5"]


def test_guest_ready_needs_the_marker_on_a_line_of_its_own(tmp_path: Path) -> None:
    v = vm.Vm(vm.VmSpec(bzimage=Path("/k")), tmp_path)
    assert not v.guest_ready()
    # vng -v echoes the command it runs: that is not the guest speaking
    v.console_log.write_text("virtme-run ... --script-sh 'sh -c ...; echo "
                             f"{vm.GUEST_READY} >/dev/kmsg; exec sleep 5'\n")
    assert not v.guest_ready() and v.ready_at is None
    with v.console_log.open("a") as f:
        f.write(f"[    6.661648] {vm.GUEST_READY}\n")
    assert v.guest_ready() and v.ready_at is not None
    w = vm.Vm(vm.VmSpec(bzimage=Path("/k")), tmp_path / "w")
    w.workdir.mkdir()
    (w.workdir / "vng.stdout").write_text(f"{vm.GUEST_READY}\r\n")  # virtio-serial script output
    assert w.guest_ready()


def test_guest_init_uses_the_harness_paths() -> None:
    from harness.stages.ssh import _SCRATCH

    text = vm.GUEST_INIT.read_text()
    assert f"${{RH_SSH_SCRATCH:-{_SCRATCH}}}" in text
    # the private home the e2e test and guest-setup.sh look for
    assert f"d=${{RH_PRIVATE:-{vm.GUEST_PRIVATE}}}" in text
    assert f"addr add {vm.GUEST_ADDR}/24 dev eth0" in text
    assert f"{vm.GUEST_ADDR}:22" in vm.net_qemu_opts(1)
    assert f"pidfile=${{4:-{vm.GUEST_SSHD_PID}}}" in text
    assert vm.GUEST_SSHD_PID.startswith(vm.GUEST_PRIVATE + "/")
