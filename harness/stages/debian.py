"""The Debian kernel sources the harness can test: ``--source debian:<release>``.

``debian:6.12`` (the default) is the series' base: Debian's ``linux-source-6.12``,
from the system's apt configuration (or the installed ``/usr/src`` tarball).
``debian:7.2`` is upstream Linux 7.2 as Debian sid ships it (``linux-source-7.2``),
the kernel that *reparents* a removed memcg's LRU folios to its parent at offline:
the series is not applied to it (it is written for 6.12), so a 7.2 source always
means "no series".

A release from another suite than the system's is downloaded with an apt list of
the harness's own (``apt-get -o Dir::Etc::sourcelist=...``): the system's lists,
sources and caches are never read or written for it.  The list names the same
archive the system uses (its ``deb`` entry for its own codename: a mirror or a
proxy keeps working), with the release's suite.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import InfraError

log = logging.getLogger(__name__)

#: The archive when the system's apt sources name none for its own codename.
FALLBACK_ARCHIVE = "http://deb.debian.org/debian"
FALLBACK_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True)
class Release:
    """One ``--source debian:<name>``."""

    name: str  # "6.12"
    package: str  # the Debian binary package holding the tarball
    suite: str | None  # None: the system's apt configuration; else a private list of it
    series: bool  # whether patches/series is meant for it
    about: str

    @property
    def spec(self) -> str:
        return f"debian:{self.name}"

    @property
    def src_dir_name(self) -> str:
        """The repository in ``<cache>/src``."""
        return f"linux-{self.name}"

    @property
    def tag_pattern(self) -> str:
        return f"v{self.name}.*-deb"

    @property
    def worktree_prefix(self) -> str:
        return f"debian-{self.name}"

    @property
    def system_tarball(self) -> Path:
        return Path("/usr/src") / f"{self.package}.tar.xz"


RELEASES: dict[str, Release] = {
    "6.12": Release("6.12", "linux-source-6.12", None, True,
                    "Linux 6.12 LTS, the series' base (Debian linux-source-6.12)"),
    "7.2": Release("7.2", "linux-source-7.2", "sid", False,
                   "upstream Linux 7.2 (Debian sid linux-source-7.2), which reparents the "
                   "LRU folios of a removed memcg to its parent"),
}
DEFAULT_SOURCE = "debian:6.12"


def parse_source(text: str) -> Release:
    """``debian:7.2`` -> its :class:`Release`; ValueError naming the valid ones."""
    kind, _, name = text.strip().partition(":")
    rel = RELEASES.get(name) if kind == "debian" else None
    if rel is None:
        valid = ", ".join(r.spec for r in RELEASES.values())
        raise ValueError(f"unknown source {text!r} (valid: {valid}; or --tree PATH)")
    return rel


# ------------------------------------------------------------ apt sources --


def _os_codename(os_release: str) -> str | None:
    m = re.search(r"^VERSION_CODENAME=\"?([\w-]+)\"?$", os_release, re.M)
    return m.group(1) if m else None


def system_archive(files: dict[str, str], codename: str | None) -> tuple[str, str]:
    """(archive URI, Signed-By keyring) of the system's ``deb`` entry for ``codename``.

    ``files``: apt source files, name -> text (``.sources`` deb822 or ``.list``
    one-line).  Falls back to Debian's own archive and keyring when none matches."""
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
                if codename in f.get("suites", "").split() and f.get("uris"):
                    return f["uris"].split()[0], f.get("signed-by", "") or FALLBACK_KEYRING
        elif name.endswith(".list"):
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                m = re.match(r"^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)", line)
                if m and m.group(3) == codename:
                    opts = dict(o.split("=", 1) for o in (m.group(1) or "").split() if "=" in o)
                    return m.group(2), opts.get("signed-by", FALLBACK_KEYRING)
    return FALLBACK_ARCHIVE, FALLBACK_KEYRING


def read_apt_sources(etc: Path = Path("/etc/apt")) -> dict[str, str]:
    """The system's apt source files (read only)."""
    files: dict[str, str] = {}
    for p in [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*"))]:
        if p.suffix in (".list", ".sources") and p.is_file():
            try:
                files[str(p)] = p.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
    return files


def suite_list(uri: str, keyring: str, suite: str) -> str:
    """The harness's own one-line apt list: ``deb [signed-by=K] URI SUITE main``."""
    opts = f"[signed-by={keyring}] " if keyring else ""
    return f"deb {opts}{uri} {suite} main\n"


def apt_options(work: Path) -> list[str]:
    """apt-get options that use only ``work``: its list, lists and cache."""
    return [f"-oDir::Etc::sourcelist={work / 'sources.list'}",
            "-oDir::Etc::sourceparts=-",
            f"-oDir::State::Lists={work / 'lists'}",
            f"-oDir::Cache={work / 'cache'}",
            # root: apt's download sandbox user (_apt) cannot write to our private dirs
            *(["-oAPT::Sandbox::User=root"] if os.geteuid() == 0 else [])]


def download(release: Release, workdir: Path, log_path: Path | None) -> Path:
    """``apt-get download <package>`` into ``workdir``; the .deb's path.

    A release of another suite first gets its own apt list and lists in
    ``workdir/apt`` (``apt-get update`` with them; nothing of the system's)."""
    opts: list[str] = []
    if release.suite is not None:
        work = workdir / "apt"
        (work / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (work / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        try:
            codename = _os_codename(Path("/etc/os-release").read_text(encoding="utf-8"))
        except OSError:
            codename = None
        uri, keyring = system_archive(read_apt_sources(), codename)
        (work / "sources.list").write_text(suite_list(uri, keyring, release.suite))
        opts = apt_options(work)
        log.info("source: apt-get update with the harness's own list (%s %s main)",
                 uri, release.suite)
        res = proc.run(["apt-get", *opts, "update"], cwd=workdir, timeout=1800,
                       log_path=log_path)
        if res.returncode != 0:
            raise InfraError(f"apt-get update of {uri} {release.suite} failed: "
                             f"{res.tail[-1] if res.tail else 'no output'}", log=log_path)
    log.info("source: downloading %s with apt-get download (no root needed)", release.package)
    res = proc.run(["apt-get", *opts, "download", release.package], cwd=workdir,
                   timeout=1800, log_path=log_path)
    debs = sorted(workdir.glob(f"{release.package}_*.deb"))
    if res.returncode != 0 or not debs:
        raise InfraError(
            f"apt-get download {release.package} failed: "
            f"{res.tail[-1] if res.tail else 'no output'}",
            log=log_path,
        )
    if release.suite is not None:
        shutil.rmtree(workdir / "apt", ignore_errors=True)
    return debs[-1]
