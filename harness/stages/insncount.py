"""Guest instruction counts for ``recharge-harness bench``: a noise-free hot-path measure.

Under TCG the wall-clock ratios of two boots scatter by several per cent, so a 1 %
goal cannot be judged by time.  The number of guest instructions executed for a
fixed amount of work does not depend on the host's load.  This module:

* builds the QEMU TCG plugin ``insncount_plugin.c`` (next to this file) on demand
  against the ``qemu-plugin.h`` of the installed QEMU, cached in
  ``<cache>/insncount/`` by QEMU version + hash of the plugin source and header
  (:func:`prepare_plugin`); the header is taken from ``RECHARGE_QEMU_PLUGIN_H``,
  a system include directory, the cache, or extracted from the Debian source
  package of the installed QEMU (``apt-get source --download-only`` with a
  private source list derived from the system's own apt sources);
* gives the ``-plugin`` argument for QEMU (passed through vng ``--qemu-opts``);
* parses the plugin's output (one ``window ...`` line per measured window) and the
  ``# insnwin ...`` lines of ``selftests/bench/hotpath.c -i N``, pairs them by
  window id in order (:func:`match_windows`) and turns them into per-case
  metrics (instructions per 4 KiB page, per read, per ``folio_mark_accessed()``),
  pooled like the timed samples (:func:`attach`);
* computes patched / base instruction ratios (:func:`ratios`), their goals and
  the markdown table of ``bench.md``.

See ``docs/instruction-count.md``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PLUGIN_SOURCE = Path(__file__).with_name("insncount_plugin.c")
ENV_HEADER = "RECHARGE_QEMU_PLUGIN_H"
HEADER_NAME = "qemu-plugin.h"
SYSTEM_HEADERS = tuple(Path(d) / HEADER_NAME for d in (
    "/usr/include", "/usr/include/qemu", "/usr/local/include", "/usr/local/include/qemu"))
CFLAGS = ("-shared", "-fPIC", "-O2", "-Wall", "-pthread")
QEMU_BIN = "qemu-system-x86_64"
QEMU_PACKAGE = "qemu-system-x86"

#: hotpath.c window ids (enum WIN_* there) -> what one window's work unit is.
WINDOW_IDS = {1: "read_ext4", 2: "read_tmpfs", 3: "fault_ext4", 4: "fault_tmpfs",
              5: "mark_accessed_ext4", 6: "mark_accessed_ext4"}
MARK_ALT_ID, MARK_SAME_ID = 5, 6

#: Per case, the instruction metric the patched / base goal is judged on: guest
#: instructions per unit of fixed work (lower is better; throughput ~ 1 / it).
INSN_METRICS = {"read_ext4": "insns_per_page", "read_tmpfs": "insns_per_page",
                "fault_ext4": "insns_per_page", "fault_tmpfs": "insns_per_page",
                "mark_accessed_ext4": "insns_per_read_alt"}
#: Shown too, not judged.
INSN_EXTRA = {"mark_accessed_ext4": ("insns_per_read_same", "insns_per_mark")}
GOAL_HOT_RATIO = 0.99  # the same goal as bench.GOAL_HOT_RATIO, on 1 / (insn ratio)


# ------------------------------------------------------------------ plugin --


@dataclass
class Plugin:
    """The built plugin, or why there is none."""

    path: Path | None
    reason: str  # how it was obtained, or why it could not be
    qemu: str = ""
    header: str = ""
    build_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None

    def qemu_arg(self, out: Path) -> str:
        """The ``-plugin`` option; vng hands it to a shell, so no odd characters."""
        assert self.path is not None
        for p in (self.path, out):
            if not re.fullmatch(r"[\w./+@-]+", str(p)):
                raise ValueError(f"path {p} has characters vng's shell would mangle")
        return f"-plugin {self.path},out={out}"

    def describe(self) -> dict[str, Any]:
        return {"available": self.ok, "path": str(self.path) if self.path else None,
                "reason": self.reason, "qemu": self.qemu, "header": self.header,
                "build_s": self.build_s}


def qemu_version_line(qemu: str | None = None) -> str:
    q = qemu or shutil.which(QEMU_BIN)
    if not q:
        return ""
    try:
        res = subprocess.run([q, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (res.stdout.splitlines() or [""])[0].strip()


def debian_source_version(package: str = QEMU_PACKAGE) -> str | None:
    """The Debian source version of the installed ``package`` (binNMU suffix gone)."""
    if not shutil.which("dpkg-query"):
        return None
    try:
        res = subprocess.run(["dpkg-query", "-W", "-f=${source:Version}", package],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    v = res.stdout.strip()
    return v if res.returncode == 0 and v else None


def _slug(text: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", text).strip("_")[:80] or "unknown"


def find_header(cache: Path, source_version: str | None) -> Path | None:
    """``RECHARGE_QEMU_PLUGIN_H``, else a system include dir, else the cache."""
    env = os.environ.get(ENV_HEADER)
    if env:
        p = Path(env).expanduser()
        return p if p.is_file() else None
    for p in SYSTEM_HEADERS:
        if p.is_file():
            return p
    if source_version:
        p = cache / "insncount" / "headers" / _slug(source_version) / HEADER_NAME
        if p.is_file():
            return p
    return None


# --- apt sources: the system's own "deb" entries of this release, as "deb-src" ---


def _os_codename(os_release: str) -> str | None:
    m = re.search(r"^VERSION_CODENAME=\"?([\w-]+)\"?$", os_release, re.M)
    return m.group(1) if m else None


def deb_src_entries(files: dict[str, str], codename: str) -> list[str]:
    """deb822 ``deb-src`` stanzas for the ``deb`` entries of ``files`` (name -> text)
    whose suite is ``codename`` or ``codename-*`` (third-party repositories with
    other suite names are left out: they have no sources of QEMU)."""
    entries: list[tuple[str, str, str, str]] = []  # uri, suite, components, options
    for name, text in files.items():
        if name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                f: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    k, v = line.split(":", 1)
                    f[k.strip().lower()] = v.strip()
                if "deb" not in f.get("types", "").split() or f.get("enabled") == "no":
                    continue
                signed = f.get("signed-by", "")
                for uri in f.get("uris", "").split():
                    for suite in f.get("suites", "").split():
                        entries.append((uri, suite, f.get("components", "main"), signed))
        elif name.endswith(".list"):
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                m = re.match(r"^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
                if not m:
                    continue
                opts = dict(o.split("=", 1) for o in (m.group(1) or "").split() if "=" in o)
                entries.append((m.group(2), m.group(3), m.group(4) or "main",
                                opts.get("signed-by", "")))
    out, seen = [], set()
    for uri, suite, comps, signed in entries:
        if suite != codename and not suite.startswith(codename + "-"):
            continue
        if (uri, suite) in seen:
            continue
        seen.add((uri, suite))
        stanza = f"Types: deb-src\nURIs: {uri}\nSuites: {suite}\nComponents: {comps}\n"
        if signed:
            stanza += f"Signed-By: {signed}\n"
        out.append(stanza)
    return out


def _read_apt_sources() -> dict[str, str]:
    files: dict[str, str] = {}
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if p.suffix in (".list", ".sources") and p.is_file():
            try:
                files[str(p)] = p.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
    return files


def fetch_header_debian(cache: Path, source_version: str, log_path: Path) -> Path:
    """Extract ``include/qemu/qemu-plugin.h`` from the Debian source of QEMU
    ``source_version`` (only the original tarball, ~24 MB, is downloaded; nothing
    is installed and the system's apt configuration is not changed)."""
    if not shutil.which("apt-get"):
        raise RuntimeError("no apt-get")
    try:
        codename = _os_codename(Path("/etc/os-release").read_text())
    except OSError:
        codename = None
    if not codename:
        raise RuntimeError("no VERSION_CODENAME in /etc/os-release")
    stanzas = deb_src_entries(_read_apt_sources(), codename)
    if not stanzas:
        raise RuntimeError(f"no apt source of {codename} to derive a deb-src entry from")
    dest = cache / "insncount" / "headers" / _slug(source_version) / HEADER_NAME
    work = cache / "insncount" / "apt"
    shutil.rmtree(work, ignore_errors=True)
    (work / "lists" / "partial").mkdir(parents=True)
    (work / "cache" / "archives" / "partial").mkdir(parents=True)
    (work / "src.sources").write_text("\n".join(stanzas))
    apt_opts = [f"-oDir::Etc::SourceList={work / 'src.sources'}",
                "-oDir::Etc::SourceParts=/nonexistent",
                f"-oDir::State::Lists={work / 'lists'}", f"-oDir::Cache={work / 'cache'}",
                "-oAPT::Sandbox::User=root" if os.geteuid() == 0 else "-q"]
    dl = work / "dl"
    dl.mkdir()
    with open(log_path, "a", encoding="utf-8") as logf:
        for argv, cwd in ((["apt-get", *apt_opts, "update"], work),
                          (["apt-get", *apt_opts, "source", "--download-only",
                            f"qemu={source_version}"], dl)):
            logf.write(f"$ {' '.join(argv)}\n")
            logf.flush()
            res = subprocess.run(argv, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT,
                                 timeout=1200)
            if res.returncode != 0 and argv[-1] != "update":  # update: some lists may 404
                raise RuntimeError(f"apt-get source qemu={source_version} failed "
                                   f"(exit {res.returncode}, see {log_path})")
        origs = sorted(dl.glob("qemu_*.orig.tar.*"))
        if not origs:
            raise RuntimeError(f"apt-get source left no qemu_*.orig.tar.* in {dl}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        argv = ["tar", "-xOf", str(origs[0]), "--wildcards", f"*/include/qemu/{HEADER_NAME}"]
        logf.write(f"$ {' '.join(argv)} > {tmp}\n")
        with open(tmp, "wb") as f:
            res = subprocess.run(argv, stdout=f, stderr=logf, timeout=600)
        if res.returncode != 0 or tmp.stat().st_size == 0:
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"no include/qemu/{HEADER_NAME} in {origs[0].name}")
        os.replace(tmp, dest)
    shutil.rmtree(work, ignore_errors=True)
    return dest


def plugin_key(qemu: str, source: bytes, header: bytes) -> str:
    h = hashlib.sha256()
    for part in (qemu.encode(), source, header, " ".join(CFLAGS).encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def probe_plugin(so: Path, work: Path, timeout_s: float = 30.0) -> str | None:
    """Load ``so`` into a guest-less QEMU (``-machine none``); None if it loaded."""
    q = shutil.which(QEMU_BIN)
    if not q:
        return f"{QEMU_BIN} not found"
    out = work / "probe.out"
    out.unlink(missing_ok=True)
    try:
        res = subprocess.run([q, "-machine", "none", "-nodefaults", "-display", "none",
                              "-monitor", "stdio", "-plugin", f"{so},out={out}"],
                             input="quit\n", capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"QEMU with the plugin did not start: {e}"
    text = out.read_text(errors="replace") if out.is_file() else ""
    if not text.startswith("insncount "):
        msg = (res.stderr.strip().splitlines() or ["no output"])[-1]
        return f"QEMU did not load the plugin (exit {res.returncode}): {msg[:200]}"
    return None


def prepare_plugin(cache: Path, *, fetch: bool = True) -> Plugin:
    """The plugin for the installed QEMU: cached, else built; never raises."""
    t0 = time.monotonic()
    qemu = qemu_version_line()
    if not qemu:
        return Plugin(None, f"{QEMU_BIN} not found or does not run")
    gcc = shutil.which("gcc")
    if not gcc:
        return Plugin(None, "no gcc to build the QEMU plugin", qemu)
    work = cache / "insncount"
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "build.log"
    srcver = debian_source_version()
    header = find_header(cache, srcver)
    how = "found"
    if header is None and os.environ.get(ENV_HEADER):
        return Plugin(None, f"{ENV_HEADER}={os.environ[ENV_HEADER]}: no such file", qemu)
    if header is None and fetch and srcver:
        try:
            log.info("insncount: extracting %s from the Debian source of QEMU %s",
                     HEADER_NAME, srcver)
            header = fetch_header_debian(cache, srcver, log_path)
            how = f"extracted from Debian source qemu {srcver}"
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            return Plugin(None, f"no {HEADER_NAME} for {qemu}: {e}; set {ENV_HEADER} to "
                          f"include/qemu/{HEADER_NAME} of QEMU's source", qemu)
    if header is None:
        return Plugin(None, f"no {HEADER_NAME} for {qemu} (not installed, not in the cache"
                      + ("" if srcver else ", not a Debian package") + f"); set {ENV_HEADER} "
                      f"to include/qemu/{HEADER_NAME} of QEMU's source", qemu)
    try:
        src, hdr = PLUGIN_SOURCE.read_bytes(), header.read_bytes()
    except OSError as e:
        return Plugin(None, f"cannot read the plugin source or header: {e}", qemu, str(header))
    so = work / f"insncount-{plugin_key(qemu, src, hdr)}.so"
    if so.is_file() and so.with_suffix(".ok").is_file():
        return Plugin(so, f"cached ({so.name}, header {how})", qemu, str(header))
    with tempfile.TemporaryDirectory(dir=work) as td:
        tmp = Path(td) / so.name
        argv = [gcc, *CFLAGS, "-I", str(header.parent), "-o", str(tmp), str(PLUGIN_SOURCE)]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(f"$ {' '.join(argv)}\n{res.stdout}{res.stderr}[exit {res.returncode}]\n")
        if res.returncode != 0:
            first = next((l for l in res.stderr.splitlines() if "error" in l), "")
            return Plugin(None, f"the plugin did not compile: {first[:200]} (see {log_path})",
                          qemu, str(header))
        why = probe_plugin(tmp, Path(td))
        if why:
            return Plugin(None, why, qemu, str(header))
        os.replace(tmp, so)
    so.with_suffix(".ok").write_text(qemu + "\n")
    return Plugin(so, f"built ({so.name}, header {how})", qemu, str(header),
                  round(time.monotonic() - t0, 2))


# ----------------------------------------------------------------- parsing --


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


# ------------------------------------------------------------------ ratios --


def insn_stats(samples: list[float]) -> dict[str, Any]:
    """Like bench.stats, with the precision instruction counts deserve."""
    if not samples:
        return {"n": 0}
    med = statistics.median(samples)
    return {"median": round(med, 3), "min": round(min(samples), 3),
            "max": round(max(samples), 3),
            "spread_pct": round(100.0 * (max(samples) - min(samples)) / abs(med), 4)
            if med else 0.0, "n": len(samples)}


def _samples(merged: dict[str, Any] | None, sysctl: str, case: str, metric: str) -> list[float]:
    if not merged:
        return []
    return list(merged.get(sysctl, {}).get(case, {}).get(metric, {}).get("samples") or [])


def ratios(patched: dict[str, Any], base: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per case and instruction metric: patched / base and sysctl 1 / 0.

    ``patched``/``base``: bench's merged runs ({sysctl: {case: {metric: stats}}});
    the base kernel has no sysctl ("absent").  ``*_over_base`` is the instruction
    ratio (> 1: the patched kernel executes more); ``*_throughput`` its inverse,
    the number the >= 0.99 goal is about.
    """
    rows = []
    bkey = None
    if base:
        bkey = "absent" if "absent" in base else ("0" if "0" in base else None)
    metrics = [(c, m, True) for c, m in INSN_METRICS.items()]
    metrics += [(c, m, False) for c, ms in INSN_EXTRA.items() for m in ms]
    for case, metric, judged in metrics:
        s0 = _samples(patched, "0", case, metric)
        s1 = _samples(patched, "1", case, metric)
        if not s0 and not s1:
            s0 = _samples(patched, "absent", case, metric)
        b = _samples(base, bkey, case, metric) if bkey else []
        if not (s0 or s1 or b):
            continue
        row: dict[str, Any] = {"case": case, "metric": metric, "judged": judged}
        for key, vals in (("sysctl0", s0), ("sysctl1", s1), ("base", b)):
            if vals:
                row[key] = insn_stats(vals)
        if s0 and s1 and row["sysctl0"]["median"]:
            row["sysctl1_over_sysctl0"] = round(row["sysctl1"]["median"]
                                                / row["sysctl0"]["median"], 5)
            row["sysctl1_minus_sysctl0"] = round(row["sysctl1"]["median"]
                                                 - row["sysctl0"]["median"], 3)
        if b and row["base"]["median"] > 0:
            for key in ("sysctl0", "sysctl1"):
                e = row.get(key)
                if not e or e["median"] <= 0:
                    continue
                r = e["median"] / row["base"]["median"]
                row[f"{key}_over_base"] = round(r, 5)
                row[f"{key}_minus_base"] = round(e["median"] - row["base"]["median"], 3)
                row[f"{key}_throughput"] = round(1 / r, 5)
                row[f"{key}_met"] = 1 / r >= GOAL_HOT_RATIO
        rows.append(row)
    return rows


def goals(hotpath: dict[str, Any]) -> list[dict[str, Any]]:
    """Goal rows for bench.md: base / patched instructions >= 0.99 per judged case."""
    out = []
    for row in hotpath.get("insn_ratios", []):
        if not row.get("judged"):
            continue
        for key in ("sysctl0", "sysctl1"):
            t = row.get(f"{key}_throughput")
            if t is None:
                continue
            spread = max(row.get(key, {}).get("spread_pct", 0),
                         row.get("base", {}).get("spread_pct", 0))
            bound = "" if row.get(f"{key}_met") else (
                f"{row[f'{key}_minus_base']:+.1f} {row['metric'].replace('insns_per_', 'insns/')}"
                f" vs base (run-to-run spread {spread:.3f} %): executed instructions, "
                "not host noise")
            out.append({"goal": f"hot path {row['case']} patched[{key}] / base "
                                "(guest instructions)",
                        "target": f">= {GOAL_HOT_RATIO}", "value": t, "unit": "x",
                        "met": bool(row.get(f"{key}_met")), "bound": bound})
    return out


def markdown(hotpath: dict[str, Any]) -> list[str]:
    """The instruction-count section of bench.md (or why there is none)."""
    plug = {}
    for label in ("patched", "base"):
        p = hotpath.get(label, {}).get("boot", {}).get("insn_plugin")
        if p:
            plug = p
            break
    if not plug:
        return []
    lines = ["", "### Guest instructions (QEMU TCG plugin, `harness/stages/insncount_plugin.c`)", ""]
    if not plug.get("available") or plug.get("disabled"):
        lines.append(f"Not measured: {plug.get('reason')}. The ratios above are by time only.")
        return lines
    lines += [f"Plugin: {plug.get('reason')}; {plug.get('qemu')}. Fixed work per window "
              "(one pass over the file; mark_accessed: N one-byte preads); the count is the "
              "instructions the vCPU running the program executed between the two markers "
              "(program, kernel on its behalf, interrupts). Lower is better; the goal is "
              f"base / patched >= {GOAL_HOT_RATIO}.", "",
              "| case | metric | base | patched sysctl=0 | patched sysctl=1 | s0/base | "
              "s1/base | s1/s0 | s1-s0 |", "|---|---|---|---|---|---|---|---|---|"]

    def cell(e: dict[str, Any] | None) -> str:
        if not e:
            return "n/a"
        return f"{e['median']:.1f} (+-{e['spread_pct']:.3f} %, n={e['n']})"

    def r(v: Any) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    for row in hotpath.get("insn_ratios", []):
        d = row.get("sysctl1_minus_sysctl0")
        lines.append(f"| {row['case']} | {row['metric']} | {cell(row.get('base'))} | "
                     f"{cell(row.get('sysctl0'))} | {cell(row.get('sysctl1'))} | "
                     f"{r(row.get('sysctl0_over_base'))} | {r(row.get('sysctl1_over_base'))} | "
                     f"{r(row.get('sysctl1_over_sysctl0'))} | "
                     f"{'n/a' if d is None else f'{d:+.1f}'} |")
    probs = sorted({p for label in ("patched", "base")
                    for run in hotpath.get(label, {}).get("runs", [])
                    for p in run.get("insn", {}).get("problems", [])})
    if probs:
        lines += ["", "Windows left out: " + "; ".join(probs)]
    return lines
