"""Atomic writes: a file or a whole directory is either the old one or the complete new one.

Every writer in kefu goes through here: write a temporary sibling, fsync it,
and rename it over the target (for directories, one atomic rename exchange with
Linux `renameat2`, elsewhere two renames), then fsync the parent. A crash or a
full disk mid-write leaves the previous version in place and no stray file.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

PathLike = Union[str, os.PathLike]


def write_bytes(path: PathLike, data: bytes) -> Path:
    with writing(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text(path: PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: PathLike, value: Any, indent: Optional[int] = 2) -> Path:
    return write_text(path, json.dumps(value, indent=indent, ensure_ascii=False) + "\n")


@contextmanager
def writing(path: PathLike, mode: str = "w", encoding: Optional[str] = "utf-8") -> Iterator[Any]:
    """An open temporary file that replaces `path` only if the block succeeds (for streamed writers: CSV, JSON lines)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding, newline=None if "b" in mode else "") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    fsync_dir(path.parent)


@contextmanager
def directory(target: PathLike, may_replace: Optional[Callable[[Path], bool]] = None) -> Iterator[Path]:
    """Yields an empty temporary directory that replaces `target` only if the block succeeds.

    `may_replace(target)` guards an existing target (e.g. "is it one of ours?");
    when it says no, nothing is written and FileExistsError is raised.
    """
    target = Path(target)
    if target.exists() and may_replace is not None and not may_replace(target):
        raise FileExistsError(f"{target} exists and is not what kefu would overwrite; choose another path or remove it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        fsync_tree(tmp)
        tmp = _swap_in(tmp, target)
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def move_directory(source: PathLike, target: PathLike) -> None:
    """Moves a finished directory over `target` (same filesystem), replacing any old one atomically."""
    source, target = Path(source), Path(target)
    fsync_tree(source)
    leftover = _swap_in(source, target)
    shutil.rmtree(leftover, ignore_errors=True)
    fsync_dir(target.parent)


def _swap_in(new: Path, target: Path) -> Path:
    """Puts `new` at `target`; returns the path left to delete (the old version, or nothing)."""
    if target.exists():
        if _exchange(new, target):
            return new  # now holds the old version
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(new, target)
        return old
    os.replace(new, target)
    return new  # gone: rmtree ignores it


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def fsync_tree(root: PathLike) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(Path(folder))


def fsync_dir(folder: PathLike) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: PathLike) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
