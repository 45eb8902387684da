"""The local-directory sink: the same protocol as S3, over files under a root directory.

Keys map to paths under the root ('/' separators). A put writes a temporary file next to the target and
renames it over the target, which is atomic on POSIX, so readers see the old file or the new one, as
with S3. File I/O runs in worker threads: a chunk of several MB plus fsync can take long enough on a
slow disk to stall the rate-limited requests the loop is serving.

An object's ETag is the MD5 of its bytes, as S3's is for a single PUT. Every change of an object (put,
delete) holds an exclusive `flock` on one lock file under `_harvest/` for its check-and-rename, so a
conditional write is atomic against every other writer of the directory on this machine, in any
process; the bytes are written to the temp file before the lock is taken, which keeps it short.

Every OSError is translated here into a `SinkError` with one line naming the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import PreconditionFailed, SinkError
from .base import HARVEST_DIR, Capabilities, Versioned

TMP_SUFFIX = ".harvest-tmp"  # marks our half-written files: list_keys hides them, abort_uploads removes them
LOCK_SUFFIX = ".harvest-lock"  # the lock file: never a key, never removed
LOCK_NAME = f".writers{LOCK_SUFFIX}"


class LocalSink:
    def __init__(self, root: str) -> None:
        self._root = root
        # Absolute now: a later chdir must not move where the output goes.
        self._base = Path(os.path.abspath(root))
        self._lock_path = self._base / HARVEST_DIR / LOCK_NAME

    @property
    def url(self) -> str:
        return self._root

    async def connect(self) -> None:
        return None

    async def preflight(self) -> Capabilities:
        with self._boundary(f"local output {self._root} is not writable"):
            await asyncio.to_thread(self._probe)
        return Capabilities(conditional_writes=True, list_uploads=True)

    async def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/json",
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        if if_match is not None and if_none_match:
            raise ValueError("if_match and if_none_match exclude each other")
        path = self._path(key)
        with self._boundary(f"cannot write {path}"):
            # A cancelled await leaves the thread running to the end; the rename keeps that harmless.
            return await asyncio.to_thread(self._put, path, data, if_match, if_none_match)

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        with self._boundary(f"cannot read {path}"):
            return await asyncio.to_thread(_read_or_none, path)

    async def get_versioned(self, key: str) -> Versioned | None:
        path = self._path(key)
        with self._boundary(f"cannot read {path}"):
            data = await asyncio.to_thread(_read_or_none, path)
        return None if data is None else Versioned(data=data, etag=_etag(data))

    async def list_keys(self, prefix: str) -> list[str]:
        with self._boundary(f"cannot list {self._root}"):
            return await asyncio.to_thread(self._list, prefix, False)

    async def delete(self, key: str, *, if_match: str | None = None) -> None:
        path = self._path(key)
        with self._boundary(f"cannot delete {path}"):
            await asyncio.to_thread(self._delete, path, if_match)

    async def abort_uploads(self, prefix: str) -> int:
        """Remove temp files left by a crashed put. Call it before any put starts: it cannot tell a
        stale temp file from one that a put in flight is still writing."""
        with self._boundary(f"cannot clean up temporary files in {self._root}"):
            stale = await asyncio.to_thread(self._list, prefix, True)
            for rel in stale:
                await asyncio.to_thread(_unlink_if_present, self._base.joinpath(*rel.split("/")))
        return len(stale)

    async def list_uploads(self, prefix: str) -> list[str]:
        """Temp files under `prefix`: a put in flight, or one that a crash cut short."""
        with self._boundary(f"cannot list temporary files in {self._root}"):
            return await asyncio.to_thread(self._list, prefix, True)

    async def aclose(self) -> None:
        return None

    # -----------------------------------------------------------------------------------------
    # In worker threads

    def _put(self, path: Path, data: bytes, if_match: str | None, if_none_match: bool) -> str:
        tmp = _write_temp(path, data)
        try:
            with self._exclusive():
                if if_match is not None or if_none_match:
                    _require("write", path, if_match, if_none_match)
                os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return _etag(data)

    def _delete(self, path: Path, if_match: str | None) -> None:
        with self._exclusive():
            if if_match is not None:
                _require("delete", path, if_match, False)
            _unlink_if_present(path)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the directory's writer lock. flock belongs to an open file description, so it also
        excludes other threads of this process, each with its own open()."""
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield  # closing the descriptor releases the lock, even if the process dies
        finally:
            os.close(fd)

    # -----------------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self._base.joinpath(*self._split(key, what="key"))

    def _split(self, key: str, what: str) -> list[str]:
        """The path components of `key`, refusing anything that could land outside the root."""
        parts = key.split("/")
        bad = (
            not key
            or os.path.isabs(key)
            or "\\" in key  # a separator on Windows, so 'a\\..\\..' could escape there
            or "\0" in key
            or any(p in ("", ".", "..") for p in parts)
            or parts[-1].endswith((TMP_SUFFIX, LOCK_SUFFIX))
        )
        if bad:
            raise SinkError(f"invalid {what} {key!r} for {self._root}: must be a relative path inside it")
        return parts

    def _list(self, prefix: str, temp_files: bool) -> list[str]:
        """Keys starting with `prefix` (relative, sorted); with temp_files, our temp files under it."""
        head = prefix.rpartition("/")[0]
        # Walk only the deepest directory the prefix names: a prefix like '2024/01/' must not scan
        # every other month.
        start = self._base.joinpath(*self._split(head, what="prefix")) if head else self._base
        if not start.is_dir():
            return []
        found: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(start, onerror=_raise):
            rel_dir = Path(dirpath).relative_to(self._base).as_posix()
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            for name in filenames:
                is_temp = name.endswith(TMP_SUFFIX)
                if is_temp != temp_files or name.endswith(LOCK_SUFFIX):
                    continue
                # A temp file counts under the prefix of the key it was going to become.
                key = rel_dir + (_target_name(name) if is_temp else name)
                if key.startswith(prefix):
                    found.append(rel_dir + name)
        return sorted(found)

    def _probe(self) -> None:
        probe_dir = self._base / HARVEST_DIR
        probe_dir.mkdir(parents=True, exist_ok=True)
        probe = probe_dir / f".preflight-{secrets.token_hex(8)}"
        probe.write_bytes(b"")
        probe.unlink()

    @contextmanager
    def _boundary(self, what: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            reason = exc.strerror or exc.__class__.__name__
            raise SinkError(f"{what}: {reason}") from exc


def _write_temp(path: Path, data: bytes) -> Path:
    """`data` in a new temp file next to `path`, on disk (fsync'ed): ready to be renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{TMP_SUFFIX}"
    # O_EXCL with mode 0o666: the umask applies, so the file ends up with the usual permissions
    # (mkstemp would force 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            # Without it, a crash soon after the rename can leave an empty file under the final name.
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _require(action: str, path: Path, if_match: str | None, if_none_match: bool) -> None:
    why = _unmet(_etag_of_file(path), if_match, if_none_match)
    if why is not None:
        raise PreconditionFailed(f"cannot {action} {path}: {why}")


def _unmet(current: str | None, if_match: str | None, if_none_match: bool) -> str | None:
    """Why the condition does not hold for an object whose ETag is `current` (None: there is none),
    or None when it holds."""
    if if_none_match and current is not None:
        return "it exists already"
    if if_match is not None and current is None:
        return f"it no longer exists (expected ETag {if_match})"
    if if_match is not None and current != if_match:
        return f"its ETag is no longer {if_match}"
    return None


def _etag(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _etag_of_file(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None  # as in S3: a "directory" or a path through a file is just no such key


def _unlink_if_present(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
        path.unlink()


def _target_name(temp_name: str) -> str:
    """'.chunk.json.1a2b3c.harvest-tmp' -> 'chunk.json'."""
    return temp_name[1 : -len(TMP_SUFFIX)].rpartition(".")[0]


def _raise(exc: OSError) -> None:
    raise exc
