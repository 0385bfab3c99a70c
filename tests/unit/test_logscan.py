"""Kernel-log classifier: golden pairs (tests/data/logs/*.log -> *.json) plus rules.

Regenerate the goldens after a deliberate change with
``UPDATE_GOLDEN=1 python -m pytest tests/unit/test_logscan.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from harness.parse.logscan import (
    BETWEEN,
    BOOT,
    is_failure,
    load_ignore,
    normalize,
    scan_by_case,
    scan_log,
    split_by_markers,
)
from harness.parse.logscan.scan import MAX_EXCERPT_LINES

DATA = Path(__file__).resolve().parent.parent / "data" / "logs"
SAMPLES = sorted(DATA.glob("*.log"))


def _summary(text: str) -> list[dict[str, object]]:
    return [
        {
            "kind": f.kind,
            "title": f.title,
            "signature": f.signature,
            "line_no": f.line_no,
            "fatal": f.fatal,
            "count": f.count,
        }
        for f in scan_log(text, [])
    ]


def test_samples_present() -> None:
    assert len(SAMPLES) >= 9


@pytest.mark.parametrize("log", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_golden(log: Path) -> None:
    got = _summary(log.read_text())
    golden = log.with_suffix(".json")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(golden.read_text())


def _one(name: str):  # type: ignore[no-untyped-def]
    found = scan_log((DATA / name).read_text(), [])
    assert len(found) == 1, [f.title for f in found]
    return found[0]


def test_warning_signature_is_normalised() -> None:
    f = _one("warning.log")
    assert f.kind == "warning" and f.title == "WARNING in mem_cgroup_recharge_offline"
    assert f.signature == (
        "warning: WARNING: mm/memcontrol.c:N mem_cgroup_recharge_offline | mem_cgroup_recharge_offline"
        " < mem_cgroup_css_offline < css_killed_work_fn < process_one_work < worker_thread"
    )
    assert not re.search(r"\d", f.signature.replace("N", ""))  # no numbers, CPU, PID, address
    assert f.excerpt.splitlines()[0].endswith("mem_cgroup_recharge_offline+0x1b2/0x1c0")
    assert is_failure(f) and not f.fatal


def test_kasan_block_ends_at_ruler_and_uses_first_trace() -> None:
    f = _one("kasan-uaf.log")
    assert f.kind == "kasan" and f.title == "KASAN: slab-use-after-free in mem_cgroup_recharge_folio"
    assert "kasan_save_stack" not in f.signature and "mem_cgroup_css_free" not in f.signature
    assert f.signature.endswith(
        "mem_cgroup_recharge_folio < memcg_recharge_workfn < process_one_work < worker_thread < kthread"
    )
    assert len(f.excerpt.splitlines()) <= MAX_EXCERPT_LINES + 1
    assert "Disabling lock debugging" not in f.excerpt


def test_lockdep_skips_lock_internals() -> None:
    f = _one("lockdep-circular.log")
    assert f.kind == "lockdep"
    assert f.title == "WARNING: possible circular locking dependency detected in mem_cgroup_recharge_offline"
    assert "__lock_acquire" not in f.signature and "__mutex_lock" not in f.signature


def test_atomic_sleep_and_hung_task_and_rcu() -> None:
    assert _one("atomic-sleep.log").kind == "atomic_sleep"
    hung = _one("hung-task.log")
    assert hung.kind == "hung_task" and hung.title == "INFO: task hung in mem_cgroup_recharge_sysctl_handler"
    assert "test_memcontrol" not in hung.signature
    rcu = _one("rcu-stall.log")
    # the RIP function is the stalled one; IRQ-context frames are not part of the signature
    assert rcu.signature.split(" | ")[1].startswith("mem_cgroup_recharge_walk < mem_cgroup_recharge_offline")
    assert "hrtimer" not in rcu.signature


def test_panic_is_fatal_and_oops_separate() -> None:
    found = scan_log((DATA / "panic-null-deref.log").read_text(), [])
    assert [(f.kind, f.fatal) for f in found] == [("oops", False), ("panic", True)]
    assert found[0].title == "BUG: kernel NULL pointer dereference in mem_cgroup_recharge_folio"
    assert "Oops: Oops: 0000" in found[0].excerpt  # absorbed header line


def test_oom_is_informational() -> None:
    f = _one("oom-memcg.log")
    assert f.kind == "oom" and not is_failure(f)
    assert f.signature.startswith("oom: invoked oom-killer | try_charge_memcg")


def test_benign_boot_warnings_not_reported() -> None:
    assert scan_log((DATA / "boot-clean.log").read_text(), []) == []


def test_dedup_and_ignore() -> None:
    text = (DATA / "warning.log").read_text()
    shifted = text.replace("PID: 87", "PID: 91").replace("[   52.", "[   53.")
    found = scan_log(text + shifted, [])
    assert len(found) == 1 and found[0].count == 2 and found[0].line_no == 2
    assert scan_log(text, [re.compile(r"mem_cgroup_recharge_offline")]) == []
    assert scan_log(text, [re.compile(r"^WARNING: CPU: \d+ PID: \d+ at mm/")]) == []
    assert len(scan_log(text, [re.compile(r"no such thing")])) == 1


def test_second_banner_is_reboot() -> None:
    text = "[    0.000000] Linux version 6.12.57+ (x)\n[    5.0] hi\n[    0.000000] Linux version 6.12.57+ (x)\n"
    (f,) = scan_log(text, [])
    assert f.kind == "reboot" and f.fatal and f.line_no == 3


def test_other_catalogue_entries() -> None:
    cases = {
        "BUG: soft lockup - CPU#1 stuck for 26s! [test_memcontrol:345]": "soft_lockup",
        "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [kworker/0:1:12]": "soft_lockup",
        "NMI watchdog: Watchdog detected hard LOCKUP on cpu 1": "hard_lockup",
        "BUG: Bad page state in process test_memcontrol  pfn:12344": "bad_page",
        "BUG: Bad rss-counter state mm:00000000a1b2c3d4 type:MM_ANONPAGES val:1": "bad_page",
        "kernel BUG at mm/memcontrol.c:3600!": "bug",
        "UBSAN: shift-out-of-bounds in mm/memcontrol.c:1234:17": "ubsan",
        "BUG: KFENCE: use-after-free read in mem_cgroup_css_free+0x2a/0x60": "kfence",
        "WARNING: suspicious RCU usage": "lockdep",
        "WARNING: bad unlock balance detected!": "lockdep",
        "BUG: scheduling while atomic: kworker/0:1/12/0x00000002": "atomic_sleep",
        "INFO: rcu_sched detected expedited stalls on CPUs/tasks: { 1-... } 21002 jiffies s: 333 root: 0x2/.": "rcu_stall",
        "BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!": "wq_lockup",
        "unreferenced object 0xffff888003abc000 (size 64):": "kmemleak",
        "general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] PREEMPT SMP KASAN NOPTI": "oops",
        "BUG: using smp_processor_id() in preemptible [00000000] code: test/1": "bug",
    }
    for line, kind in cases.items():
        found = scan_log(f"[   10.000001] {line}\n", [])
        assert [f.kind for f in found] == [kind], line


def test_normalize() -> None:
    assert normalize("[   12.5] BUG: soft lockup - CPU#1 stuck for 26s! [test_memcontrol:345]") == (
        "BUG: soft lockup - CPU#N stuck for Ns!"
    )
    assert normalize("at 0xffffffff8133a2b4 ffff888012345678 sha256_update ext4_fill_super") == (
        "at ADDR ADDR sha256_update ext4_fill_super"
    )


def test_split_by_markers() -> None:
    text = (DATA / "markers.log").read_text()
    parts = split_by_markers(text)
    assert list(parts) == [
        BOOT,
        ("recharge[sysctl=1]", "test_recharge_offline_anon"),
        BETWEEN,
        ("selftests-cgroup[sysctl=0]", "selftests: cgroup: test_memcontrol"),
    ]
    assert "RECHARGE-HARNESS" not in "".join(parts.values())
    assert "Linux version" in parts[BOOT]
    # begin without end (the kernel died): the bracket runs to the end of the log
    assert "end Kernel panic" in parts[("selftests-cgroup[sysctl=0]", "selftests: cgroup: test_memcontrol")]
    assert split_by_markers("a\nb\n") == {BOOT: "a\nb\n"}


def test_scan_by_case() -> None:
    text = (DATA / "markers.log").read_text()
    lines = text.splitlines()
    found = scan_by_case(text, [re.compile(r"vring_create_virtqueue")])
    assert BOOT not in found  # the only boot finding is ignored
    (warn,) = found[("recharge[sysctl=1]", "test_recharge_offline_anon")]
    assert warn.count == 2 and "WARNING: CPU: 1 PID: 87" in lines[warn.line_no - 1]
    assert [f.kind for f in found[BETWEEN]] == ["hung_task"]
    crash = found[("selftests-cgroup[sysctl=0]", "selftests: cgroup: test_memcontrol")]
    assert [(f.kind, f.fatal) for f in crash] == [("oops", False), ("panic", True)]
    assert lines[crash[1].line_no - 1].endswith("Kernel panic - not syncing: Fatal exception")
    unfiltered = scan_by_case(text, [])
    assert [f.title for f in unfiltered[BOOT]] == ["WARNING in vring_create_virtqueue_split"]


def test_load_ignore(tmp_path: Path) -> None:
    p = tmp_path / "ignore.txt"
    p.write_text("# known harmless\n\nvring_create_virtqueue\n  ^WARNING: .* at drivers/  \n")
    pats = load_ignore(p)
    assert [x.pattern for x in pats] == ["vring_create_virtqueue", "^WARNING: .* at drivers/"]
    p.write_text("ok\n(unclosed\n")
    with pytest.raises(ValueError, match="line 2"):
        load_ignore(p)


def test_kmemleak_backtrace_without_task_markers() -> None:
    one = (
        "[  300.100000] unreferenced object 0xffff888004a3b200 (size 64):\n"
        '[  300.100001]   comm "test_recharge", pid 512, jiffies 4294971234\n'
        "[  300.100002]   hex dump (first 32 bytes):\n"
        "[  300.100003]     00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................\n"
        "[  300.100004]   backtrace (crc 5f3a91c2):\n"
        "[  300.100005]     [<ffffffff8133a2b4>] __kmalloc_cache_noprof+0x2b3/0x330\n"
        "[  300.100006]     [<ffffffff81340a10>] mem_cgroup_recharge_offline+0x90/0x1c0\n"
        "[  300.100007]     [<ffffffff81340b22>] mem_cgroup_css_offline+0x9d/0x140\n"
    )
    two = one.replace("b200", "b240").replace("pid 512", "pid 513")
    (f,) = scan_log(one + two, [])
    assert f.kind == "kmemleak" and f.count == 2
    assert f.signature == (
        "kmemleak: unreferenced object ADDR (size N) | __kmalloc_cache_noprof < mem_cgroup_recharge_offline"
        " < mem_cgroup_css_offline"
    )


def test_wrapped_dmesg_falls_back_to_the_console(tmp_path) -> None:
    from harness.report.kernellog import log_buffer_wrapped as _log_buffer_wrapped

    console = tmp_path / "console.log"
    console.write_text("[    0.000000] Linux version 6.12.117\n[ 1.0] RECHARGE-HARNESS: begin x\n")
    whole = tmp_path / "dmesg-whole.log"
    whole.write_text("[    0.000000] Linux version 6.12.117\n[ 2.0] more\n")
    wrapped = tmp_path / "dmesg-wrapped.log"
    wrapped.write_text("[  447.054914] RSP: 0018:ffa00000000ebe58 EFLAGS: 00000202\n")
    assert not _log_buffer_wrapped(whole, console)
    assert _log_buffer_wrapped(wrapped, console)
    console.write_text("no kernel banner here\n")
    assert not _log_buffer_wrapped(wrapped, console)  # nothing better to fall back to


def test_signature_does_not_depend_on_the_build_directory() -> None:
    from harness.parse.logscan import normalize

    a = "WARNING: CPU: 0 PID: 12 at ../../worktrees/debian-6.12/mm/memcontrol.c:4486 f+0x1d/0x2a0"
    b = "WARNING: CPU: 1 PID: 99 at mm/memcontrol.c:4490 f+0x1d/0x2a0"
    assert normalize(a) == normalize(b) == "WARNING: mm/memcontrol.c:N f"
