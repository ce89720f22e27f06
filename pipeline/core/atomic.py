"""Outputs appear only when complete (docs/architecture.md, rules): write to a temporary name, then rename.

``atomic_dir`` gives a temporary sibling folder, ``atomic_file`` a path inside one; on success it is
renamed over the final path, on any error it is removed, so a half-written result never looks complete and results
that were already complete are never touched by a failing job. A job killed outright (SIGKILL, a
dead machine) cannot remove its temporary: the next write of the same path removes the ones whose
process is gone, and every scanner of inputs skips temporary names (:func:`is_temporary`).

A folder that was complete can lose files later (deleted by hand, truncated by a full disk, a
half-copied results tree): :func:`file_listing` records every file's size when a folder is
written and :func:`listing_problem` names the first one missing or of another size, so a stage
never calls such a folder complete (pipeline/core/stage.py, pipeline/stages/pose_mediapipe.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from pathlib import Path

from pipeline.core.errors import OutputError

_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]{8}$")


def _temp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def is_temporary(path: str | Path) -> bool:
    """Whether ``path`` is an atomic write's temporary (``.<name>.tmp-<pid>-<hex>``), not a result."""
    return _TEMP.match(Path(path).name) is not None


def file_listing(folder: Path, leave_out: tuple[str, ...] = ()) -> dict[str, int]:
    """Every file below ``folder`` (but the names in ``leave_out``) with its size in bytes."""
    return {path.relative_to(folder).as_posix(): path.stat().st_size for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name not in leave_out}


def listing_problem(folder: Path, listing: dict[str, int] | None) -> str | None:
    """What is wrong with ``folder`` against the :func:`file_listing` it was written with (a file
    missing or of another size), or None when every file is there whole."""
    if listing is None:
        return "its stamp lists no files"
    for name, size in listing.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} when it was written"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries of ``path`` left by writers that are gone (killed mid-write)."""
    removed = []
    if not path.parent.is_dir():
        return removed
    for sibling in path.parent.iterdir():
        match = _TEMP.match(sibling.name)
        if match and match["name"] == path.name and not _alive(int(match["pid"])):
            if sibling.is_dir() and not sibling.is_symlink():
                shutil.rmtree(sibling, ignore_errors=True)
            else:
                sibling.unlink(missing_ok=True)
            removed.append(sibling)
    return removed


@contextlib.contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary directory that becomes ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = _temp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        _raise_if_out_of_space(path, err)
        raise
    if path.exists():
        old = _temp_sibling(path)
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(path)


@contextlib.contextmanager
def atomic_file(path: str | Path):
    """Yield a temporary path that replaces ``path`` when the block succeeds. It lies in a hidden
    temporary folder beside ``path`` (with ``path``'s own name, so writers that go by the name see
    it), where any scratch file the writer makes lands too (safetensors writes through a
    ``.tmpXXXXXX`` of its own): a killed writer leaves one folder, which the next write removes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    folder = _temp_sibling(path)
    folder.mkdir()
    tmp = folder / path.name
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # some writers create private (0600) files
        os.replace(tmp, path)
    except BaseException as err:
        shutil.rmtree(folder, ignore_errors=True)
        _raise_if_out_of_space(path, err)
        raise
    shutil.rmtree(folder, ignore_errors=True)


# how the writers the stages use report a full disk or a file-size limit: Python's OSError (errno),
# safetensors' Rust I/O error, torch's zip writer, OpenCV's imwrite (pipeline/core/images.py)
_NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_NO_SPACE_TEXT = ("No space left on device", "File too large", "Disk quota exceeded", "os error 28", "os error 27",
                  "PytorchStreamWriter failed writing", "unexpected pos", "could not write image", "could not write map")


def _out_of_space(err: BaseException) -> bool:
    while err is not None:
        if isinstance(err, OSError) and err.errno in _NO_SPACE_ERRNOS:
            return True
        if any(text in str(err) for text in _NO_SPACE_TEXT):
            return True
        err = err.__cause__ or err.__context__
    return False


def _raise_if_out_of_space(path: Path, err: BaseException) -> None:
    """An OutputError naming ``path`` when ``err`` is a write that found no room (see module doc)."""
    if isinstance(err, OutputError) or not _out_of_space(err):
        return
    free = shutil.disk_usage(path.parent).free / 2**20
    raise OutputError(path, f"could not be written: the disk is full or a file-size limit was reached ({err}); "
                            f"{free:.0f} MiB free on its disk now. Nothing of it was kept: free space and rerun") from err


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
