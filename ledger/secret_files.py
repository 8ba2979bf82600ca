"""Writing secrets (private keys, API tokens) to files, safely.

``write_secret_file`` is the one way the ledger puts a secret on disk. The file
is owner-only (0600) from its first byte, appears whole or not at all, and is
never written through a symbolic link:

* the bytes go to a fresh temporary file in the target's directory, created with
  ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600 (then set to exactly 0600, so a
  umask can neither widen nor empty it), written and fsynced;
* the temporary file is then renamed onto the target. Without ``overwrite`` it is
  hard-linked instead, which fails if anything at all holds the name, so an existing
  file is never clobbered even by a racing writer; with ``overwrite`` it is
  ``os.replace``d, which swaps the directory entry and never writes into what was
  there (an existing 0644 file is replaced, not narrowed after the fact);
* a target that is a symbolic link (dangling or not) or not a regular file is
  refused, even with ``overwrite``: the link and whatever it points to stay as
  they were;
* on any failure the temporary file is removed; a missing parent directory is
  created with mode 0700.

Refusals are ``LedgerError``s naming the path as ``field``, so the CLI prints them
as one line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from ledger.errors import InvalidError, MalformedError

SECRET_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def check_secret_target(path: Path, *, overwrite: bool) -> None:
    """Raise unless ``write_secret_file(path, ..., overwrite=overwrite)`` may write there.

    Callers that must do something irreversible before writing (issuing a token)
    call this first; ``write_secret_file`` checks again, atomically where it can.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise MalformedError(f"cannot inspect: {exc.strerror}", field=str(path)) from exc
    if stat.S_ISLNK(info.st_mode):
        raise InvalidError(
            "is a symbolic link; a secret is never written through one", field=str(path)
        )
    if not stat.S_ISREG(info.st_mode):
        raise InvalidError("exists and is not a regular file", field=str(path))
    if not overwrite:
        raise MalformedError("file exists; refusing to overwrite it", field=str(path))


def write_secret_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600, never through a symlink.

    Refuses (``InvalidError``) a symlink or non-regular file at ``path``, and
    (``MalformedError``) an existing file unless ``overwrite``; an ``OSError`` while
    writing becomes a ``MalformedError`` too. On refusal or failure nothing at
    ``path`` changes and no temporary file is left behind.
    """
    path = Path(path)
    check_secret_target(path, overwrite=overwrite)
    directory = path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise MalformedError(
            f"cannot create its directory: {exc.strerror}", field=str(path)
        ) from exc
    temporary = _write_temporary(path, data)
    try:
        if overwrite:
            _replace(temporary, path)
        else:
            _link_new(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    _sync_directory(directory)


def _write_temporary(path: Path, data: bytes) -> Path:
    """A new 0600 file beside ``path`` holding ``data``, flushed to disk."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY | _CLOEXEC
    for _ in range(100):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(temporary, flags, SECRET_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise MalformedError(f"cannot write: {reason}", field=str(path)) from exc
        break
    else:  # pragma: no cover - 100 collisions of 64 random bits
        raise MalformedError("cannot create a temporary file beside it", field=str(path))
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, SECRET_MODE)  # exactly 0600 whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise MalformedError(f"cannot write: {reason}", field=str(path)) from exc
        raise
    return temporary


def _replace(temporary: Path, path: Path) -> None:
    # Checked again as late as possible; should a symlink slip in after this,
    # os.replace swaps the link itself and still never writes into its target.
    check_secret_target(path, overwrite=True)
    try:
        os.replace(temporary, path)
    except OSError as exc:
        raise MalformedError(f"cannot write: {exc.strerror}", field=str(path)) from exc


def _link_new(temporary: Path, path: Path) -> None:
    """Give ``temporary`` the name ``path`` only if nothing holds that name."""
    try:
        os.link(temporary, path)
        return
    except FileExistsError:
        check_secret_target(path, overwrite=False)  # says what is in the way
        raise MalformedError("file exists; refusing to overwrite it", field=str(path)) from None
    except (NotImplementedError, OSError) as exc:
        unsupported = isinstance(exc, NotImplementedError) or exc.errno in (
            errno.EPERM,
            errno.ENOTSUP,
            errno.EOPNOTSUPP,
            errno.EXDEV,
            errno.EMLINK,
            errno.ENOSYS,
        )
        if not unsupported:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise MalformedError(f"cannot write: {reason}", field=str(path)) from exc
    # No hard links on this file system: check, then rename (a narrow race, never a
    # write through a link: os.replace only swaps directory entries).
    check_secret_target(path, overwrite=False)
    _replace(temporary, path)


def _sync_directory(directory: Path) -> None:
    """Make the new directory entry durable (best effort: not every OS allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
