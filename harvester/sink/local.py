"""The local-directory sink: the same protocol as S3, over files under a root directory.

Keys map to paths under the root ('/' separators). A put writes a temporary file next to the target and
renames it over the target, which is atomic on POSIX and Windows alike, so readers see the old file or
the new one, as with S3. File I/O runs in worker threads: a chunk of several MB plus fsync can take
long enough on a slow disk to stall the rate-limited requests the loop is serving.

Every OSError is translated here into a `SinkError` with one line naming the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import SinkError
from .base import HARVEST_DIR

TMP_SUFFIX = ".harvest-tmp"  # marks our half-written files: list_keys hides them, abort_uploads removes them


class LocalSink:
    def __init__(self, root: str) -> None:
        self._root = root
        # Absolute now: a later chdir must not move where the output goes.
        self._base = Path(os.path.abspath(root))

    @property
    def url(self) -> str:
        return self._root

    async def preflight(self) -> None:
        with self._boundary(f"local output {self._root} is not writable"):
            await asyncio.to_thread(self._probe)

    async def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        path = self._path(key)
        with self._boundary(f"cannot write {path}"):
            # A cancelled await leaves the thread running to the end; the rename keeps that harmless.
            await asyncio.to_thread(_write_atomic, path, data)

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        with self._boundary(f"cannot read {path}"):
            return await asyncio.to_thread(_read_or_none, path)

    async def list_keys(self, prefix: str) -> list[str]:
        with self._boundary(f"cannot list {self._root}"):
            return await asyncio.to_thread(self._list, prefix, False)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        with self._boundary(f"cannot delete {path}"):
            await asyncio.to_thread(_unlink_if_present, path)

    async def abort_uploads(self, prefix: str) -> int:
        """Remove temp files left by a crashed put. Call it before any put starts: it cannot tell a
        stale temp file from one that a put in flight is still writing."""
        with self._boundary(f"cannot clean up temporary files in {self._root}"):
            stale = await asyncio.to_thread(self._list, prefix, True)
            for rel in stale:
                await asyncio.to_thread(_unlink_if_present, self._base.joinpath(*rel.split("/")))
        return len(stale)

    async def aclose(self) -> None:
        return None

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
            or parts[-1].endswith(TMP_SUFFIX)
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
                if is_temp != temp_files:
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


def _write_atomic(path: Path, data: bytes) -> None:
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
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
