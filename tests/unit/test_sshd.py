"""The guest sshd's per-run files (harness.stages.sshd)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import paramiko
import pytest

from harness.errors import UserError
from harness.stages import sshd


def test_write_files_makes_private_fresh_keys_and_a_config(tmp_path: Path) -> None:
    files = sshd.write_files(tmp_path / "ssh", "/run/x/sshd.pid")
    assert (files.directory.stat().st_mode & 0o777) == 0o700
    for private in (files.host_key, files.client_key):
        assert (private.stat().st_mode & 0o777) == 0o600
    # paramiko (the harness's client) loads the client key and pins the host key
    client = paramiko.Ed25519Key.from_private_key_file(str(files.client_key))
    host = paramiko.Ed25519Key.from_private_key_file(str(files.host_key))
    kind, b64 = files.host_key_pub.read_text().split()[:2]
    assert kind == "ssh-ed25519" and b64 == host.get_base64()
    # the client key is the only one the guest accepts
    assert [l.split()[1] for l in files.authorized_keys.read_text().splitlines()] == [
        client.get_base64()]
    again = sshd.write_files(tmp_path / "ssh", "/run/x/sshd.pid")  # a second boot in the same directory
    assert paramiko.Ed25519Key.from_private_key_file(str(again.client_key)) != client


def test_config_allows_the_run_key_only_and_no_pam(tmp_path: Path) -> None:
    files = sshd.SshdFiles(tmp_path / "ssh")
    lines = dict(l.split(None, 1) for l in sshd.config_text(files, "/run/x/sshd.pid").splitlines()
                 if l and not l.startswith("#"))
    assert lines["HostKey"] == str(files.host_key)
    assert lines["AuthorizedKeysFile"] == str(files.authorized_keys)
    assert lines["PasswordAuthentication"] == lines["KbdInteractiveAuthentication"] == "no"
    assert lines["UsePAM"] == "no" and lines["PermitRootLogin"] == "prohibit-password"
    assert lines["Subsystem"] == "sftp internal-sftp"  # no program to start for SFTP
    assert lines["AllowUsers"] == "root" and lines["PidFile"] == "/run/x/sshd.pid"


def test_paths_in_the_config_are_absolute(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    files = sshd.write_files(Path("run") / "ssh", "/run/x/sshd.pid")
    assert files.directory == tmp_path / "run" / "ssh"
    assert f"HostKey {tmp_path}/run/ssh/ssh_host_ed25519_key" in files.config.read_text()


@pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="no /usr/sbin/sshd to check with")
def test_config_is_one_the_hosts_sshd_accepts(tmp_path: Path) -> None:
    files = sshd.write_files(tmp_path / "ssh", "/run/x/sshd.pid")
    res = subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(files.config)], capture_output=True,
                         text=True, timeout=30)
    # -t checks the config and the host key; privilege separation is the guest's
    if "Missing privilege separation directory" in res.stderr:
        pytest.skip("sshd -t wants its privilege separation directory, missing here")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("bad", ["a b", "a#b", 'a"b', "a=b", "a%hb"])
def test_run_directories_sshd_cannot_read_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(UserError, match="must not contain"):
        sshd.write_files(tmp_path / bad / "ssh", "/run/x/sshd.pid")
    assert not (tmp_path / bad).exists()  # refused before anything is written
