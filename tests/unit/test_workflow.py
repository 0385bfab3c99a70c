"""The CI workflow stays in sync with the command line: every ``recharge-harness``
command line in .github/workflows/kernel-test.yml parses with the real parser, and the
jobs hand each other what the commands expect (build -> test --kernel-dir -> merge).
(.ci/run also runs actionlint on the file.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from harness.cli import build_parser

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "kernel-test.yml"
#: Values for the expressions the command lines use (a shard of the 3-job matrix).
EXPRESSIONS = {"matrix.shard": "2", "strategy.job-total": "3"}
_SHELL_OPS = {";", "&&", "||", "|", ">", ">>", "<", "2>&1", "&"}


def run_blocks(text: str) -> list[str]:
    """The shell text of every ``run:`` (inline, ``|`` literal or ``>`` folded)."""
    lines = text.splitlines()
    blocks: list[str] = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:- )?run:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        value = m.group(2).strip()
        if value not in ("|", ">", "|-", ">-"):
            blocks.append(value)
            continue
        body: list[str] = []
        indent = None
        while i < len(lines):
            l = lines[i]
            if l.strip():
                cur = len(l) - len(l.lstrip())
                if indent is None:
                    indent = cur
                if cur < indent:
                    break
            body.append(l.strip())
            i += 1
        sep = " " if value.startswith(">") else "\n"
        blocks.append(sep.join(body).strip())
    return blocks


def harness_commands(text: str) -> list[list[str]]:
    """argv (after ``recharge-harness``) of every harness command line in the workflow."""
    cmds = []
    for block in run_blocks(text):
        block = block.replace("\\\n", " ")
        block = re.sub(r"\$\{\{\s*([^}]*?)\s*\}\}",
                       lambda m: EXPRESSIONS.get(m.group(1), "X"), block)
        for line in block.splitlines():
            if "recharge-harness" not in line:
                continue
            words = shlex.split(line.split("recharge-harness", 1)[1])
            argv = []
            for w in words:
                if w in _SHELL_OPS:
                    break
                argv.append(w)
            cmds.append(argv)
    return cmds


def test_every_harness_command_line_parses() -> None:
    cmds = harness_commands(WORKFLOW.read_text())
    assert [c[0] for c in cmds] == ["build", "test", "merge"]
    parser = build_parser()
    for argv in cmds:
        try:
            args = parser.parse_args(argv)
        except SystemExit:  # argparse printed why
            pytest.fail(f"workflow command does not parse: recharge-harness {shlex.join(argv)}")
        assert args.command == argv[0]
    test = parser.parse_args(cmds[1])
    assert test.shard == "2/3" and test.kernel_dir == Path("kernel-dir")


def test_jobs_hand_over_what_the_commands_expect() -> None:
    text = WORKFLOW.read_text()
    # the matrix size is the shard count (strategy.job-total), never written twice
    assert "--shard ${{ matrix.shard }}/${{ strategy.job-total }}" in text
    # the build's run directory holds what --kernel-dir reads
    assert "tar -C out/build/latest/ -cf kernel.tar kernel guest config metadata.json" in text
    assert "tar -C kernel-dir -xf kernel.tar" in text
    assert "needs: [build, test]" in text and "dorny/test-reporter" in text


def test_the_extractor_reads_every_form_of_run() -> None:
    text = ("    - run: echo a\n"
            "    - name: x\n      run: >\n        recharge-harness test\n"
            "        --suite recharge\n    - run: |\n        true\n"
            "        recharge-harness merge \\\n          --out m a/ && echo done\n")
    assert harness_commands(text) == [["test", "--suite", "recharge"],
                                      ["merge", "--out", "m", "a/"]]
