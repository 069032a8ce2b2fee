"""The twelve functions' argument handling, shared by the module functions
(:mod:`.common_utils`, :mod:`.subprocess_utils`) and :class:`.Plugin`.

Each function takes the :class:`~._backend.Backend` to call and SkyPilot's
arguments. Arguments of the types SkyPilot documents go to that backend with
clean types; the Python-only cases of the behavioural spec's section 6
(wrong types, ``bool`` as ``int``, integers beyond 64 bits, other codecs,
paths that name no bytes) are answered by the pure backend, which runs
upstream's exact operations. A *confined* backend (a plugin's, whose policy
covers every file access) refuses Python-only path types instead.
"""

from __future__ import annotations

import operator
import os
import threading
from typing import TYPE_CHECKING, Any

from . import _backend, _log
from ._grants import is_utf8

if TYPE_CHECKING:
    from ._backend import Backend

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
#: The logger of upstream's ``get_max_workers_for_file_mounts``.
SUBPROCESS_LOGGER = "sky.utils.subprocess_utils"


def _py() -> Backend:
    """The pure-Python backend, for the Python-only argument cases
    (imported on first use, so ``import skyutils_wasm`` stays light)."""
    return _backend.load("python")


def _is_int(v: Any) -> bool:
    return type(v) is int


def _fits(v: int) -> bool:
    return _I64_MIN <= v <= _I64_MAX


def _clamp(v: int) -> int:
    return max(_I64_MIN, min(_I64_MAX, v))


def _fspath(p: Any) -> Any:
    return os.fspath(p) if isinstance(p, os.PathLike) else p


def _sandboxable_path(p: Any) -> bool:
    """Whether ``p`` is a path the sandbox can be asked about: ``str`` that
    names bytes (surrogate escapes or not) or ``bytes``, without a NUL (upstream's
    ``ValueError: embedded null byte`` and other types' errors come from the
    pure backend, which runs upstream's exact operations)."""
    if isinstance(p, str):
        if "\x00" in p:
            return False
        try:
            os.fsencode(p)  # surrogates outside surrogateescape's range fail
        except UnicodeEncodeError:
            return False
        return True
    return isinstance(p, bytes) and b"\x00" not in p


def _confined_path(path: Any) -> str:
    """A path for a plugin, whose policy covers every file access: Python-only
    path types are refused instead of being opened by the host."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        raise TypeError(f"expected str, bytes or os.PathLike object, not {type(path).__name__}")
    if "\x00" in path:
        raise ValueError("embedded null byte")
    return path


def _confined_int(v: Any) -> int:
    if not isinstance(v, int):
        raise TypeError(f"'{type(v).__name__}' object cannot be interpreted as an integer")
    return int(v)


def _cloud_arg(cloud_str: Any) -> str | None:
    """Normalizes a non-str ``cloud_str`` exactly as upstream would see it
    (only its truthiness and whether it lowers to ``kubernetes`` matter, so a
    ``str`` that is not UTF-8, never ``kubernetes``, becomes a neutral one)."""
    if cloud_str is None:
        return None
    if isinstance(cloud_str, str):
        return cloud_str if is_utf8(cloud_str) else "?"
    if not cloud_str:
        return None
    return "kubernetes" if cloud_str.lower() == "kubernetes" else None


def _source(v: Any) -> str | bytes:
    """A mount source as upstream's ``os.path.isdir`` sees it: ``str`` or
    ``bytes`` paths (any bytes); a NUL or a ``str`` that names no bytes is
    never a directory; other types get ``os.path.isdir``'s own answer (a
    ``TypeError`` for ``None``, as upstream raises; a descriptor is never
    treated as a mount source)."""
    if isinstance(v, os.PathLike):
        v = os.fspath(v)
    if not isinstance(v, (str, bytes)):
        os.path.isdir(v)  # upstream's TypeError for types stat() refuses
        return ""
    return v if _sandboxable_path(v) else ""


# -- common_utils -------------------------------------------------------------


def read_last_n_lines(
    b: Backend, file_path: Any, n: Any, chunk_size: Any, encoding: str, errors: str
) -> list[str]:
    """``read_last_n_lines`` on backend ``b``."""
    file_path = _fspath(file_path)
    if b.confined:
        file_path = _confined_path(file_path)
        n, chunk_size = _confined_int(n), _confined_int(chunk_size)
    if (
        not _sandboxable_path(file_path)
        or not isinstance(n, int)
        or not isinstance(chunk_size, int)
    ):
        # Python-only argument types: upstream's exact operations.
        from ._pure import decode_pieces, read_last_n_raw

        return decode_pieces(read_last_n_raw(file_path, n, chunk_size), encoding, errors)
    n, chunk = _clamp(int(n)), _clamp(int(chunk_size))
    if encoding == "utf-8" and errors in ("strict", "replace", "ignore"):
        return b.read_last_n_lines(file_path, n, chunk, errors)
    # The codec is looked up by the first decode, as upstream: after its
    # argument and existence checks, and never for an empty result.
    from ._pure import decode_pieces

    return decode_pieces(b.read_last_n_raw(file_path, n, chunk), encoding, errors)


def hash_file(b: Backend, path: Any, hash_alg: Any) -> Any:
    """``hash_file`` on backend ``b``."""
    path = _fspath(path)
    if b.confined:
        path = _confined_path(path)
        if not isinstance(hash_alg, str):
            raise TypeError(f"hash_alg must be str, not {type(hash_alg).__name__}")
    if (
        not _sandboxable_path(path)
        or not isinstance(hash_alg, str)
        or not is_utf8(hash_alg)
        or "\0" in hash_alg
    ):
        return _py().hash_file(path, hash_alg)
    return b.hash_file(path, hash_alg)


def find_free_port(b: Backend, start_port: Any) -> int:
    """``find_free_port`` on backend ``b``."""
    if not isinstance(start_port, int):
        range(start_port, 65535)  # raises upstream's TypeError
        start_port = operator.index(start_port)
    v = int(start_port)
    if v >= 65535:
        raise OSError("No free ports available.")
    return b.find_free_port(max(v, -1))


def base36_encode(b: Backend, hex_str: Any) -> str:
    """``base36_encode`` on backend ``b``."""
    if type(hex_str) is str and hex_str.isascii() and "\x00" not in hex_str:
        return b.base36_encode(hex_str)  # the common case, first
    if isinstance(hex_str, str) and "\x00" not in hex_str and is_utf8(hex_str):
        return b.base36_encode(str(hex_str))
    return _py().base36_encode(hex_str)


def format_float(b: Backend, num: Any, precision: Any) -> str:
    """``format_float`` on backend ``b``."""
    t = type(num)  # the common cases, first
    if t is float:
        if num.is_integer():
            return b.format_float(num, 0)
        if type(precision) is int and _I64_MIN <= precision <= _I64_MAX:
            return b.format_float(num, precision)
    elif t is int and _I64_MIN <= num <= _I64_MAX:
        return b.format_float(num, 0)
    if isinstance(num, int):
        if _is_int(num) and _fits(num):
            return b.format_float(num, 0)
        return f"{num}"
    if isinstance(num, float):
        num = float(num)
        if num.is_integer():
            return b.format_float(num, 0)
        if _is_int(precision):
            if _fits(precision):
                return b.format_float(num, precision)
            if precision > 0:
                raise ValueError("Too many decimal digits in format string")
            raise ValueError("Format specifier missing precision")
    return _py().format_float(num, precision)


def truncate_long_string(b: Backend, s: Any, max_length: Any, truncate_middle: Any) -> str:
    """``truncate_long_string`` on backend ``b``."""
    if (
        type(s) is str
        and type(max_length) is int
        and _I64_MIN <= max_length <= _I64_MAX
        and s.isascii()
        and "\x00" not in s
    ):
        return b.truncate_long_string(s, max_length, bool(truncate_middle))  # the common case
    if (
        isinstance(s, str)
        and _is_int(max_length)
        and _fits(max_length)
        and "\x00" not in s
        and is_utf8(s)
    ):
        return b.truncate_long_string(str(s), max_length, bool(truncate_middle))
    return _py().truncate_long_string(s, max_length, truncate_middle)


# -- subprocess_utils ---------------------------------------------------------

_low_fd_warning_shown = False
_warn_lock = threading.Lock()


def _reset_low_fd_warning() -> None:
    """Clears the once-per-process warning flag (for tests)."""
    global _low_fd_warning_shown
    _low_fd_warning_shown = False


def get_parallel_threads(b: Backend, cloud_str: Any) -> int:
    """``get_parallel_threads`` on backend ``b``."""
    return b.get_parallel_threads(_cloud_arg(cloud_str))


def get_max_workers_for_file_mounts(b: Backend, common_file_mounts: Any, cloud_str: Any) -> int:
    """``get_max_workers_for_file_mounts`` on backend ``b``; the low
    descriptor warning goes once per process to :data:`SUBPROCESS_LOGGER`."""
    values = common_file_mounts.values()  # upstream's AttributeError for non-dicts
    mounts: list[tuple[str, str | bytes]] = [
        (k if isinstance(k, str) else "", _source(v))
        for k, v in zip(common_file_mounts.keys(), values, strict=True)
    ]
    try:
        cloud = _cloud_arg(cloud_str)
        cloud_error: BaseException | None = None
    except Exception as e:  # noqa: BLE001 - re-raised after the scan, as upstream
        cloud, cloud_error = None, e
    count, warning = b.get_max_workers_for_file_mounts(mounts, cloud)
    if warning is not None:
        global _low_fd_warning_shown
        with _warn_lock:
            show = not _low_fd_warning_shown
            _low_fd_warning_shown = True
        if show:
            _log.get(SUBPROCESS_LOGGER).warning(warning)
    if cloud_error is not None:
        raise cloud_error
    _log.get(SUBPROCESS_LOGGER).debug(f"Using {count} workers for file mounts.")
    return count


def is_process_alive(b: Backend, pid: Any) -> bool:
    """``is_process_alive`` on backend ``b``."""
    if type(pid) is bool:
        return False
    if not isinstance(pid, int):
        if pid < 0:
            raise ValueError(f"pid must be a positive integer (got {pid})")
        if isinstance(pid, float):
            raise TypeError("'float' object cannot be interpreted as an integer")
        pid = operator.index(pid)
    v = int(pid)
    if not _fits(v):
        if v < 0:
            raise ValueError(f"pid must be a positive integer (got {pid})")
        return False
    return b.is_process_alive(v)


def estimate_fd_for_directory(b: Backend, path: Any) -> int:
    """``estimate_fd_for_directory`` on backend ``b``."""
    path = os.fspath(path)
    if b.confined:
        path = _confined_path(path)
    if not _sandboxable_path(path):
        return _py().estimate_fd_for_directory(path)
    return b.estimate_fd_for_directory(path)
