"""The decode cache: decoded uint8 images in one memory-mappable file per data set and size.

Decoding 100,000 JPEGs takes minutes; reading them back from a file of raw
uint8 pixels takes the time of a page-cache copy.  Every process that loads
the same data set (each worker of a grid, each run) maps the same file, so the
operating system keeps one copy of the pixels in memory for all of them.

A cache file is named after the data set family, its source folder and the
image size; its header holds a key over the source's file list, file sizes and
modification times and the decoder version, so a changed source is a miss and
is decoded again (the file is replaced, not added to).

File layout (all integers little-endian)::

    "AUGBDC01"  uint64 header_len  header JSON (key, array layout)  zero padding
    arrays, each at a 4096-byte aligned offset, C order
    meta JSON (class names, channel statistics, ...)
    uint64 meta_offset  uint64 meta_len  uint32 crc32  "END1"

The CRC-32 covers every byte before the trailer, so a truncated or corrupt file
is detected on every load (about 40 ms per 150 MB) and rebuilt, never trusted.
A file is written under a temporary name and renamed into place only when
complete: a failed or interrupted decode leaves nothing in the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import struct
import sys
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augbench.errors import DataError

#: Environment variable naming augbench's cache folder (decoded data sets, CIFAR downloads).
CACHE_ENV = "AUGBENCH_CACHE"
#: The cache folder when ``$AUGBENCH_CACHE`` is not set.
CACHE_DIR = os.path.join("~", ".cache", "augbench")

_MAGIC = b"AUGBDC01"
_END = b"END1"
_TRAILER = struct.Struct("<QQI4s")
_ALIGN = 4096
_CRC_CHUNK = 64 << 20


def cache_root() -> Path:
    """``$AUGBENCH_CACHE`` if set, else :data:`CACHE_DIR` (``~/.cache/augbench``)."""
    return Path(os.environ.get(CACHE_ENV) or CACHE_DIR).expanduser()


def source_key(source: Path, entries: Iterable[str], image_size: int | None, decoder: str) -> str:
    """SHA-256 over what decides the decoded pixels: source folder, file entries, size, decoder version.

    ``entries`` are one string per file, e.g. ``"train/cat/1.png 1234 1700000000000000000"``
    (relative path, size in bytes, modification time in ns).
    """
    h = hashlib.sha256()
    h.update(f"{source.resolve()}\n{image_size}\n{decoder}\n".encode())
    for entry in entries:
        h.update(entry.encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return h.hexdigest()


@dataclass
class Cached:
    """A loaded cache file: ``arrays`` are copy-on-write views of the mapped file."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    path: Path
    status: str  # "hit", "built", or "rebuilt (<why the old file was refused>)"


#: ``allocate({name: (shape, dtype)}) -> {name: writable array}``, backed by the file being written.
Allocate = Callable[[dict[str, tuple[tuple[int, ...], str]]], dict[str, np.ndarray]]
#: ``build(allocate) -> meta``: decodes into the allocated arrays, returns JSON-able metadata.
Build = Callable[[Allocate], dict[str, Any]]


def cache_path(family: str, source: Path, image_size: int | None) -> Path:
    where = hashlib.sha256(str(source.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    size = f"{image_size}px" if image_size else "native"
    return cache_root() / "decoded" / f"{family}-{where}-{size}.u8cache"


def load_or_build(path: Path, key: str, build: Build) -> Cached:
    """The arrays in ``path`` if it is complete, intact and made for ``key``; else ``build`` them there.

    ``build`` may raise (bad input): then nothing is written to the cache.
    """
    seen = _stamp(path)
    refused = _try_read(path, key)
    if isinstance(refused, Cached):
        return refused
    _make_folder(path.parent)
    # Workers of a grid start together: one decodes, the others wait for it and then map its file.
    with _folder_lock(path.parent):
        if _stamp(path) != seen:  # written by another process while this one waited
            again = _try_read(path, key)
            if isinstance(again, Cached):
                return again
        _write(path, key, build)
    return _read(path, key, status="built" if refused is None else f"rebuilt ({refused})")


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _try_read(path: Path, key: str) -> Cached | str | None:
    """The cached arrays; else why the file was refused (None: there is no file)."""
    if not path.exists():
        return None
    try:
        return _read(path, key, status="hit")
    except _Refused as why:
        if why.corrupt:
            print(f"augbench: cache file {path} is corrupt ({why}); decoding again", file=sys.stderr)
        return str(why)


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """An exclusive ``flock`` on the cache folder itself: no lock file is left behind, and the lock goes
    with the process if it dies."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{folder}: cannot create the cache folder ({exc}); set {CACHE_ENV} to a writable "
                        "folder") from exc


class _Refused(Exception):
    def __init__(self, message: str, corrupt: bool = True):
        super().__init__(message)
        self.corrupt = corrupt


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _layout(arrays: dict[str, tuple[tuple[int, ...], str]], start: int) -> tuple[dict[str, list], int]:
    layout, offset = {}, _aligned(start)
    for name, (shape, dtype) in arrays.items():
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        layout[name] = [offset, [int(s) for s in shape], np.dtype(dtype).str]
        offset = _aligned(offset + nbytes)
    return layout, offset


def _crc(buffer: np.ndarray, crc: int = 0) -> int:
    for start in range(0, len(buffer), _CRC_CHUNK):
        crc = zlib.crc32(memoryview(buffer[start:start + _CRC_CHUNK]), crc)
    return crc


def _write(path: Path, key: str, build: Build) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    state: dict[str, Any] = {}

    def allocate(arrays: dict[str, tuple[tuple[int, ...], str]]) -> dict[str, np.ndarray]:
        if "map" in state:
            raise RuntimeError("allocate may be called once per build")
        # The header holds the layout, whose first offset depends on the header's own length.
        start = 0
        while True:
            layout, data_end = _layout(arrays, start)
            header = json.dumps({"key": key, "arrays": layout, "data_end": data_end}).encode()
            if len(_MAGIC) + 8 + len(header) <= _aligned(start):
                break
            start = len(_MAGIC) + 8 + len(header)
        with open(tmp, "wb") as fh:
            fh.write(_MAGIC + struct.pack("<Q", len(header)) + header)
            fh.truncate(data_end)
        mapped = np.memmap(tmp, dtype=np.uint8, mode="r+", shape=(data_end,))
        state.update(map=mapped, data_end=data_end)
        return {name: _view(mapped, offset, shape, dtype) for name, (offset, shape, dtype) in layout.items()}

    try:
        meta = build(allocate)
        if "map" not in state:
            raise RuntimeError("build returned without allocating its arrays")
        mapped: np.memmap = state.pop("map")
        mapped.flush()
        meta_bytes = json.dumps(meta).encode()
        crc = _crc(mapped)
        crc = zlib.crc32(meta_bytes, crc)
        del mapped
        with open(tmp, "ab") as fh:
            fh.write(meta_bytes + _TRAILER.pack(state["data_end"], len(meta_bytes), crc, _END))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise DataError(f"{path}: cannot write the decode cache ({exc}); free some space or set {CACHE_ENV} "
                        "to another folder") from exc
    finally:
        state.pop("map", None)
        tmp.unlink(missing_ok=True)


def _view(mapped: np.ndarray, offset: int, shape: list[int], dtype: str) -> np.ndarray:
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return mapped[offset:offset + nbytes].view(np.dtype(dtype)).reshape(shape)


def _read(path: Path, key: str, status: str) -> Cached:
    size = path.stat().st_size
    if size < len(_MAGIC) + 8 + _TRAILER.size:
        raise _Refused(f"{size} bytes, too short to be a cache file")
    with open(path, "rb") as fh:
        head = fh.read(len(_MAGIC) + 8)
        if head[:len(_MAGIC)] != _MAGIC:
            raise _Refused("not an augbench cache file")
        (header_len,) = struct.unpack("<Q", head[len(_MAGIC):])
        if header_len > size:
            raise _Refused("header length exceeds the file")
        try:
            header = json.loads(fh.read(header_len))
            file_key, layout, data_end = header["key"], header["arrays"], int(header["data_end"])
        except (ValueError, KeyError, TypeError) as exc:
            raise _Refused(f"unreadable header: {exc}") from None
        if file_key != key:
            raise _Refused("made from another version of the source", corrupt=False)
        fh.seek(size - _TRAILER.size)
        meta_offset, meta_len, crc, end = _TRAILER.unpack(fh.read(_TRAILER.size))
    if end != _END or meta_offset != data_end or meta_offset + meta_len + _TRAILER.size != size:
        raise _Refused("truncated or incomplete")
    mapped = np.memmap(path, dtype=np.uint8, mode="c", shape=(size,))
    if zlib.crc32(memoryview(mapped[meta_offset:meta_offset + meta_len]), _crc(mapped[:meta_offset])) != crc:
        raise _Refused("checksum mismatch")
    try:
        meta = json.loads(bytes(mapped[meta_offset:meta_offset + meta_len]))
        arrays = {name: _view(mapped, int(offset), shape, dtype) for name, (offset, shape, dtype) in layout.items()}
    except (ValueError, TypeError) as exc:
        raise _Refused(f"unreadable layout: {exc}") from None
    return Cached(arrays=arrays, meta=meta, path=path, status=status)
