"""A sandbox session: one store + instance with fixed read-only grants,
its per-call limits, and the mapping of traps to :class:`SandboxError` s.

The guest's libc caches its preopens and environment, so a session is only
ever reused with exactly the grants it was created with; a trap marks it
dead and the backend builds a new one.
"""

from __future__ import annotations

import collections
import ctypes
import os
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import wasmtime
from wasmtime import _ffi as ffi

from . import _abi
from ._errors import (
    DeadlineExceededError,
    MemoryLimitExceededError,
    MissingExportError,
    OutOfFuelError,
    OutputTooLargeError,
    PluginLoadError,
    SandboxError,
    TrapError,
)
from ._grants import FD_DIR, utf8
from ._policy import WASM32_MAX_MEMORY, Policy
from ._val import LAYOUT_OK

if TYPE_CHECKING:
    from ._public import PublicFunc
    from ._runtime import Runtime

    #: An export ready to call (the same ``call`` either way).
    Export: TypeAlias = _abi.FastFunc | PublicFunc

PKG = "skypilot:utils"
VER = "0.1.0"
#: How often the engines' epoch advances (see :func:`._wasm.engine`).
EPOCH_TICK_S = 0.02
_STDERR_CAP = 4096
#: The epoch deadline of a call without one (the epoch advances every
#: EPOCH_TICK_S): beyond any run, far from overflowing when added to it.
_NO_DEADLINE_TICKS = 1 << 62


def _deadline_ticks(deadline: float | None) -> int:
    """A deadline in seconds (None: none) as epoch ticks."""
    return _NO_DEADLINE_TICKS if deadline is None else int(deadline / EPOCH_TICK_S) + 1


def _stderr_sink(buf: bytearray) -> Callable[[bytes], None]:
    """A guest stderr callback keeping the first :data:`_STDERR_CAP` bytes
    in ``buf`` (and referencing nothing else)."""

    def on_stderr(data: bytes) -> None:
        if len(buf) < _STDERR_CAP:
            buf.extend(data[: _STDERR_CAP - len(buf)])

    return on_stderr


def _memory_cap_name(limit: int) -> str:
    return "the wasm32 maximum" if limit >= WASM32_MAX_MEMORY else "the memory limit asked for"


_ALLOC_FAILED = re.compile(r"memory allocation of (\d+) bytes failed")
#: Rust's "thread '...' panicked at file:line:col: " before a panic message.
_PANIC_AT = re.compile(r"thread '[^']*'(?: \(\d+\))? panicked at \S+?:\d+:\d+:\s*")


_set_epoch_deadline = ffi.wasmtime_context_set_epoch_deadline


class Session:
    """One store + instance; calls are serialized by a lock."""

    def __init__(
        self,
        rt: Runtime,
        preopens: list[tuple[bytes, str]],
        env: dict[str, str],
        limits: Policy,
    ) -> None:
        self.rt = rt
        self.limits = limits
        #: What a successor instance is built from (see :meth:`call`).
        self._config = (preopens, env)
        #: The instance that serves calls which found this one discarded.
        self.successor: Session | None = None
        #: The memory cap of this instance's store (set once, at creation).
        self.memory = limits.memory_limit
        self.lock = threading.RLock()
        self.dead: str | None = None
        self.stderr = bytearray()
        self.pending_drops: collections.deque[Any] = collections.deque()
        store = wasmtime.Store(rt.engine)
        store.set_limits(memory_size=limits.memory_limit)
        wasi = wasmtime.WasiConfig()
        wasi.env = list(env.items())
        # Not a bound method: wasmtime-py keeps the callback in a global slab
        # until the store's WASI context is dropped, so a callback holding
        # this session would keep the session, and so its store, alive forever.
        wasi.stderr_custom = _stderr_sink(self.stderr)
        opened: list[int] = []
        try:
            for host, guest in preopens:
                try:
                    wasi.preopen_dir(_c_api_path(host, opened), guest, False)
                except (wasmtime.WasmtimeError, OSError):
                    pass  # a directory that vanished: the guest does not see it
            store.set_wasi(wasi)
        finally:
            for fd in opened:
                os.close(fd)
        self.store = store
        self.ctx = store._context()
        #: The store context's address, as export calls take it.
        self.ctx_at: int = ctypes.cast(self.ctx, ctypes.c_void_p).value or 0
        #: Whether the armed epoch deadline is "none" (which never runs out,
        #: so calls without a deadline need not re-arm it).
        self._unbounded = False
        self._arm()
        try:
            self.instance = rt.linker.instantiate(store, rt.component)
        except wasmtime.WasmtimeError as e:
            if isinstance(e, wasmtime.Trap) or _is_trap(str(e)):
                raise self._trap(e) from None
            raise PluginLoadError(f"component could not be instantiated: {e}") from None
        self.funcs: dict[tuple[str, str], Export] = {}

    def _arm(self) -> None:
        """Arms the per-call limits, before instantiation and before each
        call: the deadline (as epoch ticks from now; straight to the C API,
        wasmtime-py's wrapper costs ~1 µs) and the fuel budget."""
        limits = self.limits
        if limits.deadline is not None:
            _set_epoch_deadline(self.ctx, _deadline_ticks(limits.deadline))
            self._unbounded = False
        elif not self._unbounded:
            _set_epoch_deadline(self.ctx, _NO_DEADLINE_TICKS)
            self._unbounded = True
        if limits.fuel is not None:
            self.store.set_fuel(limits.fuel)

    def func(self, iface: str, name: str) -> Export:
        """Export ``iface#name`` with its compiled converters (looked up once;
        through wasmtime-py's public API when :data:`._val.LAYOUT_OK` is
        false); :class:`MissingExportError` when the component lacks it."""
        f: Export | None = self.funcs.get((iface, name))
        if f is None:
            key = f"{iface}#{name}"
            full = f"{PKG}/{iface}@{VER}"
            try:
                raw = self.instance.func(self.store, full, name)
            except LookupError as e:
                raise MissingExportError(str(e.args[0])) from None
            try:
                params, result = self.rt.func_type(key, raw, self.store)
                if LAYOUT_OK:
                    f = _abi.FastFunc(raw, params, result)
                else:
                    from ._public import PublicFunc

                    f = PublicFunc(raw, self.store, params, result)
            except TypeError as e:
                raise MissingExportError(f"{full}#{name} (unsupported type: {e})") from None
            self.funcs[iface, name] = f
        return f

    def call(self, iface: str, name: str, *args: Any) -> Any:
        """Calls an export; traps mark the session dead and raise SandboxError.

        A call that finds the session already dead (another thread's call
        discarded it after this one picked it, nothing having run here) runs
        on a fresh instance with the same grants instead; only a resource's
        method, whose object went with the old store, raises."""
        with self.lock:
            if self.dead is None:
                f = self.funcs.get((iface, name)) or self.func(iface, name)
                if self.pending_drops:
                    self._drop_pending()
                limits = self.limits
                if limits.deadline is not None or limits.fuel is not None or not self._unbounded:
                    self._arm()
                try:
                    return f.call(self.ctx_at, args, limits.max_output)
                except wasmtime.WasmtimeError as e:
                    raise self._trap(e) from None
                except _abi.OutputLimit as e:
                    self.dead = "output too large"
                    raise OutputTooLargeError(e.size, e.limit) from None
                except BaseException as e:
                    self.dead = f"host error {e!r}"
                    raise
            if name.startswith("["):  # [method], [static], [constructor]
                raise SandboxError(f"sandbox instance was discarded after: {self.dead}")
            successor = self._successor()
        return successor.call(iface, name, *args)

    def call_serving(self, iface: str, name: str, *args: Any) -> tuple[Session, Any]:
        """:meth:`call`, with the session that ran it (this one, or the
        successor a discarded one passed it to): a resource in the result
        lives there, so its methods must be called on that session."""
        with self.lock:
            if self.dead is None:
                return self, self.call(iface, name, *args)
            successor = self._successor()
        return successor.call_serving(iface, name, *args)

    def _successor(self) -> Session:
        """The fresh instance, with the same grants, that serves the calls
        which find this one discarded (made once; under the lock)."""
        if self.successor is None:
            self.successor = self.rt.session(*self._config, self.limits)
        return self.successor

    def _trap(self, e: Exception) -> SandboxError:
        text = str(e)
        said = self.stderr.decode("utf-8", "replace")
        lines = [ln for ln in said.splitlines() if ln.strip() and not ln.startswith("note: ")]
        if "memory allocation of" in said or "out of memory" in said:
            self.dead = "memory cap"
            limit = min(self.limits.memory_limit, WASM32_MAX_MEMORY)
            m = _ALLOC_FAILED.search(said)
            requested = int(m.group(1)) if m else None
            msg = (
                f"sandboxed call exceeded the memory cap of {limit} bytes"
                f" ({_memory_cap_name(limit)})"
            )
            if requested is not None:
                msg += f": an allocation of {requested} bytes in the guest failed"
            if lines:
                msg += f" ({_PANIC_AT.sub('', ' '.join(lines))})"
            return MemoryLimitExceededError(msg, limit, requested)
        if "interrupt" in text and self.limits.deadline is not None:
            self.dead = "deadline"
            return DeadlineExceededError(
                f"sandboxed call exceeded its deadline of {self.limits.deadline} s"
            )
        if "all fuel consumed" in text:
            self.dead = "fuel"
            return OutOfFuelError(
                f"sandboxed call exhausted its fuel budget of {self.limits.fuel} units"
            )
        detail = _trap_reason(text)
        self.dead = detail
        return TrapError(
            f"sandboxed call trapped: {detail}" + (f": {' '.join(lines)}" if lines else "")
        )

    def drop_now(self, res: Any) -> None:
        """Drops a resource of this session (best effort: a dead session's
        resources went with its store)."""
        with self.lock:
            if self.dead is None:
                try:
                    res.drop(self.store)
                except Exception:  # noqa: BLE001 - best effort
                    pass

    def drop_later(self, res: Any) -> None:
        """Queues a resource drop (safe from finalizers)."""
        self.pending_drops.append(res)

    def _drop_pending(self) -> None:
        while self.pending_drops:
            res = self.pending_drops.popleft()
            try:
                res.drop(self.store)
            except Exception:  # noqa: BLE001 - best effort
                pass


def _trap_reason(text: str) -> str:
    """The cause of a wasmtime error (``wasm trap: ...``), not its backtrace."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if "Caused by:" in lines:
        rest = lines[lines.index("Caused by:") + 1 :]
        if rest:
            return rest[-1]
    return lines[0] if lines else "trap"


def _is_trap(text: str) -> bool:
    return any(w in text for w in ("wasm trap", "interrupt", "all fuel consumed", "unreachable"))


def _c_api_path(host: bytes, opened: list[int]) -> str:
    """``host`` as the C API can take it: itself when UTF-8, else the
    descriptor directory's entry of a descriptor opened on it here (appended
    to ``opened``; the C API opens its own handle at once, so the caller
    closes these after configuring the store)."""
    text = utf8(host)
    if text is not None:
        return text
    if FD_DIR is None:  # grant() marks such paths unnamed on these systems
        raise OSError(f"cannot pre-open {host!r}")
    fd = os.open(host, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    opened.append(fd)
    return f"{FD_DIR}/{fd}"
