"""KVM or TCG: ``--accel auto`` probes KVM with a short bounded test boot (cached a day).

A host with a /dev/kvm that cannot run this guest (nested virtualisation that hangs,
a KVM module without the CPU's features) falls back to TCG instead of hanging the run.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import CommandTimeout, InfraError, UserError
from harness.stages.vm import VmSpec, private_home, virtiofsd_available, vng_argv, vng_env

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 25.0
PROBE_VALID_S = 24 * 3600.0


@dataclass(frozen=True)
class AccelChoice:
    accel: str  # "kvm" or "tcg"
    reason: str
    probed: bool = False
    probe_s: float | None = None




def _host_identity() -> dict[str, str]:
    u = os.uname()
    qemu = shutil.which("qemu-system-x86_64") or ""
    qstat = os.stat(qemu) if qemu else None
    return {
        "host": u.nodename,
        "kernel": u.release,
        "qemu": f"{qemu}:{qstat.st_size}:{int(qstat.st_mtime)}" if qstat else "none",
    }


def _kvm_usable_device() -> str | None:
    """None if /dev/kvm can be opened read-write, else why not."""
    dev = Path("/dev/kvm")
    if not dev.exists():
        return "no /dev/kvm on this host"
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
        os.close(fd)
    except OSError as e:
        return f"/dev/kvm cannot be opened read-write ({e.strerror}; add the user to group kvm)"
    return None


PROBE_MARK = "RECHARGE-HARNESS-KVM-PROBE-OK"


def _probe_reached_userspace(log_path: Path) -> bool:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    # The marker on a line of its own (the command line echoed by vng -v does not count).
    return any(line.strip() == PROBE_MARK for line in text.splitlines())


def probe_kvm(bzimage: Path, work: Path, timeout_s: float = PROBE_TIMEOUT_S) -> AccelChoice:
    """Boot ``bzImage`` with KVM running ``true``; KVM is usable iff that works in time."""
    why = _kvm_usable_device()
    if why:
        return AccelChoice("tcg", why)
    work.mkdir(parents=True, exist_ok=True)
    spec = VmSpec(bzimage=bzimage, memory="512M", cpus=1, accel="kvm",
                  force_9p=not virtiofsd_available())
    # Success = the guest's userspace printed the marker. Judged from the output, not
    # from vng's exit: a kernel without ACPI (the tiny profile) cannot power off and
    # halts instead, so the guest reboots itself (sysrq b; vng runs QEMU with
    # -no-reboot) and a guest that halts anyway is killed at the deadline.
    argv = vng_argv(spec, 0, ["sh", "-c", f"echo {PROBE_MARK}; echo b > /proc/sysrq-trigger"])
    log.info("vm: probing KVM with a %.0fs test boot", timeout_s)
    start = time.monotonic()
    log_path = work / "kvm-probe.log"
    try:
        res = proc.run(argv, cwd=work, timeout=timeout_s, log_path=log_path, log_mode="w",
                       env=vng_env(private_home(work / "probe-home")))
    except CommandTimeout:
        if _probe_reached_userspace(log_path):
            took = time.monotonic() - start
            return AccelChoice("kvm", f"KVM test boot succeeded in {took:.1f}s (guest halted; "
                               "killed at the deadline)", True, took)
        return AccelChoice("tcg", f"a KVM guest did not finish booting within {timeout_s:.0f}s "
                           "(hangs: /dev/kvm is present but cannot run this guest)",
                           probed=True, probe_s=time.monotonic() - start)
    finally:
        shutil.rmtree(work / "probe-home", ignore_errors=True)
    took = time.monotonic() - start
    if _probe_reached_userspace(log_path):
        return AccelChoice("kvm", f"KVM test boot succeeded in {took:.1f}s", True, took)
    msg = next((l for l in res.tail if "qemu" in l.lower() and ("fail" in l or "error" in l)),
               None)
    if msg is None:
        # Not a KVM verdict: vng itself could not run (missing tool, bad kernel...).
        last = next((l for l in reversed(res.tail) if l.strip() and not l.startswith("[exit")),
                    "no output")
        raise InfraError(f"KVM probe: vng failed before QEMU ran (exit {res.returncode}): "
                         f"{last.strip()[:160]}", log=log_path)
    m = re.search(r"qemu-system[\w-]*: .*", msg)
    msg = m.group(0) if m else msg.strip()
    return AccelChoice("tcg", f"QEMU with KVM failed (exit {res.returncode}): {msg[:160]}",
                       True, took)


def choose_accel(requested: str, bzimage: Path, cache: Path, work: Path) -> AccelChoice:
    """``kvm``/``tcg`` as told; ``auto``: a cached or fresh bounded KVM probe."""
    if requested == "tcg":
        return AccelChoice("tcg", "--accel tcg")
    if requested == "kvm":
        why = _kvm_usable_device()
        if why:
            raise UserError(f"--accel kvm: {why}")
        return AccelChoice("kvm", "--accel kvm")
    if requested != "auto":
        raise UserError(f"--accel {requested!r}: expected auto, kvm or tcg")
    why = _kvm_usable_device()
    if why:
        return AccelChoice("tcg", why)
    cache_file = cache / "kvm-probe.json"
    ident = _host_identity()
    try:
        data = json.loads(cache_file.read_text())
        if data.get("host") == ident and time.time() - data["time"] < PROBE_VALID_S:
            return AccelChoice(data["accel"], data["reason"] + " (cached probe result)")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    choice = probe_kvm(bzimage, work)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"host": ident, "time": time.time(), "accel": choice.accel,
                               "reason": choice.reason}))
    os.replace(tmp, cache_file)
    return choice


