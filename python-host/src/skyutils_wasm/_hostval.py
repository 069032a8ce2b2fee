"""Host functions' results: a whole value tree packed into one buffer.

A host function's result must be C-owned (wasmtime frees it after lowering
it into the guest). Building it node by node through the C API's
constructors, or as ctypes objects, costs a few microseconds per node; here
the tree (its values, cells, list and record storage, string bytes) is
packed with :mod:`struct` into one ``bytearray``, its pointers written as
offsets and relocated once the buffer stops growing, and wasmtime is handed
a single deep copy of it (``wasmtime_component_val_clone``). The layout is
:mod:`._val`'s, checked against wasmtime-py's at import.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from typing import Any

from ._capi import TypeDesc
from ._val import (
    BOOL,
    ENUM,
    LIST,
    OF,
    OPTION,
    RECORD,
    RESULT,
    S32,
    S64,
    STRING,
    U16,
    U32,
    U64,
    VAL_SIZE,
    VARIANT,
    Entry,
    val_clone,
)

_P = "Q" if ctypes.sizeof(ctypes.c_void_p) == 8 else "I"
_P_SIZE = ctypes.sizeof(ctypes.c_void_p)
_ENTRY_SIZE = ctypes.sizeof(Entry)
_ENTRY_VAL = Entry.val.offset
#: (size, data) of a string, list or record payload, at the payload.
_SIZED = struct.Struct(f"={_P}{_P}")
#: A result's ``is_ok`` flag and its pointer.
_RESULT = struct.Struct(f"=?{_P_SIZE - 1}x{_P}")
_KIND = struct.Struct("=B")


class Tree:
    """One value tree being packed: ``buf`` grows by whole nodes; pointer
    fields hold offsets into it until :meth:`copy_to`."""

    __slots__ = ("buf", "ptrs")

    def __init__(self) -> None:
        self.buf = bytearray(VAL_SIZE)  # the root value
        self.ptrs: list[int] = []

    def alloc(self, size: int) -> int:
        """Room for ``size`` bytes (zeroed, pointer-aligned): its offset."""
        at = len(self.buf)
        self.buf += bytes(-(-size // _P_SIZE) * _P_SIZE)
        return at

    def sized(self, at: int, kind: int, size: int, data: int | None) -> None:
        """Writes a value of ``kind`` at ``at`` with a (size, pointer)
        payload (``data`` an offset, None for null)."""
        _KIND.pack_into(self.buf, at, kind)
        _SIZED.pack_into(self.buf, at + OF, size, data or 0)
        if data is not None:
            self.ptrs.append(at + OF + _P_SIZE)

    def text(self, text: bytes) -> int | None:
        """``text`` copied into the tree: its offset (None when empty)."""
        if not text:
            return None
        at = self.alloc(len(text))
        self.buf[at : at + len(text)] = text
        return at

    def copy_to(self, out: int) -> None:
        """Relocates the pointers and deep-copies the tree (rooted at
        offset 0) into the C-owned value at address ``out``."""
        buf = self.buf
        base = (ctypes.c_char * len(buf)).from_buffer(buf)
        at = ctypes.addressof(base)
        words = memoryview(buf).cast("Q" if _P_SIZE == 8 else "I")
        for p in self.ptrs:
            words[p // _P_SIZE] += at
        words.release()
        val_clone(at, out)
        del base


#: Writes a Python value of one type as the value at an offset of a tree.
Pack = Callable[[Tree, int, Any], None]


def _scalar(kind: int, code: str) -> Pack:
    fmt = struct.Struct(f"=B{OF - 1}x{code}")

    def pack(tree: Tree, at: int, v: Any) -> None:
        fmt.pack_into(tree.buf, at, kind, v)

    return pack


def _string(tree: Tree, at: int, v: Any) -> None:
    b = v.encode()  # strict UTF-8: a lone surrogate raises here
    tree.sized(at, STRING, len(b), tree.text(b))


def _cell(tree: Tree, inner: Pack, payload: Any) -> int:
    """A new cell holding ``payload``: its offset."""
    at = tree.alloc(VAL_SIZE)
    inner(tree, at, payload)
    return at


def _pointer(tree: Tree, kind: int, at: int, offset: int, target: int | None) -> None:
    _KIND.pack_into(tree.buf, at, kind)
    if target is not None:
        struct.pack_into(f"={_P}", tree.buf, at + OF + offset, target)
        tree.ptrs.append(at + OF + offset)


def _option(ty: TypeDesc) -> Pack:
    inner = compile_pack(ty[1])

    def pack(tree: Tree, at: int, v: Any) -> None:
        _pointer(tree, OPTION, at, 0, None if v is None else _cell(tree, inner, v))

    return pack


def _result(ty: TypeDesc) -> Pack:
    ok = None if ty[1] is None else compile_pack(ty[1])
    err = None if ty[2] is None else compile_pack(ty[2])

    def pack(tree: Tree, at: int, v: Any) -> None:
        is_ok, payload = v
        inner = ok if is_ok else err
        cell = None if inner is None else _cell(tree, inner, payload)
        _KIND.pack_into(tree.buf, at, RESULT)
        _RESULT.pack_into(tree.buf, at + OF, bool(is_ok), cell or 0)
        if cell is not None:
            tree.ptrs.append(at + OF + _P_SIZE)

    return pack


def _variant(ty: TypeDesc) -> Pack:
    cases = {n: (n.encode(), None if t is None else compile_pack(t)) for n, t in ty[1]}

    def pack(tree: Tree, at: int, v: Any) -> None:
        tag, payload = v
        name, inner = cases[tag]
        tree.sized(at, VARIANT, len(name), tree.text(name))
        _pointer(
            tree, VARIANT, at, 2 * _P_SIZE, None if inner is None else _cell(tree, inner, payload)
        )

    return pack


def _enum(ty: TypeDesc) -> Pack:
    def pack(tree: Tree, at: int, v: Any) -> None:
        name = v.encode()
        tree.sized(at, ENUM, len(name), tree.text(name))

    return pack


def _list(ty: TypeDesc) -> Pack:
    elem = compile_pack(ty[1])

    def pack(tree: Tree, at: int, v: Any) -> None:
        n = len(v)
        data = tree.alloc(n * VAL_SIZE) if n else None
        for i, item in enumerate(v):
            elem(tree, (data or 0) + i * VAL_SIZE, item)
        tree.sized(at, LIST, n, data)

    return pack


def _record(ty: TypeDesc) -> Pack:
    fields = [(n.encode(), compile_pack(t)) for n, t in ty[1]]

    def pack(tree: Tree, at: int, v: Any) -> None:
        data = tree.alloc(len(fields) * _ENTRY_SIZE)
        for i, ((name, f), item) in enumerate(zip(fields, v, strict=True)):
            entry = data + i * _ENTRY_SIZE
            text = tree.text(name)
            _SIZED.pack_into(tree.buf, entry, len(name), text or 0)
            tree.ptrs.append(entry + _P_SIZE)
            f(tree, entry + _ENTRY_VAL, item)
        tree.sized(at, RECORD, len(fields), data)

    return pack


_PACKS: dict[str, Callable[[TypeDesc], Pack]] = {
    "bool": lambda _ty: _scalar(BOOL, "?"),
    "u16": lambda _ty: _scalar(U16, "H"),
    "u32": lambda _ty: _scalar(U32, "I"),
    "s32": lambda _ty: _scalar(S32, "i"),
    "u64": lambda _ty: _scalar(U64, "Q"),
    "s64": lambda _ty: _scalar(S64, "q"),
    "string": lambda _ty: _string,
    "enum": _enum,
    "option": _option,
    "result": _result,
    "variant": _variant,
    "list": _list,
    "record": _record,
}


def compile_pack(ty: TypeDesc) -> Pack:
    """A function packing a Python value of component type ``ty`` (in
    :func:`._abi.compile_lower`'s terms; records as a sequence of their
    fields' values) into a tree."""
    factory = _PACKS.get(ty[0])
    if factory is None:
        raise TypeError(f"unsupported host result type {ty!r}")
    return factory(ty)


def compile_writer(ty: TypeDesc) -> Callable[[Any, int], None]:
    """A function writing a Python value of type ``ty`` as a C-owned value
    at an address (a host function's result slot)."""
    pack = compile_pack(ty)

    def write(v: Any, out: int) -> None:
        tree = Tree()
        pack(tree, 0, v)
        tree.copy_to(out)

    return write
