"""--source debian:7.2: the release table, the harness's own apt list, and the CLI's rules
(7.2 is never patched)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness import cli
from harness.errors import InfraError, SourceError
from harness.stages import debian, source

from fakes import write_exe

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_parse_source() -> None:
    r = debian.parse_source("debian:7.2")
    assert (r.package, r.suite, r.series) == ("linux-source-7.2", "sid", False)
    assert (r.src_dir_name, r.tag_pattern, r.worktree_prefix) == (
        "linux-7.2", "v7.2.*-deb", "debian-7.2")
    assert r.system_tarball == Path("/usr/src/linux-source-7.2.tar.xz") and r.spec == "debian:7.2"
    assert debian.parse_source(" debian:6.12 ").series
    for bad in ("debian:6.6", "ubuntu:7.2", "7.2", ""):
        with pytest.raises(ValueError, match="valid: debian:6.12, debian:7.2"):
            debian.parse_source(bad)


def test_system_archive_from_deb822_and_one_line_lists() -> None:
    assert debian.system_archive({"/e/debian.sources": DEB822}, "bookworm") == (
        "http://mirror.example/debian", "/usr/share/keyrings/debian-archive-keyring.gpg")
    one = ("# comment\ndeb-src http://x/debian bookworm main\n"
           "deb [arch=amd64 signed-by=/k.gpg] http://proxy:3142/debian bookworm main contrib\n")
    assert debian.system_archive({"/e/sources.list": one}, "bookworm") == (
        "http://proxy:3142/debian", "/k.gpg")
    assert debian.system_archive({"/e/sources.list": "deb http://p/debian bookworm main\n"},
                                 "bookworm") == ("http://p/debian", debian.FALLBACK_KEYRING)
    disabled = DEB822.replace("Components: main\nSigned", "Enabled: no\nComponents: main\nSigned")
    assert debian.system_archive({"/e/a.sources": disabled, "/e/b.txt": "deb x bookworm"},
                                 "bookworm") == (debian.FALLBACK_ARCHIVE, debian.FALLBACK_KEYRING)
    assert debian.system_archive({}, None)[0] == debian.FALLBACK_ARCHIVE


def test_suite_list_and_apt_options(tmp_path: Path) -> None:
    assert debian.suite_list("http://m/debian", "/k.gpg", "sid") == \
        "deb [signed-by=/k.gpg] http://m/debian sid main\n"
    assert debian.suite_list("http://m/debian", "", "sid") == "deb http://m/debian sid main\n"
    opts = debian.apt_options(tmp_path)
    assert f"-oDir::Etc::sourcelist={tmp_path / 'sources.list'}" in opts
    assert "-oDir::Etc::sourceparts=-" in opts
    assert f"-oDir::State::Lists={tmp_path / 'lists'}" in opts
    assert f"-oDir::Cache={tmp_path / 'cache'}" in opts


def test_read_apt_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://a/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "x.sources").write_text(DEB822)
    (tmp_path / "sources.list.d" / "y.list.disabled").write_text("deb http://no bookworm main\n")
    files = debian.read_apt_sources(tmp_path)
    assert sorted(Path(f).name for f in files) == ["sources.list", "x.sources"]


def _fake_apt(bindir: Path, version: str = "7.2.13-1", fail: str = "") -> Path:
    """apt-get that logs its argv; ``download`` builds a linux-source-7.2 .deb."""
    return write_exe(bindir / "apt-get", f"""
        #!/bin/sh
        echo "$@" >> "{bindir}/apt.log"
        for a in "$@"; do last=$a; done
        case "$*" in *" update"*) [ "{fail}" = update ] && exit 100; exit 0;; esac
        [ "{fail}" = download ] && {{ echo "E: Unable to locate package"; exit 100; }}
        pkg=$last
        d=$(mktemp -d)
        mkdir -p "$d/usr/src" "$d/DEBIAN" "$d/t/linux-source-7.2/mm"
        printf 'VERSION = 7\\nPATCHLEVEL = 2\\nSUBLEVEL = 13\\n' > "$d/t/linux-source-7.2/Makefile"
        echo 'int y;' > "$d/t/linux-source-7.2/mm/memcontrol.c"
        tar -cJf "$d/usr/src/$pkg.tar.xz" -C "$d/t" linux-source-7.2
        rm -rf "$d/t"
        printf 'Package: %s\\nVersion: {version}\\nArchitecture: all\\nMaintainer: x <x@y>\\nDescription: x\\n' "$pkg" > "$d/DEBIAN/control"
        dpkg-deb -b -Zgzip "$d" "${{pkg}}_{version}_all.deb" >/dev/null
    """)


def test_debian_72_import_uses_its_own_apt_list(tmp_path: Path, monkeypatch) -> None:
    bindir = tmp_path / "bin"
    _fake_apt(bindir)
    monkeypatch.setenv("PATH", f"{bindir}:{subprocess.os.environ['PATH']}")  # type: ignore[attr-defined]
    monkeypatch.setattr(debian, "read_apt_sources",
                        lambda: {"/etc/apt/sources.list.d/debian.sources": DEB822})
    real_read = Path.read_text

    def fake_read(self: Path, *a, **kw):  # type: ignore[no-untyped-def]
        if str(self) == "/etc/os-release":
            return 'VERSION_CODENAME=bookworm\n'
        return real_read(self, *a, **kw)

    monkeypatch.setattr(Path, "read_text", fake_read)
    src = source.prepare_source(tmp_path / "cache", source="debian:7.2",
                                log_path=tmp_path / "source.log")
    assert src.kind == "debian" and src.release == "7.2" and src.base_ref == "v7.2.13-deb"
    assert src.repo == tmp_path / "cache" / "src" / "linux-7.2"
    assert src.worktree_prefix == "debian-7.2" and "linux-source-7.2" in src.description
    calls = (bindir / "apt.log").read_text().splitlines()
    assert len(calls) == 2 and calls[0].endswith(" update") and calls[1].endswith(
        " download linux-source-7.2")
    for c in calls:  # nothing of the system's apt configuration
        assert "-oDir::Etc::sourceparts=-" in c and "-oDir::State::Lists=" in c
        assert "/var/lib/apt" not in c
    log_text = (tmp_path / "source.log").read_text()
    assert "sources.list" in log_text
    # Reused the second time (no apt-get at all).
    assert source.prepare_source(tmp_path / "cache", source="debian:7.2").base_commit == \
        src.base_commit
    assert len((bindir / "apt.log").read_text().splitlines()) == 2


@pytest.mark.parametrize("fail", ["update", "download"])
def test_apt_failures_are_infra_errors(tmp_path: Path, monkeypatch, fail: str) -> None:
    bindir = tmp_path / "bin"
    _fake_apt(bindir, fail=fail)
    monkeypatch.setenv("PATH", f"{bindir}:{subprocess.os.environ['PATH']}")  # type: ignore[attr-defined]
    monkeypatch.setattr(debian, "read_apt_sources", lambda: {})
    with pytest.raises(InfraError, match=f"apt-get {fail}"):
        source.prepare_source(tmp_path / "cache", source="debian:7.2")


def test_prepare_source_rejects_bad_combinations(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="unknown source"):
        source.prepare_source(tmp_path, source="debian:9.9")
    with pytest.raises(SourceError, match="give one of them"):
        source.prepare_source(tmp_path, tmp_path, None, source="debian:7.2")


# ----------------------------------------------------------------------- CLI --


def _opts(argv: list[str]):  # type: ignore[no-untyped-def]
    parser = cli.build_parser()
    args = parser.parse_args(argv)
    return cli._options(args, argv)


def test_cli_source_72_means_no_series(tmp_path: Path) -> None:
    o = _opts(["config", "--source", "debian:7.2"])
    assert o.source == "debian:7.2" and o.no_series and o.series is None
    o = _opts(["config", "--source", "debian:7.2", "--series", "none"])
    assert o.no_series
    empty = tmp_path / "empty.series"
    empty.write_text("# nothing\n")
    assert _opts(["config", "--source", "debian:7.2", "--series", str(empty)]).no_series
    o = _opts(["config"])
    assert o.source == "debian:6.12" and not o.no_series
    assert _opts(["config", "--series", "none"]).no_series


def test_cli_source_72_with_the_series_is_refused(tmp_path: Path, capsys) -> None:
    project = Path(__file__).resolve().parents[2]
    series = project / "patches" / "series"
    out = tmp_path / "out"
    assert cli.main(["config", "--source", "debian:7.2", "--series", str(series),
                     "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is written for Linux 6.12 and is not applied to 7.2" in err and "--series none" in err
    assert not out.exists()  # refused before a run directory exists
    assert cli.main(["config", "--source", "debian:9", "--out", str(tmp_path)]) == 2
    assert "unknown source" in capsys.readouterr().err
    assert cli.main(["config", "--source", "debian:7.2", "--tree", str(tmp_path),
                     "--out", str(tmp_path)]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert cli.main(["compare", "--source", "debian:7.2", "--out", str(tmp_path)]) == 2
    assert "tests the series on its 6.12 base" in capsys.readouterr().err
