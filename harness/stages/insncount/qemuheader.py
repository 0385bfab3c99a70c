"""QEMU's ``qemu-plugin.h`` to build the plugin against: ``RECHARGE_QEMU_PLUGIN_H``, a
system include directory, the cache, or extracted from the Debian source package of the
installed QEMU (``apt-get source --download-only`` with a private source list derived
from the system's own apt sources)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ENV_HEADER = "RECHARGE_QEMU_PLUGIN_H"
HEADER_NAME = "qemu-plugin.h"
SYSTEM_HEADERS = tuple(Path(d) / HEADER_NAME for d in (
    "/usr/include", "/usr/include/qemu", "/usr/local/include", "/usr/local/include/qemu"))
QEMU_PACKAGE = "qemu-system-x86"


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
