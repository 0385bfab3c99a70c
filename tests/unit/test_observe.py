"""The "# observe" line parser (harness.parse.observe) on lines as the programs print them."""

from __future__ import annotations

from pathlib import Path

from harness.parse import observe

# Lines as selftests/lib/observe.c prints them (taken from real runs; long dying
# series shortened).
ZOMBIE_ON = (
    "# observe zombie_shmem sysctl=1 stat=shmem removed=104857600 user=104857600 parent=0 dead=0 "
    "split=exact gone=0 dying_base=0 dying_start=50 dying_end=0 t_nodying_ms=303 window_ms=307 "
    "oom=0 oom_kill=0 oom_kill_sys=0 access=map_before access_bytes=104857600 access_us=57642 "
    "access_mbps=1734.85 moved=25600 scanned=25600 cancelled=0 dying_period_ms=100 "
    "dying=2:50,104:50,203:25,303:0")
ZOMBIE_MISSING = (
    "# observe zombie_file sysctl=-1 stat=file removed=104857600 user=0 parent=0 dead=104857600 "
    "split=bound gone=0 dying_base=0 dying_start=50 dying_end=50 t_nodying_ms=-1 window_ms=8569 "
    "oom=0 oom_kill=0 oom_kill_sys=0 access=map_before access_bytes=104857600 access_us=580037 "
    "access_mbps=172.40 moved=-1 scanned=-1 cancelled=-1 dying_period_ms=100 "
    "dying=40:50,128:50,228:50,328:50")
STRESS_SWEEP = (
    "# observe stress phase=sweep sysctl=0 stat=file removed=3461120 user=57344 parent=0 "
    "dead=3461120 split=bound gone=-57344 dying_base=0 dying_end=6 t_nodying_ms=-1 "
    "window_ms=12485 churn_ms=60452 passes=1 oom=0 oom_kill=0 oom_kill_sys=0 access=read "
    "access_bytes=67108864 access_us=576036 access_mbps=111.10 moved=0 scanned=0 cancelled=0 "
    "dying_period_ms=500 dying=20:0,512:0,1012:2,1512:2,2012:1")
STRESS_CHURN = (
    "# observe stress phase=churn sysctl=1 stat=file removed=232394752 dying_max=3 dying_end=3 "
    "churn_ms=60420 oom=0 oom_kill=0 oom_kill_sys=0 oom_limited=0 oom_kill_limited=0 "
    "moved=13141 scanned=13141 cancelled=0")
RUN_LINE = ("# observe zombie_shmem phase=run sysctl=0 checks=pass leak=0 kmsg=0 case_ms=16297 "
            "oom=-1 oom_kill=-1 oom_kill_sys=0")
CHECK_OWNER = (
    "# observe mlock phase=mlock_phase_3_(munlocked,_read_again) sysctl=0 stat=shmem "
    "removed=33554432 user=0 parent=0 dead=33554432 split=bound gone=0 dying_end=1 "
    "window_ms=10813 oom=0 oom_kill=0 oom_kill_sys=-1")


def test_zombie_line_is_typed() -> None:
    o = observe.parse_line(ZOMBIE_ON)
    assert o is not None
    assert o.case == "zombie_shmem" and o.phase is None and o.key == ("zombie_shmem", None)
    assert o.sysctl == 1 and not o.observing and o.stat == "shmem"
    assert (o.removed, o.user, o.parent, o.dead, o.gone) == (104857600, 104857600, 0, 0, 0)
    assert o.split == "exact" and o.has_split
    assert (o.dying_base, o.dying_start, o.dying_end) == (0, 50, 0)
    assert o.t_nodying_ms == 303 and o.window_ms == 307
    assert o.access == "map_before" and o.access_mbps == 1734.85 and o.access_us == 57642
    assert (o.moved, o.scanned, o.cancelled) == (25600, 25600, 0)
    assert o.dying_period_ms == 100
    assert [(s.t_ms, s.count) for s in o.dying] == [(2, 50), (104, 50), (203, 25), (303, 0)]
    assert not o.extra and o.printed("dying") and not o.printed("phase")


def test_minus_one_is_none_but_gone_keeps_its_sign() -> None:
    o = observe.parse_line(ZOMBIE_MISSING)
    assert o is not None and o.sysctl is None and o.observing
    assert o.t_nodying_ms is None  # never back to the baseline within the window
    assert o.moved is None and o.scanned is None and o.cancelled is None
    assert o.split == "bound" and o.dead == 104857600
    s = observe.parse_line(STRESS_SWEEP)
    assert s is not None and s.gone == -57344 and s.phase == "sweep" and s.passes == 1


def test_stress_churn_and_run_lines() -> None:
    c = observe.parse_line(STRESS_CHURN)
    assert c is not None and c.phase == "churn" and c.dying_max == 3
    assert c.oom_limited == 0 and c.oom_kill_limited == 0 and c.user is None
    assert not c.has_split and c.dying == ()
    r = observe.parse_line(RUN_LINE)
    assert r is not None and r.is_run and r.checks == "pass" and r.leak == 0
    assert r.case_ms == 16297 and r.oom is None and r.oom_kill_sys == 0


def test_check_owner_phase_keeps_punctuation() -> None:
    o = observe.parse_line(CHECK_OWNER)
    assert o is not None and o.phase == "mlock_phase_3_(munlocked,_read_again)"
    assert o.oom_kill_sys is None and o.dying_end == 1


def test_unknown_and_malformed_tokens_are_kept_not_fatal() -> None:
    o = observe.parse_line("# observe x sysctl=abc newkey=7 lonely dying=1:2,bad,3:-1,4:x "
                           "access_mbps=-1 gone=zz")
    assert o is not None
    assert o.sysctl is None and o.extra["sysctl"] == "abc"
    assert o.extra["newkey"] == "7" and o.extra["_junk"] == "lonely"
    assert [(s.t_ms, s.count) for s in o.dying] == [(1, 2), (3, None)]
    assert o.access_mbps is None and o.gone is None
    o2 = observe.parse_line("# observe y access_mbps=fast dying=-")
    assert o2 is not None and o2.access_mbps is None and o2.dying == ()


def test_not_observe_lines() -> None:
    assert observe.parse_line("# zombies: before: nr_dying_descendants=50") is None
    assert observe.parse_line("ok 1 zombie_shmem # SKIP observed only") is None
    assert observe.parse_line("# observe") is None


def test_parse_text_and_as_dict() -> None:
    text = "\n".join(["TAP version 13", "1..2", "# observed: blah", ZOMBIE_ON, RUN_LINE,
                      "ok 1 zombie_shmem", "    " + STRESS_CHURN, "ok 2 stress"])
    obs = observe.parse_text(text)
    assert [o.key for o in obs] == [("zombie_shmem", None), ("zombie_shmem", "run"),
                                    ("stress", "churn")]
    d = obs[0].as_dict()
    assert d["dying"][0] == [2, 50] and d["case"] == "zombie_shmem" and "phase" not in d
    assert observe.parse_line("# observe q k=v").as_dict()["extra"] == {"k": "v"}  # type: ignore[union-attr]


def test_read_ktap_dir(tmp_path: Path) -> None:
    assert observe.read_ktap_dir(tmp_path / "none") == {}
    k = tmp_path / "ktap"
    k.mkdir()
    (k / "scenarios[sysctl=0].tap").write_text(ZOMBIE_MISSING + "\n" + RUN_LINE + "\n")
    (k / "test_core.tap").write_text("ok 1 test_cgcore_destroy\n")
    got = observe.read_ktap_dir(k)
    assert list(got) == ["scenarios[sysctl=0]"] and len(got["scenarios[sysctl=0]"]) == 2


def test_soak_line() -> None:
    o = observe.parse_line(
        "# observe soak_churn phase=soak sysctl=1 seconds=120 generations=480 limited=96 "
        "churn_memcgs=2000 dying_max=12 dying_end=0 live_file=1048576 live_shmem=0 "
        "oom_kill_limited=3 oom_kill_other=0 oom_kill_sys=3 moved=100 scanned=120 cancelled=2 "
        "dying_period_ms=200 dying=0:0,200:4,400:12,600:0")
    assert o is not None and o.phase == "soak" and not o.extra
    assert (o.seconds, o.generations, o.limited, o.churn_memcgs) == (120, 480, 96, 2000)
    assert (o.live_file, o.live_shmem, o.oom_kill_other, o.oom_kill_limited) == (1048576, 0, 0, 3)
    assert len(o.dying) == 4 and not o.has_split
