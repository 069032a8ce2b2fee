"""Host functions' results: a whole value tree packed into one buffer.

A host function's result must be C-owned (wasmtime frees it after lowering
it into the guest). Building it node by node through the C API's
constructors, or as ctypes objects, costs a few microseconds per node; here
the tree (its values, cells, list and record storage, string bytes) is
packed with :mod:`struct` into one zeroed buffer at a known address (names
stay in constant buffers), and wasmtime is handed a single deep copy of it
(``wasmtime_component_val_clone``). The layout is :mod:`._val`'s, checked
against wasmtime-py's at import. The common results, a scalar or an option
of one, are written from one precomputed image.
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


class _Full(Exception):
    """A tree outgrew its buffer: ``needed`` bytes at least."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class Tree:
    """One value tree being packed into a fixed buffer at a known address:
    nodes are bump-allocated, pointers written as addresses."""

    __slots__ = ("buf", "view", "base", "top")

    def __init__(self, size: int) -> None:
        self.buf = bytearray(size)
        # A ctypes view pins the buffer (it cannot move) and gives its address.
        self.view = (ctypes.c_char * size).from_buffer(self.buf)
        self.base = ctypes.addressof(self.view)
        self.top = VAL_SIZE  # the root value is at 0

    def alloc(self, size: int) -> int:
        """Room for ``size`` bytes (zeroed, pointer-aligned): its offset;
        :class:`_Full` past the buffer's end."""
        at = self.top
        self.top = top = at + -(-size // _P_SIZE) * _P_SIZE
        if top > len(self.buf):
            raise _Full(top)
        return at


#: Writes a Python value of one type as the value at an offset of a tree.
Pack = Callable[[Tree, int, Any], None]
#: A value's kind then a pointer in its payload at ``OF + offset``.
_KIND_PTR = {
    offset: struct.Struct(f"=B{OF + offset - 1}x{_P}") for offset in (0, _P_SIZE, 2 * _P_SIZE)
}
#: A value's kind then its (size, pointer) payload.
_KIND_SIZED = struct.Struct(f"=B{OF - 1}x{_P}{_P}")


def _constant(name: str) -> tuple[int, int, Any]:
    """``name``'s UTF-8 bytes held in memory that outlives every call: (size,
    address, holder). The deep copy reads them where they are."""
    held = ctypes.create_string_buffer(name.encode())
    return len(held.value), ctypes.addressof(held), held


def _scalar(kind: int, code: str) -> Pack:
    fmt = struct.Struct(f"=B{OF - 1}x{code}")

    def pack(tree: Tree, at: int, v: Any) -> None:
        fmt.pack_into(tree.buf, at, kind, v)

    return pack


def _string(tree: Tree, at: int, v: Any) -> None:
    b = v.encode()  # strict UTF-8: a lone surrogate raises here
    n = len(b)
    if not n:
        _KIND_SIZED.pack_into(tree.buf, at, STRING, 0, 0)
        return
    data = tree.alloc(n)
    tree.buf[data : data + n] = b
    _KIND_SIZED.pack_into(tree.buf, at, STRING, n, tree.base + data)


def _pointing(kind: int, offset: int, inner: Pack | None, option: bool = False) -> Pack:
    """A value of ``kind`` whose payload at ``offset`` points to a new cell
    holding its payload packed by ``inner``; a null pointer when there is no
    ``inner`` (a case without payload) or, for an ``option``, for None."""
    fmt = _KIND_PTR[offset]

    def pack(tree: Tree, at: int, v: Any) -> None:
        if inner is None or (option and v is None):
            fmt.pack_into(tree.buf, at, kind, 0)
            return
        cell = tree.alloc(VAL_SIZE)
        inner(tree, cell, v)
        fmt.pack_into(tree.buf, at, kind, tree.base + cell)

    return pack


def _option_string(tree: Tree, at: int, v: Any) -> None:
    """``option<string>`` (a cgroup file's text): the cell and its bytes in
    one allocation."""
    buf = tree.buf
    if v is None:
        _KIND_PTR[0].pack_into(buf, at, OPTION, 0)
        return
    b = v.encode()  # strict UTF-8: a lone surrogate raises here
    n = len(b)
    cell = tree.alloc(VAL_SIZE + n)
    text = cell + VAL_SIZE
    buf[text : text + n] = b
    _KIND_SIZED.pack_into(buf, cell, STRING, n, tree.base + text if n else 0)
    _KIND_PTR[0].pack_into(buf, at, OPTION, tree.base + cell)


def _option(ty: TypeDesc) -> Pack:
    if ty[1] == ["string"]:
        return _option_string
    return _pointing(OPTION, 0, compile_pack(ty[1]), option=True)


def _result(ty: TypeDesc) -> Pack:
    ok = _pointing(RESULT, _P_SIZE, None if ty[1] is None else compile_pack(ty[1]))
    err = _pointing(RESULT, _P_SIZE, None if ty[2] is None else compile_pack(ty[2]))

    def pack(tree: Tree, at: int, v: Any) -> None:
        is_ok, payload = v
        (ok if is_ok else err)(tree, at, payload)
        tree.buf[at + OF] = 1 if is_ok else 0  # is_ok, before the pointer

    return pack


def _variant(ty: TypeDesc) -> Pack:
    cases = {}
    for name, t in ty[1]:
        size, addr, held = _constant(name)
        cases[name] = (
            size,
            addr,
            held,
            _pointing(VARIANT, 2 * _P_SIZE, None if t is None else compile_pack(t)),
        )

    def pack(tree: Tree, at: int, v: Any) -> None:
        tag, payload = v
        size, addr, _held, inner = cases[tag]
        inner(tree, at, payload)
        _SIZED.pack_into(tree.buf, at + OF, size, addr)

    return pack


def _enum(ty: TypeDesc) -> Pack:
    names = {n: _constant(n) for n in ty[1]}

    def pack(tree: Tree, at: int, v: Any) -> None:
        size, addr, _held = names[v]
        _KIND_SIZED.pack_into(tree.buf, at, ENUM, size, addr)

    return pack


def _list(ty: TypeDesc) -> Pack:
    elem = compile_pack(ty[1])

    def pack(tree: Tree, at: int, v: Any) -> None:
        n = len(v)
        if not n:
            _KIND_SIZED.pack_into(tree.buf, at, LIST, 0, 0)
            return
        data = tree.alloc(n * VAL_SIZE)
        for i, item in enumerate(v):
            elem(tree, data + i * VAL_SIZE, item)
        _KIND_SIZED.pack_into(tree.buf, at, LIST, n, tree.base + data)

    return pack


def _record(ty: TypeDesc) -> Pack:
    names = [_constant(n) for n, _ in ty[1]]
    # The entries' names, absolute: copied as a block, then the values.
    template = b"".join(
        _SIZED.pack(size, addr) + bytes(_ENTRY_SIZE - _SIZED.size) for size, addr, _ in names
    )
    fields = [(i * _ENTRY_SIZE + _ENTRY_VAL, compile_pack(t)) for i, (_, t) in enumerate(ty[1])]
    n = len(fields)

    def pack(tree: Tree, at: int, v: Any, names: Any = names) -> None:
        data = tree.alloc(len(template))
        tree.buf[data : data + len(template)] = template
        for (offset, f), item in zip(fields, v, strict=True):
            f(tree, data + offset, item)
        _KIND_SIZED.pack_into(tree.buf, at, RECORD, n, tree.base + data)

    return pack


#: Scalar types: their kind and struct code.
_SCALARS = {
    "bool": (BOOL, "?"),
    "u16": (U16, "H"),
    "u32": (U32, "I"),
    "s32": (S32, "i"),
    "u64": (U64, "Q"),
    "s64": (S64, "q"),
}
_PACKS: dict[str, Callable[[TypeDesc], Pack]] = {
    **{name: lambda ty: _scalar(*_SCALARS[ty[0]]) for name in _SCALARS},
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


def _layout(*fields: tuple[int, str]) -> struct.Struct:
    """A struct packing ``fields`` (offset, code) in order, zero between."""
    fmt, at = "=", 0
    for offset, code in fields:
        fmt += f"{offset - at}x{code}"
        at = offset + struct.calcsize("=" + code)
    return struct.Struct(fmt)


def _fixed_ok(ty: TypeDesc) -> Callable[[Any, int], None] | None:
    """For an ``ok`` type of a scalar or an option of one: a writer of
    ``ok(v)`` from a single packed image (the common host results, on
    every call's path), else None."""
    option = ty[0] == "option"
    scalar = _SCALARS.get(ty[1][0] if option else ty[0])
    if scalar is None:
        return None
    kind, code = scalar
    ptr = OF + _P_SIZE  # the result's pointer field
    result = [(0, "B"), (OF, "?"), (ptr, _P)]
    if not option:
        image = _layout(*result, (VAL_SIZE, "B"), (VAL_SIZE + OF, code))
        two = ctypes.c_char * (2 * VAL_SIZE)

        def write_scalar(v: Any, out: int) -> None:
            buf = two()
            at = ctypes.addressof(buf)
            image.pack_into(buf, 0, RESULT, True, at + VAL_SIZE, kind, v)
            val_clone(at, out)

        return write_scalar
    some = _layout(*result, (VAL_SIZE, "B"), (VAL_SIZE + OF, _P), (2 * VAL_SIZE, "B"),
                   (2 * VAL_SIZE + OF, code))  # fmt: skip
    none = _layout(*result, (VAL_SIZE, "B"), (VAL_SIZE + OF, _P))
    three = ctypes.c_char * (3 * VAL_SIZE)

    def write_option(v: Any, out: int) -> None:
        buf = three()
        at = ctypes.addressof(buf)
        if v is None:
            none.pack_into(buf, 0, RESULT, True, at + VAL_SIZE, OPTION, 0)
        else:
            some.pack_into(buf, 0, RESULT, True, at + VAL_SIZE, OPTION, at + 2 * VAL_SIZE, kind, v)
        val_clone(at, out)

    return write_option


#: Writes a value as a C-owned value at an address.
Writer = Callable[[Any, int], None]


def compile_writer(ty: TypeDesc) -> Writer:
    """A function writing a Python value of type ``ty`` as a C-owned value
    at an address."""
    pack = compile_pack(ty)

    def write(v: Any, out: int) -> None:
        size = 512
        while True:
            tree = Tree(size)
            try:
                pack(tree, 0, v)
            except _Full as e:
                size = 2 * e.needed  # rare: a long string or list
                continue
            val_clone(tree.base, out)
            return

    return write


def result_writers(ok: TypeDesc) -> tuple[Writer, Writer]:
    """Writers of ``ok(value)`` and ``err(text)`` of a ``result<ok,
    string>`` (a host function's result slot); a scalar or an option of
    one is written from one precomputed image."""
    write = compile_writer(["result", ok, ["string"]])
    write_ok = _fixed_ok(ok) or (lambda v, out: write((True, v), out))
    return write_ok, lambda text, out: write((False, text), out)
