"""Turns the paths a call names into read-only WASI grants (mirrors the Rust
host's ``grants.rs``): the guest opens the resolved path, the containing
directory (or the directory itself) is pre-opened at its real path, and
messages are mapped back to the caller's spelling."""

from __future__ import annotations

import os
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

from ._errors import CapabilityDeniedError


class PathGrant(NamedTuple):
    """The guest's view of one caller path."""

    display: str
    guest: str
    preopen: Optional[str]


def _resolve(absolute: str) -> Tuple[Optional[str], Optional[str]]:
    try:
        return os.path.realpath(absolute, strict=True), None
    except (OSError, ValueError):
        pass
    comps = [c for c in absolute.split("/") if c not in ("", ".")]
    for k in range(len(comps) - 1, -1, -1):
        prefix = "/" + "/".join(comps[:k])
        try:
            real = os.path.realpath(prefix, strict=True)
        except (OSError, ValueError):
            continue
        return real, "/".join(comps[k:])
    return None, None


def _inside(resolved: str, root: str) -> bool:
    return resolved == root or resolved.startswith(root.rstrip("/") + "/")


def grant(path: str, allowed: Optional[Sequence[str]] = None) -> PathGrant:
    """Resolves ``path`` for one call. With ``allowed`` (resolved directories)
    a path resolving outside all of them raises ``CapabilityDeniedError`` and
    nothing is pre-opened per call (the allowed directories are)."""
    if path == "":
        return PathGrant(path, path, None)
    try:
        absolute = os.path.join(os.getcwd(), path)
    except OSError:
        absolute = path
    resolved, missing = _resolve(absolute)
    if resolved is None:
        return PathGrant(path, path, None)
    is_dir = os.path.isdir(resolved)
    guest = resolved
    if missing:
        guest = resolved.rstrip("/") + "/" + missing
    if path.endswith("/") and not guest.endswith("/") and (not is_dir or missing):
        guest += "/"
    if allowed is not None:
        if not any(_inside(resolved, root) for root in allowed):
            raise CapabilityDeniedError(
                f"{path!r}: outside the allowed directories ({', '.join(allowed)})"
            )
        return PathGrant(path, guest, None)
    needed = resolved if is_dir else (os.path.dirname(resolved) or "/")
    preopen: Optional[str] = needed
    if missing and is_dir:
        first = missing.split("/")[0]
        try:
            os.lstat(os.path.join(resolved, first))
        except FileNotFoundError:
            preopen = None
        except OSError:
            pass
    return PathGrant(path, guest, preopen)


def preopen_dirs(grants: List[PathGrant]) -> List[str]:
    """The directories to pre-open; an unreadable directory is reached through
    its parent so the guest sees the real error."""
    out: List[str] = []
    for g in grants:
        d = g.preopen
        if d is None:
            continue
        try:
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
            os.close(fd)
        except OSError:
            d = os.path.dirname(d) or "/"
        if d not in out:
            out.append(d)
    return out


def _text(s: str, frm: str, to: str) -> str:
    return s.replace(repr(frm), repr(to)).replace(frm, to)


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
