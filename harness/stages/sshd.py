"""The guest's sshd: the per-run keys and the config the guest command starts it with.

The harness runs an sshd of its own in the guest instead of virtme-ng's ``--ssh``
(whose init waits for DHCP and runs a bash script of a dozen programs before the
guest command starts: ~4 s of every boot under TCG).  ``guest-init.sh`` starts the
host's ``/usr/sbin/sshd`` with :func:`write_files`' config, read over the guest's 9p
root from the run's private directory: an Ed25519 host key and an Ed25519 client key
made for this run only (in-process, no ``ssh-keygen``; virtme-ng's ``ssh-keygen -A``
made an RSA key for every run: 1.2 s), the client key the only one authorised, no
PAM, no password or keyboard-interactive authentication, SFTP served by sshd itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.errors import UserError

#: Characters a path in sshd_config cannot hold unquoted (and vng's options reject).
_UNSAFE = set(" \t\n\"'\\#=,%")


@dataclass(frozen=True)
class SshdFiles:
    """What one guest's SSH needs, all in one private directory of the run."""

    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    @property
    def host_key_pub(self) -> Path:
        return self.directory / "ssh_host_ed25519_key.pub"

    @property
    def client_key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.directory / "authorized_keys"


def _key_pair() -> tuple[bytes, bytes]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH)
    return private, public


def _write(path: Path, data: bytes, mode: int) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def config_text(files: SshdFiles, pidfile: str) -> str:
    """The guest sshd's config (pure, unit tested); ``pidfile`` is a guest path (sshd
    writes it once it listens: guest-init.sh waits for it)."""
    if not files.directory.is_absolute():
        raise ValueError(f"{files.directory}: the guest's sshd needs absolute paths")
    for p in (files.host_key, files.authorized_keys):
        if _UNSAFE & set(str(p)):
            raise UserError(f"run directory {files.directory} must not contain spaces, "
                            "quotes, '#', '=', ',', '%' or backslashes (the guest's sshd "
                            "reads it)")
    return "\n".join([
        "# recharge-harness: the guest's sshd (harness/stages/sshd.py); per-run keys",
        "Port 22",
        "AddressFamily inet",
        f"HostKey {files.host_key}",
        f"AuthorizedKeysFile {files.authorized_keys}",
        "PermitRootLogin prohibit-password",
        "AllowUsers root",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "PrintMotd no",
        "PrintLastLog no",
        "UseDNS no",
        f"PidFile {pidfile}",
        "Subsystem sftp internal-sftp",
        "",
    ])


def write_files(directory: Path, pidfile: str) -> SshdFiles:
    """Make ``directory`` (0700) with fresh keys, ``authorized_keys`` and ``sshd_config``.
    The paths in the config are absolute (the guest runs in another directory)."""
    files = SshdFiles(directory.absolute())
    text = config_text(files, pidfile)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    host_private, host_public = _key_pair()
    client_private, client_public = _key_pair()
    _write(files.host_key, host_private, 0o600)
    _write(files.host_key_pub, host_public + b"\n", 0o644)
    _write(files.client_key, client_private, 0o600)
    _write(files.authorized_keys, client_public + b" recharge-harness\n", 0o644)
    _write(files.config, text.encode(), 0o644)
    return files
