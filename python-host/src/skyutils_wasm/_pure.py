"""The pure-Python backend: the semantics of ``tests/vectors/SPEC.md`` in
plain Python (used when wasmtime or the component is unavailable, or with
SKYUTILS_BACKEND=python). The project's deliberate divergences (SPEC.md
section 7) apply."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any

from . import _cgroup
from ._config import SETTINGS, facts
from ._grants import is_utf8

if TYPE_CHECKING:
    from ._grants import PathArg

_HASH_BLOCK = 256 * 1024

_ANY_CASE = {
    "md5": "md5",
    "sha1": "sha1", "sha-1": "sha1",
    "sha224": "sha224", "sha-224": "sha224", "sha2-224": "sha224",
    "sha256": "sha256", "sha-256": "sha256", "sha2-256": "sha256",
    "sha384": "sha384", "sha-384": "sha384", "sha2-384": "sha384",
    "sha512": "sha512", "sha-512": "sha512", "sha2-512": "sha512",
    "sha512-224": "sha512_224", "sha512-256": "sha512_256",
    "sha3-224": "sha3_224", "sha3-256": "sha3_256",
    "sha3-384": "sha3_384", "sha3-512": "sha3_512",
    "blake2b512": "blake2b", "blake2b-512": "blake2b",
    "blake2s256": "blake2s", "blake2s-256": "blake2s",
    "shake128": "shake_128", "shake-128": "shake_128",
    "shake256": "shake_256", "shake-256": "shake_256",
}  # fmt: skip
_EXACT = {
    "sha512_224", "sha512_256", "sha3_224", "sha3_256", "sha3_384", "sha3_512",
    "blake2b", "blake2s", "shake_128", "shake_256",
}  # fmt: skip

LOW_FD_WARNING = (
    "Open file descriptor limit ({}) is low. File sync to remote clusters may "
    "be slow. Consider increasing the limit using `ulimit -n <number>` or "
    "modifying system limits."
)


def _check_hash_name(hash_alg: Any) -> None:
    """The ``TypeError``s of upstream's ``hashlib.new(hash_alg)`` for a name
    it cannot take: unhashable (its set lookup), not a ``str``, or a ``str``
    with NUL or a lone surrogate (OpenSSL's C string)."""
    hash(hash_alg)
    if not isinstance(hash_alg, str) or "\0" in hash_alg or not is_utf8(hash_alg):
        raise TypeError("name must be a string")


def canonical_hash_name(hash_alg: str) -> str | None:
    """The hashlib name of an accepted spelling (SPEC 4.2), else None."""
    if hash_alg in _EXACT:
        return hash_alg
    return _ANY_CASE.get(hash_alg.lower())


def read_last_n_raw(file_path: Any, n: Any, chunk_size: Any) -> list[bytes]:
    """The last ``n`` pieces split at b'\\n' (upstream's checks and errors)."""
    assert n >= 0, f"n must be non-negative. Got {n}"
    assert chunk_size > 0, f"chunk_size must be positive. Got {chunk_size}"
    assert os.path.exists(file_path), f"File not found: {file_path}"
    if n == 0:
        return []
    try:
        with open(file_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            pos = f.tell()
            if pos == 0:
                return []
            blocks: list[bytes] = []
            newlines = 0
            while pos > 0 and newlines <= n:
                size = min(chunk_size, pos)
                pos -= size
                f.seek(pos)
                block = f.read(size)
                blocks.append(block)
                newlines += block.count(b"\n")
    except OSError as e:
        raise RuntimeError(f"Failed to read last {n} lines from {file_path}: {e}") from e
    pieces = b"".join(reversed(blocks)).split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    return pieces[-n:]


def decode_pieces(pieces: list[bytes], encoding: str, errors: str) -> list[str]:
    """Decodes each piece, strips trailing CRs, re-adds '\\n' except last."""
    out = [p.decode(encoding, errors).rstrip("\r") for p in pieces]
    return [s + "\n" for s in out[:-1]] + out[-1:]


def cgroup_cpu_limit() -> float | None:
    """quota/period of the root cgroup, or None (SPEC 4.7 step 3). The
    files are read as the wasm backend's host reads them (:mod:`._cgroup`:
    a FIFO is not waited on, a device not read)."""
    v2, texts = _cgroup.read(SETTINGS.cgroup_root, "cpu")
    try:
        if v2:
            text = texts[0]
            if text is None:
                return None
            parts = text.strip().split()
            if len(parts) != 2 or parts[0] == "max":
                return None
            quota, period = float(parts[0]), float(parts[1])
            if quota > 0:
                if period == 0:  # divergence (b)
                    return None
                return quota / period
            return None
        qt, pt = texts
        if qt is None or pt is None:
            return None
        quota, period = float(qt.strip()), float(pt.strip())
        if quota > 0 and period > 0:
            return quota / period
        return None
    except ValueError:
        return None


def cgroup_memory_limit() -> int | None:
    """The root cgroup memory limit in bytes, or None (SPEC 4.8 step 4)."""
    text = _cgroup.read(SETTINGS.cgroup_root, "memory")[1][0]
    if text is None:
        return None
    text = text.strip()
    if text in ("max", ""):
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value > 0 else None


class PureBackend:
    """The twelve functions in plain Python, with clean argument types."""

    name = "python"
    confined = False

    def base36_encode(self, hex_str: Any) -> str:
        value = int(hex_str, 16)
        if value < 0:  # divergence (a)
            raise ValueError(f"negative value not supported: {hex_str!r}")
        alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
        if value == 0:
            return "0"
        out = []
        while value:
            value, rem = divmod(value, 36)
            out.append(alphabet[rem])
        return "".join(reversed(out))

    def format_float(self, num: Any, precision: Any) -> str:
        if isinstance(num, int):
            return f"{num}"
        if num.is_integer():
            return f"{num:.0f}"
        return f"{num:.{precision}f}"

    def truncate_long_string(self, s: str, max_length: int, truncate_middle: bool) -> str:
        if len(s) <= max_length:
            return s
        if truncate_middle:
            if max_length <= 3:
                return "..."
            k = max_length - 3
            head, tail = (k + 1) // 2, k // 2
            return s[:head] + "..." + (s[-tail:] if tail else "")
        words = s.split(" ")
        if len(words[0]) > max_length:
            return words[0][:max_length] + "..."
        total = 0
        i = len(words) - 1
        for j, w in enumerate(words):
            total += len(w)
            if total >= max_length:
                i = j
                break
        prefix = len(" ".join(words[:i])) if i > 0 else 0
        return s[: max(prefix, max_length)] + "..."

    def read_last_n_lines(self, path: PathArg, n: int, chunk: int, errors: str) -> list[str]:
        return decode_pieces(read_last_n_raw(path, n, chunk), "utf-8", errors)

    def read_last_n_raw(self, path: PathArg, n: int, chunk: int) -> list[bytes]:
        return read_last_n_raw(path, n, chunk)

    def hash_file(self, path: PathArg, hash_alg: str) -> Any:
        with open(path, "rb") as f:
            _check_hash_name(hash_alg)
            name = canonical_hash_name(hash_alg)
            if name is None:
                raise ValueError(f"unsupported hash type {hash_alg}")
            h = hashlib.new(name)
            while True:
                block = f.read(_HASH_BLOCK)
                if not block:
                    break
                h.update(block)
        return h

    def estimate_fd_for_directory(self, path: PathArg) -> int:
        return 5 * len(os.listdir(path))

    def get_cpu_count(self) -> int | None:
        env = SETTINGS.guest_env()
        var = "SKYPILOT_POD_CPU_CORE_LIMIT"
        if var in env:
            value = env[var]
            try:
                return int(float(value))
            except ValueError as e:
                raise ValueError(f"Failed to parse the number of CPUs from {value}") from e
        host = facts()
        cpu: Any = host.logical_cpu_count()
        affinity = host.affinity_cpu_count()
        if affinity is not None:
            cpu = min(cpu, affinity)
        limit = cgroup_cpu_limit()
        if limit is not None:
            cpu = min(cpu, int(limit))
        return cpu  # type: ignore[no-any-return]

    def get_mem_size_gb(self) -> float:
        env = SETTINGS.guest_env()
        gb, by = "SKYPILOT_POD_MEMORY_GB_LIMIT", "SKYPILOT_POD_MEMORY_BYTES_LIMIT"
        if gb in env:
            try:
                return float(env[gb])
            except ValueError as e:
                raise ValueError(f"Failed to parse the memory size from {env[gb]} (GB)") from e
        if by in env:
            try:
                return float(env[by]) / 1073741824.0
            except ValueError as e:
                raise ValueError(f"Failed to parse the memory size from {env[by]} (bytes)") from e
        total = facts().memory_total_bytes()
        limit = cgroup_memory_limit()
        if limit is not None and limit < total:
            total = limit
        return total / 1073741824.0

    def get_parallel_threads(self, cloud_str: str | None) -> int:
        cpus = facts().os_cpu_count()
        if cpus is None:
            cpus = 1
        mult = 4 if cloud_str and cloud_str.lower() == "kubernetes" else 1
        return max(4, cpus - 1) * mult

    def get_max_workers_for_file_mounts(
        self, mounts: list[tuple[str, PathArg]], cloud_str: str | None
    ) -> tuple[int, str | None]:
        soft, _hard = facts().nofile_limit()
        warning = LOW_FD_WARNING.format(soft) if soft is not None and soft < 1024 else None
        fd_per_rsync = 5
        for _dst, src in mounts:
            if os.path.isdir(src):
                fd_per_rsync = max(fd_per_rsync, self.estimate_fd_for_directory(src))
        threads = self.get_parallel_threads(cloud_str)
        if soft is None:  # divergence (c)
            return threads, warning
        workers = (soft - 100) // fd_per_rsync
        return min(max(workers, 1), threads), warning

    def is_process_alive(self, pid: int) -> bool:
        if pid < 0:
            raise ValueError(f"pid must be a positive integer (got {pid})")
        if pid > 2147483647 or pid == 0:
            return False
        return bool(facts().pid_exists(pid))

    def find_free_port(self, start_port: int) -> int:
        if start_port < 0:
            raise OverflowError("bind(): port must be 0-65535.")
        host = facts()
        for port in range(start_port, 65535):
            if host.tcp4_port_bindable(port):
                return port
        raise OSError("No free ports available.")
