"""Measured windows: the plugin's ``window ...`` lines and the ``# insnwin ...`` lines of
``selftests/bench/hotpath.c -i N``, paired by window id in order (:func:`match_windows`),
turned into per-case metrics (:func:`window_metrics`), one guest at a time (:class:`Session`)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: hotpath.c window ids (enum WIN_* there) -> what one window's work unit is.
WINDOW_IDS = {1: "read_ext4", 2: "read_tmpfs", 3: "fault_ext4", 4: "fault_tmpfs",
              5: "mark_accessed_ext4", 6: "mark_accessed_ext4"}
MARK_ALT_ID, MARK_SAME_ID = 5, 6


@dataclass(frozen=True)
class PluginWindow:
    id: int
    seq: int
    vcpu: int
    insns: int | None = None  # the stopping vCPU's count (None: migrated or error)
    kernel: int | None = None
    all: int | None = None  # every vCPU
    all_kernel: int | None = None
    error: str | None = None


_KV = re.compile(r"(\w+)=(\S+)")


def parse_plugin_output(text: str) -> list[PluginWindow]:
    """Every complete ``window ...`` line of the plugin's output file."""
    out = []
    for line in text.splitlines():
        if not line.startswith("window "):
            continue
        kv = dict(_KV.findall(line))
        try:
            wid, seq, vcpu = int(kv["id"]), int(kv["seq"]), int(kv["vcpu"])
        except (KeyError, ValueError):
            continue
        err = kv.get("error") or ("migrated" if kv.get("migrated") == "1" else None)

        def num(k: str, kv: dict[str, str] = kv) -> int | None:
            try:
                return int(kv[k])
            except (KeyError, ValueError):
                return None
        insns = None if err else num("insns")
        out.append(PluginWindow(wid, seq, vcpu, insns, None if err else num("kernel"),
                                num("all"), num("all_kernel"), err))
    return out


def read_new(path: Path, offset: int) -> tuple[str, int]:
    """Complete lines of ``path`` past ``offset``, and the offset after them."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return "", offset
    end = data.rfind(b"\n") + 1
    return data[:end].decode("utf-8", "replace"), offset + end


_INSNWIN = re.compile(r"^#\s*insnwin\s+(.*)$")


def parse_program_windows(text: str) -> list[dict[str, Any]]:
    """hotpath's ``# insnwin case=C id=ID units=U unit=pages|reads faults=F`` lines."""
    out = []
    for line in text.splitlines():
        m = _INSNWIN.match(line.strip())
        if not m:
            continue
        kv = dict(_KV.findall(m.group(1)))
        try:
            out.append({"case": kv["case"], "id": int(kv["id"]), "units": int(kv["units"]),
                        "unit": kv.get("unit", "pages"), "faults": int(kv.get("faults", 0))})
        except (KeyError, ValueError):
            continue
    return out


def match_windows(program: list[dict[str, Any]],
                  plugin: list[PluginWindow]) -> tuple[list[dict[str, Any]], list[str]]:
    """Pair the program's windows with the plugin's, per id in order.

    Returns (matched windows with their counts, problems).  A count mismatch for an
    id (a window the plugin did not see, or one too many) drops that id entirely:
    pairing by order would be off by one.
    """
    problems = []
    by_id_prog: dict[int, list[dict[str, Any]]] = {}
    by_id_plug: dict[int, list[PluginWindow]] = {}
    for w in program:
        by_id_prog.setdefault(w["id"], []).append(w)
    for pw in plugin:
        by_id_plug.setdefault(pw.id, []).append(pw)
    matched = []
    for wid in sorted(set(by_id_prog) | set(by_id_plug)):
        pr, pl = by_id_prog.get(wid, []), by_id_plug.get(wid, [])
        if len(pr) != len(pl):
            problems.append(f"window id {wid}: the program ran {len(pr)}, "
                            f"the plugin saw {len(pl)}")
            continue
        for k, (a, b) in enumerate(zip(pr, pl)):
            if b.error:
                problems.append(f"window id {wid} #{k + 1}: {b.error}")
                continue
            if a["units"] <= 0 or b.insns is None:
                continue
            matched.append({**a, "k": k, "seq": b.seq, "vcpu": b.vcpu, "insns": b.insns,
                            "kernel": b.kernel, "all": b.all, "all_kernel": b.all_kernel})
    matched.sort(key=lambda w: w["seq"])
    return matched, problems


def window_metrics(matched: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per case: ``{metric: {"samples": [...], "unit": ...}}`` from the matched windows.

    read/fault cases: ``insns_per_page`` (the vCPU that ran the program),
    ``kernel_insns_per_page``, ``all_insns_per_page`` (every vCPU);
    mark_accessed: ``insns_per_read_alt`` / ``_same`` and ``insns_per_mark``
    (alt - same of the same repetition: one folio_mark_accessed() and its caller's
    bookkeeping).
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}

    def add(case: str, metric: str, unit: str, v: float) -> None:
        e = out.setdefault(case, {}).setdefault(metric, {"samples": [], "unit": unit})
        e["samples"].append(round(v, 3))

    alt: list[dict[str, Any]] = []
    same: list[dict[str, Any]] = []
    for w in matched:
        n = w["units"]
        if w["id"] == MARK_ALT_ID:
            alt.append(w)
            add(w["case"], "insns_per_read_alt", "insns/read", w["insns"] / n)
        elif w["id"] == MARK_SAME_ID:
            same.append(w)
            add(w["case"], "insns_per_read_same", "insns/read", w["insns"] / n)
        else:
            add(w["case"], "insns_per_page", "insns/page", w["insns"] / n)
            if w.get("kernel") is not None:
                add(w["case"], "kernel_insns_per_page", "insns/page", w["kernel"] / n)
            if w.get("all") is not None:
                add(w["case"], "all_insns_per_page", "insns/page", w["all"] / n)
    for a, s in zip(alt, same):
        add(a["case"], "insns_per_mark", "insns/mark", a["insns"] / a["units"]
            - s["insns"] / s["units"])
    return out


@dataclass
class Session:
    """One guest's plugin output file: what is new after each program run."""

    out: Path
    windows: int = 3
    offset: int = 0
    problems: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text("")
        self.offset = 0

    def program_args(self) -> list[str]:
        return ["-i", str(self.windows)] if self.windows else []

    def collect(self, stdout: str) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, Any]]]]:
        """The windows of the program run just finished: (what was matched, per case
        the window metrics to pool with the timed samples)."""
        # The plugin writes the stop line before the program goes on: a short wait
        # only covers a host that is slow to flush.
        prog = parse_program_windows(stdout)
        text, plugin = "", []
        for _ in range(10):
            more, self.offset = read_new(self.out, self.offset)
            text += more
            plugin = parse_plugin_output(text)
            if len(plugin) >= len(prog):
                break
            time.sleep(0.5)
        matched, problems = match_windows(prog, plugin)
        self.problems += problems
        return ({"windows": matched, "problems": problems, "program_windows": len(prog),
                 "plugin_windows": len(plugin)}, window_metrics(matched))

    def attach(self, run: dict[str, Any], stdout: str) -> None:
        """:meth:`collect` into a run's JSON (``insn``, and its ``metrics``)."""
        info, metrics = self.collect(stdout)
        run["insn"] = info
        for case, ms in metrics.items():
            run.setdefault("metrics", {}).setdefault(case, {}).update(ms)
