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
import hashlib
import logging
import os
import tempfile
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Tuple

import wasmtime
from wasmtime import component as wc

from . import _abi
from ._config import SETTINGS
from ._errors import SandboxError, SandboxMemoryError, SandboxTimeout
from ._errors import raise_component_error
from ._grants import PathGrant, display_error, grant, preopen_dirs

logger = logging.getLogger("skyutils_wasm")

COMPONENT_PATH = Path(__file__).with_name("skyutils.wasm")
PKG = "skypilot:utils"
VER = "0.1.0"
EPOCH_TICK_S = 0.02
_ENGINE_CONFIG_KEY = "epoch_interruption=1;opt=speed;v1"
_STDERR_CAP = 4096
_MAX_FILE_SESSIONS = 16
_UPDATE_CHUNK = 1 << 20


def cache_dir() -> Optional[Path]:
    """``$SKYUTILS_CACHE_DIR``, else ``$XDG_CACHE_HOME/skyutils``, else
    ``~/.cache/skyutils``."""
    if os.environ.get("SKYUTILS_CACHE_DIR"):
        return Path(os.environ["SKYUTILS_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "skyutils"
    home = os.environ.get("HOME")
    return Path(home) / ".cache" / "skyutils" if home else None


def _wasmtime_version() -> str:
    try:
        return metadata.version("wasmtime")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


class Runtime:
    """Engine, compiled component, linker and the epoch ticker."""

    def __init__(self, wasm_path: Path = COMPONENT_PATH) -> None:
        cfg = wasmtime.Config()
        cfg.epoch_interruption = True
        cfg.cranelift_opt_level = "speed"
        self.engine = wasmtime.Engine(cfg)
        wasm = wasm_path.read_bytes()
        self.component_sha256 = hashlib.sha256(wasm).hexdigest()
        self.cache_note = ""
        self.component = self._load(wasm)
        self.linker = wc.Linker(self.engine)
        self.linker.add_wasip2()
        with self.linker.root() as root:
            with root.add_instance(f"{PKG}/host-facts@{VER}") as hf:
                _define_host_facts(hf)
        self._start_ticker()

    def _load(self, wasm: bytes) -> wc.Component:
        d = cache_dir()
        if d is None:
            self.cache_note = "no cache directory"
            return wc.Component(self.engine, wasm)
        key = hashlib.sha256(
            f"wasmtime-{_wasmtime_version()}\0{_ENGINE_CONFIG_KEY}\0{self.component_sha256}".encode()
        ).hexdigest()[:32]
        path = d / f"skyutils-{key}.cwasm"
        if path.is_file():
            try:
                comp = wc.Component.deserialize_file(self.engine, str(path))
                self.cache_note = f"loaded {path}"
                return comp
            except wasmtime.WasmtimeError:
                pass
        comp = wc.Component(self.engine, wasm)
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".skyutils-", suffix=".tmp", dir=d)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(comp.serialize())
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
            self.cache_note = f"compiled, stored {path}"
        except OSError as e:
            self.cache_note = f"compiled, cache not writable: {e}"
        return comp

    def _start_ticker(self) -> None:
        engine = self.engine
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(EPOCH_TICK_S):
                engine.increment_epoch()

        t = threading.Thread(target=tick, name="skyutils-epoch", daemon=True)
        t.start()
        self._ticker = t

    def session(self, preopens: List[str], env: Dict[str, str], cgroup: Optional[str]) -> "Session":
        """A new sandbox instance with exactly these read-only grants."""
        return Session(self, preopens, env, cgroup)


def _define_host_facts(hf: Any) -> None:
    def facts() -> Any:
        return SETTINGS.facts

    hf.add_func("logical-cpu-count", lambda _s: facts().logical_cpu_count())
    hf.add_func("affinity-cpu-count", lambda _s: facts().affinity_cpu_count())
    hf.add_func("os-cpu-count", lambda _s: facts().os_cpu_count())
    hf.add_func("memory-total-bytes", lambda _s: facts().memory_total_bytes())

    def nofile(_s: Any) -> Any:
        soft, hard = facts().nofile_limit()
        rec = wc.Record()
        rec.soft = soft
        rec.hard = hard
        return rec

    hf.add_func("nofile-limit", nofile)
    hf.add_func("pid-exists", lambda _s, pid: bool(facts().pid_exists(pid)))
    hf.add_func("tcp4-port-bindable", lambda _s, port: bool(facts().tcp4_port_bindable(port)))


class Session:
    """One store + instance; calls are serialized by a lock."""

    def __init__(
        self, rt: Runtime, preopens: List[str], env: Dict[str, str], cgroup: Optional[str]
    ) -> None:
        self.rt = rt
        self.lock = threading.RLock()
        self.dead: Optional[str] = None
        self.stderr = bytearray()
        self.pending_drops: Deque[Any] = collections.deque()
        store = wasmtime.Store(rt.engine)
        store.set_limits(memory_size=SETTINGS.memory_limit)
        wasi = wasmtime.WasiConfig()
        wasi.env = list(env.items())
        wasi.stderr_custom = self._on_stderr
        if cgroup is not None:
            try:
                wasi.preopen_dir(cgroup, "/sys/fs/cgroup", False)
            except wasmtime.WasmtimeError:
                pass
        for d in preopens:
            try:
                wasi.preopen_dir(d, d, False)
            except wasmtime.WasmtimeError:
                pass
        store.set_wasi(wasi)
        store.set_epoch_deadline(1 << 62)
        self.store = store
        self.instance = rt.linker.instantiate(store, rt.component)
        self.ctx = store._context()
        self.funcs: Dict[str, _abi.FastFunc] = {}

    def _on_stderr(self, data: bytes) -> None:
        if len(self.stderr) < _STDERR_CAP:
            self.stderr += data[: _STDERR_CAP - len(self.stderr)]

    def func(self, iface: str, name: str) -> _abi.FastFunc:
        key = f"{iface}#{name}"
        f = self.funcs.get(key)
        if f is None:
            inst, store = self.instance, self.store
            idx = inst.get_export_index(store, f"{PKG}/{iface}@{VER}")
            fidx = inst.get_export_index(store, name, idx)
            raw = inst.get_func(store, fidx) if fidx is not None else None
            if raw is None:
                raise SandboxError(f"component has no export {iface}/{name}")
            f = self.funcs[key] = _abi.FastFunc(raw, store)
        return f

    def call(self, iface: str, name: str, *args: Any) -> Any:
        """Calls an export; traps mark the session dead and raise SandboxError."""
        with self.lock:
            if self.dead is not None:
                raise SandboxError(f"sandbox instance was discarded after: {self.dead}")
            f = self.func(iface, name)
            self._drop_pending()
            ticks = int(SETTINGS.deadline_s / EPOCH_TICK_S) + 1
            self.store.set_epoch_deadline(ticks)
            try:
                return f(self.ctx, *args)
            except wasmtime.WasmtimeError as e:
                raise self._trap(e) from None
            except BaseException as e:
                self.dead = f"host error {e!r}"
                raise

    def _trap(self, e: Exception) -> SandboxError:
        text = str(e)
        said = self.stderr.decode("utf-8", "replace")
        if "memory allocation of" in said or "out of memory" in said:
            self.dead = "memory cap"
            return SandboxMemoryError(
                f"sandboxed call exceeded the memory cap of {SETTINGS.memory_limit} bytes"
            )
        if "interrupt" in text:
            self.dead = "deadline"
            return SandboxTimeout(
                f"sandboxed call exceeded its deadline of {SETTINGS.deadline_s} s"
            )
        lines = [ln for ln in said.splitlines() if ln.strip() and not ln.startswith("note: ")]
        detail = text.splitlines()[0] if text else "trap"
        self.dead = detail
        return SandboxError(
            f"sandboxed call trapped: {detail}" + (f": {' '.join(lines)}" if lines else "")
        )

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


def _dir_key(d: str) -> Tuple[str, int, int]:
    st = os.stat(d)
    return (d, st.st_dev, st.st_ino)


class WasmBackend:
    """The twelve functions, with clean argument types, through the component."""

    name = "wasm"

    def __init__(self) -> None:
        self.rt = Runtime()
        self._lock = threading.Lock()
        self._pure: Optional[Session] = None
        self._system: Dict[Any, Session] = {}
        self._files: "collections.OrderedDict[Any, Session]" = collections.OrderedDict()
        atexit.register(self._close)

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

    def _pure_session(self) -> Session:
        s = self._pure
        if s is None or s.dead is not None:
            s = self._pure = self.rt.session([], {}, None)
        return s

    def _cgroup(self) -> Tuple[Optional[str], Any]:
        root = SETTINGS.cgroup_root
        if root is None:
            return None, None
        try:
            return root, _dir_key(root)
        except OSError:
            return None, None

    def _system_session(self) -> Session:
        env = dict(SETTINGS.pod_env())
        cgroup, ckey = self._cgroup()
        key = (tuple(sorted(env.items())), ckey)
        with self._lock:
            s = self._system.get(key)
            if s is None or s.dead is not None:
                if len(self._system) > 8:
                    self._system.clear()
                s = self._system[key] = self.rt.session([], env, cgroup)
            return s

    def _file_session(self, grants: List[PathGrant]) -> Session:
        dirs = preopen_dirs(grants)
        try:
            key = tuple(_dir_key(d) for d in dirs)
        except OSError:
            return self.rt.session(dirs, {}, None)
        with self._lock:
            s = self._files.get(key)
            if s is not None and s.dead is None:
                self._files.move_to_end(key)
                return s
            s = self._files[key] = self.rt.session(dirs, {}, None)
            while len(self._files) > _MAX_FILE_SESSIONS:
                self._files.popitem(last=False)
            return s

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
    def read_last_n_lines(self, path: str, n: int, chunk: int, errors: str) -> List[str]:
        g = grant(path)
        r = self._file_session([g]).call("files", "read-last-n-lines", g.guest, n, chunk, errors)
        return self._ok(r, g)  # type: ignore[no-any-return]

    def read_last_n_raw(self, path: str, n: int, chunk: int) -> List[bytes]:
        g = grant(path)
        r = self._file_session([g]).call("files", "read-last-n-raw", g.guest, n, chunk)
        return self._ok(r, g)  # type: ignore[no-any-return]

    def hash_file(self, path: str, hash_alg: str) -> Any:
        from ._hashobj import WasmHash

        g = grant(path)
        s = self._file_session([g])
        res = self._ok(s.call("files", "hash-file", g.guest, hash_alg), g)
        info = s.call("files", "[method]hasher.info", res)
        return WasmHash(s, res, info)

    def estimate_fd_for_directory(self, path: str) -> int:
        g = grant(path)
        r = self._file_session([g]).call("files", "estimate-fd-for-directory", g.guest)
        return self._ok(r, g)  # type: ignore[no-any-return]

    # -- system ---------------------------------------------------------
    def get_cpu_count(self) -> Optional[int]:
        v = self._ok(self._system_session().call("system", "get-cpu-count"))
        return None if v is None else int(v)

    def get_mem_size_gb(self) -> float:
        return self._ok(self._system_session().call("system", "get-mem-size-gb"))  # type: ignore[no-any-return]

    def get_parallel_threads(self, cloud_str: Optional[str]) -> int:
        return self._ok(  # type: ignore[no-any-return]
            self._pure_session().call("system", "get-parallel-threads", cloud_str)
        )

    def get_max_workers_for_file_mounts(
        self, mounts: List[Tuple[str, str]], cloud_str: Optional[str]
    ) -> Tuple[int, Optional[str]]:
        grants = [grant(src) for _, src in mounts]
        pairs = [(dst, g.guest) for (dst, _), g in zip(mounts, grants)]
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
