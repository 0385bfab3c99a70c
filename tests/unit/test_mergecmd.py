"""`merge` and `--shard`: CI scale-out through the CI system's matrix."""

from __future__ import annotations

import json
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

from harness import cli
from harness.report.merge import shard
from harness.stages.suites import SUITES


def _shard_dir(root: Path, name: str, cases: dict[str, str], exit_code: int | None,
               shard_text: str | None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    ts = TestSuite(name)
    for case, outcome in cases.items():
        tc = TestCase(name=case, classname=name)
        if outcome == "fail":
            tc.result = [Failure(message="boom")]
        elif outcome == "error":
            tc.result = [Error(message="died")]
        ts.append(tc)
    xml = JUnitXml()
    xml.append(ts)
    xml.write(str(d / "junit.xml"))
    meta = {"build": {"options": {"shard": shard_text}}, "results": {}}
    if exit_code is not None:
        meta["results"]["exit_code"] = exit_code
    (d / "metadata.json").write_text(json.dumps(meta))
    return d


def _merged(out: Path) -> tuple[JUnitXml, dict]:
    run = out / "1"
    return JUnitXml.fromfile(str(run / "junit.xml")), json.loads((run / "metadata.json").read_text())


def test_merge_all_green(tmp_path: Path) -> None:
    a = _shard_dir(tmp_path, "s1", {"a": "pass", "b": "pass"}, 0, "1/2")
    b = _shard_dir(tmp_path, "s2", {"c": "pass"}, 0, "2/2")
    assert cli.main(["merge", "--out", str(tmp_path / "m"), str(a), str(b)]) == 0
    xml, meta = _merged(tmp_path / "m")
    assert xml.tests == 3 and xml.failures == 0 and xml.errors == 0
    assert [s["shard"] for s in meta["shards"]] == ["1/2", "2/2"]
    assert meta["merge"]["exit_code"] == 0
    assert "PASS" in (tmp_path / "m" / "1" / "summary.txt").read_text()


def test_merge_worst_exit_code_wins(tmp_path: Path) -> None:
    a = _shard_dir(tmp_path, "s1", {"a": "pass"}, 0, "1/3")
    b = _shard_dir(tmp_path, "s2", {"b": "fail"}, 1, "2/3")
    c = _shard_dir(tmp_path, "s3", {"c": "pass"}, 2, "3/3")  # clean junit, but no verdict
    assert cli.main(["merge", "--out", str(tmp_path / "m"), str(a), str(b)]) == 2  # 3/3 missing
    xml, meta = _merged(tmp_path / "m")
    assert meta["merge"]["problems"] == ["shard 3/3 missing"]
    assert cli.main(["merge", "--out", str(tmp_path / "m2"), str(a), str(b)[:-1] + "2"]) == 2
    assert cli.main(["merge", "--out", str(tmp_path / "m3"), str(a), str(b), str(c)]) == 2
    a0 = _shard_dir(tmp_path, "t0", {"a": "pass"}, 0, None)  # plain runs: no coverage check
    b0 = _shard_dir(tmp_path, "t1", {"b": "fail"}, 1, None)
    assert cli.main(["merge", "--out", str(tmp_path / "m4"), str(a0), str(b0)]) == 1


def test_merge_unreadable_shard_is_an_error_case(tmp_path: Path) -> None:
    a = _shard_dir(tmp_path, "s1", {"a": "pass"}, 0, None)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "junit.xml").write_text("<not-xml")
    assert cli.main(["merge", "--out", str(tmp_path / "m"), str(a), str(broken)]) == 2
    xml, _ = _merged(tmp_path / "m")
    assert xml.errors == 1


def test_merge_missing_input_is_bad_input(tmp_path: Path, capsys) -> None:
    assert cli.main(["merge", "--out", str(tmp_path / "m"), str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # nothing written


def test_shards_partition_the_suite_table() -> None:
    names = [s.name for s in SUITES if s.default]
    for n in (1, 2, 3, len(names)):
        parts = [shard(names, i, n) for i in range(1, n + 1)]
        assert sorted(sum(parts, [])) == sorted(names)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_shard_option_selects_and_validates(tmp_path: Path, monkeypatch, capsys) -> None:
    captured = {}

    class FakePipeline:
        def __init__(self, opts, on_ready=None):
            captured["opts"] = opts
            self.run_dir = tmp_path
            self.stages = []

        def run(self) -> int:
            return 0

    import harness.modes.run as pl

    monkeypatch.setattr(pl, "Pipeline", FakePipeline)
    assert cli.main(["test", "--shard", "2/3", "--out", str(tmp_path / "o")]) == 0
    names = [s.name for s in SUITES if s.default]
    assert captured["opts"].suites == tuple(shard(names, 2, 3))
    assert captured["opts"].shard == "2/3"
    n = len(names)
    assert cli.main(["test", "--shard", f"{n + 1}/{n + 1}", "--out", str(tmp_path / "o")]) == 2
    assert "no suite falls in this shard" in capsys.readouterr().err
    assert cli.main(["test", "--shard", "0/2"]) == 2
    assert cli.main(["test", "--shard", "x"]) == 2


def test_merge_checks_the_inventory_over_the_union_of_shards(tmp_path: Path) -> None:
    """Each shard checked its own suites; merge checks the union from the merged JUnit,
    so a shard that lost a feature case cannot hide behind a green exit code."""
    def shard_dir(name: str, suite: str, cases: dict[str, str], text: str,
                  must: list[str]) -> Path:
        d = _shard_dir(tmp_path, name, {}, 0, text)
        xml = JUnitXml()
        ts = TestSuite(suite)
        for case, outcome in cases.items():
            tc = TestCase(name=case, classname=suite)
            if outcome == "fail":
                tc.result = [Failure(message="boom")]
            ts.append(tc)
        xml.append(ts)
        xml.write(str(d / "junit.xml"))
        meta = json.loads((d / "metadata.json").read_text())
        meta["inventory"] = {"feature": True, "suites": {
            suite: {"expected": list(cases) + must, "must_pass": must}}}
        (d / "metadata.json").write_text(json.dumps(meta))
        return d

    a = shard_dir("s1", "recharge[sysctl=1]", {"shmem_mapped_before": "pass"}, "1/2",
                  ["shmem_mapped_after"])
    b = shard_dir("s2", "test_memcontrol[sysctl=1]", {"test_memcg_recharge": "pass"}, "2/2",
                  [])
    code = cli.main(["merge", "--out", str(tmp_path / "m"), str(a), str(b)])
    assert code == 1
    xml, meta = _merged(tmp_path / "m")
    assert meta["merge"]["problems"] == [
        "inventory: recharge[sysctl=1] shmem_mapped_after: no result (must pass: the "
        "kernel claims CONFIG_MEMCG_RECHARGE_OFFLINE_ENABLED)"]
