"""The QEMU TCG plugin ``insncount_plugin.c`` (in ``harness/stages/``), built on demand
against the ``qemu-plugin.h`` of the installed QEMU and cached in ``<cache>/insncount/``
by QEMU version + hash of the plugin source and header; its ``-plugin`` argument."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.stages.insncount.qemuheader import (
    ENV_HEADER,
    HEADER_NAME,
    debian_source_version,
    fetch_header_debian,
    find_header,
)

log = logging.getLogger(__name__)

PLUGIN_SOURCE = Path(__file__).parents[1] / "insncount_plugin.c"
CFLAGS = ("-shared", "-fPIC", "-O2", "-Wall", "-pthread")
QEMU_BIN = "qemu-system-x86_64"


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
