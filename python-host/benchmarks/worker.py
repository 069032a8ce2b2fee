"""Times the twelve functions for one system and prints JSON to stdout.

Usage: worker.py {upstream,wasm,pure} DATA_DIR ROUNDS
``upstream`` runs SkyPilot 0.14.1 (with ``is_process_alive`` as 0.10.5 wrote
it on psutil, and ``estimate_fd_for_directory`` as the inline computation of
``get_max_workers_for_file_mounts``); ``wasm`` and ``pure`` run skyutils_wasm
with that backend forced.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

HEX32 = "6f1ed002ab5595859014ebf0951522d9"
SENTENCE = "The quick brown fox jumps over the lazy dog while the cat sleeps on a warm mat k"


def functions(system: str, data: str) -> dict[str, Callable[[], Any]]:
    if system == "upstream":
        import psutil  # type: ignore[import-untyped]
        from sky.utils import common_utils as cu  # type: ignore[import-not-found]
        from sky.utils import subprocess_utils as su  # type: ignore[import-not-found]

        def is_process_alive(pid: int) -> bool:  # skypilot 0.10.5
            if pid < 0:
                raise ValueError(f"pid must be a positive integer (got {pid})")
            try:
                psutil.Process(pid)
                return True
            except psutil.NoSuchProcess:
                return False

        def estimate_fd(path: str) -> int:
            return len(os.listdir(path)) * 5

        alive, estimate = is_process_alive, estimate_fd
    else:
        os.environ["SKYUTILS_BACKEND"] = "python" if system == "pure" else system
        import skyutils_wasm as cu  # type: ignore[no-redef]

        su = cu
        alive, estimate = cu.is_process_alive, cu.estimate_fd_for_directory
    log = os.path.join(data, "log-1GiB.log")
    blob = os.path.join(data, "random-16MiB.bin")
    dir10k = os.path.join(data, "dir10k")
    small = os.path.join(data, "small.log")
    pid = os.getpid()
    table: dict[str, Callable[[], Any]] = {
        "base36_encode": lambda: cu.base36_encode(HEX32),
        "format_float": lambda: cu.format_float(1234.5678, 2),
        "truncate_long_string": lambda: cu.truncate_long_string(SENTENCE),
        "get_cpu_count": cu.get_cpu_count,
        "get_mem_size_gb": cu.get_mem_size_gb,
        "get_parallel_threads": lambda: su.get_parallel_threads("kubernetes"),
        "is_process_alive": lambda: alive(pid),
        "find_free_port": lambda: cu.find_free_port(20001),
        "read_last_n_lines_1GiB_n10": lambda: cu.read_last_n_lines(log, 10),
        "hash_file_sha256_16MiB": lambda: cu.hash_file(blob, "sha256").hexdigest(),
        "get_max_workers_for_file_mounts": lambda: su.get_max_workers_for_file_mounts(
            {"/r": dir10k}
        ),
        "estimate_fd_for_directory_10k": lambda: estimate(dir10k),
        # Floors: a string call with no work in it, and a tail of a 3-line
        # file (the per-call cost without the data).
        "string_echo": lambda: cu.truncate_long_string("abc", 80),
        "read_last_n_lines_3_lines": lambda: cu.read_last_n_lines(small, 10),
    }
    return table


def floors(
    system: str,
) -> dict[str, tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]]]:
    """Calls timed under another configuration: ``name -> (enter, call,
    exit)``, wasm backend only. ``get_cpu_count_floor`` is
    ``get_cpu_count`` with host facts that do no work (constant CPU counts,
    no cgroup tree): the call and its three imports alone.
    ``thread_round_trips_3`` is this machine's cost of handing work to
    another thread and back, three times."""
    if system != "wasm":
        return {}
    import skyutils_wasm as cu
    from skyutils_wasm._facts import NativeFacts

    class ConstantFacts(NativeFacts):  # type: ignore[misc,valid-type]
        def logical_cpu_count(self) -> int:
            return 2

        def affinity_cpu_count(self) -> int:
            return 2

    def enter() -> None:
        cu.configure(facts=ConstantFacts(), cgroup_root=None)

    def leave() -> None:
        cu.configure(facts=None, cgroup_root="/sys/fs/cgroup")

    # Three round trips to another thread and back: what wasmtime's C API
    # does for the three WASI operations of a tail (it runs each on a worker
    # thread), here with Python queues.
    requests: queue.SimpleQueue[bool] = queue.SimpleQueue()
    replies: queue.SimpleQueue[bool] = queue.SimpleQueue()

    def serve() -> None:
        while requests.get():
            replies.put(True)

    def start() -> None:
        threading.Thread(target=serve, daemon=True).start()

    def three_round_trips() -> None:
        for _ in range(3):
            requests.put(True)
            replies.get()

    return {
        "get_cpu_count_floor": (enter, cu.get_cpu_count, leave),
        "thread_round_trips_3": (start, three_round_trips, lambda: requests.put(False)),
    }


def measure(fn: Callable[[], Any], budget_s: float) -> list[float]:
    """Per-call times (ns) of batches sized to take about 1 ms each."""
    fn()
    start = time.perf_counter_ns()
    fn()
    one = max(time.perf_counter_ns() - start, 1)
    batch = max(1, int(1_000_000 / one))
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while time.perf_counter() < deadline or len(samples) < 5:
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter_ns() - t0) / batch)
    return samples


def main() -> None:
    system, data, budget = sys.argv[1], sys.argv[2], float(sys.argv[3])
    # SKYUTILS_BENCH_ONLY=name,name,... times only those (for quick checks).
    only = [n for n in os.environ.get("SKYUTILS_BENCH_ONLY", "").split(",") if n]
    table = functions(system, data)
    out = {name: measure(fn, budget) for name, fn in table.items() if not only or name in only}
    for name, (enter, fn, leave) in floors(system).items():
        if not only or name in only:
            enter()
            try:
                out[name] = measure(fn, budget)
            finally:
                leave()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
