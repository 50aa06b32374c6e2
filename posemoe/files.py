"""Writing output files all-or-nothing: a failed or cancelled write never leaves a partial file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import PoseMoEError


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally, the temporary file becomes
    ``path`` (one rename, readable like any new file); when it raises, the temporary file is removed."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=folder)
        os.close(handle)
    except OSError as error:
        raise PoseMoEError(f"Cannot write to {folder}: {error.strerror}. Choose a folder you can write to.") from error
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp makes files private; outputs are ordinary files
        os.replace(tmp, path)
    except OSError as error:  # a full disk, or a folder where the file should go: the user can fix it
        tmp.unlink(missing_ok=True)
        raise PoseMoEError(f"Cannot write {path}: {error.strerror or error}. Free some space or choose another path.") from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
