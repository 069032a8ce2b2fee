"""The few component-model entry points this package needs, straight on
wasmtime's C API (``wasmtime._ffi``, loaded by ``import wasmtime``).

wasmtime-py's ``wasmtime.component`` costs ~16 ms to import (hundreds of
dataclasses), more than the whole start-up budget of this package. It is
imported only to describe export types the first time a component is seen
(:func:`describe_func`); the descriptions are cached on disk with the
compiled component.

A type description is plain JSON-able data: ``["string"]``, ``["u64"]``,
``["list", T]``, ``["tuple", [T, ...]]``, ``["record", [[name, T], ...]]``,
``["variant", [[name, T or None], ...]]``, ``["enum", [name, ...]]``,
``["option", T]``, ``["result", T or None, T or None]``, ``["own"]``,
``["borrow"]``.
"""

from __future__ import annotations

import ctypes
import threading
from ctypes import POINTER, byref
from typing import Any

import wasmtime
from wasmtime import WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime._managed import Managed

from ._val import linker_add_func

#: A JSON-able description of a component value type (see module doc).
TypeDesc = Any

#: The exception a host function raised, per thread: a host function runs
#: on the thread that called into the guest, and several threads may call
#: into their own stores at once.
_LAST = threading.local()


def _check(err: Any) -> None:
    if err:
        raise WasmtimeError._from_ptr(err)


def _name(name: str) -> tuple[Any, int]:
    b = name.encode()
    return ctypes.create_string_buffer(b), len(b)


class Component(Managed["ctypes._Pointer[ffi.wasmtime_component_t]"]):  # type: ignore[misc]
    """A compiled component."""

    def __init__(self, engine: wasmtime.Engine, wasm: bytes) -> None:
        """Compiles ``wasm``."""
        binary = (ctypes.c_uint8 * len(wasm)).from_buffer_copy(wasm)
        ptr = POINTER(ffi.wasmtime_component_t)()
        _check(ffi.wasmtime_component_new(engine.ptr(), binary, len(wasm), byref(ptr)))
        self._set_ptr(ptr)

    @classmethod
    def deserialize(cls, engine: wasmtime.Engine, buf: Any, size: int) -> Component:
        """Loads an artifact written by :meth:`serialize` from ``size`` bytes
        at ``buf`` (a ctypes ``c_uint8`` array; wasmtime copies them). The
        caller vouches for the bytes: they are loaded as native code."""
        ptr = POINTER(ffi.wasmtime_component_t)()
        _check(ffi.wasmtime_component_deserialize(engine.ptr(), buf, size, byref(ptr)))
        component: Component = cls.__new__(cls)
        component._set_ptr(ptr)
        return component

    def serialize(self) -> bytes:
        """The precompiled artifact."""
        raw = ffi.wasm_byte_vec_t()
        _check(ffi.wasmtime_component_serialize(self.ptr(), byref(raw)))
        data = bytes(ffi.to_bytes(raw))
        ffi.wasm_byte_vec_delete(byref(raw))
        return data

    def _delete(self, ptr: Any) -> None:
        ffi.wasmtime_component_delete(ptr)


class LinkerInstance(Managed["ctypes._Pointer[ffi.wasmtime_component_linker_instance_t]"]):  # type: ignore[misc]
    """Where a linker's imports are defined (an instance of the root)."""

    def __init__(self, ptr: Any) -> None:
        self._set_ptr(ptr)

    def add_instance(self, name: str) -> LinkerInstance:
        """The nested instance ``name`` (close it before using the linker)."""
        out = POINTER(ffi.wasmtime_component_linker_instance_t)()
        _check(
            ffi.wasmtime_component_linker_instance_add_instance(
                self.ptr(), *_name(name), byref(out)
            )
        )
        return LinkerInstance(out)

    def add_func(self, name: str, callback: Any, data: int, finalizer: Any) -> None:
        """Defines ``name`` with a :data:`._val.HOST_FUNC` callback."""
        buf, n = _name(name)
        _check(linker_add_func(self.ptr(), buf, n, callback, data, finalizer))

    def _delete(self, ptr: Any) -> None:
        ffi.wasmtime_component_linker_instance_delete(ptr)


class Linker(Managed["ctypes._Pointer[ffi.wasmtime_component_linker_t]"]):  # type: ignore[misc]
    """Resolves a component's imports: WASIp2 plus host functions."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._set_ptr(ffi.wasmtime_component_linker_new(engine.ptr()))

    def add_wasip2(self) -> None:
        """Adds wasmtime's WASIp2 implementation."""
        _check(ffi.wasmtime_component_linker_add_wasip2(self.ptr()))

    def root(self) -> LinkerInstance:
        """The root instance (close it before instantiating)."""
        return LinkerInstance(ffi.wasmtime_component_linker_root(self.ptr()))

    def instantiate(self, store: wasmtime.Store, component: Component) -> Instance:
        """Instantiates ``component`` in ``store``."""
        instance = ffi.wasmtime_component_instance_t()
        err = ffi.wasmtime_component_linker_instantiate(
            self.ptr(), store._context(), component.ptr(), byref(instance)
        )
        if err:
            error = WasmtimeError._from_ptr(err)
            raise_last_exception()
            raise error
        return Instance(instance)

    def _delete(self, ptr: Any) -> None:
        ffi.wasmtime_component_linker_delete(ptr)


class Instance:
    """A component instance living in one store."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def func(self, store: wasmtime.Store, interface: str, name: str) -> Any:
        """The raw ``wasmtime_component_func_t`` of ``interface#name``;
        :class:`LookupError` names what the component does not export."""
        ctx = store._context()
        iface = ffi.wasmtime_component_instance_get_export_index(
            byref(self._raw), ctx, None, *_name(interface)
        )
        if not iface:
            raise LookupError(interface)
        try:
            idx = ffi.wasmtime_component_instance_get_export_index(
                byref(self._raw), ctx, iface, *_name(name)
            )
        finally:
            ffi.wasmtime_component_export_index_delete(iface)
        if not idx:
            raise LookupError(f"{interface}#{name}")
        try:
            func = ffi.wasmtime_component_func_t()
            found = ffi.wasmtime_component_instance_get_func(
                byref(self._raw), ctx, idx, byref(func)
            )
        finally:
            ffi.wasmtime_component_export_index_delete(idx)
        if not found:
            raise LookupError(f"{interface}#{name}")
        return func


class Resource(Managed["ctypes._Pointer[ffi.wasmtime_component_resource_any_t]"]):  # type: ignore[misc]
    """An owned handle to a guest resource (e.g. a ``hasher``)."""

    def __init__(self, ptr: Any) -> None:
        self._set_ptr(ptr)

    def drop(self, store: wasmtime.Store) -> None:
        """Runs the guest's destructor for this resource."""
        _check(ffi.wasmtime_component_resource_any_drop(store._context(), self.ptr()))

    def _delete(self, ptr: Any) -> None:
        ffi.wasmtime_component_resource_any_delete(ptr)


def error_for(e: BaseException) -> int:
    """The C API error a host function returns for exception ``e`` (a trap
    in the guest); any other exception than a wasmtime one (``KeyboardInterrupt``
    too) is re-raised by :func:`raise_last_exception` once the call returns
    to Python, on the same thread."""
    err = e if isinstance(e, WasmtimeError) else WasmtimeError("python exception")
    if err is not e:
        _LAST.exception = e
    return ctypes.cast(err._consume(), ctypes.c_void_p).value or 0


def raise_last_exception() -> None:
    """Re-raises the exception a host function raised during this thread's
    last call."""
    exn = getattr(_LAST, "exception", None)
    if exn is not None:
        _LAST.exception = None
        raise exn


def describe_func(func: Any, store: wasmtime.Store) -> tuple[list[TypeDesc], TypeDesc]:
    """The parameter types and result type (None: no result) of a raw
    component function, described with wasmtime-py's type reflection
    (imported here, on first need)."""
    from wasmtime.component._types import FuncType

    ptr = ffi.wasmtime_component_func_type(byref(func), store._context())
    fty = FuncType._from_ptr(ptr)
    try:
        params = [describe(t) for _, t in fty.params]
        result = fty.result
        return params, None if result is None else describe(result)
    finally:
        fty.close()


_SCALARS = {
    "Bool": "bool",
    "S8": "s8",
    "U8": "u8",
    "S16": "s16",
    "U16": "u16",
    "S32": "s32",
    "U32": "u32",
    "S64": "s64",
    "U64": "u64",
    "F32": "f32",
    "F64": "f64",
    "Char": "char",
    "String": "string",
}


def describe(ty: Any) -> TypeDesc:
    """A wasmtime-py ``ValType`` as a type description."""
    kind = type(ty).__name__
    if kind in _SCALARS:
        return [_SCALARS[kind]]

    def opt(t: Any) -> TypeDesc:
        return None if t is None else describe(t)

    if kind == "ListType":
        return ["list", describe(ty.element)]
    if kind == "TupleType":
        return ["tuple", [describe(t) for t in ty.elements]]
    if kind == "RecordType":
        return ["record", [[n, describe(t)] for n, t in ty.fields]]
    if kind == "VariantType":
        return ["variant", [[n, opt(t)] for n, t in ty.cases]]
    if kind == "EnumType":
        return ["enum", list(ty.names)]
    if kind == "OptionType":
        return ["option", describe(ty.payload)]
    if kind == "ResultType":
        return ["result", opt(ty.ok), opt(ty.err)]
    if kind == "OwnType":
        return ["own"]
    if kind == "BorrowType":
        return ["borrow"]
    return ["unsupported", kind]
