"""Fast calls into component exports.

wasmtime-py's generic ``Func.__call__`` re-reads the function type through the
C API on every call (~150 us). Here each export's type is inspected once and
compiled into small lowering/lifting closures (one factory per value kind)
over the package's value layout, :class:`._val.Val`. Arguments live in Python-owned memory (the C
API only borrows them); the result tree is read once and freed with a single
``wasmtime_component_val_delete``.

Used only when that layout matches this wasmtime-py's
(:data:`._val.LAYOUT_OK`); else :class:`._public.PublicFunc` calls exports
with the same arguments and result shapes (and :class:`OutputLimit`).
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
    Str,
    StrIn,
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
    # The one place strings enter the component (with _bind_string, for a
    # parameter's own slot): strict UTF-8, so that no
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


# -- bound lowering: a parameter's own slot, reused by every call ------------
#
# Each export keeps one argument array (the C API only borrows it during the
# call), so a parameter's kind is written once and scalar, string, option
# and variant parameters write only their payload: no per-call allocation,
# and field views bound once instead of looked up through the union.

Bound = Callable[[Any, Keep], None]

#: Strings longer than this are let go after the call (not kept alive by the
#: reused argument slot until the next one).
HOLD_MAX = 1 << 16


def _bind_string(slot: Val) -> Bound:
    slot.kind = STRING
    view = slot.of.str_in

    def lower(v: Any, keep: Keep) -> None:
        b = v.encode()  # strict UTF-8, as in _string_lower
        view.size = len(b)
        view.data = b
        if len(b) > HOLD_MAX:
            keep.append(view)

    return lower


def _bind_int(ty: TypeDesc, slot: Val) -> Bound:
    field = ty[0]
    code, lo, hi = _INT_RANGES[field]
    slot.kind = code
    of = slot.of

    def lower(v: Any, keep: Keep) -> None:
        if not lo <= v <= hi:
            raise OverflowError(f"{v} out of range for {field}")
        setattr(of, field, v)

    return lower


def _bind_bool(slot: Val) -> Bound:
    slot.kind = BOOL
    of = slot.of

    def lower(v: Any, keep: Keep) -> None:
        of.boolean = bool(v)

    return lower


def _bind_f64(slot: Val) -> Bound:
    slot.kind = F64
    of = slot.of

    def lower(v: Any, keep: Keep) -> None:
        of.f64 = v

    return lower


def _bind_option(ty: TypeDesc, slot: Val) -> Bound:
    slot.kind = OPTION
    cell = Val()
    inner = bind_lower(ty[1], cell)
    of = slot.of
    present = ctypes.pointer(cell)

    def lower(v: Any, keep: Keep) -> None:
        if v is None:
            of.option = None
        else:
            inner(v, keep)
            of.option = present

    return lower


class _VariantAt(ctypes.Structure):
    """A variant argument with its pointers as addresses (plain ints: no
    ctypes bookkeeping when set)."""

    _fields_ = [("disc_size", ctypes.c_size_t), ("disc", c_void_p), ("val", c_void_p)]


def _bind_variant(ty: TypeDesc, slot: Val) -> Bound:
    slot.kind = VARIANT
    view = _VariantAt.from_address(ctypes.addressof(slot) + OF)
    cases: dict[str, tuple[int, int, Bound | None, int | None]] = {}
    held: list[Any] = []  # the case names' bytes and the payload cells
    for name, t in ty[1]:
        disc = ctypes.c_char_p(name.encode())
        held.append(disc)
        disc_at = ctypes.cast(disc, c_void_p).value or 0
        if t is None:
            cases[name] = (len(name.encode()), disc_at, None, None)
        else:
            cell = Val()
            held.append(cell)
            cases[name] = (len(name.encode()), disc_at, bind_lower(t, cell), ctypes.addressof(cell))

    last: list[Any] = [None]  # the case the slot holds: no rewrite needed

    def lower(v: Any, keep: Keep, held: Any = held) -> None:
        tag, payload = v
        if tag is last[0]:
            inner = cases[tag][2]
        else:
            view.disc_size, view.disc, inner, view.val = cases[tag]
            last[0] = tag
        if inner is not None:
            inner(payload, keep)

    return lower


def bind_lower(ty: TypeDesc, slot: Val) -> Bound:
    """A function writing a Python value of component type ``ty`` into
    ``slot``, a value the caller keeps for every call (an export's argument,
    or a cell of one)."""
    kind = ty[0]
    if kind == "string":
        return _bind_string(slot)
    if kind in _INT_RANGES:
        return _bind_int(ty, slot)
    if kind == "bool":
        return _bind_bool(slot)
    if kind == "f64":
        return _bind_f64(slot)
    if kind == "option":
        return _bind_option(ty, slot)
    if kind == "variant":
        return _bind_variant(ty, slot)
    generic = compile_lower(ty)

    def lower(v: Any, keep: Keep) -> None:
        generic(v, slot, keep)

    return lower


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


class _ResultAt(ctypes.Structure):
    """A result's payload with its pointer read as an address."""

    _fields_ = [("is_ok", ctypes.c_bool), ("val", c_void_p)]


#: UTF-8 bytes at an address as a ``str``, in one step (keeps the GIL).
text_at = ctypes.pythonapi.PyUnicode_FromStringAndSize
text_at.restype = ctypes.py_object
text_at.argtypes = [c_void_p, ctypes.c_ssize_t]


def _lift_at(ty: TypeDesc) -> Callable[[int], Any] | None:
    """A lift reading the value at an address (a result's or option's
    cell), or None for no payload."""
    if ty is None:
        return None
    if ty[0] in ("string", "enum"):
        # The C API boxes a payload anew for every call, mostly at the
        # address the last one was freed from: reuse that view.
        last: list[Any] = [0, None]

        def lift_str(at: int) -> str:
            if at == last[0]:
                s = last[1]
            else:
                s = Str.from_address(at + OF)
                last[0], last[1] = at, s
            return text_at(s.data, s.size)  # type: ignore[no-any-return]

        return lift_str
    generic = compile_lift(ty)
    return lambda at: generic(Val.from_address(at))


def bind_lift(ty: TypeDesc, slot: Val) -> Callable[[], Any]:
    """A function reading a result of type ``ty`` from ``slot``, the value
    an export writes its result to at every call (views bound once)."""
    kind = ty[0]
    if kind == "result":
        view = _ResultAt.from_address(ctypes.addressof(slot) + OF)
        ok, err = _lift_at(ty[1]), _lift_at(ty[2])

        def lift_result() -> Any:
            p = view.val
            if view.is_ok:
                return (True, ok(p) if ok and p else None)
            return (False, err(p) if err and p else None)

        return lift_result
    if kind == "string":
        s = slot.of.str

        def lift_str() -> str:
            return text_at(s.data, s.size)  # type: ignore[no-any-return]

        return lift_str
    generic = compile_lift(ty)
    return lambda: generic(slot)


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
    """One export with its compiled converters and its own argument and
    result slots; call with a store context's address. Not reentrant: the
    session's lock serializes calls."""

    __slots__ = ("_func", "_addr", "_lowers", "_lift", "_n", "_argv", "_out", "_argv_at", "_out_at")

    def __init__(self, func: Any, params: list[TypeDesc], result: TypeDesc) -> None:
        """``func`` is a raw ``wasmtime_component_func_t``; ``params`` and
        ``result`` describe its type."""
        self._func = func
        self._addr = ctypes.addressof(func)
        self._n = len(params)
        self._argv = (Val * max(self._n, 1))()
        self._argv_at = ctypes.addressof(self._argv)
        self._lowers = [bind_lower(t, self._argv[i]) for i, t in enumerate(params)]
        self._out = Val()
        self._out_at = ctypes.addressof(self._out)
        self._lift = None if result is None else bind_lift(result, self._out)

    def call(self, ctx: int, args: Any, max_output: int | None) -> Any:
        """Calls the export; a result over ``max_output`` bytes (None: no
        limit) raises :class:`OutputLimit` without being lifted.

        The GIL is released during the call even when it is short: the
        guest's stderr (a panic message) reaches Python from another thread."""
        keep: Keep = []
        for lower, arg in zip(self._lowers, args, strict=False):  # callers pass all
            lower(arg, keep)
        lift = self._lift
        err = func_call(
            self._addr, ctx, self._argv_at, self._n, self._out_at, 0 if lift is None else 1
        )
        if keep:
            for x in keep:  # large strings: not held by the slot until next time
                if isinstance(x, StrIn):
                    x.data = None
        if err:
            error = WasmtimeError._from_ptr(ctypes.cast(err, POINTER(ffi.wasmtime_error_t)))
            raise_last_exception()
            raise error
        if lift is None:
            return None
        out = self._out
        try:
            if max_output is not None:
                size = output_size(out)
                if size > max_output:
                    raise OutputLimit(size, max_output)
            return lift()
        finally:
            val_delete(self._out_at)
            # The C API does not clear a deleted value: reset the slot so it
            # is never freed twice.
            out.kind = BOOL
