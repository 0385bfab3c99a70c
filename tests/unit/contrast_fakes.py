"""Fake run directories for the contrast report: metadata.json + ktap/*.tap with
"# observe" lines in the programs' format (selftests/lib/observe.c), for the four
kernels the report compares."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MIB = 1 << 20
STAGES = ("source", "apply", "config", "build", "selftests", "boot", "guest-setup", "suites",
          "report")


def zombie(case: str, sysctl: int, *, user: int, parent: int, dead: int, split: str,
           series: list[tuple[int, int]], t_nodying: int, window: int = 8569) -> str:
    removed = 100 * MIB
    dying = ",".join(f"{t}:{c}" for t, c in series)
    key = "shmem" if case == "zombie_shmem" else "file"
    return (f"# observe {case} sysctl={sysctl} stat={key} removed={removed} user={user} "
            f"parent={parent} dead={dead} split={split} gone={removed - user - parent - dead} "
            f"dying_base=0 dying_start=50 dying_end={series[-1][1]} t_nodying_ms={t_nodying} "
            f"window_ms={window} oom=0 oom_kill=0 oom_kill_sys=0 access=map_before "
            f"access_bytes={removed} access_us=580037 access_mbps=172.40 moved=-1 scanned=-1 "
            f"cancelled=-1 dying_period_ms=100 dying={dying}")


def run_line(case: str, sysctl: int, ms: int = 16297, checks: str = "pass") -> str:
    return (f"# observe {case} phase=run sysctl={sysctl} checks={checks} leak=0 kmsg=0 "
            f"case_ms={ms} oom=-1 oom_kill=-1 oom_kill_sys=0")


def stress(sysctl: int, *, user: int, dead: int, split: str, series: str) -> list[str]:
    return [
        f"# observe stress phase=churn sysctl={sysctl} stat=file removed=210825216 dying_max=6 "
        f"dying_end=6 churn_ms=60452 oom=0 oom_kill=0 oom_kill_sys=0 oom_limited=0 "
        f"oom_kill_limited=0 moved=0 scanned=0 cancelled=0",
        f"# observe stress phase=sweep sysctl={sysctl} stat=file removed=3461120 user={user} "
        f"parent=0 dead={dead} split={split} gone=0 dying_base=0 dying_end=6 t_nodying_ms=-1 "
        f"window_ms=12485 churn_ms=60452 passes=1 oom=0 oom_kill=1 oom_kill_sys=2 access=read "
        f"access_bytes=67108864 access_us=576036 access_mbps=111.10 moved=0 scanned=0 "
        f"cancelled=0 dying_period_ms=500 dying={series}",
        run_line("stress", sysctl, 76809),
    ]


def anon(sysctl: int, *, user: int, dead: int, split: str) -> str:
    return (f"# observe anon_migrate phase=anon sysctl={sysctl} stat=anon removed=33554432 "
            f"user={user} parent=0 dead={dead} split={split} gone=0 dying_end=1 window_ms=8541 "
            f"oom=0 oom_kill=0 oom_kill_sys=-1")


def ktap(lines: list[str]) -> str:
    return "TAP version 13\n1..4\n" + "\n".join(lines) + "\nok 1 zombie_shmem # SKIP observed\n"


KEEPS = [(48, 50), (128, 50), (8528, 50)]
FALLS = [(2, 50), (104, 50), (203, 25), (303, 0)]


def kernel_lines(kind: str) -> dict[str, list[str]]:
    """suite name -> observe lines, for base | series | upstream."""
    if kind == "series":
        off = [zombie("zombie_shmem", 0, user=0, parent=0, dead=100 * MIB, split="bound",
                      series=KEEPS, t_nodying=-1), run_line("zombie_shmem", 0),
               anon(0, user=0, dead=32 * MIB, split="bound"), run_line("anon_migrate", 0),
               run_line("limit_max", 0, 16881),
               *stress(0, user=57344, dead=3461120, split="bound", series="20:0,512:2,1012:6")]
        on = [zombie("zombie_shmem", 1, user=100 * MIB, parent=0, dead=0, split="exact",
                     series=FALLS, t_nodying=303, window=307), run_line("zombie_shmem", 1, 3404),
              anon(1, user=32 * MIB, dead=0, split="exact"), run_line("anon_migrate", 1),
              run_line("limit_max", 1, 12000),
              *stress(1, user=3461120, dead=0, split="exact", series="20:0,512:1,1012:0")]
        return {"scenarios[sysctl=0]": off, "scenarios[sysctl=1]": on}
    if kind == "base":
        lines = [zombie("zombie_shmem", -1, user=0, parent=0, dead=100 * MIB, split="bound",
                        series=KEEPS, t_nodying=-1), run_line("zombie_shmem", -1),
                 anon(-1, user=0, dead=32 * MIB, split="bound"), run_line("anon_migrate", -1),
                 run_line("limit_max", -1, 16000),
                 *stress(-1, user=57344, dead=3461120, split="bound", series="20:0,512:3,1012:6")]
    else:
        lines = [zombie("zombie_shmem", -1, user=0, parent=100 * MIB, dead=0, split="exact",
                        series=[(2, 50), (104, 0)], t_nodying=104, window=5000),
                 run_line("zombie_shmem", -1, 9000, checks="fail"),
                 anon(-1, user=0, dead=0, split="exact"), run_line("anon_migrate", -1),
                 run_line("limit_max", -1, 15000),
                 *stress(-1, user=0, dead=0, split="exact", series="20:0,512:1,1012:0")]
    return {"scenarios[sysctl=0]": lines}


def make_kernel_run(out: Path, kind: str, *, exit_code: int = 0, observe: bool = True,
                    failed_stage: str | None = None) -> Path:
    """``out/1``: a run directory of a base | series | upstream kernel."""
    rd = out / "1"
    (rd / "ktap").mkdir(parents=True, exist_ok=True)
    release, ref = ("7.2", "v7.2.13-deb") if kind == "upstream" else ("6.12", "v6.12.57-deb")
    patches: list[dict[str, Any]] = [{"index": 1, "name": "0001-x.patch"}] \
        if kind == "series" else []
    stages = {s: {"status": "PASS", "detail": ""} for s in STAGES}
    if failed_stage:
        stages[failed_stage] = {"status": "ERROR", "detail": f"{failed_stage} exploded"}
    meta = {"build": {"command": "run", "schema_version": 1},
            "source": {"kind": "debian", "release": release, "base_ref": ref,
                       "patches": patches},
            "results": {"exit_code": exit_code, "status": "pass", "stages": stages}}
    (rd / "metadata.json").write_text(json.dumps(meta))
    if observe:
        for suite, lines in kernel_lines(kind).items():
            (rd / "ktap" / f"{suite}.tap").write_text(ktap(lines))
    (rd / "ktap" / "test_core.tap").write_text("ok 1 test_cgcore_destroy\n")
    (out / "latest").symlink_to("1")
    return rd


def make_four(root: Path) -> list[Path]:
    """Run directories of the base, the series (0 and 1) and 7.2, under ``root``."""
    return [make_kernel_run(root / k, k) for k in ("base", "series", "upstream")]
