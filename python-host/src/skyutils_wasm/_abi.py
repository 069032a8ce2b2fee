"""Fast calls into component exports.

wasmtime-py's generic ``Func.__call__`` re-reads the function type through the
C API on every call (~150 us). Here each export's type is inspected once and
compiled into small lowering/lifting closures (one factory per value kind)
over the package's value layout, :class:`._val.Val`. Arguments live in Python-owned memory (the C
API only borrows them); the result tree is read once and freed with a single
``wasmtime_component_val_delete``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from ctypes import POINTER, c_void_p, string_at
from typing import Any

from wasmtime import WasmtimeError
from wasmtime import _ffi as ffi

from ._capi import Resource, TypeDesc, raise_last_exception
from ._val import (
    BOOL,
    ENUM,
    F64,
    LIST,
    OF,
    OPTION,
    RECORD,
    RESOURCE,
    RESULT,
    S32,
    S64,
    STRING,
    TUPLE,
    U8,
    U32,
    U64,
    VAL_SIZE,
    VARIANT,
    Val,
    func_call,
    read_name,
    val_delete,
)

Keep = list[Any]

Lower = Callable[[Any, Val, Keep], None]
Lift = Callable[[Val], Any]

_I64 = (-(1 << 63), (1 << 63) - 1)


def _string_lower(v: Any, slot: Val, keep: Keep) -> None:
    # The one place strings enter the component: strict UTF-8, so that no
    # lone surrogate (which wasmtime's C API would abort the process on)
    # ever reaches it. Callers route such strings elsewhere first; this
    # raises ``UnicodeEncodeError`` if one slips through.
    b = v.encode("utf-8") if not v.isascii() else v.encode()
    slot.kind = STRING
    slot.of.str_in.size = len(b)
    slot.of.str_in.data = b


def _string_lift(v: Val) -> str:
    s = v.of.str
    return string_at(s.data, s.size).decode("utf-8") if s.size else ""


def _bytes_lower(v: Any, slot: Val, keep: Keep) -> None:
    data = bytes(v)
    n = len(data)
    slot.kind = LIST
    slot.of.list.size = n
    if not n:
        slot.of.list.data = None
        return
    buf = bytearray(n * VAL_SIZE)
    buf[0::VAL_SIZE] = bytes([U8]) * n
    buf[OF::VAL_SIZE] = data
    arr = (Val * n).from_buffer(buf)
    keep.append(buf)
    keep.append(arr)
    slot.of.list.data = ctypes.cast(arr, POINTER(Val))


def _bytes_lift(v: Val) -> bytes:
    n = v.of.list.size
    if not n:
        return b""
    raw = string_at(ctypes.cast(v.of.list.data, c_void_p), n * VAL_SIZE)
    return raw[OF::VAL_SIZE]


_INT_RANGES = {
    "s64": (S64, *_I64),
    "u64": (U64, 0, (1 << 64) - 1),
    "s32": (S32, -(1 << 31), (1 << 31) - 1),
    "u32": (U32, 0, (1 << 32) - 1),
}


# -- lowering: one factory per kind, ``ty`` -> Lower ---------------------------


def _lower_bool(ty: TypeDesc) -> Lower:
    def lower(v: Any, slot: Val, keep: Keep) -> None:
        slot.kind = BOOL
        slot.of.boolean = bool(v)

    return lower


def _lower_int(ty: TypeDesc) -> Lower:
    field = ty[0]
    code, lo, hi = _INT_RANGES[field]

    def lower(v: Any, slot: Val, keep: Keep) -> None:
        if not lo <= v <= hi:
            raise OverflowError(f"{v} out of range for {field}")
        slot.kind = code
        setattr(slot.of, field, v)

    return lower


def _lower_f64(ty: TypeDesc) -> Lower:
    def lower(v: Any, slot: Val, keep: Keep) -> None:
        slot.kind = F64
        slot.of.f64 = v

    return lower


def _lower_list(ty: TypeDesc) -> Lower:
    if ty[1] == ["u8"]:
        return _bytes_lower
    elem = compile_lower(ty[1])

    def lower(v: Any, slot: Val, keep: Keep) -> None:
        n = len(v)
        arr = (Val * n)()
        keep.append(arr)
        for i, item in enumerate(v):
            elem(item, arr[i], keep)
        slot.kind = LIST
        slot.of.list.size = n
        slot.of.list.data = ctypes.cast(arr, POINTER(Val))

    return lower


def _lower_tuple(ty: TypeDesc) -> Lower:
    elems = [compile_lower(t) for t in ty[1]]

    def lower(v: Any, slot: Val, keep: Keep) -> None:
        arr = (Val * len(elems))()
        keep.append(arr)
        for i, (f, item) in enumerate(zip(elems, v, strict=True)):
            f(item, arr[i], keep)
        slot.kind = TUPLE
        slot.of.list.size = len(elems)
        slot.of.list.data = ctypes.cast(arr, POINTER(Val))

    return lower


def _lower_enum(ty: TypeDesc) -> Lower:
    names = {n: n.encode() for n in ty[1]}

    def lower(v: Any, slot: Val, keep: Keep) -> None:
        b = names[v]
        slot.kind = ENUM
        slot.of.str_in.size = len(b)
        slot.of.str_in.data = b

    return lower


def _lower_cell(inner: Lower, payload: Any, keep: Keep) -> Any:
    """A pointer to a Python-owned cell holding ``payload``."""
    cell = Val()
    keep.append(cell)
    inner(payload, cell, keep)
    return ctypes.pointer(cell)


def _lower_option(ty: TypeDesc) -> Lower:
    inner = compile_lower(ty[1])

    def lower(v: Any, slot: Val, keep: Keep) -> None:
        slot.kind = OPTION
        slot.of.option = None if v is None else _lower_cell(inner, v, keep)

    return lower


def _lower_variant(ty: TypeDesc) -> Lower:
    cases = {n: (n.encode(), None if t is None else compile_lower(t)) for n, t in ty[1]}

    def lower(v: Any, slot: Val, keep: Keep) -> None:
        tag, payload = v
        disc, inner = cases[tag]
        slot.kind = VARIANT
        slot.of.variant_in.disc.size = len(disc)
        slot.of.variant_in.disc.data = disc
        slot.of.variant_in.val = None if inner is None else _lower_cell(inner, payload, keep)

    return lower


def _lower_resource(ty: TypeDesc) -> Lower:
    def lower(v: Any, slot: Val, keep: Keep) -> None:
        slot.kind = RESOURCE
        slot.of.resource = ctypes.cast(v.ptr(), c_void_p).value

    return lower


_LOWERS: dict[str, Callable[[TypeDesc], Lower]] = {
    "bool": _lower_bool,
    **{k: _lower_int for k in _INT_RANGES},
    "f64": _lower_f64,
    "string": lambda _ty: _string_lower,
    "list": _lower_list,
    "tuple": _lower_tuple,
    "enum": _lower_enum,
    "option": _lower_option,
    "variant": _lower_variant,
    "own": _lower_resource,
    "borrow": _lower_resource,
}


def compile_lower(ty: TypeDesc) -> Lower:
    """A function writing a Python value of component type ``ty`` (a type
    description, see :mod:`._capi`) into a slot."""
    factory = _LOWERS.get(ty[0])
    if factory is None:
        raise TypeError(f"unsupported parameter type {ty!r}")
    return factory(ty)


# -- lifting: one factory per kind, ``ty`` -> Lift ------------------------------


def _lift_scalar(ty: TypeDesc) -> Lift:
    if ty[0] == "bool":
        return lambda v: bool(v.of.boolean)
    return lambda v, field=ty[0]: getattr(v.of, field)  # type: ignore[misc]


def _lift_list(ty: TypeDesc) -> Lift:
    if ty[1] == ["u8"]:
        return _bytes_lift
    elem = compile_lift(ty[1])

    def lift(v: Val) -> list[Any]:
        data = v.of.list.data
        return [elem(data[i]) for i in range(v.of.list.size)]

    return lift


def _lift_tuple(ty: TypeDesc) -> Lift:
    elems = [compile_lift(t) for t in ty[1]]

    def lift(v: Val) -> Any:
        data = v.of.list.data
        return tuple(f(data[i]) for i, f in enumerate(elems))

    return lift


def _lift_record(ty: TypeDesc) -> Lift:
    fields = [(n, compile_lift(t)) for n, t in ty[1]]

    def lift(v: Val) -> Any:
        data = v.of.record.data
        return {n: f(data[i].val) for i, (n, f) in enumerate(fields)}

    return lift


def _lift_option(ty: TypeDesc) -> Lift:
    inner = compile_lift(ty[1])

    def lift(v: Val) -> Any:
        p = v.of.option
        return inner(p.contents) if p else None

    return lift


def _lift_result(ty: TypeDesc) -> Lift:
    ok = None if ty[1] is None else compile_lift(ty[1])
    err = None if ty[2] is None else compile_lift(ty[2])

    def lift(v: Val) -> Any:
        r = v.of.result
        if r.is_ok:
            return (True, ok(r.val.contents) if ok and r.val else None)
        return (False, err(r.val.contents) if err and r.val else None)

    return lift


def _lift_variant(ty: TypeDesc) -> Lift:
    cases = {n: None if t is None else compile_lift(t) for n, t in ty[1]}

    def lift(v: Val) -> Any:
        tag = read_name(v.of.variant.disc)
        inner = cases[tag]
        p = v.of.variant.val
        return (tag, inner(p.contents) if inner and p else None)

    return lift


def _lift_own(ty: TypeDesc) -> Lift:
    def lift(v: Val) -> Any:
        addr = v.of.resource
        v.kind = BOOL  # ownership moves to the Python object
        v.of.boolean = False
        return Resource(ctypes.cast(addr, POINTER(ffi.wasmtime_component_resource_any_t)))

    return lift


_LIFTS: dict[str, Callable[[TypeDesc], Lift]] = {
    **{k: _lift_scalar for k in ("bool", "s64", "u64", "s32", "u32", "u8", "f64", "f32")},
    "string": lambda _ty: _string_lift,
    "enum": lambda _ty: _string_lift,
    "list": _lift_list,
    "tuple": _lift_tuple,
    "record": _lift_record,
    "option": _lift_option,
    "result": _lift_result,
    "variant": _lift_variant,
    "own": _lift_own,
}


def compile_lift(ty: TypeDesc) -> Lift:
    """A function reading a value of component type ``ty`` (results are
    ``(True, ok)`` / ``(False, err)``, variants ``(tag, payload)``, records
    dicts, options ``None`` or the value)."""
    factory = _LIFTS.get(ty[0])
    if factory is None:
        raise TypeError(f"unsupported result type {ty!r}")
    return factory(ty)


def output_size(v: Val) -> int:
    """Bytes of strings and byte lists in a result tree (each list element
    counts one more), as the Rust host's ``OutputSize``; read before lifting."""
    k = v.kind
    if k == STRING:
        return int(v.of.str.size)
    if k == LIST or k == TUPLE:
        n = v.of.list.size
        if not n:
            return 0
        data = v.of.list.data
        if k == LIST and data[0].kind == U8:
            return int(n)
        extra = 1 if k == LIST else 0
        return sum(output_size(data[i]) + extra for i in range(n))
    if k == RECORD:
        rec = v.of.record
        return sum(output_size(rec.data[i].val) for i in range(rec.size))
    if k == OPTION:
        p = v.of.option
        return output_size(p.contents) if p else 0
    if k == RESULT:
        p = v.of.result.val
        return output_size(p.contents) if p else 0
    if k == VARIANT:
        p = v.of.variant.val
        return output_size(p.contents) if p else 0
    return 0


class OutputLimit(Exception):
    """A result was larger than the caller's limit (``size``, ``limit``)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(size, limit)
        self.size = size
        self.limit = limit


class FastFunc:
    """One export with its compiled converters; call with a store context."""

    __slots__ = ("_func", "_lowers", "_lift", "_n", "_argty")

    def __init__(self, func: Any, params: list[TypeDesc], result: TypeDesc) -> None:
        """``func`` is a raw ``wasmtime_component_func_t``; ``params`` and
        ``result`` describe its type."""
        self._func = func
        self._lowers = [compile_lower(t) for t in params]
        self._lift = None if result is None else compile_lift(result)
        self._n = len(self._lowers)
        self._argty = Val * self._n

    def call(self, ctx: Any, args: Any, max_output: Any) -> Any:
        """Calls the export; a result over ``max_output`` bytes (None: no
        limit) raises :class:`OutputLimit` without being lifted."""
        argv = self._argty()
        keep: Keep = []
        for i, lower in enumerate(self._lowers):
            lower(args[i], argv[i], keep)
        lift = self._lift
        out = Val()
        err = func_call(ctypes.byref(self._func), ctx, argv, self._n, out, 0 if lift is None else 1)
        if err:
            error = WasmtimeError._from_ptr(ctypes.cast(err, POINTER(ffi.wasmtime_error_t)))
            raise_last_exception()
            raise error
        if lift is None:
            return None
        try:
            if max_output is not None:
                size = output_size(out)
                if size > max_output:
                    raise OutputLimit(size, max_output)
            return lift(out)
        finally:
            val_delete(out)
