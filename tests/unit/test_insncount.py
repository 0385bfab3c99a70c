"""Instruction counts (harness/stages/insncount/): plugin output, pairing, ratios; no QEMU."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.modes.bench import hotpath, report
from harness.stages import boot as bootmod
from harness.stages import insncount, vm
from harness.stages.accel import AccelChoice
from harness.stages.insncount import plugin, qemuheader, windows

PLUGIN_OUT = """\
insncount format=1 api=1 max_vcpus=2
window id=1 seq=1 vcpu=0 insns=72690968 kernel=72664292 all=72690968 all_kernel=72664292
window id=1 seq=2 vcpu=0 insns=72853938 kernel=72827262 all=72900000 all_kernel=72827262
window id=3 seq=3 vcpu=1 insns=0 kernel=0 all=15536083 all_kernel=15330173 migrated=1
window id=4 seq=4 vcpu=0 error=no-start
window id=5 seq=5 vcpu=0 insns=12052338 kernel=11767285 all=12052338 all_kernel=11767285
window id=6 seq=6 vcpu=0 insns=11770576 kernel=11530521 all=11770576 all_kernel=11530521
total vcpu=0 insns=999 kernel=9
window id=1 seq=7 vcpu=0 insns=7269"""  # the last line is incomplete (being written)


def test_parse_plugin_output() -> None:
    ws = windows.parse_plugin_output(PLUGIN_OUT)
    assert [w.seq for w in ws] == [1, 2, 3, 4, 5, 6, 7]
    assert ws[0] == windows.PluginWindow(1, 1, 0, 72690968, 72664292, 72690968, 72664292)
    assert ws[2].error == "migrated" and ws[2].insns is None and ws[2].all == 15536083
    assert ws[3].error == "no-start" and ws[3].all is None


def test_read_new_returns_complete_lines_only(tmp_path: Path) -> None:
    f = tmp_path / "out"
    f.write_text(PLUGIN_OUT)
    text, off = windows.read_new(f, 0)
    assert text.endswith("kernel=9\n") and "seq=7" not in text
    with open(f, "a") as fh:
        fh.write("0968 kernel=1 all=2 all_kernel=1\n")
    more, off2 = windows.read_new(f, off)
    assert [w.insns for w in windows.parse_plugin_output(more)] == [72690968]
    assert off2 == f.stat().st_size
    assert windows.read_new(tmp_path / "missing", 5) == ("", 5)


def _tap(*wins: tuple[str, int, int, str]) -> str:
    return "TAP version 13\n" + "".join(
        f"# insnwin case={c} id={i} units={u} unit={unit} faults=0\n" for c, i, u, unit in wins)


def test_parse_program_windows_and_match_by_id_in_order() -> None:
    prog = windows.parse_program_windows(_tap(
        ("read_ext4", 1, 16384, "pages"), ("read_ext4", 1, 16384, "pages"),
        ("fault_ext4", 3, 16384, "pages"), ("fault_tmpfs", 4, 16384, "pages"),
        ("mark_accessed_ext4", 5, 10000, "reads"), ("mark_accessed_ext4", 6, 10000, "reads"),
        ("read_tmpfs", 2, 16384, "pages")) + "# insnwin case=x id=oops\n")
    assert len(prog) == 7 and prog[0] == {"case": "read_ext4", "id": 1, "units": 16384,
                                          "unit": "pages", "faults": 0}
    complete = PLUGIN_OUT[:PLUGIN_OUT.rfind("\n") + 1]  # as read_new() hands it over
    matched, problems = windows.match_windows(prog, windows.parse_plugin_output(complete))
    assert [(w["id"], w["k"]) for w in matched] == [(1, 0), (1, 1), (5, 0), (6, 0)]
    assert matched[1]["insns"] == 72853938 and matched[1]["all"] == 72900000
    # id 1: the incomplete 7th line is not a window; id 2: the plugin saw none
    assert "window id 2: the program ran 1, the plugin saw 0" in problems
    assert "window id 3 #1: migrated" in problems and "window id 4 #1: no-start" in problems


def test_a_missing_window_drops_the_id_not_just_one_pair() -> None:
    prog = windows.parse_program_windows(_tap(*[("read_ext4", 1, 100, "pages")] * 3))
    plug = windows.parse_plugin_output(
        "window id=1 seq=1 vcpu=0 insns=100 kernel=1 all=100 all_kernel=1\n"
        "window id=1 seq=2 vcpu=0 insns=200 kernel=1 all=200 all_kernel=1\n")
    matched, problems = windows.match_windows(prog, plug)
    assert matched == [] and problems == ["window id 1: the program ran 3, the plugin saw 2"]


def test_window_metrics_per_page_and_per_mark() -> None:
    matched = [
        {"case": "read_ext4", "id": 1, "units": 1000, "insns": 4_500_000, "kernel": 4_400_000,
         "all": 4_600_000},
        {"case": "mark_accessed_ext4", "id": 5, "units": 100, "insns": 120_500},
        {"case": "mark_accessed_ext4", "id": 6, "units": 100, "insns": 117_700},
        {"case": "mark_accessed_ext4", "id": 5, "units": 100, "insns": 120_600},
        {"case": "mark_accessed_ext4", "id": 6, "units": 100, "insns": 117_700},
    ]
    m = windows.window_metrics(matched)
    assert m["read_ext4"]["insns_per_page"] == {"samples": [4500.0], "unit": "insns/page"}
    assert m["read_ext4"]["kernel_insns_per_page"]["samples"] == [4400.0]
    assert m["read_ext4"]["all_insns_per_page"]["samples"] == [4600.0]
    ma = m["mark_accessed_ext4"]
    assert ma["insns_per_read_alt"]["samples"] == [1205.0, 1206.0]
    assert ma["insns_per_read_same"]["samples"] == [1177.0, 1177.0]
    assert ma["insns_per_mark"]["samples"] == [28.0, 29.0]


def _run_with(sysctl: int | None, per_page: list[float], per_mark: list[float] | None = None
              ) -> dict[str, Any]:
    ms: dict[str, Any] = {"read_ext4": {
        "read_MiBps": {"samples": [100.0]},
        "insns_per_page": {"samples": per_page, "unit": "insns/page"}}}
    if per_mark:
        ms["mark_accessed_ext4"] = {"insns_per_mark": {"samples": per_mark, "unit": "insns/mark"},
                                    "insns_per_read_alt": {"samples": [1200 + x for x in per_mark],
                                                           "unit": "insns/read"}}
    return {"sysctl": sysctl, "metrics": ms}


def test_ratios_patched_over_base_and_goals() -> None:
    patched = {"0": hotpath.merge_runs([_run_with(0, [4440.0, 4446.0, 4447.0], [28.0, 29.0])]),
               "1": hotpath.merge_runs([_run_with(1, [4470.0, 4471.0, 4473.0], [58.0, 58.5])])}
    base = {"absent": hotpath.merge_runs([_run_with(None, [4409.0, 4410.0, 4412.0], [27.0])])}
    rows = {(r["case"], r["metric"]): r for r in insncount.ratios(patched, base)}
    r = rows[("read_ext4", "insns_per_page")]
    assert r["judged"] and r["base"]["median"] == 4410.0 and r["sysctl1"]["median"] == 4471.0
    assert r["sysctl0_over_base"] == pytest.approx(4446 / 4410, abs=1e-5)
    assert r["sysctl1_throughput"] == pytest.approx(4410 / 4471, abs=1e-5)
    assert r["sysctl1_over_sysctl0"] == pytest.approx(4471 / 4446, abs=1e-5)
    assert r["sysctl1_minus_sysctl0"] == 25.0 and r["sysctl1_minus_base"] == 61.0
    assert r["sysctl0_met"] and not r["sysctl1_met"]  # 0.9919 >= 0.99 > 0.9864
    assert r["sysctl0"]["spread_pct"] == pytest.approx(100 * 7 / 4446, abs=1e-4)
    mark = rows[("mark_accessed_ext4", "insns_per_mark")]
    assert not mark["judged"] and mark["sysctl1_minus_sysctl0"] == 29.75
    goals = insncount.goals({"insn_ratios": list(rows.values())})
    g = {x["goal"]: x for x in goals}
    s1 = g["hot path read_ext4 patched[sysctl1] / base (guest instructions)"]
    assert s1["met"] is False and "+61.0 insns/page vs base" in s1["bound"]
    assert g["hot path read_ext4 patched[sysctl0] / base (guest instructions)"]["met"] is True
    assert not any("insns_per_mark" in x["goal"] for x in goals)
    # judged metric of mark_accessed: per alternating read
    assert "hot path mark_accessed_ext4 patched[sysctl1] / base (guest instructions)" in g


def test_ratios_without_base_give_sysctl_ratio_only() -> None:
    patched = {"0": hotpath.merge_runs([_run_with(0, [1000.0])]),
               "1": hotpath.merge_runs([_run_with(1, [1010.0])])}
    (row,) = [r for r in insncount.ratios(patched, None) if r["case"] == "read_ext4"]
    assert row["sysctl1_over_sysctl0"] == 1.01 and "sysctl1_over_base" not in row
    assert insncount.goals({"insn_ratios": [row]}) == []
    assert insncount.insn_stats([]) == {"n": 0}


def test_markdown_says_why_there_are_no_counts() -> None:
    hp = {"patched": {"boot": {"insn_plugin": {"available": False,
                                               "reason": "no gcc to build the QEMU plugin"}}}}
    md = "\n".join(insncount.markdown(hp))
    assert "Not measured: no gcc to build the QEMU plugin" in md
    assert insncount.markdown({"patched": {"boot": {}}}) == []
    hp["patched"]["boot"]["insn_plugin"] = {"available": True, "disabled": True,
                                            "reason": "the guest runs under kvm"}
    assert "Not measured: the guest runs under kvm" in "\n".join(insncount.markdown(hp))


class PluginGuest:
    """A guest whose hotpath run 'executes' the markers: the fake plugin appends windows."""

    def __init__(self, out: Path, per_page: int) -> None:
        self.out, self.per_page, self.seq, self.commands = out, per_page, 0, []

    def run(self, command: str, timeout: float, *, cwd: str | None = None,
            kill_after: float = 10.0) -> Any:
        self.commands.append(command)
        if "hotpath" not in command:
            return SimpleNamespace(exit_code=0, stdout="absent\n" if command.startswith("cat ")
                                   else "", stderr="", timed_out=False, error=None)
        tap = "TAP version 13\n1..1\n"
        with open(self.out, "a") as f:
            for k in range(2 if "-i 2" in command else 0):
                self.seq += 1
                n = 16384 * (self.per_page + k)
                f.write(f"window id=1 seq={self.seq} vcpu=0 insns={n} kernel={n} all={n} "
                        f"all_kernel={n}\n")
                tap += "# insnwin case=read_ext4 id=1 units=16384 unit=pages faults=0\n"
        tap += ("# bench read_ext4 read_MiBps median=1 min=1 max=1 spread_pct=0 n=1 unit=MiB/s "
                "samples=1.0\nok 1 read_ext4\n")
        return SimpleNamespace(exit_code=0, stdout=tap, stderr="", timed_out=False, error=None)


def test_run_hotpath_with_a_session_attaches_the_windows(tmp_path: Path) -> None:
    s = insncount.Session(tmp_path / "insncount.out", windows=2)
    s.start()
    g = PluginGuest(s.out, 4400)
    runs = hotpath.run_hotpath(g, Path("/p/hotpath"), tmp_path / "ktap", "base", reps=1,
                             rounds=2, insn=s)
    assert [r.insn["plugin_windows"] for r in runs if r.insn] == [2, 2]  # only the new ones each time
    assert runs[1].metrics["read_ext4"]["insns_per_page"]["samples"] == [4400.0, 4401.0]
    merged = hotpath.merge_runs(runs)
    assert merged["read_ext4"]["insns_per_page"]["samples"] == [4400.0, 4401.0] * 2
    assert merged["read_ext4"]["read_MiBps"]["n"] == 2 and s.problems == []


def test_deb_src_entries_from_the_systems_sources() -> None:
    files = {
        "/etc/apt/sources.list.d/debian.sources":
            "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
            "Suites: bookworm bookworm-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/k.gpg\n\n"
            "Types: deb\nURIs: http://mirror.example/debian-security\n"
            "Suites: bookworm-security\nComponents: main\n",
        "/etc/apt/sources.list.d/third.list":
            "deb [signed-by=/k2.gpg] https://vendor.example/apt cloud-sdk-bookworm main\n"
            "deb http://mirror.example/debian bookworm main  # duplicate\n"
            "deb-src http://mirror.example/debian bookworm main\n",
        "/etc/apt/sources.list.d/node.sources":
            "Types: deb\nURIs: https://node.example/node_20.x\nSuites: nodistro\n"
            "Components: main\n",
    }
    st = qemuheader.deb_src_entries(files, "bookworm")
    assert len(st) == 3 and all(s.startswith("Types: deb-src\n") for s in st)
    assert "Suites: bookworm-security" in st[2] and "Signed-By: /usr/share/keyrings/k.gpg" in st[0]
    assert not any("vendor.example" in s or "node.example" in s for s in st)
    assert qemuheader._os_codename('ID=debian\nVERSION_CODENAME=bookworm\n') == "bookworm"


def test_plugin_qemu_arg_and_vng_argv(tmp_path: Path) -> None:
    p = insncount.Plugin(tmp_path / "insncount-1.so", "built")
    arg = p.qemu_arg(tmp_path / "w" / "insncount.out")
    assert arg == f"-plugin {tmp_path}/insncount-1.so,out={tmp_path}/w/insncount.out"
    with pytest.raises(ValueError):
        p.qemu_arg(tmp_path / "a b")
    spec = vm.VmSpec(bzimage=tmp_path / "bz", accel="tcg", qemu_opts=(arg,))
    argv = vm.vng_argv(spec, 2222, ["true"])
    i = argv.index("--qemu-opts=-accel tcg,thread=single")
    assert argv[i + 1] == f"--qemu-opts={vm.net_qemu_opts(2222)}"
    assert argv[i + 2] == f"--qemu-opts={arg}" and argv[i + 3] == "--"
    assert insncount.Plugin(None, "x").describe()["available"] is False


def test_prepare_plugin_says_why_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugin, "qemu_version_line", lambda qemu=None: "")
    assert "not found" in insncount.prepare_plugin(tmp_path).reason
    monkeypatch.setattr(plugin, "qemu_version_line", lambda qemu=None: "QEMU emulator 7.2")
    real_which = shutil.which
    monkeypatch.setattr(plugin.shutil, "which",
                        lambda n: None if n == "gcc" else real_which(n))
    assert insncount.prepare_plugin(tmp_path).reason == "no gcc to build the QEMU plugin"
    monkeypatch.setattr(plugin.shutil, "which", real_which)
    monkeypatch.setenv(qemuheader.ENV_HEADER, str(tmp_path / "nope.h"))
    p = insncount.prepare_plugin(tmp_path)
    assert not p.ok and "nope.h: no such file" in p.reason


def test_prepare_plugin_without_a_header_falls_back(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugin, "qemu_version_line", lambda qemu=None: "QEMU emulator 7.2")
    monkeypatch.setattr(qemuheader, "SYSTEM_HEADERS", ())
    monkeypatch.setattr(plugin, "debian_source_version", lambda package="": None)
    monkeypatch.delenv(qemuheader.ENV_HEADER, raising=False)
    if not shutil.which("gcc"):
        pytest.skip("no gcc")
    p = insncount.prepare_plugin(tmp_path)
    assert not p.ok and "no qemu-plugin.h" in p.reason and qemuheader.ENV_HEADER in p.reason


def test_plugin_key_changes_with_any_input() -> None:
    k = plugin.plugin_key("QEMU 7.2", b"src", b"hdr")
    assert k != plugin.plugin_key("QEMU 8.0", b"src", b"hdr")
    assert k != plugin.plugin_key("QEMU 7.2", b"src2", b"hdr")
    assert k != plugin.plugin_key("QEMU 7.2", b"src", b"hdr2") and len(k) == 16


def test_bench_report_has_the_instruction_table_and_goals() -> None:
    patched = {"0": hotpath.merge_runs([_run_with(0, [4446.0], [28.0])]),
               "1": hotpath.merge_runs([_run_with(1, [4471.0], [58.0])])}
    base = {"absent": hotpath.merge_runs([_run_with(None, [4410.0], [27.0])])}
    hp = {"ratios": hotpath.hot_ratios(patched, base), "insn_ratios": insncount.ratios(patched, base),
          "patched": {"boot": {"insn_plugin": {"available": True, "reason": "cached (x.so)",
                                               "qemu": "QEMU emulator version 7.2.22"}},
                      "runs": [{"insn": {"problems": ["window id 2: the program ran 1, "
                                                      "the plugin saw 0"]}}]}}
    data = {"steps": {"hotpath": hp}, "host": {}}
    goals = {g["goal"]: g for g in report.goals(data)}
    assert goals["hot path read_ext4 patched[sysctl1] / base (guest instructions)"]["met"] is False
    assert goals["hot path read_ext4 patched[sysctl1] / base"]["value"] == 1.0  # by time
    data["goals"] = report.goals(data)
    md = report.render_markdown(data)
    assert "### Guest instructions (QEMU TCG plugin" in md
    assert "| read_ext4 | insns_per_page | 4410.0 (+-0.000 %, n=1) | 4446.0" in md
    assert "| 1.0082 | 1.0138 | 1.0056 | +25.0 |" in md
    assert "Windows left out: window id 2" in md


def test_default_kernel_bench_passes_the_plugin_only_under_tcg(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    from harness.model import Options

    so = tmp_path / "insncount-k.so"
    built: list[int] = []

    def prepare(cache: Path, fetch: bool = True) -> insncount.Plugin:
        built.append(1)
        return insncount.Plugin(so, "cached (insncount-k.so)", "QEMU 7.2")

    seen: dict[str, Any] = {}

    @contextlib.contextmanager
    def fake_boot(bz: Path, workdir: Path, spec: Any, cache: Path, *,
                  qemu_opts: Any = None, **kw: Any) -> Any:
        accel = seen["accel"]
        seen["opts"] = qemu_opts(accel) if qemu_opts else ()
        workdir.mkdir(parents=True, exist_ok=True)
        guest = PluginGuest(workdir / "insncount.out", 950)
        vmx = SimpleNamespace(console_text=lambda: "")
        choice = AccelChoice(accel, "test")
        yield bootmod.Booted(vmx, guest, choice, 9.0, 12.0, 0.1, 1.0)  # type: ignore[arg-type]

    monkeypatch.setattr(insncount, "prepare_plugin", prepare)
    kb = hotpath.default_kernel_bench(Options(cache=tmp_path / "cache"), reps=1, rounds=1,
                                      insn_windows=2, boot=fake_boot)
    seen["accel"] = "tcg"
    boot, runs = kb("patched", tmp_path / "bz", Path("/p/hotpath"), tmp_path / "w1")
    assert seen["opts"] == (f"-plugin {so},out={tmp_path}/w1/insncount.out",)
    assert boot["insn_plugin"]["available"] and not boot["insn_plugin"].get("disabled")
    assert runs[0].metrics["read_ext4"]["insns_per_page"]["samples"] == [950.0, 951.0]
    seen["accel"] = "kvm"
    boot, runs = kb("base", tmp_path / "bz", Path("/p/hotpath"), tmp_path / "w2")
    assert seen["opts"] == () and built == [1]  # built once per bench
    assert boot["insn_plugin"]["disabled"] and "kvm" in boot["insn_plugin"]["reason"]
    assert runs[0].insn is None and "insns_per_page" not in runs[0].metrics["read_ext4"]
    # a timing-only boot: no plugin, and every round runs the hot path only (-H)
    seen["accel"] = "tcg"
    seen.pop("opts")
    boot, runs = kb("patched", tmp_path / "bz", Path("/p/hotpath"), tmp_path / "w3",
                    timing_only=True)
    assert seen["opts"] == () and "insn_plugin" not in boot and boot["boot_to_ssh_s"] == 9.0
    assert runs and all(r.insn is None for r in runs)
