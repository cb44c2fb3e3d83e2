"""Atomic file writes (write beside the target, then rename, so a failure never leaves a partial file) and the
grammar JSON files' writer and guarded reader (every grammar class uses them)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

# A grammar JSON bigger than this is refused before parsing (a real one with v=256, m=64, s=4, L=8 is ~10 MB).
MAX_JSON_BYTES = 256 * 2**20


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a temporary path beside `path`; on success rename it onto `path`, on error delete it.

    The file gets the usual permissions (0666 minus umask), not mkstemp's 0600.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.",
                               suffix=suffix)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_json(obj: dict, path) -> None:
    """Write `obj` as compact JSON, atomically (a failed write leaves no partial file)."""
    text = json.dumps(obj, separators=(",", ":"))
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def check_header(data, fmt: str, what: str, fields=()) -> None:
    """ValueError unless `data` is a dict of format `fmt`, version 1, with every key of `fields` (`what` names the
    file kind in the message: "soft grammar", "sparse RHM", ...)."""
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ValueError(f"not a {what} file: format={data.get('format') if isinstance(data, dict) else None!r}, "
                         f"expected {fmt!r}")
    if data.get("version") != 1:
        raise ValueError(f"unsupported {what} format version {data.get('version')!r}; this rhm reads 1")
    missing = [k for k in fields if k not in data]
    if missing:
        raise ValueError(f"{what} JSON lacks field(s) {missing}")


def load_json(path, from_dict, what: str):
    """``from_dict`` of the JSON in `path`; any failure is one ValueError naming the file."""
    data = read_json(path)
    try:
        return from_dict(data)
    except ValueError as err:
        raise ValueError(f"invalid {what} file {str(Path(path))!r}: {err}") from None


def read_json(path):
    """Parse a grammar JSON file of at most MAX_JSON_BYTES; every failure is one ValueError naming the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ValueError(f"cannot read grammar file {str(path)!r}: {err.strerror}") from None
    if size > MAX_JSON_BYTES:
        raise ValueError(f"grammar file {str(path)!r} is {size} bytes, over the {MAX_JSON_BYTES} limit")
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"grammar file {str(path)!r} is not valid JSON: {err}") from None
    except RecursionError:
        raise ValueError(f"grammar file {str(path)!r} is nested too deeply") from None
    except OSError as err:
        raise ValueError(f"cannot read grammar file {str(path)!r}: {err.strerror}") from None
