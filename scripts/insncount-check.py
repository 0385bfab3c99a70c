#!/usr/bin/env python3
"""Check the instruction-count plugin end to end on an already-built kernel.

    .venv/bin/python scripts/insncount-check.py --kernel BZIMAGE --program HOTPATH \
        [--sysctl 0,1] [--windows 3] [--rounds 1] [-- HOTPATH-ARGS...]

Builds (or takes from the cache) the QEMU plugin, boots BZIMAGE under TCG with it
the way ``recharge-harness bench`` does (same vng flags, scratch disks,
guest-setup.sh), runs ``HOTPATH -i WINDOWS [HOTPATH-ARGS]`` (default args:
``-H -r 1 -t 100``: the hot-path cases, one short timed sample each) at each
sysctl value, ``--rounds`` times, and prints every window's count and the
per-case spread.  No kernel is built.  Writes its files under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import paths  # noqa: E402
from harness.model import Options  # noqa: E402
from harness.modes.bench.hotpath import SYSCTL_PATH, parse_hotpath  # noqa: E402
from harness.stages import boot as bootmod  # noqa: E402
from harness.stages import insncount  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", type=Path, required=True)
    ap.add_argument("--program", type=Path, required=True)
    ap.add_argument("--sysctl", default="0,1")
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("out/insncount-check"),
                    help="where the plugin output and results go (default: out/insncount-check)")
    ap.add_argument("--memory", default="3G")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--icount", type=int, metavar="SHIFT",
                    help="also -icount shift=SHIFT (guest time from instruction count)")
    ap.add_argument("--max-other-qemu", type=int, default=1,
                    help="wait until at most this many other QEMUs run (shared host)")
    ap.add_argument("args", nargs="*", default=["-H", "-r", "1", "-t", "100"])
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # SIGTERM -> SystemExit, so that the guest's session is killed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    while True:
        res = subprocess.run(["pgrep", "-c", "qemu-system"], capture_output=True, text=True)
        others = int(res.stdout.strip() or 0)
        if others <= a.max_other_qemu:
            break
        print(f"waiting: {others} other QEMU(s) running", flush=True)
        time.sleep(20)
    cache = paths.cache_root()
    plugin = insncount.prepare_plugin(cache)
    print(f"plugin: {plugin.reason}")
    if not plugin.ok:
        return 2
    opts = Options(accel="tcg", memory=a.memory, cpus=a.cpus, project=paths.project_root(),
                   cache=cache)
    a.work.mkdir(parents=True, exist_ok=True)
    session = insncount.Session(a.work / "insncount.out", a.windows)
    results = []

    def qemu_opts(accel: str) -> tuple[str, ...]:
        session.start()
        return (plugin.qemu_arg(session.out),
                *((f"-icount shift={a.icount}",) if a.icount is not None else ()))

    with bootmod.boot(a.kernel.resolve(), a.work, bootmod.BootSpec.from_options(opts), cache,
                      qemu_opts=qemu_opts) as bg:
        setup = bootmod.guest_setup(bg.guest, opts.project, a.work / "guest-setup.log")
        print(f"boot -> ssh {bg.boot_to_ssh_s:.1f} s, guest-setup exit {setup.exit_code}")
        for r in range(a.rounds):
            for v in [int(x) for x in a.sysctl.split(",") if x.strip()]:
                res = bg.guest.run(f"echo {v} > {SYSCTL_PATH} 2>/dev/null; "
                                   f"cat {SYSCTL_PATH} 2>/dev/null || echo absent", 30)
                argv = [str(a.program.resolve()), *session.program_args(), *a.args]
                t0 = time.monotonic()
                out = bg.guest.run("stdbuf -oL -eL " + shlex.join(argv), 3600, cwd="/")
                took = time.monotonic() - t0
                (a.work / f"round{r + 1}-sysctl{v}.tap").write_text(out.stdout or "")
                run = {"round": r + 1, "sysctl": (res.stdout or "").strip(),
                       "exit_code": out.exit_code, "duration_s": round(took, 1),
                       **parse_hotpath(out.stdout or "").to_json()}
                session.attach(run, out.stdout or "")
                results.append(run)
                print(f"\n== round {r + 1}, sysctl {run['sysctl']}: exit {out.exit_code}, "
                      f"{took:.0f} s; problems: {run['insn']['problems'] or 'none'}")
                for w in run["insn"]["windows"]:
                    print(f"  {w['case']:20s} id={w['id']} k={w['k']} vcpu={w['vcpu']} "
                          f"insns={w['insns']:>12,} kernel={w['kernel']:>12,} "
                          f"all={w['all']:>12,} per {w['unit'][:-1]}: "
                          f"{w['insns'] / w['units']:.2f} (all vCPUs "
                          f"{w['all'] / w['units']:.2f}) faults={w['faults']}")
                for case, ms in sorted(run["metrics"].items()):
                    for m, e in sorted(ms.items()):
                        if m.startswith(("insns_per", "all_insns", "kernel_insns")):
                            s = insncount.insn_stats(e["samples"])
                            print(f"  {case:20s} {m:22s} median {s['median']:10.2f} "
                                  f"spread {s['spread_pct']:.4f} % n={s['n']}")
                        elif "samples" in e or "median" in e:
                            print(f"  {case:20s} {m:22s} (time) median {e.get('median')} "
                                  f"{e.get('unit', '')}")
    (a.work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"\nplugin output: {session.out}; results: {a.work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
