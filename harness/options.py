"""The run options of the command line, and how a mode forwards them to a child run.

Every subcommand that runs the pipeline takes (a part of) the ``run`` options; the CI
modes start child runs (``python -m harness run ...``) with the options the user gave.
:func:`forward_args` derives that argv from the same definitions, so an option added
here is forwarded without changes elsewhere.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.stages.profiles import DEFAULT_PROFILE, PROFILES
from harness.stages.widenet import soak_seconds


@dataclass(frozen=True)
class Forward:
    """How one option goes to a child run: its dest, its flag, its action, its default."""

    dest: str
    flag: str
    action: str  # store | store_true | append
    default: Any


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return v


def add_run_options(sp: argparse.ArgumentParser, name: str) -> list[Forward]:
    """The options of subcommand ``name`` (``run`` has them all); returns how to forward
    each one to a child run, in the parser's order."""
    fwd: list[Forward] = []

    class _Group:
        def __init__(self, title: str):
            self.g = sp.add_argument_group(title)

        def add_argument(self, *flags: str, **kw: Any) -> None:
            action = self.g.add_argument(*flags, **kw)
            flag = next((f for f in reversed(flags) if f.startswith("--")), flags[0])
            fwd.append(Forward(action.dest, flag, str(kw.get("action", "store")), action.default))

    g = _Group("source")
    g.add_argument("--source", default="debian:6.12", metavar="debian:RELEASE",
                   help="the Debian kernel source: debian:6.12 (default, the series' base) or "
                   "debian:7.2 (upstream 7.2 from Debian sid; never patched: --series none)")
    g.add_argument("--tree", type=Path, help="your kernel git tree (never modified; a worktree "
                   "in the cache is used). Default: Debian linux-source-6.12")
    g.add_argument("--base", help="commit/branch/tag of --tree to apply the series on "
                   "(default: its HEAD)")
    g.add_argument("--series", type=Path, help="series file (default: <project>/patches/series;"
                   " missing or empty = test the base; 'none': no series)")
    g.add_argument("--out", type=Path, default=Path("out"),
                   help="parent of the numbered run directories (default: ./out)")
    g.add_argument("--project", type=Path, help="project checkout with kconfig/, patches/, "
                   "selftests/ (default: the one this harness is installed from)")
    if name in ("source", "apply"):
        return fwd
    g = _Group("build")
    g.add_argument("--profile", default=DEFAULT_PROFILE,
                   help="config profile: " + "; ".join(f"{p.name}: {p.description}"
                                                       for p in PROFILES.values()))
    g.add_argument("--jobs", "-j", type=_positive_int, help="make -j (default: CPU count)")
    if name in ("config", "build"):
        return fwd
    g = _Group("guest")
    g.add_argument("--memory", default="3G", help="guest memory (default 3G)")
    g.add_argument("--cpus", type=_positive_int, default=2, help="guest CPUs (default 2)")
    g.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                   help="auto: probe KVM with a short test boot, fall back to TCG (default)")
    g.add_argument("--tcg-multithread", action="store_true",
                   help="multi-threaded TCG (default: single-threaded, see README)")
    g.add_argument("--boot-timeout", type=float, default=300.0,
                   help="seconds to wait for SSH in the guest (default 300)")
    g.add_argument("--keep-vm-on-failure", action="store_true",
                   help="leave the guest running when a stage errors (for debugging)")
    if name in ("test", "run"):
        g.add_argument("--suite", action="append", default=[], metavar="NAME",
                       help="run only this suite (repeatable; e.g. test_memcontrol, recharge)")
        g.add_argument("--case", action="append", default=[], metavar="NAME",
                       help="run only this case of the project's programs (repeatable; e.g. "
                            "lru_hold): only the suites that have it run, each with just "
                            "the selected cases, and the inventory expects just those")
        g.add_argument("--stress-seconds", type=_positive_int, metavar="N",
                       help="duration of the scenarios' stress case (default 60)")
        g.add_argument("--soak-seconds", type=soak_seconds, metavar="N",
                       help="duration of the soak suite's soak (default 120, at least 10)")
        g.add_argument("--shard", metavar="I/N",
                       help="run only shard I of N of the selected suites (round-robin over "
                       "their sorted names; for CI matrices, combine with `merge`)")
        g.add_argument("--parallel", type=_positive_int, metavar="N",
                       help="boot N guests of the kernel and share the suites out among "
                       "them, longest first (default: one per host CPU, at most one per "
                       "suite, as many as fit in 70%% of the host's memory; 1: one guest)")
    if name == "test":
        g.add_argument("--kernel-dir", type=Path, metavar="DIR",
                       help="test the kernel of a `build` (or `run`) run directory: "
                       "DIR/kernel/bzImage, DIR/config and the selftests in DIR/guest/ "
                       "(e.g. a CI artifact); no source, no build, no cache needed")
    return fwd


def forward_args(args: argparse.Namespace, *, drop: tuple[str, ...] = (),
                 command: str = "run") -> list[str]:
    """The ``run`` options the user gave (non-default values), as argv for a child run.

    ``drop``: dests the caller sets itself (e.g. ``out``, ``series``, ``base``);
    ``command``: the child's subcommand: only the options it takes (``apply`` takes no
    guest option, ``build`` no suite).
    """
    takes = {f.dest for f in add_run_options(argparse.ArgumentParser(add_help=False), command)}
    out: list[str] = []
    for f in add_run_options(argparse.ArgumentParser(add_help=False), "run"):
        if f.dest in drop or f.dest not in takes or not hasattr(args, f.dest):
            continue
        value = getattr(args, f.dest)
        if value is None or value == f.default or value == []:
            continue
        if f.action == "store_true":
            out.append(f.flag)
        elif f.action == "append":
            for v in value:
                out += [f.flag, str(v)]
        else:
            out += [f.flag, str(value)]
    return out
