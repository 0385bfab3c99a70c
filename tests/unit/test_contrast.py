"""contrast: the report of four kernels from (fake) run directories, and the child runs."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import cli
from harness.errors import UserError
from harness.modes import contrast
from harness.modes.child import ChildRun
from harness.report import contrast as model
from harness.report import html, plots

from contrast_fakes import MIB, make_four, make_kernel_run


def test_build_reads_four_kernels_in_order(tmp_path: Path) -> None:
    runs = make_four(tmp_path)
    c = model.build(list(reversed(runs)))  # order of the arguments does not matter
    assert [k.key for k in c.kernels] == ["6.12", "6.12+series@0", "6.12+series@1", "7.2"]
    assert [k.kind for k in c.kernels] == ["base", "series-0", "series-1", "upstream"]
    assert [k.label for k in c.kernels] == ["6.12 base", "6.12 + series, sysctl 0",
                                            "6.12 + series, sysctl 1", "7.2 upstream"]
    assert c.kernels[3].version == "7.2.13" and c.kernels[0].version == "6.12.57"
    assert [r.label for r in c.rows] == ["zombie_shmem", "anon_migrate (anon)", "limit_max",
                                         "stress (churn)", "stress (sweep)"]
    z = c.rows[0]
    assert set(z.cells) == {k.key for k in c.kernels}
    assert z.cells["7.2"].obs is not None and z.cells["7.2"].obs.parent == 100 * MIB
    assert z.cells["7.2"].run is not None and z.cells["7.2"].run.checks == "fail"
    assert set(z.series_cells()) == set(z.cells) and set(z.split_cells()) == set(z.cells)
    lm = c.rows[2]
    assert lm.phase == "run" and lm.cells["6.12"].obs is None
    assert lm.cells["6.12"].run is not None and lm.cells["6.12"].run.case_ms == 16000
    assert not c.notes


def test_columns_words() -> None:
    from harness.parse.observe import parse_line

    o = parse_line("# observe z sysctl=-1 stat=file removed=104857600 user=0 parent=0 "
                   "dead=104857600 split=bound dying_start=50 dying_end=50 t_nodying_ms=-1 "
                   "window_ms=8569 oom=0 oom_kill=0 oom_kill_sys=3")
    r = parse_line("# observe z phase=run sysctl=-1 checks=fail leak=1 kmsg=2 case_ms=900")
    cols = model.columns(model.Cell(o, r))
    assert cols["dying"] == "50 → 50 after 8.6 s" and cols["cleared"] == "never"
    assert cols["user"] == "0 B" and cols["parent"] == "≥ 0 B" and cols["dead"] == "≤ 100.0 MiB"
    assert cols["oom"] == "3" and cols["time"] == "900 ms" and cols["checks"] == "fail, leak, kmsg 2"
    churn = parse_line("# observe stress phase=churn sysctl=1 removed=2048 dying_max=6 "
                       "dying_end=3 window_ms=1500")
    cols = model.columns(model.Cell(churn, None))
    assert cols["dying"] == "max 6, end 3 after 1.5 s" and cols["removed"] == "2 KiB"
    assert cols["user"] == "-"
    assert cols["cleared"] == "-"
    assert cols["time"] == "1.5 s" and cols["oom"] == "-"
    assert model.columns(model.Cell(None, None))["dying"] == "-"
    assert model.human_bytes(-5) == "-5 B" and model.human_bytes(None) == "-"
    assert model.human_ms(None) == "-"


def test_kernel_kinds_and_versions() -> None:
    assert model.kernel_kind("6.12", False, None) == "base"
    assert model.kernel_kind("7.2", False, None) == "upstream"
    assert model.kernel_kind("6.6", False, None) == "other"
    assert model.kernel_kind("x", False, None) == "other"
    assert model.kernel_kind("6.12", True, None) == "other"
    assert model._release_and_version({"base_ref": "HEAD"}) == ("?", "?")
    assert model._release_and_version({"base_ref": "v7.2-rc3"}) == ("7.2", "7.2")


def test_write_report_files(tmp_path: Path) -> None:
    runs = make_four(tmp_path / "runs")
    out = tmp_path / "report"
    out.mkdir()
    res = contrast.write_report(runs, out, ["base", "series-0", "series-1", "upstream"])
    assert res.exit_code == 0 and res.verdict == "complete" and not res.missing
    data = json.loads((out / "contrast.json").read_text())
    assert data["schema_version"] == 1
    assert [k["key"] for k in data["kernels"]] == ["6.12", "6.12+series@0", "6.12+series@1", "7.2"]
    z = data["rows"][0]
    assert z["case"] == "zombie_shmem"
    assert z["cells"]["6.12+series@1"]["observation"]["user"] == 100 * MIB
    assert z["cells"]["6.12"]["observation"]["dying"][-1] == [8528, 50]
    names = {p["name"] for p in data["plots"]}
    assert names == {"dying-zombie_shmem", "dying-stress-sweep", "bytes"}
    for p in data["plots"]:
        assert (out / p["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (out / p["svg"]).read_bytes()[:2000]
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "http://" not in page.replace(
        "http://www.w3.org", "")
    for k in ("6.12 base", "6.12 + series, sysctl 0", "6.12 + series, sysctl 1", "7.2 upstream"):
        assert k in page
    md = (out / "contrast.md").read_text()
    assert "| zombie_shmem | 7.2 upstream |" in md
    assert "| `zombie_shmem` | dying memcgs (back to baseline after) | 50 → 50 after 8.6 s (never) |" in md
    assert "|  | bytes at user / parent / dead | 0 B / ≥ 0 B / ≤ 100.0 MiB | 0 B / ≥ 0 B / ≤ 100.0 MiB | " \
        "100.0 MiB / 0 B / 0 B | 0 B / 100.0 MiB / 0 B |" in md
    assert "| `stress` (sweep) |" in md and "zombie_file" not in md.split("## Every")[0]
    assert "7.2 upstream" in (out / "summary.txt").read_text()
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None and len(suite.findall("testcase")) == 4
    assert suite.find("testcase/error") is None


def test_report_is_reproducible(tmp_path: Path) -> None:
    runs = make_four(tmp_path / "runs")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    contrast.write_report(runs, a, [])
    contrast.write_report(runs, b, [])
    for name in ("report.html", "contrast.json", "plots/bytes.svg", "plots/dying-zombie_shmem.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_missing_kernel_is_incomplete(tmp_path: Path) -> None:
    base = make_kernel_run(tmp_path / "base", "base")
    up = make_kernel_run(tmp_path / "up", "upstream", exit_code=2, observe=False,
                         failed_stage="boot")
    out = tmp_path / "r"
    out.mkdir()
    res = contrast.write_report([base, up], out, ["base", "upstream"])
    assert res.exit_code == 2 and res.missing == ["upstream"]
    assert "missing: 7.2 upstream" in res.detail
    assert any("boot: boot exploded" in n for n in res.contrast.notes)  # type: ignore[union-attr]
    err = ET.parse(out / "junit.xml").getroot().find("testsuite/testcase/error")
    assert err is not None and "no observations" in err.get("message", "")
    assert "no observations of 7.2 upstream" in (out / "report.html").read_text()
    empty = tmp_path / "e"
    empty.mkdir()
    assert contrast.write_report([up], empty, []).detail == "no kernel gave observations"


def test_escaping(tmp_path: Path) -> None:
    c = model.Contrast([], [], notes=["<script>alert(1)</script>"])
    page = html.render(c, [])
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page


def test_plots_without_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_mpl() -> None:
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(plots, "_pyplot", no_mpl)
    figs, notes = plots.render(model.build(make_four(tmp_path / "r")), tmp_path / "p")
    assert figs == [] and "matplotlib is not installed" in notes[0]


def test_expand_run_dirs(tmp_path: Path) -> None:
    runs = make_four(tmp_path / "c")
    # a contrast run directory: its children's newest runs
    (tmp_path / "c" / "metadata.json").write_text(json.dumps({"build": {"command": "contrast"}}))
    assert contrast.expand_run_dirs([tmp_path / "c"]) == runs
    # a run directory as is; an --out parent: its newest
    assert contrast.expand_run_dirs([runs[0], tmp_path / "c" / "series"]) == runs[:2]
    with pytest.raises(UserError, match="no such directory"):
        contrast.expand_run_dirs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a run directory"):
        contrast.expand_run_dirs([tmp_path / "empty"])


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"suite": [], "case": [], "kernels": "base,series,upstream",
                               "from_runs": None, "series": None, "source": "debian:6.12",
                               "profile": "tiny", "out": Path("out")}
    base.update(kw)
    return argparse.Namespace(**base)


def test_plan() -> None:
    from harness.model import Options

    p = contrast.plan(Options(), _args(case=["zombie_shmem"], profile="debug"))
    assert [x.label for x in p] == ["base", "series", "upstream-7.2"]
    assert p[0].argv[:3] == ["run", "--series", "none"]
    assert "--suite" in p[0].argv and "scenarios" in p[0].argv
    assert p[0].argv[-4:] == ["--profile", "debug", "--case", "zombie_shmem"]
    assert p[1].argv[:3] == ["run", "--suite", "scenarios"] and p[1].kinds == ("series-0", "series-1")
    assert p[2].argv[:5] == ["run", "--source", "debian:7.2", "--series", "none"]
    s = contrast.plan(Options(series=Path("/s/series")),
                      _args(kernels="series", suite=["recharge", "scenarios"]))
    assert len(s) == 1 and s[0].argv[:7] == ["run", "--series", "/s/series", "--suite", "recharge",
                                             "--suite", "scenarios"]
    with pytest.raises(UserError, match="valid names"):
        contrast.parse_kernels("base,bogus")


def test_main_runs_children_and_reports(tmp_path: Path) -> None:
    from harness.model import Options

    calls: list[tuple[str, list[str]]] = []

    def runner(label: str, argv: list[str], out: Path, log: Path) -> ChildRun:
        calls.append((label, argv))
        kind = {"base": "base", "series": "series", "upstream-7.2": "upstream"}[label]
        if kind == "upstream":  # the 7.2 child dies before making a run directory
            return ChildRun(label, 2, None, log, 1.0)
        return ChildRun(label, 0, make_kernel_run(out, kind), log, 1.0)

    opts = Options(command="contrast", out=tmp_path / "out", argv=("contrast",))
    code, line = contrast.main(opts, _args(), runner)
    assert [c[0] for c in calls] == ["base", "series", "upstream-7.2"]
    assert code == 2 and "incomplete" in line and "7.2 upstream" in line
    rd = tmp_path / "out" / "1"
    meta = json.loads((rd / "metadata.json").read_text())
    assert meta["results"]["exit_code"] == 2 and meta["contrast"]["missing"] == ["upstream"]
    assert meta["contrast"]["children"][2]["run_dir"] == ""
    assert "left no run directory" in (rd / "report.html").read_text()
    # --from-runs over that contrast run: the same kernels, nothing run
    code2, line2 = contrast.main(Options(command="contrast", out=tmp_path / "out"),
                                 _args(from_runs=[rd]), runner)
    assert len(calls) == 3 and code2 == 0 and "complete" in line2
    assert (tmp_path / "out" / "2" / "report.html").is_file()


def test_cli_contrast_from_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = make_four(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    code = cli.main(["contrast", "--from-runs", *map(str, runs), "--out", str(tmp_path / "o")])
    assert code == 0
    assert (tmp_path / "o" / "1" / "report.html").is_file()
    assert cli.main(["contrast", "--from-runs", str(tmp_path / "nope"), "--out",
                     str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o" / "2").exists()  # bad input: no run directory made


def test_interrupted_contrast_reports_the_finished_children(tmp_path: Path) -> None:
    from harness.model import Options

    def runner(label: str, argv: list[str], out: Path, log: Path) -> ChildRun:
        if label == "series":
            raise KeyboardInterrupt
        return ChildRun(label, 0, make_kernel_run(out, "base"), log, 1.0)

    with pytest.raises(KeyboardInterrupt):
        contrast.main(Options(command="contrast", out=tmp_path / "out"), _args(), runner)
    rd = tmp_path / "out" / "1"
    meta = json.loads((rd / "metadata.json").read_text())
    assert meta["results"]["exit_code"] == 2
    assert meta["contrast"]["verdict"] == "incomplete"
    assert meta["contrast"]["detail"].startswith("interrupted: missing: 6.12 + series, sysctl 0")
    assert "6.12 base" in (rd / "report.html").read_text()


@pytest.mark.parametrize("opts_kw, match", [
    ({"source": "debian:7.2"}, "picks the sources itself"),
    ({"tree": Path("/t")}, "--tree is not supported"),
    ({"no_series": True}, "the series child needs the series"),
])
def test_contrast_refuses_what_it_decides(tmp_path: Path, opts_kw: dict, match: str) -> None:
    from harness.model import Options

    with pytest.raises(UserError, match=match):
        contrast.main(Options(command="contrast", out=tmp_path / "o", **opts_kw), _args(),
                      lambda *a: pytest.fail("nothing may run"))  # type: ignore[arg-type,return-value]
    assert not (tmp_path / "o").exists()


def test_every_child_argv_is_a_valid_run(tmp_path: Path) -> None:
    """The children's command lines parse into the runs the report expects (nothing runs)."""
    from harness.model import Options

    parser = cli.build_parser()
    plans = contrast.plan(Options(), _args(case=["zombie_shmem"], stress_seconds=30))
    got = {}
    for p in plans:
        argv = [*p.argv, "--out", str(tmp_path)]
        got[p.label] = cli._options(parser.parse_args(argv), argv)
    assert got["base"].no_series and got["base"].source == "debian:6.12"
    assert not got["series"].no_series and got["series"].series is None  # patches/series
    assert got["upstream-7.2"].no_series and got["upstream-7.2"].source == "debian:7.2"
    for o in got.values():
        assert o.command == "run" and o.suites == ("scenarios",) and o.cases == ("zombie_shmem",)
        assert o.stress_s == 30
