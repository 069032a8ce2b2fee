"""The WebAssembly backend: one engine and one compiled component per
process (cached on disk), and sandbox sessions (store + instance) reused
only where that is provably safe.

Session kinds:

* the *pure* session (no WASI preopens, no environment): text functions and
  the host-fact-only functions (``find_free_port``, ``is_process_alive``,
  ``get_parallel_threads``); one long-lived instance;
* *system* sessions keyed by the ``SKYPILOT_POD_*`` environment and the
  identity of the cgroup directory (``get_cpu_count``, ``get_mem_size_gb``);
* *file* sessions keyed by the identity (device, inode) of the pre-opened
  directories. The guest's libc caches its preopens and environment, so an
  instance is only ever reused with exactly the grants it was created with.

A trap discards the session; the next call builds a new one.
"""

from __future__ import annotations

import atexit
import collections
import gc
import os
import threading
import weakref
import re
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Deque,
    Dict,
    FrozenSet,
    List,
    Optional,
    Tuple,
    Union,
)

import ctypes

import wasmtime
from wasmtime import _ffi as ffi

from . import _abi, _cache, _capi
from ._config import SETTINGS, WASM32_MAX_MEMORY
from ._errors import MissingExportError, OutOfFuelError, OutputTooLargeError, PluginLoadError
from ._errors import SandboxError, SandboxMemoryError, SandboxTimeout, TrapError
from ._errors import CapabilityDeniedError, raise_component_error
from ._facts import HostFacts
from ._grants import FD_DIR, PathArg, PathGrant, display_error, grant, guest_label, is_utf8
from ._grants import preopen_dirs, utf8

if TYPE_CHECKING:
    from ._policy import Policy
from ._config import CAPABILITIES


COMPONENT_PATH = Path(__file__).with_name("skyutils.wasm")
PKG = "skypilot:utils"
VER = "0.1.0"
EPOCH_TICK_S = 0.02
_STDERR_CAP = 4096
_MAX_FILE_SESSIONS = 16
#: The epoch deadline of a call without one (the epoch advances every
#: EPOCH_TICK_S): beyond any run, far from overflowing when added to it.
_NO_DEADLINE_TICKS = 1 << 62
#: Page bounds for tails taken through ``tails``. wasmtime's C API refuses
#: to lift more than 128 MiB ("hostcall fuel") per call, counting every
#: list element as a whole value (tens of bytes) and every byte of a
#: ``list<u8>`` as one element (raw pieces cross as Latin-1 strings for
#: that reason): a page stays under 32 MiB of UTF-8 and 1 Mi items (a raw
#: page under 16 MiB of bytes, at most twice that in UTF-8).
_PAGE_BYTES = 32 << 20
_PAGE_ITEMS = 1 << 20
_RAW_PAGE_BYTES = 16 << 20


_engines: Dict[bool, wasmtime.Engine] = {}
_engines_lock = threading.Lock()


def engine(metered: bool = False) -> wasmtime.Engine:
    """The process-wide engine (epoch interruption; with fuel metering when
    ``metered``), with its epoch ticker thread. Metered code is slower, so
    only metered plugins use the metered engine."""
    with _engines_lock:
        e = _engines.get(metered)
        if e is None:
            cfg = wasmtime.Config()
            cfg.epoch_interruption = True
            cfg.cranelift_opt_level = "speed"
            if metered:
                cfg.consume_fuel = True
            e = _engines[metered] = wasmtime.Engine(cfg)
            _start_ticker(e)
        return e


def _start_ticker(engine: wasmtime.Engine) -> None:
    def tick() -> None:
        stop = threading.Event()
        while not stop.wait(EPOCH_TICK_S):
            engine.increment_epoch()

    threading.Thread(target=tick, name="skyutils-epoch", daemon=True).start()


class Runtime:
    """Engine, compiled component and a linker whose ``host-facts`` import is
    gated by ``capabilities``."""

    def __init__(
        self,
        wasm: Union[Path, bytes] = COMPONENT_PATH,
        *,
        metered: bool = False,
        capabilities: FrozenSet[str] = CAPABILITIES,
        facts: Optional[HostFacts] = None,
    ) -> None:
        self.metered = metered
        self.engine = engine(metered)
        packaged = isinstance(wasm, Path) and wasm == COMPONENT_PATH
        digest = _cache.packaged_digest(COMPONENT_PATH) if packaged else None
        if isinstance(wasm, Path):
            wasm = wasm.read_bytes()
        self.component_sha256 = digest or _cache.sha256_hex(wasm)
        self.cache = _cache.ComponentCache(self.component_sha256, metered)
        self.component = self.cache.load(self.engine, wasm)
        #: What happened to the compiled component (for ``backend_info``).
        self.cache_note = self.cache.note
        #: Where this component's export type descriptions are cached.
        self.types_path = self.cache.types_path
        #: Export type descriptions (``iface#name`` -> [params, result]).
        self.types: Dict[str, Any] = self.cache.load_types()
        self._types_lock = threading.Lock()
        self.linker = _capi.Linker(self.engine)
        self.linker.add_wasip2()
        root = self.linker.root()
        try:
            hf = root.add_instance(f"{PKG}/host-facts@{VER}")
            try:
                _define_host_facts(hf, capabilities, facts)
            finally:
                hf.close()
        finally:
            root.close()

    def func_type(self, key: str, func: Any, store: wasmtime.Store) -> Any:
        """``[params, result]`` of export ``key``: from the cache, else
        described once (importing wasmtime-py's type reflection) and cached."""
        ty = self.types.get(key)
        if isinstance(ty, list) and len(ty) == 2 and isinstance(ty[0], list):
            return ty
        ty = list(_capi.describe_func(func, store))
        with self._types_lock:
            self.types[key] = ty
            self.cache.store_types(self.types)
        return ty

    def session(
        self,
        preopens: List[Tuple[bytes, str]],
        env: Dict[str, str],
        cgroup: Optional[str],
        limits: "Limits",
    ) -> "Session":
        """A new sandbox instance with exactly these read-only grants."""
        return Session(self, preopens, env, cgroup, limits)


class Limits:
    """The per-call limits of the default backend: :data:`SETTINGS`, read at
    each call (no fuel; by default no deadline, no output cap and the
    wasm32 maximum of memory, as upstream has no limits)."""

    fuel: Optional[int] = None

    @property
    def deadline(self) -> Optional[float]:
        return SETTINGS.deadline_s

    @property
    def memory(self) -> int:
        return SETTINGS.memory_limit

    @property
    def max_output(self) -> Optional[int]:
        return SETTINGS.max_output


class PolicyLimits(Limits):
    """The per-call limits of a :class:`Policy`."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.fuel = policy.fuel

    @property
    def deadline(self) -> Optional[float]:
        return self.policy.deadline

    @property
    def memory(self) -> int:
        return self.policy.memory

    @property
    def max_output(self) -> Optional[int]:
        return self.policy.max_output


def _deadline_ticks(deadline: Optional[float]) -> int:
    """A deadline in seconds (None: none) as epoch ticks."""
    return _NO_DEADLINE_TICKS if deadline is None else int(deadline / EPOCH_TICK_S) + 1


def _memory_cap_name(limit: int) -> str:
    return "the wasm32 maximum" if limit >= WASM32_MAX_MEMORY else "the memory limit asked for"


_ALLOC_FAILED = re.compile(r"memory allocation of (\d+) bytes failed")
#: Rust's "thread '...' panicked at file:line:col: " before a panic message.
_PANIC_AT = re.compile(r"thread '[^']*'(?: \(\d+\))? panicked at \S+?:\d+:\d+:\s*")


def _denied(name: str) -> str:
    return f"capability '{name}' is not granted by the host policy"


#: Writes a Python value into a ``wasmtime_component_val_t``.
Setter = Callable[[Any, Any], None]


def _set_bool(v: Any, value: Any) -> None:
    v.kind = ffi.WASMTIME_COMPONENT_BOOL
    v.of.boolean = bool(value)


def _set_u64(v: Any, value: Any) -> None:
    v.kind = ffi.WASMTIME_COMPONENT_U64
    v.of.u64 = int(value)


def _set_option_u32(v: Any, value: Any) -> None:
    v.kind = ffi.WASMTIME_COMPONENT_OPTION
    if value is None:
        v.of.option = None
    else:
        num = ffi.wasmtime_component_val_t()
        num.kind = ffi.WASMTIME_COMPONENT_U32
        num.of.u32 = int(value)
        v.of.option = ffi.wasmtime_component_val_new(ctypes.byref(num))


def _write_result(results: Any, value: Any, error: Optional[str], set_ok: Setter) -> None:
    """Writes ``result<T, string>`` into the first result slot (C-owned
    values: wasmtime frees them after lowering)."""
    out = results[0]
    out.kind = ffi.WASMTIME_COMPONENT_RESULT
    inner = ffi.wasmtime_component_val_t()
    if error is not None:
        inner.kind = ffi.WASMTIME_COMPONENT_STRING
        inner.of.string = ffi.str_to_capi(error)
        out.of.result.is_ok = False
    else:
        set_ok(inner, value)
        out.of.result.is_ok = True
    out.of.result.val = ffi.wasmtime_component_val_new(ctypes.byref(inner))


def _set_limit(v: Any, value: Any) -> None:
    """``limit``: ``finite(u64)``, or ``unlimited`` for None."""
    v.kind = ffi.WASMTIME_COMPONENT_VARIANT
    if value is None:
        v.of.variant.discriminant = ffi.str_to_capi("unlimited")
        v.of.variant.val = None
        return
    num = ffi.wasmtime_component_val_t()
    _set_u64(num, value)
    v.of.variant.discriminant = ffi.str_to_capi("finite")
    v.of.variant.val = ffi.wasmtime_component_val_new(ctypes.byref(num))


def _set_nofile(v: Any, value: Any) -> None:
    """``nofile``: a record of two limits, from ``(soft, hard)``."""
    raw = ffi.wasmtime_component_valrecord_t()
    ffi.wasmtime_component_valrecord_new_uninit(raw, 2)
    for i, (name, limit) in enumerate(zip(("soft", "hard"), value)):
        _set_limit(raw.data[i].val, limit)
        raw.data[i].name = ffi.str_to_capi(name)
    v.kind = ffi.WASMTIME_COMPONENT_RECORD
    v.of.record = raw


# Host functions defined straight on the C API (wasmtime-py's generic
# ``add_func`` re-reads the import's type on every call, ~25 us): each reads
# its arguments and writes its ``result<T, string>`` directly.
_RAW_FUNCS: Dict[int, Tuple[Callable[[Any], Any], Setter]] = {}
_raw_ids = iter(range(1, 1 << 62))


@ffi.wasmtime_component_func_callback_t  # type: ignore[untyped-decorator]
def _raw_impl(idx: Any, context: Any, ty: Any, args: Any, nargs: Any, res: Any, nres: Any) -> Any:
    def run() -> None:
        fn, set_ok = _RAW_FUNCS[idx or 0]
        value, error = fn(args)
        _write_result(res, value, error, set_ok)

    return _capi.catch_exceptions(run)


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # type: ignore[untyped-decorator]
def _raw_finalize(idx: Any) -> None:
    _RAW_FUNCS.pop(idx or 0, None)


def _add_raw_func(
    hf: _capi.LinkerInstance, name: str, fn: Callable[[Any], Any], set_ok: Setter
) -> None:
    """Defines ``name``: ``fn(args)`` returns ``(value, error)``; ``set_ok``
    writes the value of the ``ok`` case."""
    idx = next(_raw_ids)
    _RAW_FUNCS[idx] = (fn, set_ok)
    hf.add_func(name, _raw_impl, idx, _raw_finalize)


def _define_host_facts(
    hf: _capi.LinkerInstance,
    capabilities: FrozenSet[str] = CAPABILITIES,
    source: Optional[HostFacts] = None,
) -> None:
    def facts() -> Any:
        return SETTINGS.facts if source is None else source

    def fact(cap: str, read: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``read(args)`` as ``(value, None)``, or ``(None, <denied>)``."""
        if cap not in capabilities:
            return lambda _args: (None, _denied(cap))
        return lambda args: (read(args), None)

    for name in ("logical-cpu-count", "affinity-cpu-count", "os-cpu-count"):
        method = name.replace("-", "_")
        read = lambda _a, m=method: getattr(facts(), m)()  # noqa: E731
        _add_raw_func(hf, name, fact("cpu", read), _set_option_u32)
    memory = fact("memory", lambda _a: facts().memory_total_bytes())
    _add_raw_func(hf, "memory-total-bytes", memory, _set_u64)
    nofile = fact("file-limits", lambda _a: facts().nofile_limit())
    _add_raw_func(hf, "nofile-limit", nofile, _set_nofile)
    pid = fact("processes", lambda a: facts().pid_exists(a[0].of.u32))
    _add_raw_func(hf, "pid-exists", pid, _set_bool)
    port = fact("network", lambda a: facts().tcp4_port_bindable(a[0].of.u16))
    _add_raw_func(hf, "tcp4-port-bindable", port, _set_bool)


_set_epoch_deadline = ffi.wasmtime_context_set_epoch_deadline


class Session:
    """One store + instance; calls are serialized by a lock."""

    def __init__(
        self,
        rt: Runtime,
        preopens: List[Tuple[bytes, str]],
        env: Dict[str, str],
        cgroup: Optional[str],
        limits: Limits,
    ) -> None:
        self.rt = rt
        self.limits = limits
        #: The memory cap of this instance's store (set once, at creation).
        self.memory = limits.memory
        self.lock = threading.RLock()
        self.dead: Optional[str] = None
        self.stderr = bytearray()
        self.pending_drops: Deque[Any] = collections.deque()
        store = wasmtime.Store(rt.engine)
        store.set_limits(memory_size=limits.memory)
        wasi = wasmtime.WasiConfig()
        wasi.env = list(env.items())
        wasi.stderr_custom = self._on_stderr
        if cgroup is not None:
            try:
                wasi.preopen_dir(cgroup, "/sys/fs/cgroup", False)
            except wasmtime.WasmtimeError:
                pass
        opened: List[int] = []
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
        self._arm()
        try:
            self.instance = rt.linker.instantiate(store, rt.component)
        except wasmtime.WasmtimeError as e:
            if isinstance(e, wasmtime.Trap) or _is_trap(str(e)):
                raise self._trap(e) from None
            raise PluginLoadError(f"component could not be instantiated: {e}") from None
        self.ctx = store._context()
        self.funcs: Dict[str, _abi.FastFunc] = {}

    def _on_stderr(self, data: bytes) -> None:
        if len(self.stderr) < _STDERR_CAP:
            self.stderr += data[: _STDERR_CAP - len(self.stderr)]

    def _arm(self) -> None:
        """Arms the per-call limits: the deadline and the fuel budget."""
        limits = self.limits
        self.store.set_epoch_deadline(_deadline_ticks(limits.deadline))
        if limits.fuel is not None:
            self.store.set_fuel(limits.fuel)

    def func(self, iface: str, name: str) -> _abi.FastFunc:
        key = f"{iface}#{name}"
        f = self.funcs.get(key)
        if f is None:
            full = f"{PKG}/{iface}@{VER}"
            try:
                raw = self.instance.func(self.store, full, name)
            except LookupError as e:
                raise MissingExportError(str(e.args[0])) from None
            try:
                params, result = self.rt.func_type(key, raw, self.store)
                f = _abi.FastFunc(raw, params, result)
            except TypeError as e:
                raise MissingExportError(f"{full}#{name} (unsupported type: {e})") from None
            self.funcs[key] = f
        return f

    def call(self, iface: str, name: str, *args: Any) -> Any:
        """Calls an export; traps mark the session dead and raise SandboxError."""
        with self.lock:
            if self.dead is not None:
                raise SandboxError(f"sandbox instance was discarded after: {self.dead}")
            f = self.func(iface, name)
            if self.pending_drops:
                self._drop_pending()
            limits = self.limits
            # Straight to the C API: wasmtime-py's wrapper costs ~1 µs.
            _set_epoch_deadline(self.ctx, _deadline_ticks(limits.deadline))
            if limits.fuel is not None:
                self.store.set_fuel(limits.fuel)
            try:
                return f.call(self.ctx, args, limits.max_output)
            except wasmtime.WasmtimeError as e:
                raise self._trap(e) from None
            except _abi.OutputLimit as e:
                self.dead = "output too large"
                raise OutputTooLargeError(e.size, e.limit) from None
            except BaseException as e:
                self.dead = f"host error {e!r}"
                raise

    def _trap(self, e: Exception) -> SandboxError:
        text = str(e)
        said = self.stderr.decode("utf-8", "replace")
        lines = [ln for ln in said.splitlines() if ln.strip() and not ln.startswith("note: ")]
        if "memory allocation of" in said or "out of memory" in said:
            self.dead = "memory cap"
            limit = min(self.limits.memory, WASM32_MAX_MEMORY)
            m = _ALLOC_FAILED.search(said)
            requested = int(m.group(1)) if m else None
            msg = f"sandboxed call exceeded the memory cap of {limit} bytes ({_memory_cap_name(limit)})"
            if requested is not None:
                msg += f": an allocation of {requested} bytes in the guest failed"
            if lines:
                msg += f" ({_PANIC_AT.sub('', ' '.join(lines))})"
            return SandboxMemoryError(msg, limit, requested)
        if "interrupt" in text and self.limits.deadline is not None:
            self.dead = "deadline"
            return SandboxTimeout(
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


def _output_len(item: str) -> int:
    """Bytes of one result item as :func:`_abi.output_size` counts them."""
    return len(item.encode("utf-8", "surrogatepass"))


def _dir_key(d: Union[str, bytes]) -> Tuple[Union[str, bytes], int, int]:
    st = os.stat(d)
    return (d, st.st_dev, st.st_ino)


def _c_api_path(host: bytes, opened: List[int]) -> str:
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


class WasmBackend:
    """The twelve functions, with clean argument types, through the component."""

    name = "wasm"

    def __init__(self, rt: Optional[Runtime] = None, policy: Optional[Policy] = None) -> None:
        """The default backend (``SETTINGS``-driven) or, with ``policy``, a
        plugin's backend: every instance sees the policy's environment and
        cgroup view, grants follow ``policy.allow_dirs``."""
        self.rt = Runtime() if rt is None else rt
        self.policy = policy
        #: Whether Python-only argument types must stay away from the host
        #: filesystem (a plugin's policy applies to every path).
        self.confined = policy is not None
        self.limits: Limits = Limits() if policy is None else PolicyLimits(policy)
        roots = None if policy is None else policy.allowed_roots()
        self._allowed = None if roots is None else tuple(os.fsencode(r) for r in roots)
        self._allowed_preopens = [(r, guest_label(r)) for r in self._allowed or ()]
        self._lock = threading.Lock()
        self._pure: Optional[Session] = None
        self._system: Dict[Any, Session] = {}
        self._files: "collections.OrderedDict[Any, Session]" = collections.OrderedDict()
        #: Whether the component exports ``tails``; None until first asked.
        self._tails: Optional[bool] = None
        if policy is None:
            atexit.register(self._close)
        else:
            ref = weakref.ref(self)

            def close_at_exit() -> None:
                b = ref()
                if b is not None:
                    b._close()

            atexit.register(close_at_exit)

    def _close(self) -> None:
        """Frees wasmtime objects before interpreter teardown."""
        self.reset_sessions()
        gc.collect()
        for obj in (self.rt.linker, self.rt.component):
            try:
                obj.close()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass

    # -- sessions -------------------------------------------------------
    def reset_sessions(self) -> None:
        """Forgets every cached session (e.g. after fork or a settings change)."""
        with self._lock:
            self._pure = None
            self._system.clear()
            self._files.clear()

    def _new_session(
        self, preopens: List[Tuple[bytes, str]], env: Dict[str, str], cgroup: Optional[str]
    ) -> Session:
        return self.rt.session(preopens, env, cgroup, self.limits)

    def _usable(self, s: Session) -> bool:
        """Whether ``s`` may serve a call: alive, and built with the memory
        cap the limits have now (a store's cap is fixed at creation)."""
        return s.dead is None and s.memory == self.limits.memory

    def _pure_session(self) -> Session:
        s = self._pure
        if s is None or not self._usable(s):
            if self.policy is None:
                s = self._new_session([], {}, None)
            else:
                # A plugin sees its policy's environment and cgroups in every
                # instance (as of the instance's creation).
                s = self._new_session([], self._policy_env(), self._cgroup()[0])
            self._pure = s
        return s

    def _cgroup(self) -> Tuple[Optional[str], Any]:
        root = SETTINGS.cgroup_root if self.policy is None else self.policy.cgroup_root
        if root is None:
            return None, None
        try:
            return root, _dir_key(root)
        except OSError:
            return None, None

    def _env(self) -> Dict[str, str]:
        if self.policy is None:
            return dict(SETTINGS.pod_env())
        return self._policy_env()

    def _policy_env(self) -> Dict[str, str]:
        """A plugin's environment: its policy's variables that can cross
        into the component (UTF-8 names and values)."""
        assert self.policy is not None
        return {k: v for k, v in self.policy.guest_env().items() if is_utf8(k) and is_utf8(v)}

    def _system_session(self) -> Session:
        env = self._env()
        cgroup, ckey = self._cgroup()
        key = (tuple(sorted(env.items())), ckey)
        with self._lock:
            s = self._system.get(key)
            if s is None or not self._usable(s):
                if len(self._system) > 8:
                    self._system.clear()
                s = self._system[key] = self._new_session([], env, cgroup)
            return s

    def _file_session(self, grants: List[PathGrant]) -> Session:
        env: Dict[str, str] = {}
        cgroup: Optional[str] = None
        extra: Any = None
        if self.policy is None:
            dirs = preopen_dirs(grants)
        else:
            env = self._policy_env()
            cgroup, ckey = self._cgroup()
            extra = (tuple(sorted(env.items())), ckey)
            dirs = preopen_dirs(grants) if self._allowed is None else self._allowed_preopens
        try:
            key = (tuple(_dir_key(d) + (g,) for d, g in dirs), extra)
        except OSError:
            return self._new_session(dirs, env, cgroup)
        with self._lock:
            s = self._files.get(key)
            if s is not None and self._usable(s):
                self._files.move_to_end(key)
                return s
            s = self._files[key] = self._new_session(dirs, env, cgroup)
            while len(self._files) > _MAX_FILE_SESSIONS:
                self._files.popitem(last=False)
            return s

    def _grant(self, path: PathArg) -> PathGrant:
        return grant(path, self._allowed)

    def _unnamed(self, g: PathGrant) -> Any:
        """The backend for a path the guest cannot be given: the pure one for
        the drop-in, a refusal under a plugin's policy."""
        if self.confined:
            raise CapabilityDeniedError(
                f"{g.display!r}: a path that is not valid UTF-8 cannot be passed to the sandbox"
            )
        return self._python_backend()

    @staticmethod
    def _python_backend() -> Any:
        from ._backend import load

        return load("python")

    # -- helpers --------------------------------------------------------
    @staticmethod
    def _ok(result: Any, g: Optional[PathGrant] = None) -> Any:
        ok, value = result
        if ok:
            return value
        raise_component_error(display_error(value, g) if g is not None else value)

    # -- text -----------------------------------------------------------
    def base36_encode(self, hex_str: str) -> str:
        return self._ok(self._pure_session().call("text", "base36-encode", hex_str))  # type: ignore[no-any-return]

    def format_float(self, num: Any, precision: int) -> str:
        arg = ("float", num) if isinstance(num, float) else ("int", num)
        return self._ok(self._pure_session().call("text", "format-float", arg, precision))  # type: ignore[no-any-return]

    def truncate_long_string(self, s: str, max_length: int, truncate_middle: bool) -> str:
        return self._pure_session().call(  # type: ignore[no-any-return]
            "text", "truncate-long-string", s, max_length, truncate_middle
        )

    # -- files ----------------------------------------------------------
    def read_last_n_lines(self, path: PathArg, n: int, chunk: int, errors: str) -> List[str]:
        g = self._grant(path)
        if g.unnamed is not None:
            return self._unnamed(g).read_last_n_lines(path, n, chunk, errors)  # type: ignore[no-any-return]
        s = self._file_session([g])
        if not self._has_tails(s):  # a plugin exporting only ``files``
            r = s.call("files", "read-last-n-lines", g.guest, n, chunk, errors)
            return self._ok(r, g)  # type: ignore[no-any-return]
        r = s.call(
            "tails", "read-last-n-lines", g.guest, n, chunk, errors, _PAGE_BYTES, _PAGE_ITEMS
        )
        page, rest = self._ok(r, g)
        if rest is None:  # the whole tail in one call: small results
            return page["items"]  # type: ignore[no-any-return]
        return self._take_pages(
            s, page, rest, "[method]tail.next-lines", "", _PAGE_BYTES, _PAGE_ITEMS
        )

    def read_last_n_raw(self, path: PathArg, n: int, chunk: int) -> List[bytes]:
        g = self._grant(path)
        if g.unnamed is not None:
            return self._unnamed(g).read_last_n_raw(path, n, chunk)  # type: ignore[no-any-return]
        s = self._file_session([g])
        if not self._has_tails(s):
            r = s.call("files", "read-last-n-raw", g.guest, n, chunk)
            return self._ok(r, g)  # type: ignore[no-any-return]
        r = s.call("tails", "read-last-n-raw", g.guest, n, chunk, _RAW_PAGE_BYTES, _PAGE_ITEMS)
        page, rest = self._ok(r, g)
        if rest is not None:
            items = self._take_pages(
                s, page, rest, "[method]tail.next-raw", "", _RAW_PAGE_BYTES, _PAGE_ITEMS
            )
        else:
            items = page["items"]
        # Each piece crossed as the Latin-1 characters of its bytes.
        return [item.encode("latin-1") for item in items]

    def _forget(self, s: Session) -> None:
        """Stops offering file session ``s`` to later calls."""
        with self._lock:
            for key, cached in list(self._files.items()):
                if cached is s:
                    del self._files[key]

    def _has_tails(self, s: Session) -> bool:
        """Whether the component exports ``tails`` (paged results); plugins
        built for the original interface export only ``files``."""
        has = self._tails
        if has is None:
            try:
                s.func("tails", "read-last-n-lines")
                has = True
            except MissingExportError:
                has = False
            self._tails = has
        return has

    def _take_pages(
        self,
        s: Session,
        page: Dict[str, Any],
        rest: Any,
        method: str,
        empty: str,
        max_bytes: int,
        max_items: int,
    ) -> List[str]:
        """The items of ``page`` and of every further page of the ``tail``
        resource ``rest``, each page below wasmtime-py's per-call limit. A
        line split across pages (``continued``) is joined again; the
        policy's ``max_output``, if any, applies to the whole result."""
        cap = self.limits.max_output
        out: List[str] = []
        #: The parts of the last line so far (not yet in ``out``).
        pending: List[str] = []
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
                        out.append(empty.join(pending))
                    out.extend(items[start:-1])
                    pending = [items[-1]]
                open_line = page["continued"]
                page = s.call("tails", method, rest, max_bytes, max_items)
        finally:
            s.drop_now(rest)
            # The instance's memory grew to hold this tail and never shrinks:
            # later calls get a fresh one (objects still using it keep it).
            self._forget(s)
        if pending:
            out.append(empty.join(pending))
        return out

    def hash_file(self, path: PathArg, hash_alg: str) -> Any:
        from ._hashobj import WasmHash

        g = self._grant(path)
        if g.unnamed is not None:
            return self._unnamed(g).hash_file(path, hash_alg)
        s = self._file_session([g])
        res = self._ok(s.call("files", "hash-file", g.guest, hash_alg), g)
        info = s.call("files", "[method]hasher.info", res)
        return WasmHash(s, res, info)

    def estimate_fd_for_directory(self, path: PathArg) -> int:
        g = self._grant(path)
        if g.unnamed is not None:
            return self._unnamed(g).estimate_fd_for_directory(path)  # type: ignore[no-any-return]
        r = self._file_session([g]).call("files", "estimate-fd-for-directory", g.guest)
        return self._ok(r, g)  # type: ignore[no-any-return]

    # -- system ---------------------------------------------------------
    def _env_crosses(self) -> bool:
        """Whether the drop-in's ``SKYPILOT_POD_*`` values can cross into the
        component; one that is not UTF-8 (a ``str`` with surrogate escapes)
        is parsed by the pure backend, which shows it as upstream does."""
        return self.policy is not None or all(is_utf8(v) for v in SETTINGS.pod_env().values())

    def get_cpu_count(self) -> Optional[int]:
        if not self._env_crosses():
            return self._python_backend().get_cpu_count()  # type: ignore[no-any-return]
        v = self._ok(self._system_session().call("system", "get-cpu-count"))
        return None if v is None else int(v)

    def get_mem_size_gb(self) -> float:
        if not self._env_crosses():
            return self._python_backend().get_mem_size_gb()  # type: ignore[no-any-return]
        return self._ok(self._system_session().call("system", "get-mem-size-gb"))  # type: ignore[no-any-return]

    def get_parallel_threads(self, cloud_str: Optional[str]) -> int:
        return self._ok(  # type: ignore[no-any-return]
            self._pure_session().call("system", "get-parallel-threads", cloud_str)
        )

    def get_max_workers_for_file_mounts(
        self, mounts: List[Tuple[str, PathArg]], cloud_str: Optional[str]
    ) -> Tuple[int, Optional[str]]:
        grants = [self._grant(src) for _, src in mounts]
        for g in grants:
            if g.unnamed is not None:
                return self._unnamed(g).get_max_workers_for_file_mounts(  # type: ignore[no-any-return]
                    mounts, cloud_str
                )
        # Destinations are ignored (upstream only reads the values).
        pairs = [(dst if is_utf8(dst) else "", g.guest) for (dst, _), g in zip(mounts, grants)]
        r = self._file_session(grants).call(
            "system", "get-max-workers-for-file-mounts", pairs, cloud_str
        )
        ok, value = r
        if not ok:
            for g in grants:
                value = display_error(value, g)
            raise_component_error(value)
        return value["count"], value["low-fd-warning"]

    def is_process_alive(self, pid: int) -> bool:
        return self._ok(self._pure_session().call("system", "is-process-alive", pid))  # type: ignore[no-any-return]

    def find_free_port(self, start_port: int) -> int:
        return self._ok(self._pure_session().call("system", "find-free-port", start_port))  # type: ignore[no-any-return]
