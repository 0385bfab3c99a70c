"""mutants: each planted bug applied alone on top of the series must turn the run red.
The child runs are fakes (test_compare.make_run): what matters here is what the mode
asks for and how it judges and reports what the runs left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_compare import PASSED, make_run

from harness import cli
from harness.modes import child as rundir
from harness.modes.child import ChildRun

from fakes import make_project

PATCH = """From 0000 Mon Sep 17 00:00:00 2001
Subject: [PATCH] mutant: {what}

{expect}---
diff --git a/mm/memcontrol.c b/mm/memcontrol.c
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -1 +1 @@
-a
+b
"""


def _project(tmp_path: Path, names: dict[str, str]) -> Path:
    project = make_project(tmp_path / "project")
    (project / "patches" / "0001-a.patch").write_text(PATCH.format(what="series", expect=""))
    (project / "patches" / "series").write_text("0001-a.patch\n")
    (project / "mutants").mkdir()
    for name, expect in names.items():
        (project / "mutants" / f"{name}.patch").write_text(PATCH.format(
            what=name, expect=f"Expect-killed-by: {expect}\n\n" if expect else ""))
    return project


class Fake:
    def __init__(self, outcomes: dict[str, dict[str, Any]]):
        self.outcomes, self.calls = outcomes, []

    def __call__(self, label: str, args: list[str], out: Path, log_path: Path,
                 **kw: Any) -> ChildRun:
        self.calls.append((label, args))
        return make_run(out, label=label, **self.outcomes[label.split()[-1]])


def test_killed_survived_and_error_are_reported(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    project = _project(tmp_path, {"01-killed": "shmem_mapped_after", "02-survives": "",
                                  "03-stale": "", "04-other": "zombie_file"})
    fake = Fake({
        "01-killed": {"exit_code": 1, "cases": {("recharge[sysctl=1]", "shmem_mapped_after"): "fail",
                                                ("recharge[sysctl=1]", "shmem_read_after"): "pass"}},
        "02-survives": {"exit_code": 0, "cases": {("recharge[sysctl=1]", "shmem_mapped_after"): "pass"}},
        "03-stale": {"exit_code": 2, "stages": dict(PASSED, apply="ERROR")},
        "04-other": {"exit_code": 1, "cases": {("scenarios[sysctl=1]", "toggle"): "fail"}},
    })
    monkeypatch.setattr(rundir, "run_child", fake)
    out = tmp_path / "out"
    code = cli.main(["mutants", "--project", str(project), "--out", str(out)])
    cap = capsys.readouterr()
    assert code == 2, cap.err  # an error outranks a survivor
    # each mutant alone, on top of the series, with the default suites
    for label, args in fake.calls:
        series = Path(args[args.index("--series") + 1])
        assert series.read_text().splitlines()[1:] == ["0001-a.patch",
                                                       f"mutant-{label.split()[-1]}.patch"]
        assert args[-4:] == ["--suite", "recharge", "--suite", "scenarios"]
        assert "--project" in args  # the user's run options are forwarded
    run = out / "1"
    res = {r["mutant"]["name"]: r for r in json.loads((run / "mutants.json").read_text())}
    assert {k: v["verdict"] for k, v in res.items()} == {
        "01-killed": "killed", "02-survives": "survived", "03-stale": "error",
        "04-other": "killed"}
    assert res["01-killed"]["killers"] == ["recharge[sysctl=1].shmem_mapped_after"]
    assert "does not apply" in res["03-stale"]["detail"]
    assert res["04-other"]["notes"] == ["killed, but not by the expected zombie_file"]
    md = (run / "mutants.md").read_text()
    assert "2/4 killed (50%)" in md and "| 02-survives | SURVIVED |" in md
    cases = rundir.read_cases(run / "junit.xml")
    assert [cases[("mutants", n)].outcome for n in sorted(res)] == ["pass", "fail", "error",
                                                                   "pass"]
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["results"]["exit_code"] == 2


def test_all_killed_is_exit_0_and_survivor_exit_1(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    project = _project(tmp_path, {"a": "", "b": ""})
    killed = {"exit_code": 1, "cases": {("recharge[sysctl=1]", "x"): "fail"}}
    monkeypatch.setattr(rundir, "run_child", Fake({"a": killed, "b": killed}))
    assert cli.main(["mutants", "--project", str(project), "--out", str(tmp_path / "o1"),
                     "--suite", "test_memcontrol"]) == 0
    monkeypatch.setattr(rundir, "run_child", Fake({"a": killed, "b": {"exit_code": 0,
                                                                      "cases": {}}}))
    assert cli.main(["mutants", "--project", str(project), "--out", str(tmp_path / "o2"),
                     "--mutant", "b"]) == 1
    assert json.loads((tmp_path / "o2" / "1" / "mutants.json").read_text())[0]["mutant"][
        "name"] == "b"


def test_no_mutants_or_unknown_name_is_bad_input(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    project = _project(tmp_path, {})
    assert cli.main(["mutants", "--project", str(project), "--out", str(tmp_path / "o")]) == 2
    assert "no mutants" in capsys.readouterr().err
    project2 = _project(tmp_path / "p2", {"a": ""})
    assert cli.main(["mutants", "--project", str(project2), "--mutant", "zz",
                     "--out", str(tmp_path / "o")]) == 2
    assert "--mutant zz" in capsys.readouterr().err


def test_project_mutants_readme_exists() -> None:
    readme = Path(__file__).resolve().parents[2] / "mutants" / "README"
    assert "Expect-killed-by:" in readme.read_text()


def test_targeted_runs_only_the_expected_cases_that_exist(tmp_path):
    import argparse

    from harness.modes.mutants import Mutant, targeted_args

    m = Mutant("x", tmp_path / "x.patch", expect=("lru_hold", "test_memcg_recharge",
                                                   "shmem_read_after"))
    assert targeted_args(m, argparse.Namespace(targeted=False)) == []
    assert targeted_args(m, argparse.Namespace(targeted=True)) == [
        "--case", "lru_hold", "--case", "shmem_read_after"]
