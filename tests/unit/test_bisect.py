"""bisect: a synthetic 9-commit history with a planted bug and a commit that does not build.

The predicates are fakes (tests/unit/_bisect_fakes.py) that judge a commit by its content;
everything else is real: the CLI, the shadow repository and private worktree, `git bisect
run` calling `python -m harness.modes.bisect step` for each commit, the saved log and resume.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness import cli
from harness.modes import bisect, predicate
from harness.modes import child as rundir
from harness.modes.child import ChildRun
from harness.modes.predicate import Observation, StepContext, Verdict

from fakes import git, snapshot

FAKES = Path(__file__).with_name("_bisect_fakes.py")
BAD_AT, BROKEN_AT = 6, 4


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, list[str]]:
    """c0 (good) .. c8: c4 does not build (fixed in c5), c6 plants the bug.

    The user's checkout is on a branch of their own, with an uncommitted change and a
    stash entry: none of it may change.
    """
    tree = tmp_path / "linux"
    (tree / "src").mkdir(parents=True)
    git(tree, "init", "-q", "-b", "master")
    commits = []
    for i in range(9):
        value = f"int value = {i};\n" + ("/* BUG: off by one */\n" if i >= BAD_AT else "")
        (tree / "src" / "value.c").write_text(value)
        (tree / "build.txt").write_text("BROKEN\n" if i == BROKEN_AT else "ok\n")
        if i == 2:  # the series' Kconfig option (the default predicate looks for it)
            (tree / "Kconfig").write_text("config MEMCG_RECHARGE_OFFLINE_ENABLED\n\tbool\n")
        git(tree, "add", "-A")
        git(tree, "commit", "-q", "-m", f"c{i}: value {i}" + (" (plants the bug)" if i == BAD_AT
                                                                 else ""))
        commits.append(git(tree, "rev-parse", "HEAD"))
    git(tree, "checkout", "-q", "-b", "my-work")
    (tree / "notes.txt").write_text("stashed\n")
    git(tree, "add", "notes.txt")
    git(tree, "stash", "-q")
    (tree / "src" / "value.c").write_text("uncommitted edit\n")
    return tree, commits


def _bisect(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = cli.main(["bisect", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _calls(path: Path) -> list[str]:
    return [l.split()[0] for l in path.read_text().splitlines()] if path.exists() else []


def test_finds_planted_bug_skipping_unbuildable_commit(history, tmp_path, capsys,  # type: ignore[no-untyped-def]
                                                       monkeypatch) -> None:
    tree, c = history
    calls = tmp_path / "calls"
    monkeypatch.setenv("FAKE_BISECT_CALLS", str(calls))
    # git's first midpoint is the commit that does not build: the skip is exercised.
    assert git(tree, "rev-list", "--bisect", c[8], f"^{c[0]}") == c[BROKEN_AT]
    before = snapshot(tree)
    out = tmp_path / "out"
    code, stdout, err = _bisect(capsys, "--tree", str(tree), "--good", c[0], "--bad", c[8],
                                "--predicate", f"{FAKES}:planted_bug", "--out", str(out))
    assert code == 0, err
    assert f"first bad commit {c[BAD_AT]}" in stdout
    assert "c6: value 6 (plants the bug)" in stdout
    assert "fake[sysctl=1].value_is_sane" in stdout  # the evidence is printed
    run = out / "1"
    data = json.loads((run / "bisect.json").read_text())
    assert data["status"] == "found" and data["first_bad"]["commit"] == c[BAD_AT]
    steps = {(s["role"], s["commit"]): s for s in data["steps"]}
    assert steps[("verify-good", c[0])]["action"] == "good"
    assert steps[("verify-bad", c[8])]["action"] == "bad"
    skip = steps[("step", c[BROKEN_AT])]
    assert skip["verdict"] == "build-failure" and skip["action"] == "skip"
    # each commit evaluated once; the endpoints were not re-run by git bisect
    evaluated = _calls(calls)
    # the steps git bisect run started saw no GIT_DIR (it names the bisect worktree)
    assert all(line.endswith("GIT_DIR=") for line in calls.read_text().splitlines())
    assert sorted(evaluated) == sorted(set(evaluated))
    assert c[BROKEN_AT] in evaluated and c[BAD_AT] in evaluated
    # the log is git's and replays to the same answer in any clone
    log_text = (run / "bisect.log").read_text()
    assert f"git bisect skip {c[BROKEN_AT]}" in log_text
    assert f"# first bad commit: [{c[BAD_AT]}]" in log_text
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(tree), str(clone)], check=True)
    replay = subprocess.run(["git", "-C", str(clone), "bisect", "replay", str(run / "bisect.log")],
                            capture_output=True, text=True)
    assert f"{c[BAD_AT]} is the first bad commit" in replay.stdout
    # the user's repository is byte-for-byte unchanged; our worktree is gone
    assert snapshot(tree) == before
    state = json.loads((run / "bisect-state.json").read_text())
    assert not Path(state["worktree"]).exists()
    wts = git(Path(state["repo"]), "worktree", "list", "--porcelain")
    assert state["worktree"] not in wts


def test_good_endpoint_that_fails_is_reported_not_bisected(history, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    tree, c = history
    code, _, err = _bisect(capsys, "--tree", str(tree), "--good", c[7], "--bad", c[8],
                           "--predicate", f"{FAKES}:planted_bug", "--out", str(tmp_path / "o"))
    assert code == 2
    assert f"--good {c[7]} ({c[7][:12]}) is not good: bad" in err
    state = json.loads((tmp_path / "o" / "1" / "bisect-state.json").read_text())
    assert state["status"] == "not-verified" and not Path(state["worktree"]).exists()


def test_flaky_failures_are_retried(history, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tree, c = history
    args = ["--tree", str(tree), "--good", c[0], "--bad", c[8],
            "--predicate", f"{FAKES}:flaky_first_attempt"]
    code, _, err = _bisect(capsys, *args, "--out", str(tmp_path / "a"))
    assert code == 2 and "is not good" in err  # without retries the flake wins
    code, stdout, err = _bisect(capsys, *args, "--retries", "1", "--out", str(tmp_path / "b"))
    assert code == 0, err
    assert f"first bad commit {c[BAD_AT]}" in stdout
    data = json.loads((tmp_path / "b" / "1" / "bisect.json").read_text())
    good = next(s for s in data["steps"] if s["role"] == "verify-good")
    assert good["flaky"] is True and [a["verdict"] for a in good["attempts"]] == ["bad", "good"]


def test_no_verdict_aborts_then_resume_finishes(history, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tree, c = history
    calls, flag = tmp_path / "calls", tmp_path / "ssh-down"
    flag.write_text("")
    monkeypatch.setenv("FAKE_BISECT_CALLS", str(calls))
    monkeypatch.setenv("FAKE_BISECT_FLAG", str(flag))
    monkeypatch.setenv("FAKE_BISECT_TIP", c[8])
    out = tmp_path / "out"
    code, stdout, err = _bisect(capsys, "--tree", str(tree), "--good", c[0], "--bad", c[8],
                                "--predicate", f"{FAKES}:infra_until_flag_removed",
                                "--out", str(out))
    assert code == 2 and "aborted" in err
    run = out / "1"
    assert json.loads((run / "bisect-state.json").read_text())["status"] == "aborted"
    assert "git bisect skip" in (run / "bisect.log").read_text()  # progress was saved
    first = _calls(calls)
    flag.unlink()
    code, stdout, err = _bisect(capsys, "--resume", str(run))
    assert code == 0, err
    assert f"first bad commit {c[BAD_AT]}" in stdout
    again = _calls(calls)[len(first):]
    # conclusive verdicts were reused: neither the endpoints nor the skipped commit ran again
    assert c[0] not in again and c[8] not in again and c[BROKEN_AT] not in again
    code, _, err = _bisect(capsys, "--resume", str(run))
    assert code == 2 and "already ended" in err


@pytest.mark.parametrize("argv,msg", [
    (["--good", "HEAD", "--bad", "HEAD~3"], "must be an ancestor of --bad"),
    (["--good", "nope", "--bad", "HEAD"], "--good nope: no such commit"),
    (["--good", "HEAD~3"], "bisect needs --tree PATH --good REV --bad REV"),
    (["--good", "HEAD~3", "--bad", "HEAD", "--base", "HEAD"], "not --base"),
    (["--good", "HEAD~3", "--bad", "HEAD", "--predicate", "nomodule_xyz:f"], "--predicate"),
])
def test_bad_input_exit_2_before_any_run(history, tmp_path, capsys, argv, msg) -> None:  # type: ignore[no-untyped-def]
    tree, _ = history
    code, _, err = _bisect(capsys, "--tree", str(tree), *argv, "--out", str(tmp_path / "o"))
    assert code == 2 and msg in err
    assert not (tmp_path / "o" / "1").exists()


# ------------------------------------------------------------ the harness predicate --


def _child(tmp_path: Path, exit_code: int, stages: dict[str, str] | None = None,
           findings: list[dict[str, str]] | None = None, failed_case: bool = False) -> ChildRun:
    rd = tmp_path / "run" / "1"
    rd.mkdir(parents=True)
    if stages is not None:
        meta = {"results": {"stages": {k: {"status": v, "detail": f"{k} said so"}
                                       for k, v in stages.items()}},
                "kernel_log": {"findings": findings or []}}
        (rd / "metadata.json").write_text(json.dumps(meta))
    if failed_case:
        (rd / "junit.xml").write_text(
            '<testsuites><testsuite name="recharge[sysctl=1]">'
            '<testcase name="deferred" classname="recharge[sysctl=1]">'
            '<failure message="memory.current 0 != 4096"/></testcase>'
            '<testcase name="mapped" classname="recharge[sysctl=1]"/>'
            '</testsuite></testsuites>')
    return ChildRun("t", exit_code, rd, tmp_path / "child.out", 1.0)


PASSED = {"source": "PASS", "apply": "PASS", "config": "PASS", "build": "PASS",
          "selftests": "PASS", "boot": "PASS", "guest-setup": "PASS", "suites": "PASS"}


@pytest.mark.parametrize("exit_code,stages,findings,failed,want", [
    (0, PASSED, [], False, Verdict.GOOD),
    (1, PASSED, [], True, Verdict.BAD),
    (1, PASSED, [{"kind": "warning", "signature": "WARNING in recharge_folio"}], False,
     Verdict.BAD),
    (2, dict(PASSED, build="ERROR", selftests="NOTRUN"), [], False, Verdict.BUILD),
    (2, dict(PASSED, apply="ERROR"), [], False, Verdict.BUILD),
    (2, dict(PASSED, boot="ERROR"), [{"kind": "panic", "signature": "Kernel panic"}], False,
     Verdict.BOOT),
    (2, dict(PASSED, suites="ERROR"), [{"kind": "oops", "signature": "BUG: NULL deref"}], False,
     Verdict.BAD),
    (2, dict(PASSED, suites="ERROR"), [{"kind": "oom", "signature": "oom-kill"}], False,
     Verdict.INFRA),
    (2, None, [], False, Verdict.INFRA),
])
def test_classify_harness_runs(tmp_path, exit_code, stages, findings, failed, want) -> None:  # type: ignore[no-untyped-def]
    obs = predicate.classify(_child(tmp_path, exit_code, stages, findings, failed))
    assert obs.verdict is want, obs
    if failed:
        assert obs.evidence["failed_cases"] == [
            "recharge[sysctl=1].deferred: memory.current 0 != 4096"]
        assert "1 failed: recharge[sysctl=1].deferred" in obs.detail


def _feature_history(tmp_path: Path, feature_at: int, bug_at: int) -> tuple[Path, list[str]]:
    """c0 .. c8: the feature's Kconfig option from ``feature_at``, the bug from ``bug_at``."""
    tree = tmp_path / "feat"
    (tree / "src").mkdir(parents=True)
    git(tree, "init", "-q", "-b", "master")
    commits = []
    for i in range(9):
        (tree / "src" / "value.c").write_text(f"int value = {i};\n"
                                              + ("/* BUG */\n" if i >= bug_at else ""))
        (tree / "Kconfig").write_text("config MEMCG_RECHARGE_OFFLINE_ENABLED\n\tbool\n"
                                      if i >= feature_at else "config MEMCG\n\tbool\n")
        (tree / "build.txt").write_text("ok\n")
        git(tree, "add", "-A")
        git(tree, "commit", "-q", "-m", f"c{i}")
        commits.append(git(tree, "rev-parse", "HEAD"))
    return tree, commits


def test_bug_after_the_feature_exists_is_found(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The series' shape: commits before the sysctl are untestable (skipped, never good);
    a bug planted after it is named, and the untestable --good endpoint is accepted."""
    tree, c = _feature_history(tmp_path, feature_at=7, bug_at=8)
    code, stdout, err = _bisect(capsys, "--tree", str(tree), "--good", c[0], "--bad", c[8],
                                "--predicate", f"{FAKES}:feature_gate",
                                "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert f"first bad commit {c[8]}" in stdout
    data = json.loads((tmp_path / "o" / "1" / "bisect.json").read_text())
    verdicts = {s["commit"]: (s["verdict"], s["action"]) for s in data["steps"]}
    assert verdicts[c[0]] == ("untestable", "skip")
    assert verdicts[c[7]] == ("good", "good")
    assert all(v != ("good", "good") for k, v in verdicts.items() if k in c[1:7])


def test_bug_before_the_feature_exists_gives_the_untestable_range(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A bug planted among the commits that cannot be tested: no commit is blamed; the
    range that must contain the first bad commit is reported, the first testable bad
    commit (c7) last in it."""
    tree, c = _feature_history(tmp_path, feature_at=7, bug_at=4)
    code, stdout, err = _bisect(capsys, "--tree", str(tree), "--good", c[0], "--bad", c[8],
                                "--predicate", f"{FAKES}:feature_gate",
                                "--out", str(tmp_path / "o"))
    assert code == 2
    assert "only skipped commits left" in stdout + err
    data = json.loads((tmp_path / "o" / "1" / "bisect.json").read_text())
    cands = data["state"]["candidates"]
    assert c[4] in cands and c[7] in cands and c[8] not in cands
    assert data["status"] == "ambiguous" and data["first_bad"] is None


def test_classify_green_run_without_the_feature_is_untestable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    child = _child(tmp_path, 0, PASSED, [], False)
    meta = json.loads((child.run_dir / "metadata.json").read_text())
    meta["config"] = {"feature": False}
    meta["inventory"] = {"suites": {"recharge[sysctl=1]": {}, "test_memcontrol": {}}}
    (child.run_dir / "metadata.json").write_text(json.dumps(meta))
    obs = predicate.classify(child)
    assert obs.verdict is Verdict.UNTESTABLE
    assert "recharge[sysctl=1]" in obs.detail and "test_memcontrol" not in obs.detail
    # only a suite with other cases than the feature's: a real verdict
    meta["inventory"] = {"suites": {"test_memcontrol": {}}}
    (child.run_dir / "metadata.json").write_text(json.dumps(meta))
    assert predicate.classify(child).verdict is Verdict.GOOD
    # the kernel has the feature: green is good
    meta["config"] = {"feature": True}
    meta["inventory"] = {"suites": {"recharge[sysctl=1]": {}}}
    (child.run_dir / "metadata.json").write_text(json.dumps(meta))
    assert predicate.classify(child).verdict is Verdict.GOOD


def test_actions_and_retry_combination() -> None:
    a = bisect.action_for
    assert [a(Verdict.BOOT, p) for p in ("good", "bad", "skip")] == ["good", "bad", "skip"]
    assert (a(Verdict.BUILD, "bad"), a(Verdict.INFRA, "bad")) == ("skip", "abort")
    assert a(Verdict.UNTESTABLE, "bad") == "skip"
    assert bisect.ACTION_EXIT == {"good": 0, "bad": 1, "skip": 125, "abort": 255}
    o = lambda v: Observation(v, "")  # noqa: E731
    assert bisect.combine([o(Verdict.BAD), o(Verdict.GOOD)]) == (Verdict.GOOD, True)
    assert bisect.combine([o(Verdict.INFRA), o(Verdict.BAD)]) == (Verdict.BAD, True)
    assert bisect.combine([o(Verdict.BOOT), o(Verdict.BOOT)]) == (Verdict.BOOT, False)
    assert bisect.combine([o(Verdict.INFRA)]) == (Verdict.INFRA, False)


def test_default_predicate_runs_the_harness_on_the_commit(history, tmp_path,  # type: ignore[no-untyped-def]
                                                          monkeypatch) -> None:
    tree, c = history
    argv = ["bisect", "--tree", str(tree), "--good", c[0], "--bad", c[8], "--suite", "recharge",
            "--retries", "2", "--boot-failure", "bad", "--memory", "2G"]
    args = cli.build_parser().parse_args(argv)
    opts = cli._options(args, argv)
    (tmp_path / "run").mkdir()
    state = bisect.new_state(opts, args, tmp_path / "run", tree, c[0], c[8])
    assert state.predicate == predicate.DEFAULT_PREDICATE
    assert (state.retries, state.boot_failure) == (2, "bad")
    assert state.params["forward"] == ["--memory", "2G", "--suite", "recharge"]
    calls: list[list[str]] = []

    def fake_child(label: str, args: list[str], out: Path, log_path: Path, **kw: object) -> ChildRun:
        calls.append(args)
        return _child(tmp_path, 1, PASSED, [], True)

    monkeypatch.setattr(rundir, "run_child", fake_child)
    ctx = StepContext(c[6], "c6", tree, Path(state.repo), tmp_path / "att", 1, state.params)
    obs = predicate.load_predicate(state.predicate)(ctx)
    assert calls == [["run", "--tree", str(tree), "--base", c[6],
                      "--series", str(tmp_path / "run" / "empty.series"),
                      "--memory", "2G", "--suite", "recharge"]]
    assert obs.verdict is Verdict.BAD and obs.evidence["run_dir"].endswith("run/1")
    # before the feature's Kconfig option exists: untestable, nothing built or run
    calls.clear()
    ctx = StepContext(c[1], "c1", tree, Path(state.repo), tmp_path / "att1", 1, state.params)
    obs = predicate.load_predicate(state.predicate)(ctx)
    assert calls == [] and obs.verdict is Verdict.UNTESTABLE
    assert "MEMCG_RECHARGE_OFFLINE_ENABLED" in obs.detail and "recharge[sysctl=1]" in obs.detail


def test_the_bisect_steps_import_the_harness_from_the_project_root() -> None:
    from harness.modes.bisect import driver
    # git bisect run's steps get this on PYTHONPATH: it must hold the package itself
    assert (driver.IMPORT_ROOT / "harness" / "__init__.py").is_file()
