"""Private keys and API tokens on disk: owner-only from the first byte, whole, never via a link.

Every secret file the ledger writes (``keygen``, the log and operator keys of ``init``,
the demo participants' keys and the demo buyer's token) goes through
``ledger.secret_files.write_secret_file``: a 0600 temporary file beside the target,
fsynced, then renamed onto it. So the mode is 0600 whatever the umask, ``--force``
replaces a file (a new inode) instead of writing into it, and a symbolic link at the
target is refused, even with ``--force``, leaving the link and its target untouched.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger import keys
from ledger.bootstrap import open_ledger
from ledger.demo import DEMO_BUYER
from ledger.errors import InvalidError, MalformedError
from ledger.secret_files import write_secret_file
from ledger.settings import Settings
from ledger.tokens import list_tokens
from tests.support import CliLedger

OLD = b"not a key, and not to be touched\n"


@pytest.fixture
def cli(tmp_path: Path) -> CliLedger:
    return CliLedger(tmp_path)


@pytest.fixture
def umask_0() -> Iterator[None]:
    """The widest umask: whatever ends 0600 was made so by the ledger, not the umask."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def leftovers(directory: Path) -> list[str]:
    """Temporary files a write left behind (there should be none)."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def refused_line(result: Any) -> str:
    assert result.exit_code != 0, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""
    return lines[0]


# -- keygen ------------------------------------------------------------------------------
@pytest.mark.usefixtures("umask_0")
def test_keygen_writes_0600_even_with_umask_0(cli: CliLedger) -> None:
    path = cli.tmp / "new-dir" / "smelter.pem"
    result = cli.run("keygen", path)
    assert result.exit_code == 0, result.output
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    keys.read_private_key(path)
    assert leftovers(path.parent) == []


@pytest.mark.usefixtures("umask_0")
def test_keygen_force_replaces_a_0644_file_with_a_new_0600_file(cli: CliLedger) -> None:
    path = cli.tmp / "smelter.pem"
    path.write_bytes(OLD)
    path.chmod(0o644)
    inode = path.stat().st_ino

    line = refused_line(cli.run("keygen", path))
    assert line == f"error: {path}: file exists; pass --force to overwrite"
    assert path.read_bytes() == OLD
    assert mode(path) == 0o644

    result = cli.run("keygen", path, "--force")
    assert result.exit_code == 0, result.output
    assert mode(path) == 0o600
    assert path.stat().st_ino != inode  # renamed onto the name, not written into the file
    key = keys.read_private_key(path)
    assert f"key id:     {keys.key_id(key)}" in result.stdout
    assert leftovers(cli.tmp) == []


@pytest.mark.parametrize("force", [False, True])
def test_keygen_refuses_a_dangling_symlink_and_creates_nothing(cli: CliLedger, force: bool) -> None:
    target = cli.tmp / "elsewhere" / "target.pem"
    link = cli.tmp / "smelter.pem"
    link.symlink_to(target)

    line = refused_line(cli.run("keygen", link, *(["--force"] if force else [])))
    assert line.startswith(f"error: {link}: ")
    assert "symbolic link" in line
    assert not target.exists()
    assert not target.parent.exists()
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert leftovers(cli.tmp) == []


@pytest.mark.parametrize("force", [False, True])
def test_keygen_refuses_a_symlink_to_a_file_and_leaves_both_alone(
    cli: CliLedger, force: bool
) -> None:
    target = cli.tmp / "target.pem"
    target.write_bytes(OLD)
    target.chmod(0o644)
    inode = target.stat().st_ino
    link = cli.tmp / "smelter.pem"
    link.symlink_to(target)

    line = refused_line(cli.run("keygen", link, *(["--force"] if force else [])))
    assert line.startswith(f"error: {link}: ")
    assert "symbolic link" in line
    assert target.read_bytes() == OLD
    assert mode(target) == 0o644
    assert target.stat().st_ino == inode
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert leftovers(cli.tmp) == []


def test_keygen_refuses_a_directory_even_with_force(cli: CliLedger) -> None:
    path = cli.tmp / "a-directory"
    path.mkdir()
    line = refused_line(cli.run("keygen", path, "--force"))
    assert line == f"error: {path}: exists and is not a regular file"
    assert path.is_dir()
    assert list(path.iterdir()) == []


# -- init and the demo -------------------------------------------------------------------
@pytest.mark.usefixtures("umask_0")
def test_init_and_demo_write_every_key_and_the_token_0600(cli: CliLedger) -> None:
    keys_dir = cli.tmp / "demo-keys"
    result = cli.ledger("demo", "--keys-dir", keys_dir)
    assert result.exit_code == 0, result.output

    for path in (cli.data_dir / "log-key.pem", cli.operator_key):
        assert mode(path) == 0o600, path
    token = keys_dir / f"{DEMO_BUYER}.token"
    assert token.read_text().startswith("alt_")
    secrets = sorted(keys_dir.iterdir())
    assert token in secrets
    assert len(secrets) > 2
    for path in secrets:
        assert path.is_file() and not path.is_symlink(), path
        assert mode(path) == 0o600, path
    assert mode(keys_dir) == 0o700
    assert leftovers(keys_dir) == []
    assert leftovers(cli.data_dir) == []


def test_the_demo_refuses_a_token_symlink_before_issuing_a_token(cli: CliLedger) -> None:
    keys_dir = cli.tmp / "demo-keys"
    keys_dir.mkdir()
    target = cli.tmp / "stolen.token"
    link = keys_dir / f"{DEMO_BUYER}.token"
    link.symlink_to(target)

    line = refused_line(cli.ledger("demo", "--keys-dir", keys_dir))
    assert line.startswith(f"error: {link}: ")
    assert "symbolic link" in line
    assert not target.exists()
    assert link.is_symlink()
    ledger = open_ledger(Settings(data_dir=cli.data_dir, database_url=cli.database))
    try:
        assert list_tokens(ledger.engine, DEMO_BUYER) == []
    finally:
        ledger.engine.dispose()


def test_init_refuses_a_dangling_symlink_as_the_log_key(cli: CliLedger) -> None:
    cli.data_dir.mkdir()
    target = cli.tmp / "attacker" / "log-key.pem"
    link = cli.data_dir / "log-key.pem"
    link.symlink_to(target)

    line = refused_line(cli.ledger("init"))
    assert line.startswith(f"error: {link}: ")
    assert not target.exists()
    assert link.is_symlink()


# -- the helper itself -------------------------------------------------------------------
def test_without_overwrite_an_existing_file_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(OLD)
    with pytest.raises(MalformedError) as refused:
        write_secret_file(path, b"new", overwrite=False)
    assert refused.value.field == str(path)
    assert path.read_bytes() == OLD
    assert leftovers(tmp_path) == []


def test_with_overwrite_a_symlink_is_refused_as_invalid(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(OLD)
    link = tmp_path / "secret"
    link.symlink_to(target)
    with pytest.raises(InvalidError) as refused:
        write_secret_file(link, b"new", overwrite=True)
    assert refused.value.field == str(link)
    assert "symbolic link" in refused.value.detail
    assert target.read_bytes() == OLD
    assert link.is_symlink()


def test_a_failed_write_leaves_neither_the_target_nor_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(fd: int, data: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    path = tmp_path / "secret"
    with pytest.raises(MalformedError) as refused:
        write_secret_file(path, b"new", overwrite=False)
    monkeypatch.undo()
    assert refused.value.field == str(path)
    assert refused.value.detail == "cannot write: No space left on device"
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_a_file_that_appears_meanwhile_is_not_clobbered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without overwrite the final step is a hard link, which fails if the name is taken:
    a file created between the check and the rename survives."""
    import ledger.secret_files as secret_files

    path = tmp_path / "secret"
    real_write = secret_files._write_temporary

    def racing_write(target: Path, data: bytes) -> Path:
        temporary = real_write(target, data)
        path.write_bytes(OLD)  # somebody else got there first
        return temporary

    monkeypatch.setattr(secret_files, "_write_temporary", racing_write)
    with pytest.raises(MalformedError):
        write_secret_file(path, b"new", overwrite=False)
    assert path.read_bytes() == OLD
    assert leftovers(tmp_path) == []


@pytest.mark.usefixtures("umask_0")
def test_the_written_bytes_are_exact_and_0600(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "secret"
    data = bytes(range(256)) * 1000
    write_secret_file(path, data)
    assert path.read_bytes() == data
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    write_secret_file(path, b"again", overwrite=True)
    assert path.read_bytes() == b"again"
    assert mode(path) == 0o600
