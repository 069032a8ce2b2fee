"""The package's one ctypes layout of a component value.

:class:`Val` mirrors ``wasmtime_component_val_t`` (checked against
wasmtime-py's declaration at import), with the kind constants of
``wasmtime_component_valkind_t``. Export calls (:mod:`._abi`) lower their
arguments into Python-owned ``Val`` s and lift results from them; host
functions (:mod:`._hostfacts`) read their arguments at raw addresses
(:func:`arg_u32`, ...) and lower their results the same way, then hand
wasmtime a C-owned deep copy (:data:`val_clone`), which it frees.

:data:`LAYOUT_OK` is the one decision, made at import, whether that mirror
may be used: when it differs from wasmtime-py's declarations (another
wasmtime version, :data:`DIFFERENCES`), or when
``SKYUTILS_FORCE_PUBLIC_CONVERSION=1`` asks for it (a test and diagnostic
switch, read once here), every value conversion goes through wasmtime-py's
own code instead (:mod:`._public`): slower, never different. Defining the
classes below touches no memory, so this module always imports.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import (
    POINTER,
    c_bool,
    c_double,
    c_float,
    c_int32,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
    string_at,
)

from wasmtime import _ffi as ffi

from . import _log


class Val(ctypes.Structure):
    """Layout-compatible mirror of ``wasmtime_component_val_t``."""


class Str(ctypes.Structure):
    """A string or name as the C API hands it out (``wasm_byte_vec_t``)."""

    _fields_ = [("size", c_size_t), ("data", c_void_p)]


class StrIn(ctypes.Structure):
    """A string argument (``wasm_byte_vec_t`` over Python-owned bytes)."""

    _fields_ = [("size", c_size_t), ("data", ctypes.c_char_p)]


class _List(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("data", POINTER(Val))]


class Entry(ctypes.Structure):
    """One ``name: value`` field of a record."""


class _Record(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("data", POINTER(Entry))]


class _Variant(ctypes.Structure):
    _fields_ = [("disc", Str), ("val", POINTER(Val))]


class _VariantIn(ctypes.Structure):
    _fields_ = [("disc", StrIn), ("val", POINTER(Val))]


class _Result(ctypes.Structure):
    _fields_ = [("is_ok", c_bool), ("val", POINTER(Val))]


class _Union(ctypes.Union):
    _fields_ = [
        ("boolean", c_bool),
        ("u8", c_uint8),
        ("u16", c_uint16),
        ("s32", c_int32),
        ("u32", c_uint32),
        ("s64", c_int64),
        ("u64", c_uint64),
        ("f32", c_float),
        ("f64", c_double),
        ("str", Str),
        ("str_in", StrIn),
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
Entry._fields_ = [("name", Str), ("val", Val)]
#: Bytes per value (the stride of a list's elements).
VAL_SIZE = ctypes.sizeof(Val)
#: Offset of the payload in a value.
OF = Val.of.offset

# Kinds (wasmtime_component_valkind_t).
BOOL, U8, U16, S32, U32, S64, U64, F32, F64, STRING = 0, 2, 4, 5, 6, 7, 8, 9, 10, 12
LIST, RECORD, TUPLE, VARIANT, ENUM, OPTION, RESULT, RESOURCE = 13, 14, 15, 16, 17, 18, 19, 21


def _layout_differences() -> list[str]:
    """Where this layout differs from wasmtime-py's own declarations of the
    C API (``wasmtime._ffi``, generated from the C headers): sizes, field
    offsets and kind numbers. Any difference (another wasmtime version)
    must keep this mirror unused, whatever ``python -O`` does to asserts:
    the backend then converts values with wasmtime-py's code (:mod:`._public`)."""
    theirs = ffi.wasmtime_component_val_t
    union = ffi.wasmtime_component_valunion_t
    checks = [
        ("sizeof(val)", VAL_SIZE, ctypes.sizeof(theirs)),
        ("offsetof(val, of)", OF, theirs.of.offset),
        (
            "sizeof(record entry)",
            ctypes.sizeof(Entry),
            ctypes.sizeof(ffi.wasmtime_component_valrecord_entry),
        ),
        (
            "offsetof(record entry, val)",
            Entry.val.offset,
            ffi.wasmtime_component_valrecord_entry.val.offset,
        ),
        (
            "offsetof(result, val)",
            _Result.val.offset,
            ffi.wasmtime_component_valresult_t.val.offset,
        ),
        (
            "offsetof(variant, val)",
            _Variant.val.offset,
            ffi.wasmtime_component_valvariant_t.val.offset,
        ),
        ("offsetof(string, data)", Str.data.offset, ffi.wasm_byte_vec_t.data.offset),
        ("offsetof(list, data)", _List.data.offset, ffi.wasmtime_component_vallist.data.offset),
        (
            "offsetof(record, data)",
            _Record.data.offset,
            ffi.wasmtime_component_valrecord.data.offset,
        ),
    ]
    for field in (
        "boolean",
        "u8",
        "u16",
        "s32",
        "u32",
        "s64",
        "u64",
        "f32",
        "f64",
        "option",
        "resource",
    ):
        checks.append(
            (f"sizeof(union.{field})", getattr(_Union, field).size, getattr(union, field).size)
        )
    for ours, their in (
        ("str", "string"),
        ("list", "list"),
        ("record", "record"),
        ("result", "result"),
    ):
        checks.append(
            (f"sizeof(union.{their})", getattr(_Union, ours).size, getattr(union, their).size)
        )
    kinds = {"BOOL": BOOL, "U8": U8, "U16": U16, "S32": S32, "U32": U32, "S64": S64, "U64": U64,
             "F32": F32, "F64": F64, "STRING": STRING, "LIST": LIST, "RECORD": RECORD,
             "TUPLE": TUPLE, "VARIANT": VARIANT, "ENUM": ENUM, "OPTION": OPTION,
             "RESULT": RESULT, "RESOURCE": RESOURCE}  # fmt: skip
    for name, kind in kinds.items():
        declared = getattr(ffi, f"WASMTIME_COMPONENT_{name}", None)
        checks.append((f"WASMTIME_COMPONENT_{name}", kind, getattr(declared, "value", declared)))
    return [
        f"{what}: {ours} here, {theirs} in wasmtime-py"
        for what, ours, theirs in checks
        if ours != theirs
    ]


#: Where this layout differs from wasmtime-py's (empty: it matches).
DIFFERENCES: list[str] = _layout_differences()
#: The environment variable that forces the public conversion (test and
#: diagnostic switch; ``1`` forces it, read once at import).
FORCE_PUBLIC_ENV = "SKYUTILS_FORCE_PUBLIC_CONVERSION"
#: Whether the public conversion was forced by :data:`FORCE_PUBLIC_ENV`.
FORCED_PUBLIC = os.environ.get(FORCE_PUBLIC_ENV, "").strip() == "1"
#: Whether export calls and host functions may use this mirror (the fast
#: path); if not, :mod:`._public` converts every value.
LAYOUT_OK = not DIFFERENCES and not FORCED_PUBLIC


def conversion_info() -> tuple[str, str]:
    """Which value conversion the wasm backend uses and why (for
    ``backend_info()``)."""
    if LAYOUT_OK:
        return "fast", "the ctypes value layout matches this wasmtime-py"
    if DIFFERENCES:
        return "public", (
            "the component value layout differs from this wasmtime-py "
            f"({', '.join(DIFFERENCES)}): wasmtime-py's public API converts values"
        )
    return "public", f"forced by {FORCE_PUBLIC_ENV}=1"


if DIFFERENCES:
    _log.get("skyutils_wasm").warning(
        "skyutils_wasm: %s (slower, same results)", conversion_info()[1]
    )

_dll = ctypes.CDLL(ffi.dll._name)
#: The same library with calls that keep the GIL (~0.4 us cheaper), for
#: calls that never call back into Python and never wait (allocations).
_held = ctypes.PyDLL(ffi.dll._name)
_CALL_ARGS: list[type[c_void_p] | type[c_size_t]] = [
    c_void_p,
    c_void_p,
    c_void_p,
    c_size_t,
    c_void_p,
    c_size_t,
]
#: ``wasmtime_component_func_call`` over this layout, with addresses as plain
#: ints (func, context, arguments, results): the cheapest conversion ctypes
#: has, for the hottest call of the package. Releases the GIL.
func_call = _dll.wasmtime_component_func_call
func_call.restype = c_void_p
func_call.argtypes = _CALL_ARGS
#: Frees a value tree the C API allocated (``wasmtime_component_val_delete``;
#: keeps the GIL: it calls nothing back).
val_delete = _held.wasmtime_component_val_delete
val_delete.restype = None
val_delete.argtypes = [c_void_p]
#: Deep-copies a value tree into a C-owned one at a (result) slot
#: (``wasmtime_component_val_clone``; keeps the GIL: it calls nothing back).
val_clone = _held.wasmtime_component_val_clone
val_clone.restype = None
val_clone.argtypes = [c_void_p, c_void_p]
#: A host function's C signature (``wasmtime_component_func_callback_t``),
#: with every pointer an address (a plain int: the cheapest conversion
#: ctypes has) and the unused context and type pointers untyped.
HOST_FUNC = ctypes.CFUNCTYPE(
    c_size_t, c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t
)
#: A host function's finalizer (called with its ``data`` when dropped).
FINALIZER = ctypes.CFUNCTYPE(None, c_void_p)
#: ``wasmtime_component_linker_instance_add_func`` taking a :data:`HOST_FUNC`.
linker_add_func = _dll.wasmtime_component_linker_instance_add_func
linker_add_func.restype = POINTER(ffi.wasmtime_error_t)
linker_add_func.argtypes = [
    POINTER(ffi.wasmtime_component_linker_instance_t),
    ctypes.c_char_p,
    c_size_t,
    HOST_FUNC,
    c_void_p,
    FINALIZER,
]


def arg_u32(at: int) -> int:
    """A ``u32`` argument's value, from its address."""
    return c_uint32.from_address(at + OF).value


def arg_u16(at: int) -> int:
    """A ``u16`` argument's value, from its address."""
    return c_uint16.from_address(at + OF).value


def arg_name(at: int) -> str:
    """An ``enum`` argument's case name, from its address."""
    return read_name(Str.from_address(at + OF))


def read_name(s: Str) -> str:
    """The text of a C-API string or name."""
    return string_at(s.data, s.size).decode("utf-8") if s.size else ""
