"""Fast calls into component exports.

wasmtime-py's generic ``Func.__call__`` re-reads the function type through the
C API on every call (~150 us). Here each export's type is inspected once and
compiled into small lowering/lifting closures over a ctypes mirror of
``wasmtime_component_val_t``. Arguments live in Python-owned memory (the C
API only borrows them); the result tree is read once and freed with a single
``wasmtime_component_val_delete``.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, c_bool, c_double, c_float, c_int32, c_int64, c_size_t
from ctypes import c_uint8, c_uint32, c_uint64, c_void_p, string_at
from typing import Any, Callable, List

from wasmtime import WasmtimeError
from wasmtime import _ffi as ffi

from ._capi import Resource, TypeDesc, raise_last_exception

Keep = List[Any]


class Val(ctypes.Structure):
    """Layout-compatible mirror of ``wasmtime_component_val_t``."""


class _Str(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("data", c_void_p)]


class _StrIn(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("data", ctypes.c_char_p)]


class _List(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("data", POINTER(Val))]


class _Entry(ctypes.Structure):
    pass


class _Record(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("data", POINTER(_Entry))]


class _Variant(ctypes.Structure):
    _fields_ = [("disc", _Str), ("val", POINTER(Val))]


class _VariantIn(ctypes.Structure):
    _fields_ = [("disc", _StrIn), ("val", POINTER(Val))]


class _Result(ctypes.Structure):
    _fields_ = [("is_ok", c_bool), ("val", POINTER(Val))]


class _Union(ctypes.Union):
    _fields_ = [
        ("boolean", c_bool),
        ("u8", c_uint8),
        ("s32", c_int32),
        ("u32", c_uint32),
        ("s64", c_int64),
        ("u64", c_uint64),
        ("f32", c_float),
        ("f64", c_double),
        ("str", _Str),
        ("str_in", _StrIn),
        ("list", _List),
        ("record", _Record),
        ("variant", _Variant),
        ("variant_in", _VariantIn),
        ("option", POINTER(Val)),
        ("result", _Result),
        ("resource", c_void_p),
        ("_pad", c_uint8 * 24),
    ]


Val._fields_ = [("kind", c_uint8), ("of", _Union)]
_Entry._fields_ = [("name", _Str), ("val", Val)]
assert ctypes.sizeof(Val) == ctypes.sizeof(ffi.wasmtime_component_val_t)
assert ctypes.sizeof(_Entry) == ctypes.sizeof(ffi.wasmtime_component_valrecord_entry)
VAL_SIZE = ctypes.sizeof(Val)
_OF = Val.of.offset

# Kinds (wasmtime_component_valkind_t).
BOOL, U8, S32, U32, S64, U64, F32, F64, STRING = 0, 2, 5, 6, 7, 8, 9, 10, 12
LIST, RECORD, TUPLE, VARIANT, ENUM, OPTION, RESULT, RESOURCE = 13, 14, 15, 16, 17, 18, 19, 21

_dll = ctypes.CDLL(ffi.dll._name)
_func_call = _dll.wasmtime_component_func_call
_func_call.restype = c_void_p
_func_call.argtypes = [
    POINTER(ffi.wasmtime_component_func_t),
    POINTER(ffi.wasmtime_context_t),
    POINTER(Val),
    c_size_t,
    POINTER(Val),
    c_size_t,
]
_val_delete = _dll.wasmtime_component_val_delete
_val_delete.restype = None
_val_delete.argtypes = [POINTER(Val)]

Lower = Callable[[Any, Val, Keep], None]
Lift = Callable[[Val], Any]

_I64 = (-(1 << 63), (1 << 63) - 1)


def _int_lower(kind: int, field: str, lo: int, hi: int) -> Lower:
    def lower(v: Any, slot: Val, keep: Keep) -> None:
        if not lo <= v <= hi:
            raise OverflowError(f"{v} out of range for {field}")
        slot.kind = kind
        setattr(slot.of, field, v)

    return lower


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
    buf[_OF::VAL_SIZE] = data
    arr = (Val * n).from_buffer(buf)
    keep.append(buf)
    keep.append(arr)
    slot.of.list.data = ctypes.cast(arr, POINTER(Val))


def _bytes_lift(v: Val) -> bytes:
    n = v.of.list.size
    if not n:
        return b""
    raw = string_at(ctypes.cast(v.of.list.data, c_void_p), n * VAL_SIZE)
    return raw[_OF::VAL_SIZE]


_INT_RANGES = {
    "s64": (S64, *_I64),
    "u64": (U64, 0, (1 << 64) - 1),
    "s32": (S32, -(1 << 31), (1 << 31) - 1),
    "u32": (U32, 0, (1 << 32) - 1),
}


def compile_lower(ty: TypeDesc) -> Lower:
    """A function writing a Python value of component type ``ty`` (a type
    description, see :mod:`._capi`) into a slot."""
    kind = ty[0]
    if kind == "bool":

        def lower_bool(v: Any, slot: Val, keep: Keep) -> None:
            slot.kind = BOOL
            slot.of.boolean = bool(v)

        return lower_bool
    if kind in _INT_RANGES:
        code, lo, hi = _INT_RANGES[kind]
        return _int_lower(code, kind, lo, hi)
    if kind == "f64":

        def lower_f64(v: Any, slot: Val, keep: Keep) -> None:
            slot.kind = F64
            slot.of.f64 = v

        return lower_f64
    if kind == "string":
        return _string_lower
    if kind == "list":
        if ty[1] == ["u8"]:
            return _bytes_lower
        elem = compile_lower(ty[1])

        def lower_list(v: Any, slot: Val, keep: Keep) -> None:
            n = len(v)
            arr = (Val * n)()
            keep.append(arr)
            for i, item in enumerate(v):
                elem(item, arr[i], keep)
            slot.kind = LIST
            slot.of.list.size = n
            slot.of.list.data = ctypes.cast(arr, POINTER(Val))

        return lower_list
    if kind == "tuple":
        elems = [compile_lower(t) for t in ty[1]]

        def lower_tuple(v: Any, slot: Val, keep: Keep) -> None:
            arr = (Val * len(elems))()
            keep.append(arr)
            for i, (f, item) in enumerate(zip(elems, v)):
                f(item, arr[i], keep)
            slot.kind = TUPLE
            slot.of.list.size = len(elems)
            slot.of.list.data = ctypes.cast(arr, POINTER(Val))

        return lower_tuple
    if kind == "enum":
        names = {n: n.encode() for n in ty[1]}

        def lower_enum(v: Any, slot: Val, keep: Keep) -> None:
            b = names[v]
            slot.kind = ENUM
            slot.of.str_in.size = len(b)
            slot.of.str_in.data = b

        return lower_enum
    if kind == "option":
        inner = compile_lower(ty[1])

        def lower_option(v: Any, slot: Val, keep: Keep) -> None:
            slot.kind = OPTION
            if v is None:
                slot.of.option = None
                return
            cell = Val()
            keep.append(cell)
            inner(v, cell, keep)
            slot.of.option = ctypes.pointer(cell)

        return lower_option
    if kind == "variant":
        cases = {n: (n.encode(), None if t is None else compile_lower(t)) for n, t in ty[1]}

        def lower_variant(v: Any, slot: Val, keep: Keep) -> None:
            tag, payload = v
            disc, inner = cases[tag]
            slot.kind = VARIANT
            slot.of.variant_in.disc.size = len(disc)
            slot.of.variant_in.disc.data = disc
            if inner is None:
                slot.of.variant_in.val = None
                return
            cell = Val()
            keep.append(cell)
            inner(payload, cell, keep)
            slot.of.variant_in.val = ctypes.pointer(cell)

        return lower_variant
    if kind in ("own", "borrow"):

        def lower_resource(v: Any, slot: Val, keep: Keep) -> None:
            slot.kind = RESOURCE
            slot.of.resource = ctypes.cast(v.ptr(), c_void_p).value

        return lower_resource
    raise TypeError(f"unsupported parameter type {ty!r}")


def compile_lift(ty: TypeDesc) -> Lift:
    """A function reading a value of component type ``ty`` (results are
    ``(True, ok)`` / ``(False, err)``, variants ``(tag, payload)``, records
    dicts, options ``None`` or the value)."""
    kind = ty[0]
    if kind == "bool":
        return lambda v: bool(v.of.boolean)
    if kind in ("s64", "u64", "s32", "u32", "u8", "f64", "f32"):
        return lambda v, field=kind: getattr(v.of, field)  # type: ignore[misc]
    if kind in ("string", "enum"):
        return _string_lift
    if kind == "list":
        if ty[1] == ["u8"]:
            return _bytes_lift
        elem = compile_lift(ty[1])

        def lift_list(v: Val) -> List[Any]:
            data = v.of.list.data
            return [elem(data[i]) for i in range(v.of.list.size)]

        return lift_list
    if kind == "tuple":
        elems = [compile_lift(t) for t in ty[1]]

        def lift_tuple(v: Val) -> Any:
            data = v.of.list.data
            return tuple(f(data[i]) for i, f in enumerate(elems))

        return lift_tuple
    if kind == "record":
        fields = [(n, compile_lift(t)) for n, t in ty[1]]

        def lift_record(v: Val) -> Any:
            data = v.of.record.data
            return {n: f(data[i].val) for i, (n, f) in enumerate(fields)}

        return lift_record
    if kind == "option":
        inner = compile_lift(ty[1])

        def lift_option(v: Val) -> Any:
            p = v.of.option
            return inner(p.contents) if p else None

        return lift_option
    if kind == "result":
        ok_t, err_t = ty[1], ty[2]
        ok = None if ok_t is None else compile_lift(ok_t)
        err = None if err_t is None else compile_lift(err_t)

        def lift_result(v: Val) -> Any:
            r = v.of.result
            if r.is_ok:
                return (True, ok(r.val.contents) if ok and r.val else None)
            return (False, err(r.val.contents) if err and r.val else None)

        return lift_result
    if kind == "variant":
        cases = {n: None if t is None else compile_lift(t) for n, t in ty[1]}

        def lift_variant(v: Val) -> Any:
            tag = _string_lift_name(v.of.variant.disc)
            inner = cases[tag]
            p = v.of.variant.val
            return (tag, inner(p.contents) if inner and p else None)

        return lift_variant
    if kind == "own":

        def lift_own(v: Val) -> Any:
            addr = v.of.resource
            v.kind = BOOL  # ownership moves to the Python object
            v.of.boolean = False
            ptr = ctypes.cast(addr, POINTER(ffi.wasmtime_component_resource_any_t))
            return Resource(ptr)

        return lift_own
    raise TypeError(f"unsupported result type {ty!r}")


def _string_lift_name(s: _Str) -> str:
    return string_at(s.data, s.size).decode("utf-8")


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

    def __init__(self, func: Any, params: List[TypeDesc], result: TypeDesc) -> None:
        """``func`` is a raw ``wasmtime_component_func_t``; ``params`` and
        ``result`` describe its type."""
        self._func = func
        self._lowers = [compile_lower(t) for t in params]
        self._lift = None if result is None else compile_lift(result)
        self._n = len(self._lowers)
        self._argty = Val * self._n

    def __call__(self, ctx: Any, *args: Any) -> Any:
        """Calls the export in the store whose context pointer is ``ctx``."""
        return self.call(ctx, args, None)

    def call(self, ctx: Any, args: Any, max_output: Any) -> Any:
        """Calls the export; a result over ``max_output`` bytes (None: no
        limit) raises :class:`OutputLimit` without being lifted."""
        argv = self._argty()
        keep: Keep = []
        for i, lower in enumerate(self._lowers):
            lower(args[i], argv[i], keep)
        lift = self._lift
        out = Val()
        err = _func_call(
            ctypes.byref(self._func), ctx, argv, self._n, out, 0 if lift is None else 1
        )
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
            _val_delete(out)
