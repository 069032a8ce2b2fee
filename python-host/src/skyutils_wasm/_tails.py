"""Paged tails: results too big for one call cross in pages.

wasmtime's C API refuses to lift more than 128 MiB ("hostcall fuel") per
call, counting every list element as a whole value (tens of bytes) and every
byte of a ``list<u8>`` as one element (raw pieces cross as Latin-1 strings
for that reason). The ``tails`` interface returns a first page and, when
there is more, a ``tail`` resource whose ``next-*`` methods return the rest;
:func:`take_pages` joins them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import OutputTooLargeError

if TYPE_CHECKING:
    from ._session import Session

#: A page of lines stays under 32 MiB of UTF-8 and 1 Mi items.
PAGE_BYTES = 32 << 20
PAGE_ITEMS = 1 << 20
#: A page of raw pieces stays under 16 MiB of bytes (at most twice that in
#: UTF-8, as Latin-1 characters).
RAW_PAGE_BYTES = 16 << 20


def _output_len(item: str) -> int:
    """Bytes of one result item as :func:`._abi.output_size` counts them."""
    return len(item.encode("utf-8", "surrogatepass"))


def take_pages(
    s: Session,
    page: dict[str, Any],
    rest: Any,
    method: str,
    max_bytes: int,
    cap: int | None,
) -> list[str]:
    """The items of ``page`` and of every further page of the ``tail``
    resource ``rest`` (``method`` returns the next page), each page below
    wasmtime-py's per-call limit. A line split across pages (``continued``)
    is joined again; ``cap``, if any, applies to the whole result (as the
    policy's ``max_output``). ``rest`` is dropped at the end."""
    out: list[str] = []
    #: The parts of the last line so far (not yet in ``out``).
    pending: list[str] = []
    open_line = False
    size = 0
    try:
        while True:
            items = page["items"]
            if not items:
                break
            if cap is not None:
                size += sum(_output_len(x) + 1 for x in items)
                if size > cap:
                    raise OutputTooLargeError(size, cap)
            start = 0
            if open_line:
                pending.append(items[0])
                start = 1
            if start < len(items):
                if pending:
                    out.append("".join(pending))
                out.extend(items[start:-1])
                pending = [items[-1]]
            open_line = page["continued"]
            page = s.call("tails", method, rest, max_bytes, PAGE_ITEMS)
    finally:
        s.drop_now(rest)
    if pending:
        out.append("".join(pending))
    return out
