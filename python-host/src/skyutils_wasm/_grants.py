"""Turns the paths a call names into read-only WASI grants (mirrors the Rust
host's ``grants.rs``): the guest opens the resolved path, the containing
directory (or the directory itself) is pre-opened, and messages are mapped
back to the caller's spelling.

Host paths are bytes (Python hands them around as ``bytes`` or as ``str``
with surrogate escapes); WASI paths are UTF-8 strings. A pre-opened directory
whose host path is not UTF-8 appears in the guest under a label of its own
(:func:`guest_label`); names below it are the real entry names, so they must
be UTF-8. A path the guest cannot be given (a file whose own name is not
UTF-8, or a directory the C API cannot pre-open) is marked ``unnamed``: the
backend answers it without the guest (or refuses it under a strict policy).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ._errors import CapabilityDeniedError

#: Where guest labels of non-UTF-8 host directories live (as in the Rust host).
LABEL_ROOT = "/.skyutils-host-path"

#: A path as callers pass it: ``str`` (possibly with surrogate escapes) or ``bytes``.
PathArg = str | bytes


def utf8(b: bytes) -> str | None:
    """``b`` decoded strictly as UTF-8, or None."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


def is_utf8(s: str) -> bool:
    """Whether ``s`` encodes to UTF-8 (no lone surrogates), i.e. may cross
    into the component."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class PathGrant(NamedTuple):
    """The guest's view of one caller path."""

    #: The path as the caller wrote it (``str`` or ``bytes``), for messages.
    display: PathArg
    #: The path the guest opens (valid UTF-8).
    guest: str
    #: The host directory to pre-open and the guest path it appears at.
    preopen: tuple[bytes, str] | None
    #: A path that exists but cannot be handed to the guest (resolved).
    unnamed: bytes | None


def guest_label(d: bytes) -> str:
    """The guest path of host directory ``d``: itself when UTF-8, else a
    label made of its bytes in hex (unique per path)."""
    s = utf8(d)
    return s if s is not None else f"{LABEL_ROOT}/{d.hex()}"


def _join(base: str, rest: bytes) -> str | None:
    """``base`` joined with ``rest`` (None when ``rest`` is not UTF-8)."""
    r = utf8(rest)
    if r is None:
        return None
    if not r:
        return base
    return base + r if base.endswith("/") else f"{base}/{r}"


def _libc_realpath() -> Callable[[bytes], bytes | None] | None:
    """The C library's ``realpath(3)`` (one call resolving every component
    in C, ~6x faster than ``os.path.realpath``), where there is one."""
    if os.name != "posix":
        return None
    try:
        libc = ctypes.CDLL(None)
        c_realpath, c_free = libc.realpath, libc.free
    except (OSError, AttributeError):
        return None
    c_realpath.restype = ctypes.c_void_p
    c_realpath.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    c_free.restype = None
    c_free.argtypes = [ctypes.c_void_p]

    def realpath(p: bytes) -> bytes | None:
        out = c_realpath(p, None)
        if not out:
            return None
        try:
            return ctypes.string_at(out)
        finally:
            c_free(out)

    return realpath


_C_REALPATH = _libc_realpath()


def _realpath(p: bytes) -> bytes | None:
    """The canonical form of ``p`` if the OS resolves it (every component
    exists; ``name/..`` only when ``name`` is a directory)."""
    if b"\0" in p:
        return None
    # ``realpath`` (libc's too) drops ``name/..`` after checking only that
    # ``name`` is a directory, not that it may be searched: the OS's own
    # ``stat`` decides first (``noperm/../f`` is a PermissionError).
    try:
        st = os.stat(p)
    except (OSError, ValueError):
        return None
    if _C_REALPATH is not None:
        real = _C_REALPATH(p)
    else:
        try:
            real = os.path.realpath(p, strict=True)
        except (OSError, ValueError):
            return None
    return real if real is not None and _names(st, real) else None


def _names(st: os.stat_result, name: bytes) -> bool:
    """Whether ``name`` names the file ``st`` describes. A file this
    process's root does not reach (in a lazily unmounted directory, or
    another mount namespace's, through ``/proc/PID/root``) is named from its
    own mount's root, ``getcwd`` and ``/proc``'s links too: that name is some
    other file here, or none, and must not be granted."""
    try:
        found = os.stat(name)
    except (OSError, ValueError):
        return False
    return (found.st_dev, found.st_ino) == (st.st_dev, st.st_ino)


def _exists(p: bytes) -> bool:
    try:
        os.stat(p)
    except (OSError, ValueError):
        return False
    return True


def _resolve(absolute: bytes) -> tuple[bytes | None, bytes | None]:
    """The canonical form of the longest prefix of ``absolute`` that
    resolves, and the components after it (None when all of it resolves)."""
    full = _realpath(absolute)
    if full is not None:
        return full, None
    # ``.`` stays in the rest: ``file/.`` is "not a directory", not ``file``.
    comps = [c for c in absolute.split(b"/") if c]
    for k in range(len(comps) - 1, -1, -1):
        real = _realpath(b"/" + b"/".join(comps[:k]))
        if real is not None:
            return real, b"/".join(comps[k:])
    return None, None


def _inside(resolved: bytes, root: bytes) -> bool:
    return resolved == root or resolved.startswith(root.rstrip(b"/") + b"/")


def _readable_dir(d: bytes) -> bool:
    try:
        fd = os.open(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return False
    os.close(fd)
    return True


#: Directory whose entries re-open this process's file descriptors, for
#: pre-opening a directory whose path the C API cannot take (not UTF-8).
FD_DIR: str | None = next((d for d in ("/proc/self/fd", "/dev/fd") if os.path.isdir(d)), None)


def _missing_label(p: bytes) -> str:
    """A guest path that no preopen covers (so it does not exist)."""
    return f"{LABEL_ROOT}-missing/{p.hex()}"


def _too_long(p: bytes) -> bool:
    """Whether the OS refuses ``p`` as too long (``ENAMETOOLONG``)."""
    try:
        os.stat(p)
    except OSError as e:
        return e.errno == errno.ENAMETOOLONG
    except ValueError:
        return False
    return False


def grant(path: PathArg, allowed: Sequence[bytes] | None = None) -> PathGrant:
    """Resolves ``path`` for one call. With ``allowed`` (resolved directories)
    a path resolving outside all of them, or not UTF-8, raises
    ``CapabilityDeniedError`` and nothing is pre-opened per call (the allowed
    directories are)."""
    p = os.fsencode(path)
    if os.name == "nt":
        # Drive letters, UNC and verbatim paths have no WASI spelling here:
        # file calls on Windows are answered by the pure backend.
        return PathGrant(path, "", None, p)
    if not p:
        return PathGrant(path, "", None, None)
    if p.startswith(b"/"):
        absolute = p
    else:
        try:
            cwd = os.getcwdb()
            absolute = os.path.join(cwd, p) if _names(os.stat(b"."), cwd) else p
        except OSError:
            absolute = p
    resolved, missing = _resolve(absolute)
    if (resolved is None or missing) and _exists(p):
        # It exists but has no name here (see :func:`_names`; a pipe or a
        # deleted file behind ``/proc/self/fd``): no guest path reaches it.
        if allowed is not None:
            shown = ", ".join(os.fsdecode(a) for a in allowed)
            raise CapabilityDeniedError(f"{path!r}: outside the allowed directories ({shown})")
        return PathGrant(path, "", None, p)
    if (resolved is None or missing) and allowed is None and _too_long(p):
        # The OS refuses the path itself (ENAMETOOLONG), which no guest
        # path can reproduce: answered without the guest, as upstream fails.
        return PathGrant(path, "", None, p)
    if resolved is None:
        return PathGrant(path, guest_label(p), None, None)
    is_dir = os.path.isdir(resolved)
    slash = p.endswith(b"/") and (not is_dir or bool(missing))
    if allowed is not None:
        if not any(_inside(resolved, root) for root in allowed):
            shown = ", ".join(os.fsdecode(a) for a in allowed)
            raise CapabilityDeniedError(f"{path!r}: outside the allowed directories ({shown})")
        full = resolved if not missing else resolved.rstrip(b"/") + b"/" + missing
        guest = utf8(full)
        if guest is None:
            raise CapabilityDeniedError(
                f"{path!r}: not valid UTF-8, which the strict directory policy cannot grant"
            )
        if slash and not guest.endswith("/"):
            guest += "/"
        return PathGrant(path, guest, None, None)
    # The directory the call needs: the path itself or its parent; one this
    # process cannot read is reached through its parent, so the guest sees
    # the real error.
    needed = resolved if is_dir else (os.path.dirname(resolved) or b"/")
    root = needed if _readable_dir(needed) else (os.path.dirname(needed) or b"/")
    label = guest_label(root)
    inside = resolved[len(root) :].lstrip(b"/") if resolved != root else b""
    joined = _join(label, inside)
    if joined is None or (utf8(root) is None and FD_DIR is None):
        return PathGrant(path, label, None, resolved)
    guest = joined
    preopen: tuple[bytes, str] | None = (root, label)
    if missing:
        # A missing child of an existing directory can only be observed as
        # "does not exist": nothing needs to be granted for that.
        first_exists = True
        if is_dir:
            try:
                os.lstat(os.path.join(resolved, missing.split(b"/")[0]))
            except FileNotFoundError:
                first_exists, preopen = False, None
            except OSError:
                pass
        below = _join(guest, missing)
        if below is None:
            if first_exists:
                # An entry the guest cannot name that exists (a file with a
                # trailing slash or ``/.``): answered without the guest.
                return PathGrant(path, label, None, p)
            preopen, below = None, _missing_label(missing)
        guest = below
    if slash and not guest.endswith("/"):
        guest += "/"
    return PathGrant(path, guest, preopen, None)


def preopen_dirs(grants: list[PathGrant]) -> list[tuple[bytes, str]]:
    """The distinct (host directory, guest path) pairs to pre-open."""
    out: list[tuple[bytes, str]] = []
    for g in grants:
        if g.preopen is not None and g.preopen not in out:
            out.append(g.preopen)
    return out


def _text(s: str, frm: str, to: PathArg) -> str:
    """``s`` with the guest path replaced by the caller's, in one pass (the
    caller's path may contain the guest's): ``repr`` forms by the caller's
    ``repr``, plain ones by what an f-string shows of it (``b'...'`` for
    bytes, as upstream's messages do)."""
    shown = {repr(frm): repr(to), frm: str(to)}
    pattern = "|".join(re.escape(k) for k in shown if k)
    return re.sub(pattern, lambda m: shown[m.group(0)], s)


def display_error(err: Any, g: PathGrant) -> Any:
    """Maps the guest path back to the caller's path inside a lifted error."""
    if g.guest == g.display:
        return err
    tag, payload = err
    frm, to = g.guest, g.display

    def os_err(o: Any) -> Any:
        o = dict(o)
        o["message"] = _text(o["message"], frm, to)
        if o.get("filename") == frm:
            o["filename"] = to
        return o

    if tag == "assertion-error":
        if not frm and payload == "File not found: ":
            # An empty path (b''): nothing in the text to replace.
            return (tag, payload + str(to))
        return (tag, _text(payload, frm, to))
    if tag == "runtime-error":
        cause = payload.get("cause")
        return (
            tag,
            {
                "message": _text(payload["message"], frm, to),
                "cause": None if cause is None else os_err(cause),
            },
        )
    if isinstance(payload, dict) and "message" in payload and "errno" in payload:
        return (tag, os_err(payload))
    return err


def display_error_among(err: Any, grants: list[PathGrant]) -> Any:
    """:func:`display_error` for a call on several grants (the sources of
    ``get_max_workers_for_file_mounts``): only the grant the error names (the
    first whose guest path is its file name) maps it, so another source's
    path that is a prefix of the failing one's, or names the same directory
    otherwise, never rewrites it. An error naming none goes through every
    grant."""
    _tag, payload = err
    filename = payload.get("filename") if isinstance(payload, dict) else None
    named = [g for g in grants if filename is not None and g.guest == filename]
    for g in named[:1] or grants:
        err = display_error(err, g)
    return err
