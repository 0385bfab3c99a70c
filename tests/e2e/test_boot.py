"""End to end: really configure + build (incremental through the cache), boot a
guest with virtme-ng, talk to it over SSH, and prove that SIGINT/SIGTERM during
boot leave no QEMU behind.

Slow (a cold kernel build is ~15-20 min on 2 cores; warm: seconds).  Select with
``-m e2e``, skip with ``-m "not e2e"``.  Uses the real cache
(``$RECHARGE_HARNESS_CACHE`` or ``~/.cache/recharge-harness``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import paths
from harness.stages import accel, suites, vm
from harness.stages.ssh import Guest

from e2e_checks import blkid_devices, inventory_misses

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
HARNESS = [sys.executable, "-m", "harness"]


def qemu_processes(marker: str) -> list[int]:
    """PIDs of QEMU processes whose command line mentions ``marker``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "qemu-system" in cmd and marker in cmd:
            pids.append(int(entry))
    return pids


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("e2e-build")
    logf = out / "harness-build.out"
    with open(logf, "w") as f:
        res = subprocess.run([*HARNESS, "build", "--out", str(out)], cwd=REPO, stdout=f,
                             stderr=subprocess.STDOUT, timeout=3 * 3600)
    text = logf.read_text()
    assert res.returncode == 0, f"recharge-harness build failed:\n{text[-3000:]}"
    run_dir = out / "1"
    meta = json.loads((run_dir / "metadata.json").read_text())
    return run_dir, meta


def test_build_boot_and_ssh(built: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    run_dir, meta = built
    assert meta["results"]["exit_code"] == 0
    bz = run_dir / "kernel" / "bzImage"
    release = (Path(meta["config"]["kbuild"]) / "include/config/kernel.release").read_text().strip()
    choice = accel.choose_accel("auto", bz, paths.cache_root(), tmp_path / "probe")
    ext4, swap = vm.make_scratch_images(tmp_path / "vm")
    spec = vm.VmSpec(bzimage=bz, memory="1G", cpus=2, accel=choice.accel, disks=(ext4, swap),
                     budget_s=900, force_9p=not vm.virtiofsd_available())
    v = vm.Vm(spec, tmp_path / "vm")
    try:
        v.start()
        g = Guest("127.0.0.1", v.port, "root", v.key_path, v.host_key_files())
        g.connect(300, alive=v.alive, ready=v.guest_ready)
        boot_s = time.monotonic() - v.started_at
        # the guest command gave root a private home before the first login
        home = g.run('echo "$HOME"', 60)
        assert home.stdout.strip() == f"{vm.GUEST_PRIVATE}/root", home
        r = g.run("uname -r; id -u; cat /proc/sys/kernel/osrelease", 60)
        assert r.exit_code == 0, r
        uname, uid, _ = r.stdout.split()
        assert uname == release and uid == "0"
        # Both labels must resolve: blkid's exit code first (two words of output from a
        # failing blkid used to pass here: `A and B or C`).
        blkid_devices(g.run("blkid -L rhscratch && blkid -L rhswap", 60))
        r = g.run("sleep 30", 2, kill_after=1)
        assert r.timed_out
        g.get("/proc/version", tmp_path / "version")
        assert release in (tmp_path / "version").read_text()
        g.close()
        print(f"\nE2E: {choice.accel.upper()} ({choice.reason}); boot-to-SSH {boot_s:.1f}s")
        (REPO / "out").mkdir(exist_ok=True)
    finally:
        v.stop()
    assert not qemu_processes(str(tmp_path)), "QEMU left behind after stop()"
    assert "Linux version" in v.console_text()  # console captured


def test_recharge_suites_pass_on_the_real_kernel(built: tuple[Path, dict],  # type: ignore[type-arg]
                                                tmp_path: Path) -> None:
    """`run --suite recharge` on the kernel `built` made (the build is reused): exit 0,
    the kernel claims the feature, and every case of the inventory passed in both
    variants -- the proof the series works, not just that nothing failed."""
    _, meta_build = built
    out = tmp_path / "out"
    logf = tmp_path / "harness-run.out"
    with open(logf, "w") as f:
        res = subprocess.run([*HARNESS, "run", "--suite", "recharge", "--out", str(out)],
                             cwd=REPO, stdout=f, stderr=subprocess.STDOUT, timeout=3 * 3600)
    text = logf.read_text()
    assert res.returncode == 0, f"run --suite recharge: exit {res.returncode}\n{text[-3000:]}"
    run_dir = out / "1"
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["config"]["sha256"] == meta_build["config"]["sha256"]  # the kernel tested
    assert meta["inventory"]["feature"] is True, "the .config lacks the feature's option"
    table = {s.name: s.feature_cases for s in suites.select_suites(["recharge"])}
    assert set(table) == {"recharge[sysctl=1]", "recharge[sysctl=0]"}
    assert all(names == suites.RECHARGE_CASES for names in table.values())
    misses = inventory_misses(run_dir / "junit.xml", table)
    assert not misses, "expected cases that did not pass:\n" + "\n".join(misses)
    sysctl = {k: v["sysctl"] for k, v in meta["results"]["suites"].items()}
    assert sysctl == {"recharge[sysctl=1]": 1, "recharge[sysctl=0]": 0}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_boot_leaves_no_qemu(built: tuple[Path, dict], tmp_path: Path,  # type: ignore[type-arg]
                                           sig: signal.Signals) -> None:
    out = tmp_path / "out"
    p = subprocess.Popen([*HARNESS, "test", "--out", str(out), "--accel", "tcg",
                          "--suite", "test_core"], cwd=REPO, stdout=subprocess.DEVNULL,
                         stderr=open(tmp_path / "harness.err", "w"), start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not qemu_processes(str(out)) and time.monotonic() < deadline:
            assert p.poll() is None, (tmp_path / "harness.err").read_text()[-2000:]
            time.sleep(0.2)
        assert qemu_processes(str(out)), "QEMU never started"
        time.sleep(2)  # mid-boot
        p.send_signal(sig)  # to the harness only: it must clean up its children itself
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    err = (tmp_path / "harness.err").read_text()
    assert rc == 2, err[-2000:]
    time.sleep(0.5)
    assert not qemu_processes(str(out)), "QEMU left behind"
    meta = json.loads((out / "1" / "metadata.json").read_text())
    assert meta["results"]["exit_code"] == 2
    assert sig.name in meta["results"].get("error", "") or "interrupted" in err
    assert not (out / "1" / "vm" / "home").exists()  # private key removed
