"""The ``# observe`` lines of the project's programs, as typed values.

``test_recharge`` and ``scenarios`` print, at every sysctl value and on kernels
without ``vm.recharge_offline_memcgs`` too (where every case SKIPs as "observed
only"), one diagnostic line per case and phase (selftests/README, "Observe
lines"; selftests/lib/observe.[ch])::

    # observe <case> [phase=<p>] key=value key=value ...

Values never contain blanks; sizes are bytes, times ms (``access_us``:
microseconds); ``-1`` means not measured or not available, which reads here as
``None`` (except ``gone``, which may be negative: the user gained other memory
too).  ``dying=t:count,t:count,...`` is the sampled ``nr_dying_descendants``
series of the zombie and stress cases.  Keys this parser does not know are kept
in :attr:`Observation.extra`, so a newer program never loses data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

_LINE = re.compile(r"^\s*#\s*observe\s+(\S+)(.*)$")

#: Integer keys where -1 means "not measured / not available" (-> None).
INT_KEYS = (
    "sysctl", "removed", "user", "parent", "dead", "dying_base", "dying_start", "dying_end",
    "dying_max", "t_nodying_ms", "window_ms", "churn_ms", "passes", "oom", "oom_kill",
    "oom_limited", "oom_kill_limited", "oom_kill_sys", "access_bytes", "access_us", "moved",
    "scanned", "cancelled", "leak", "kmsg", "case_ms", "dying_period_ms",
    # soak_churn phase=soak (selftests/recharge/soak.c)
    "seconds", "generations", "limited", "churn_memcgs", "live_file", "live_shmem",
    "oom_kill_other",
)
STR_KEYS = ("stat", "split", "access", "checks")


@dataclass(frozen=True)
class Sample:
    """One point of the dying-count series: ``t_ms`` after the reference
    (the removal; stress: the churn's start), ``count`` (None: unreadable)."""

    t_ms: int
    count: int | None


@dataclass(frozen=True)
class Observation:
    """One ``# observe`` line."""

    case: str
    phase: str | None = None  # None: the case's main line; "run": the runner's line
    sysctl: int | None = None  # None: the kernel has no such sysctl (-1 printed)
    stat: str | None = None
    removed: int | None = None
    user: int | None = None
    parent: int | None = None
    dead: int | None = None
    split: str | None = None  # exact | bound | unknown
    gone: int | None = None  # may be negative
    dying_base: int | None = None
    dying_start: int | None = None
    dying_end: int | None = None
    dying_max: int | None = None
    t_nodying_ms: int | None = None  # None: not back to dying_base within window_ms
    window_ms: int | None = None
    churn_ms: int | None = None
    passes: int | None = None
    oom: int | None = None
    oom_kill: int | None = None
    oom_limited: int | None = None
    oom_kill_limited: int | None = None
    oom_kill_sys: int | None = None
    access: str | None = None
    access_bytes: int | None = None
    access_us: int | None = None
    access_mbps: float | None = None
    moved: int | None = None
    scanned: int | None = None
    cancelled: int | None = None
    checks: str | None = None  # phase=run: pass | fail | skip
    leak: int | None = None
    kmsg: int | None = None
    case_ms: int | None = None
    dying_period_ms: int | None = None
    dying: tuple[Sample, ...] = ()
    # the soak's line: its duration (s), memcg generations started, of which limited,
    # churn memcgs made, what the live memcg holds at the end, OOM kills elsewhere
    seconds: int | None = None
    generations: int | None = None
    limited: int | None = None
    churn_memcgs: int | None = None
    live_file: int | None = None
    live_shmem: int | None = None
    oom_kill_other: int | None = None
    #: Keys this parser does not know, as printed.
    extra: dict[str, str] = field(default_factory=dict)
    #: Every key the line printed (a None value is "printed as -1" only if it is here).
    keys: frozenset[str] = frozenset()

    def printed(self, key: str) -> bool:
        return key in self.keys

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.case, self.phase)

    @property
    def is_run(self) -> bool:
        return self.phase == "run"

    @property
    def observing(self) -> bool:
        """Printed on a kernel without the sysctl (sysctl=-1)."""
        return self.sysctl is None

    @property
    def has_split(self) -> bool:
        """It says where the removed memory is (user, parent, dead)."""
        return self.removed is not None and (self.user is not None or self.dead is not None)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "dying":
                if v:
                    out["dying"] = [[s.t_ms, s.count] for s in v]
            elif f.name == "extra":
                if v:
                    out["extra"] = dict(v)
            elif f.name == "keys":
                continue
            elif v is not None:
                out[f.name] = v
        return out


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def parse_series(text: str) -> tuple[Sample, ...]:
    """``t:count,t:count,...`` (or ``-``) -> samples; malformed points are dropped."""
    out: list[Sample] = []
    if text in ("", "-"):
        return ()
    for point in text.split(","):
        t, sep, c = point.partition(":")
        ti, ci = _int(t), _int(c)
        if not sep or ti is None or ci is None:
            continue
        out.append(Sample(ti, None if ci < 0 else ci))
    return tuple(out)


def parse_line(line: str) -> Observation | None:
    """One line -> an :class:`Observation`; None when it is not an observe line."""
    m = _LINE.match(line.rstrip("\r\n"))
    if m is None:
        return None
    kw: dict[str, Any] = {"case": m.group(1)}
    extra: dict[str, str] = {}
    keys: set[str] = set()
    for token in m.group(2).split():
        key, sep, value = token.partition("=")
        keys.add(key)
        if not sep or not key:
            extra.setdefault("_junk", "")
            extra["_junk"] = (extra["_junk"] + " " + token).strip()
            continue
        if key == "phase":
            kw["phase"] = value
        elif key == "gone":
            kw["gone"] = _int(value)
        elif key in INT_KEYS:
            v = _int(value)
            if v is None:
                extra[key] = value
            kw[key] = None if v is None or v == -1 else v
        elif key in STR_KEYS:
            kw[key] = value
        elif key == "access_mbps":
            try:
                f = float(value)
            except ValueError:
                f = -1.0
            kw[key] = None if f < 0 else f
        elif key == "dying":
            kw["dying"] = parse_series(value)
        else:
            extra[key] = value
    return Observation(**kw, extra=extra, keys=frozenset(keys))


def parse_text(text: str) -> list[Observation]:
    """Every observe line of a program's output, in order."""
    out = []
    for line in text.splitlines():
        if "observe" in line:
            o = parse_line(line)
            if o is not None:
                out.append(o)
    return out


def read_ktap_dir(ktap: Path) -> dict[str, list[Observation]]:
    """``<run>/ktap/*.tap`` -> {suite name: its observations} (suites with any)."""
    out: dict[str, list[Observation]] = {}
    if not ktap.is_dir():
        return out
    for p in sorted(ktap.glob("*.tap")):
        try:
            obs = parse_text(p.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        if obs:
            out[p.stem] = obs
    return out
