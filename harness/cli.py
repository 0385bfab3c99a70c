"""Command line: parse, run the pipeline, map the outcome to an exit code.

The only module that prints verdicts and calls ``sys.exit``.
Exit codes: 0 all passed, 1 a test failed, 2 no verdict (bad input,
apply/config/build/boot/SSH failure, timeout, interruption).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from importlib import import_module
from types import FrameType
from typing import TYPE_CHECKING

from harness.errors import EXIT_NO_VERDICT, HarnessError, Interrupted, UserError
from harness.options import add_run_options
from harness.stages.profiles import DEFAULT_PROFILE

if TYPE_CHECKING:
    from harness.model import Options
    from harness.modes.run import Pipeline

log = logging.getLogger("harness")

COMMANDS = {
    "source": "prepare the kernel source (Debian tarball in the cache, or --tree/--base)",
    "apply": "source + apply patches/series on a branch in a cache worktree",
    "config": "... + produce and verify the kernel .config (no compiling)",
    "build": "... + build the kernel and the selftests",
    "boot": "... + boot the guest and print how to SSH into it; Ctrl-C stops it",
    "test": "boot an already-built kernel and run the suites",
    "run": "everything: source, apply, config, build, boot, suites, report (the default job)",
}
#: CI modes (issue 5): name -> (module, help).  Each module has ``add_arguments(parser)``
#: (the ``run`` options are added here) and ``main(opts, args) -> (exit code, verdict line)``.
CI_COMMANDS = {
    "compare": ("harness.modes.compare", "base vs patched: only new failures, kernel-log signatures "
                "and build warnings count against the series"),
    "patchcheck": ("harness.modes.patchcheck", "per patch: apply, incremental build, checkpatch "
                   "--strict, new warnings in touched files [--boot: suites on the last]"),
    "bisect": ("harness.modes.bisect", "git bisect run over --tree between --good and --bad, the "
               "harness as the predicate (in a private worktree)"),
    "mutants": ("harness.modes.mutants", "apply each planted bug (mutants/*.patch) on top of the "
                "series, build, boot, run the suites: every mutant must be killed"),
    "bench": ("harness.modes.bench", "measure the loop (warm rerun, one-line edit -> verdict, boot, "
              "suites; --cold: cold builds) and the in-guest hot path; bench.json + bench.md"),
    "contrast": ("harness.modes.contrast", "the scenarios on 6.12, 6.12 + series (sysctl 0 and 1) "
                 "and upstream 7.2: one report (report.html, plots, contrast.json); "
                 "--from-runs DIR...: from existing runs"),
}

#: CI modes that take --source (the others test the series, which is for 6.12 only).
SOURCE_AWARE_MODES = ("contrast",)

MERGE_HELP = ("combine shard run directories (junit.xml + metadata.json) into one report; "
              "exit code = the worst shard's")


class _Formatter(logging.Formatter):
    PREFIX = {logging.DEBUG: "D", logging.INFO: "I", logging.WARNING: "W",
              logging.ERROR: "E", logging.CRITICAL: "E"}

    def format(self, record: logging.LogRecord) -> str:
        return f"{self.PREFIX.get(record.levelno, '?')}: {record.getMessage()}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recharge-harness",
        description="Build, boot and test Linux 6.12 with the memcg recharging series "
                    "(patches/series) under virtme-ng; JUnit out.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug output on the terminal")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        add_run_options(sp, name)
    sp = sub.add_parser("merge", help=MERGE_HELP, description=MERGE_HELP)
    import_module("harness.modes.merge").add_arguments(sp)
    for name, (module, help_text) in CI_COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        add_run_options(sp, "run")
        import_module(module).add_arguments(sp)
    return p


def _options(args: argparse.Namespace, argv: list[str]) -> "Options":
    from harness import paths
    from harness.model import Options
    from harness.stages import vm

    project = (args.project or paths.project_root()).expanduser().resolve()
    if not project.is_dir():
        raise UserError(f"--project {project}: no such directory")
    if args.base is not None and args.tree is None:
        raise UserError("--base needs --tree (the Debian source has one fixed base)")
    no_series, source = _source_and_series(args)
    if args.tree is not None:
        from harness.stages.source import validate_tree

        validate_tree(args.tree, args.base)  # bad input fails before a run directory exists
    memory = vm.parse_memory(getattr(args, "memory", "3G"))
    from harness.stages.suites import select_suites

    cases = tuple(getattr(args, "case", []) or ())
    chosen = select_suites(list(getattr(args, "suite", []) or []) or None,
                           cases=cases)  # bad names fail fast
    suites = tuple(getattr(args, "suite", []) or ())
    shard_text = getattr(args, "shard", None)
    if shard_text:
        from harness.report.merge import parse_shard, shard

        try:
            index, total = parse_shard(shard_text)
        except ValueError as e:
            raise UserError(f"--shard: {e}") from e
        mine = shard([s.name for s in chosen], index, total)
        if not mine:
            raise UserError(f"--shard {index}/{total}: no suite falls in this shard "
                            f"({len(chosen)} selected; use at most {len(chosen)} shards)")
        suites, shard_text = tuple(mine), f"{index}/{total}"
    kernel_dir = getattr(args, "kernel_dir", None)
    if kernel_dir is not None:
        from harness.stages.kerneldir import kernel_dir_files

        if args.tree is not None or args.series is not None:
            raise UserError("--kernel-dir tests a kernel already built: --tree, --base and "
                            "--series do not apply")
        kernel_dir = kernel_dir.expanduser().resolve()
        kernel_dir_files(kernel_dir)  # a directory without a kernel fails fast
    cache = paths.cache_root().resolve()
    return Options(
        command=args.command,
        tree=args.tree,
        base=args.base,
        series=args.series.expanduser().resolve() if args.series and not no_series else None,
        no_series=no_series,
        source=source,
        out=args.out.expanduser().absolute(),
        memory=memory,
        cpus=getattr(args, "cpus", 2),
        accel=getattr(args, "accel", "auto"),
        jobs=getattr(args, "jobs", None),
        profile=getattr(args, "profile", DEFAULT_PROFILE),
        suites=suites,
        cases=cases,
        shard=shard_text or None,
        parallel=getattr(args, "parallel", None),
        kernel_dir=kernel_dir,
        stress_s=getattr(args, "stress_seconds", None),
        soak_s=getattr(args, "soak_seconds", None),
        keep_vm_on_failure=getattr(args, "keep_vm_on_failure", False),
        boot_timeout_s=getattr(args, "boot_timeout", 300.0),
        tcg_multithread=getattr(args, "tcg_multithread", False),
        project=project,
        cache=cache,
        argv=tuple(argv),
    )


def _source_and_series(args: argparse.Namespace) -> tuple[bool, str]:
    """(no series, --source) checked together: 7.2 is never patched (the series is for 6.12)."""
    from harness.stages.debian import DEFAULT_SOURCE, parse_source

    source = getattr(args, "source", None) or DEFAULT_SOURCE
    no_series = args.series is not None and str(args.series) == "none"
    if args.series is not None and not no_series and not args.series.expanduser().is_file():
        raise UserError(f"--series {args.series}: no such file")
    if args.tree is not None:
        if source != DEFAULT_SOURCE:
            raise UserError(f"--source {source} and --tree: give one of them (--source picks a "
                            "Debian kernel source, --tree your own git tree)")
        return no_series, source
    try:
        rel = parse_source(source)
    except ValueError as e:
        raise UserError(f"--source: {e}") from None
    if rel.series or no_series:
        return no_series, source
    if args.series is not None:
        from harness.stages.apply import read_series

        if not read_series(args.series.expanduser(), required=True).empty:
            raise UserError(
                f"--source {source} --series {args.series}: the series is written for Linux "
                f"6.12 and is not applied to {rel.name} ({rel.about}); use --series none "
                "(or leave --series out) to test it unpatched")
        return True, source
    log.info("--source %s: no series (the series is for 6.12; %s is tested as released)",
             source, rel.name)
    return True, source


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _boot_ready(pipeline: "Pipeline") -> None:
    """``boot``: print how to reach the guest, then wait until Ctrl-C or the VM exits."""
    vmo = pipeline.ctx.vm
    accel = pipeline.ctx.accel
    assert vmo is not None and accel is not None
    home = vmo.home
    kh = home / "known_hosts"
    lines = []
    for f in vmo.host_key_files():
        kind, b64 = f.read_text().split()[:2]
        lines.append(f"[127.0.0.1]:{vmo.port} {kind} {b64}")
    kh.write_text("\n".join(lines) + "\n")
    print(f"\nGuest is up ({accel.accel.upper()}). In another terminal:\n"
          f"  ssh -p {vmo.port} -i {vmo.key_path} -o UserKnownHostsFile={kh} "
          f"-o IdentitiesOnly=yes root@127.0.0.1\n"
          f"Console log: {vmo.console_log}\nPress Ctrl-C here to stop the guest.\n", flush=True)
    try:
        while vmo.alive():
            time.sleep(1.0)
        log.info("the guest exited")
    except KeyboardInterrupt:  # the normal way to end `boot`
        log.info("Ctrl-C: stopping the guest")


def _merge(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.modes.merge import load_shards, merge_runs
    from harness.report.mode import make_run_dir

    shards = load_shards(list(args.inputs))  # bad paths fail before a run directory exists
    run_dir = make_run_dir(args.out.expanduser().absolute())
    code, line = merge_runs(shards, run_dir, argv)
    (log.info if code == 0 else log.error)("%s", line)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        argv = ["run"]  # no arguments: the whole job with defaults
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: usage error -> 2 with its one-line message
        return int(e.code or 0) if e.code in (0, None) else EXIT_NO_VERDICT
    if args.command is None:
        verbose = args.verbose
        args = parser.parse_args(["run"])
        args.verbose = verbose
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    handler.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    old_term = signal.signal(signal.SIGTERM, _raise_terminated)
    # A SIGINT someone sends must stop us even if our parent started us with SIGINT
    # ignored (background jobs of non-interactive shells): restore Ctrl-C semantics.
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    from harness import proc

    code = EXIT_NO_VERDICT
    try:
        if args.command == "merge":
            return _merge(args, argv)
        opts = _options(args, argv)
        if args.command in CI_COMMANDS and opts.source != "debian:6.12" \
                and args.command not in SOURCE_AWARE_MODES:
            raise UserError(f"--source {opts.source}: `{args.command}` tests the series on its "
                            "6.12 base; --source is for run/test/build/... and contrast")
        if args.command in CI_COMMANDS:
            code, line = import_module(CI_COMMANDS[args.command][0]).main(opts, args)
            (log.info if code == 0 else log.error)("%s", line)
            return code
        from harness.modes.run import Pipeline

        pipeline = Pipeline(opts, on_ready=_boot_ready if args.command == "boot" else None)
        code = pipeline.run()
        if code == 0:
            log.info("PASS (exit 0) - results in %s", pipeline.run_dir)
        elif code == 1:
            log.error("FAIL: a test failed (exit 1) - results in %s", pipeline.run_dir)
        else:
            failed = [s for s in pipeline.stages if s.status.name == "ERROR"]
            cause = f"{failed[0].name}: {failed[0].detail}" if failed else "incomplete run"
            log.error("NO VERDICT (exit 2): %s - see %s", cause, pipeline.run_dir)
    except HarnessError as e:
        log.error("%s", e.describe())
        if e.hint:
            log.info("hint: %s", e.hint)
        code = e.exit_code
    except OSError as e:  # e.g. an --out that cannot hold run directories: no verdict
        log.error("%s%s", e.strerror or e, f": {e.filename}" if e.filename else "")
        code = EXIT_NO_VERDICT
    except KeyboardInterrupt:
        log.error("interrupted by SIGINT")
        code = EXIT_NO_VERDICT
    finally:
        proc.kill_all()
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
        root.removeHandler(handler)
    return code


def entry() -> None:  # console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
