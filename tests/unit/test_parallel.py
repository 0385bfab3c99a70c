"""--parallel: N guests of one kernel share the suites (fake vng, fake guests): the shares,
one report in the table's order with the verdict of one guest, kernel logs per guest, a
guest that does not boot, and every guest stopped on an exception or an interrupt."""

from __future__ import annotations

import _thread
import json
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from junitparser import JUnitXml

from harness import paths, proc, record
from harness.errors import SshError
from harness.model import Options
from harness.modes import parallel
from harness.modes.run import Pipeline
from harness.stages import boot as bootmod
from harness.stages import schedule, vm
from harness.stages.ssh import CmdResult
from harness.stages.suites import select_suites, suite_key

from fakes import DEFAULT_KTAP, FakeGuest, make_project, write_exe, write_fake_vng

CGROUP = ("test_memcontrol", "test_kmem", "test_core")
OWN = ("test_recharge", "scenarios", "ext4-root.sh")
KTAP_FAIL = "TAP version 13\n1..1\nnot ok 1 subtree_control\n"
WARNING = ("[   12.0] RECHARGE-HARNESS: begin test_memcontrol\n"
           "[   12.1] WARNING: CPU: 0 PID: 7 at mm/memcontrol.c:1 f+0x1/0x2\n"
           "[   12.2] RECHARGE-HARNESS: end test_memcontrol\n")


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A fake vng and QEMU; a `build` run directory (kernel, selftests) and a project."""
    fake_vng = write_fake_vng(tmp_path / "bin")
    write_exe(tmp_path / "bin" / "qemu-system-x86_64", "#!/bin/sh\necho 'QEMU emulator 7.2'\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:" + os.environ["PATH"])
    monkeypatch.setattr(vm, "vng_tool", lambda name: str(fake_vng))
    monkeypatch.setattr(vm, "PORT_CHECK_S", 0.2)
    art = tmp_path / "artifact"
    (art / "kernel").mkdir(parents=True)
    (art / "kernel" / "bzImage").write_text("kernel")
    for origin, names in (("cgroup", CGROUP), ("own", OWN)):
        for n in names:
            write_exe(art / "guest" / origin / n, "#!/bin/sh\n")
    project = make_project(tmp_path / "project")
    write_exe(project / "selftests" / "guest-setup.sh", "#!/bin/sh\n")
    return art, project


class Guests:
    """A guest factory that keeps the guests it made, by the guest's directory."""

    def __init__(self, fail: str | None = None, dmesg: dict[str, str] | None = None,
                 **kw: object):
        kw.setdefault("program", CmdResult("x", 0, DEFAULT_KTAP, "", 0.1))  # every suite passes
        self.kw = kw
        self.fail = fail
        self.dmesg = dmesg or {}
        self.made: dict[str, FakeGuest] = {}

    def __call__(self, host: str, port: int, user: str, key: Path,
                 host_keys: list[Path] | None = None) -> FakeGuest:
        name = next((p for p in key.parts if p.startswith("guest-")), "vm")
        g = FakeGuest(port=port, **self.kw)  # type: ignore[arg-type]
        g.dmesg += self.dmesg.get(name, "")
        if self.fail == name:
            def refuse(*a: object, **k: object) -> float:
                raise SshError("connection refused")
            g.connect = refuse  # type: ignore[method-assign]
        self.made[name] = g
        return g


def _programs(**extra: object) -> dict[str, object]:
    progs: dict[str, object] = {"test_kmem": CmdResult("x", 1, KTAP_FAIL, "", 0.1)}
    progs.update(extra)
    return progs


#: What the last run in ``out`` measured, unless a test gives its own ``out``: the shares
#: these tests were written for (scenarios[sysctl=1] and test_core on guest-1, the rest on
#: guest-2), whatever the table's rough defaults are today.
LAST_RUN_S = {"scenarios[sysctl=1]": 240.0, "scenarios[sysctl=0]": 120.0,
              "test_memcontrol": 40.0, "recharge[sysctl=1]": 30.0, "recharge[sysctl=0]": 30.0,
              "test_kmem": 20.0, "test_core": 5.0}


def _seeded_out(out: Path) -> Path:
    (out / "0").mkdir(parents=True, exist_ok=True)
    (out / "0" / "metadata.json").write_text(json.dumps({
        "build": {"options": {"cases": [], "stress_s": None, "soak_s": None}},
        "results": {"suites": {k: {"status": "PASS", "duration_s": v}
                               for k, v in LAST_RUN_S.items()}}}))
    return out


def _run(tmp_path: Path, art: Path, project: Path, n: int | None, guests: Guests,
         out: Path | None = None, **kw: object) -> Pipeline:
    out = out or _seeded_out(tmp_path / f"out{n}")
    opts = Options(command="test", out=out, project=project,
                   cache=paths.cache_root(), argv=("test",), accel="tcg", kernel_dir=art,
                   parallel=n, **kw)  # type: ignore[arg-type]
    p = Pipeline(opts, guest_factory=guests)
    p.code = p.run()  # type: ignore[attr-defined]
    return p


def _junit(run_dir: Path) -> list[tuple[str, list[str]]]:
    return [(str(ts.name), [str(c.name) for c in ts]) for ts in JUnitXml.fromfile(
        str(run_dir / "junit.xml"))]


def _no_guest_left(*run_dirs: Path) -> None:
    assert not proc._LIVE, "a guest's session is still registered"
    for d in run_dirs:
        assert not list(d.glob("**/rhscratch.ext4")), "scratch images left"
        assert not list(d.glob("**/vm/home")), "a private key left"


def test_two_guests_share_the_suites_longest_first(host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    art, project = host
    guests = Guests(sysctl="0", programs=_programs())
    p = _run(tmp_path, art, project, 2, guests)
    assert p.code == 1  # type: ignore[attr-defined]
    meta = json.loads((p.run_dir / "metadata.json").read_text())
    want = schedule.plan(select_suites(None), 2, LAST_RUN_S)
    shares = {f"guest-{i}": [s.name for s in share] for i, share in enumerate(want.guests, 1)}
    assert meta["schedule"]["guests"] == shares
    assert shares["guest-1"] == ["scenarios[sysctl=1]", "test_core"]
    for name, share in shares.items():
        ran = [c for c in guests.made[name].commands if "RECHARGE-HARNESS: begin" in c]
        assert [c.split("begin ")[1].split("'")[0] for c in ran] == share
        assert meta["vm"]["guests"][name]["port"] == guests.made[name].port
        assert (p.run_dir / name / "dmesg.log").is_file()
        assert (p.run_dir / name / "guest-setup.log").is_file()
        assert (p.run_dir / name / "vm" / "vng-cmd.txt").is_file()
        for s in share:
            assert meta["results"]["suites"][s]["guest"] == name
    assert meta["vm"]["guests"]["guest-1"]["port"] != meta["vm"]["guests"]["guest-2"]["port"]
    assert meta["vm"]["parallel"] == 2 and meta["vm"]["port"] == meta["vm"]["guests"]["guest-1"]["port"]
    assert "on 2 guests" in meta["results"]["stages"]["suites"]["detail"]
    assert not (p.run_dir / "vm").exists() and not (p.run_dir / "dmesg.log").exists()
    _no_guest_left(p.run_dir)


def test_one_report_in_table_order_with_the_verdict_of_one_guest(host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    art, project = host
    one = _run(tmp_path, art, project, 1, Guests(sysctl="0", programs=_programs()))
    two = _run(tmp_path, art, project, 2, Guests(sysctl="0", programs=_programs()))
    assert one.code == two.code == 1  # type: ignore[attr-defined]
    assert _junit(one.run_dir) == _junit(two.run_dir)
    assert [ts for ts, _ in _junit(two.run_dir)] == [
        "recharge[sysctl=1]", "recharge[sysctl=0]", "scenarios[sysctl=1]", "scenarios[sysctl=0]",
        "test_memcontrol[sysctl=1]", "test_kmem[sysctl=1]", "test_core[sysctl=1]", "kernel-log"]
    verdict = [(p.run_dir / "summary.txt").read_text().splitlines()[-1] for p in (one, two)]
    assert verdict[0] == verdict[1] and "test_kmem" in verdict[0]
    r1, r2 = record.load(one.run_dir), record.load(two.run_dir)
    assert list(r1.suites) == list(r2.suites) == [s.name for s in select_suites(None)]
    assert {k: v["status"] for k, v in r1.suites.items()} == \
        {k: v["status"] for k, v in r2.suites.items()}
    assert list(r1.stages) == list(r2.stages)
    # one guest: the layout and the record of a run without --parallel
    assert (one.run_dir / "vm" / "vng-cmd.txt").is_file() and (one.run_dir / "dmesg.log").is_file()
    assert not list(one.run_dir.glob("guest-[0-9]*"))
    assert "guests" not in r1.group("vm") and "guest" not in r1.suites["test_core"]
    _no_guest_left(one.run_dir, two.run_dir)


def test_kernel_logs_of_every_guest_are_scanned_and_name_their_guest(host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    art, project = host
    # test_memcontrol runs on guest-2, which warns during it; guest-1 warns at boot
    boot_warning = "[    1.0] WARNING: CPU: 0 PID: 1 at mm/slub.c:1 g+0x1/0x2\n"
    g = Guests(sysctl="0", programs=_programs(),
               dmesg={"guest-1": boot_warning, "guest-2": WARNING})
    p = _run(tmp_path, art, project, 2, g)
    assert p.code == 1  # type: ignore[attr-defined]
    meta = json.loads((p.run_dir / "metadata.json").read_text())
    kl = meta["kernel_log"]
    assert kl["sources"] == {name: str(p.run_dir / name / "dmesg.log")
                             for name in ("guest-1", "guest-2")}
    assert [(f["suite"], f["case"], f["guest"]) for f in kl["findings"]] == [
        ("kernel-log", "(boot)", "guest-1"), ("test_memcontrol", "", "guest-2")]
    summary = (p.run_dir / "summary.txt").read_text()
    assert "WARNING in f [guest-2]" in summary and "WARNING in g [guest-1]" in summary
    cases = dict(_junit(p.run_dir))
    assert cases["kernel-log"] == ["(boot)", "(between)"]  # the case names of one guest


def test_a_guest_that_does_not_boot_is_an_error_for_its_suites(host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    art, project = host
    start = time.monotonic()
    p = _run(tmp_path, art, project, 2, Guests(fail="guest-2", sysctl="0", programs=_programs()))
    assert time.monotonic() - start < 60
    assert p.code == 2  # type: ignore[attr-defined]
    rec = record.load(p.run_dir)
    boot = rec.stages["boot"]
    assert boot.status == "ERROR" and "1 of 2" in boot.detail
    assert "guest-2 did not boot: guest not reachable: connection refused" in boot.detail
    assert rec.stages["suites"].status == "PASS"  # the suites that could run did
    meta = json.loads((p.run_dir / "metadata.json").read_text())
    shares = meta["schedule"]["guests"]
    for s in shares["guest-2"]:
        assert rec.suites[s]["status"] == "ERROR" and "guest-2 did not boot" in rec.suites[s]["error"]
    assert rec.suites["scenarios[sysctl=1]"]["status"] == "PASS"
    assert "error" in meta["vm"]["guests"]["guest-2"]
    _no_guest_left(p.run_dir)


def test_no_guest_boots_the_run_stops_as_with_one(host, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    art, project = host
    guests = Guests(sysctl="0", programs=_programs())

    def refuse(*a: object, **k: object) -> FakeGuest:
        g = guests(*a, **k)  # type: ignore[arg-type]
        g.connect = lambda *x, **y: (_ for _ in ()).throw(SshError("refused"))  # type: ignore[method-assign]
        return g

    p = _run(tmp_path, art, project, 2, refuse)  # type: ignore[arg-type]
    assert p.code == 2  # type: ignore[attr-defined]
    rec = record.load(p.run_dir)
    assert rec.stages["boot"].status == "ERROR" and "guest not reachable" in rec.stages["boot"].detail
    assert {v["status"] for v in rec.suites.values()} == {"NOTRUN"}
    _no_guest_left(p.run_dir)


def _stop_events(monkeypatch: pytest.MonkeyPatch) -> dict[int, threading.Event]:
    """port -> set once that guest's VM was stopped."""
    stopped: dict[int, threading.Event] = defaultdict(threading.Event)
    orig = vm.Vm.stop

    def stop(self: vm.Vm) -> None:
        port = self.port
        orig(self)
        stopped[port].set()

    monkeypatch.setattr(vm.Vm, "stop", stop)
    return stopped


def _until_stopped(stopped: dict[int, threading.Event],
                   first: Callable[[], None] = lambda: None) -> Callable[[FakeGuest, str], CmdResult]:
    """A program that runs until its guest is stopped or the harness cuts off the command
    (``abort``; then the connection is lost).  It waits in short steps: an interrupt of
    the main thread (``_thread.interrupt_main``) is raised between two steps."""
    def answer(g: FakeGuest, command: str) -> CmdResult:
        first()
        end = time.monotonic() + 30
        while not (stopped[g.port].is_set() or g.aborted.is_set()):
            assert time.monotonic() < end, "the guest was never stopped"
            time.sleep(0.02)
        return CmdResult(command, None, "", "", 0.0, error="connection lost")
    return answer


def test_an_exception_in_one_guest_stops_both(host, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    art, project = host
    stopped = _stop_events(monkeypatch)
    started = threading.Event()

    def disk_full(g: FakeGuest, command: str) -> CmdResult:
        assert started.wait(10)
        raise OSError(28, "No space left on device")

    # test_core runs on guest-1, test_memcontrol on guest-2 (until its guest is stopped)
    g = Guests(sysctl="0", programs={"test_core": disk_full, "test_memcontrol": _until_stopped(
        stopped, first=started.set)})
    start = time.monotonic()
    p = _run(tmp_path, art, project, 2, g)
    assert time.monotonic() - start < 30
    assert p.code == 2  # type: ignore[attr-defined]
    rec = record.load(p.run_dir)
    assert rec.stages["suites"].status == "ERROR" and "No space left" in rec.stages["suites"].detail
    # what ran before stays; the two suites it cut off are errors, the rest not run
    why = "the run stopped: OSError: [Errno 28] No space left on device"
    got = {k: (v["status"], v.get("error")) for k, v in rec.suites.items()}
    assert got.pop("test_core") == got.pop("test_memcontrol") == ("ERROR", why)
    assert got.pop("scenarios[sysctl=1]") == ("PASS", None)  # before test_core on guest-1
    assert set(got.values()) == {("PASS", None), ("NOTRUN", f"not run: {why}")}
    assert all(stopped[g.port].is_set() for g in g.made.values())
    _no_guest_left(p.run_dir)


def test_an_interrupt_stops_every_guest(host, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    art, project = host
    stopped = _stop_events(monkeypatch)
    g = Guests(sysctl="0", programs={
        "test_core": _until_stopped(stopped, first=_thread.interrupt_main),
        "test_memcontrol": _until_stopped(stopped)})
    start = time.monotonic()
    p = _run(tmp_path, art, project, 2, g)
    assert time.monotonic() - start < 30
    assert p.code == 2  # type: ignore[attr-defined]
    rec = record.load(p.run_dir)
    assert rec.group("results")["error"] == "interrupted by SIGINT"
    assert all(stopped[g.port].is_set() for g in g.made.values())
    _no_guest_left(p.run_dir)


@pytest.mark.parametrize("n,sig,keep", [
    (1, "SIGINT", False), (1, "SIGINT", True), (2, "SIGINT", False), (2, "SIGINT", True),
    (1, "SIGTERM", False), (2, "SIGTERM", True)])
def test_an_interrupt_keeps_the_suites_that_finished(host, tmp_path: Path, monkeypatch,  # type: ignore[no-untyped-def]
                                                     n: int, sig: str, keep: bool) -> None:
    """Ctrl-C (SIGTERM) while a suite runs: the suites done before keep their results, the
    one cut off is an ERROR, those not started are NOTRUN (all three in the summary,
    junit.xml and metadata.json), no verdict; after Ctrl-C the kernel log is asked for
    once more, briefly; after SIGTERM the guests are stopped at once (a SIGKILL may
    follow soon); no guest is left (not even with --keep-vm-on-failure)."""
    art, project = host
    stopped = _stop_events(monkeypatch)
    started = threading.Event()

    def interrupt() -> None:
        if n > 1:  # both guests busy with their suite first
            assert started.wait(10)
        if sig == "SIGINT":
            _thread.interrupt_main()
        else:  # raised in the main thread (harness.stages.boot.signals_raise)
            os.kill(os.getpid(), signal.SIGTERM)

    # one guest: Ctrl-C during test_memcontrol; two: during guest-1's test_core while
    # guest-2 runs test_memcontrol
    cut = {"test_memcontrol"} if n == 1 else {"test_memcontrol", "test_core"}
    programs = ({"test_memcontrol": _until_stopped(stopped, first=interrupt)} if n == 1 else
                {"test_memcontrol": _until_stopped(stopped, first=started.set),
                 "test_core": _until_stopped(stopped, first=interrupt)})
    g = Guests(sysctl="0", programs=programs)
    start = time.monotonic()
    p = _run(tmp_path, art, project, n, g, keep_vm_on_failure=keep)
    assert time.monotonic() - start < 30
    assert p.code == 2  # type: ignore[attr-defined]
    plan = schedule.plan(select_suites(None), n, LAST_RUN_S)
    want: dict[str, tuple[str, str | None]] = {}
    for share in plan.guests:
        names = [s.name for s in share]
        i = next(i for i, x in enumerate(names) if x in cut)
        want.update((x, ("PASS", None)) for x in names[:i])
        want[names[i]] = ("ERROR", f"interrupted by {sig}")
        want.update((x, ("NOTRUN", "not run: the run was interrupted")) for x in names[i + 1:])
    assert {x for x, (st, _) in want.items() if st == "PASS"} >= {"recharge[sysctl=1]"}
    rec = record.load(p.run_dir)
    assert {k: (v["status"], v.get("error")) for k, v in rec.suites.items()} == want
    assert rec.stages["suites"].status == "ERROR"
    assert rec.stages["suites"].detail == f"interrupted by {sig}"
    assert rec.group("results")["error"] == f"interrupted by {sig}"
    assert rec.exit_code == 2
    # junit.xml and summary.txt name a suite with the sysctl it ran at (test_kmem[sysctl=0])
    suites_xml = {suite_key(str(ts.name)): ts
                  for ts in JUnitXml.fromfile(str(p.run_dir / "junit.xml"))}
    for name, (status, _) in want.items():
        ts = suites_xml[name]
        bad = int(ts.errors or 0) + int(ts.failures or 0)
        assert (bad == 0) == (status == "PASS"), (name, status)
    summary = (p.run_dir / "summary.txt").read_text()
    rows = {suite_key(l.split()[1]): l for l in summary.splitlines() if l.startswith("suite ")}
    for name, (status, _) in want.items():
        assert rows[name].split()[2].lower() == status.lower(), rows[name]
    assert "stopped before the suites" not in summary
    assert "NO VERDICT" in summary.splitlines()[-1] and summary.rstrip().endswith("(exit 2)")
    # the kernel log after Ctrl-C: one brief attempt per guest, on a fresh command;
    # after SIGTERM none (the console log is scanned instead)
    for name, guest in g.made.items():
        dmesg = [d for c, d in zip(guest.commands, guest.deadlines) if c == "dmesg"]
        if sig == "SIGTERM":
            assert dmesg == [], name
            continue
        assert len(dmesg) == 1 and dmesg[0] is not None and dmesg[0] <= 20, (name, dmesg)
    logs = ([p.run_dir / "dmesg.log"] if n == 1 else
            [p.run_dir / f"guest-{i}" / "dmesg.log" for i in range(1, n + 1)])
    assert all(f.is_file() == (sig == "SIGINT") for f in logs)
    assert all(stopped[x.port].is_set() for x in g.made.values())
    _no_guest_left(p.run_dir)


@pytest.mark.parametrize("n", [1, 2])
def test_a_second_ctrl_c_ends_the_wait_for_the_kernel_log(host, tmp_path: Path, monkeypatch,  # type: ignore[no-untyped-def]
                                                         n: int) -> None:
    """Ctrl-C again while the harness asks for the kernel log after the first: the guests
    are stopped at once, and what finished before is still reported."""
    art, project = host
    stopped = _stop_events(monkeypatch)
    started = threading.Event()
    collect = bootmod.collect_dmesg

    def slow_dmesg(guest: FakeGuest, vm_: vm.Vm, path: Path, *, brief: bool = False) -> None:
        if not brief:
            return collect(guest, vm_, path, brief=brief)
        _thread.interrupt_main()  # the user does not wait for it
        end = time.monotonic() + 10
        while vm_.alive() and time.monotonic() < end:
            time.sleep(0.02)
        assert not vm_.alive(), "the guest was not stopped after the second Ctrl-C"

    monkeypatch.setattr(bootmod, "collect_dmesg", slow_dmesg)

    def interrupt() -> None:
        if n > 1:
            assert started.wait(10)
        _thread.interrupt_main()

    programs = ({"test_memcontrol": _until_stopped(stopped, first=interrupt)} if n == 1 else
                {"test_memcontrol": _until_stopped(stopped, first=started.set),
                 "test_core": _until_stopped(stopped, first=interrupt)})
    start = time.monotonic()
    p = _run(tmp_path, art, project, n, Guests(sysctl="0", programs=programs))
    assert time.monotonic() - start < 20
    assert p.code == 2  # type: ignore[attr-defined]
    rec = record.load(p.run_dir)
    assert rec.suites["recharge[sysctl=1]"]["status"] == "PASS"
    # the suite cut off: an ERROR, or NOTRUN if its thread had not said so by then
    assert rec.suites["test_memcontrol"]["status"] in ("ERROR", "NOTRUN")
    assert rec.suites["test_kmem"]["status"] == "NOTRUN"
    assert len(rec.suites) == len(select_suites(None))
    _no_guest_left(p.run_dir)


def test_the_next_run_schedules_from_the_last_ones_durations(host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    art, project = host
    out = tmp_path / "out"
    (out / "1").mkdir(parents=True)
    # the last run found test_core the longest by far
    (out / "1" / "metadata.json").write_text(json.dumps({
        "build": {"options": {"cases": [], "stress_s": None, "soak_s": None}},
        "results": {"suites": {"test_core": {"status": "PASS", "duration_s": 900.0}}}}))
    p = _run(tmp_path, art, project, 2, Guests(sysctl="0", programs=_programs()), out=out)
    sched = json.loads((p.run_dir / "metadata.json").read_text())["schedule"]
    assert sched["guests"]["guest-1"] == ["test_core"]  # alone on its guest
    assert sched["expected_from"]["test_core"] == str(out / "1")
    assert sched["expected_from"]["test_kmem"] == "table"


def test_how_many_guests(host, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    art, project = host
    monkeypatch.setattr(schedule, "host_cpus", lambda: 2)
    monkeypatch.setattr(schedule, "host_memory", lambda: 64 * 1024 ** 3)
    opts = Options(command="test", out=tmp_path / "o", project=project, cache=paths.cache_root(),
                   kernel_dir=art)
    p = Pipeline(opts)
    assert parallel.guests_for(p, select_suites(None)) == 2  # the default: the host's CPUs
    assert parallel.guests_for(p, select_suites(["test_core"])) == 1
    boot = Pipeline(Options(command="boot", out=tmp_path / "o", project=project))
    assert parallel.guests_for(boot, select_suites(None)) == 1  # one guest to log into
    monkeypatch.setattr(schedule, "host_memory", lambda: 4 * 1024 ** 3)
    assert parallel.guests_for(p, select_suites(None)) == 1  # 2 x 3G > 70% of 4G
    assert "capped at 1 by memory" in record.load(p.run_dir).group("schedule")["why"]


def test_cli_parallel_option(tmp_path: Path) -> None:
    from harness.cli import build_parser
    from harness.options import forward_args

    args = build_parser().parse_args(["test", "--parallel", "3"])
    assert args.parallel == 3
    assert forward_args(args) == ["--parallel", "3"]
    assert build_parser().parse_args(["run"]).parallel is None
    assert build_parser().parse_args(["compare", "--parallel", "1"]).parallel == 1
    with pytest.raises(SystemExit):
        build_parser().parse_args(["test", "--parallel", "0"])


def test_ports_of_guests_started_together_differ() -> None:
    ports = {vm.free_port() for _ in range(50)}
    assert len(ports) == 50  # none handed out twice while held
    for port in ports:
        vm.release_port(port)


def test_default_ktap_is_a_pass() -> None:  # the fakes' program output used above
    assert "not ok" not in DEFAULT_KTAP
