"""Python benchmarks: SkyPilot 0.14.1's originals vs skyutils_wasm's wasm and
pure-Python backends, side by side in one run (systems interleaved in
rounds). Writes target/python-bench.json for host/benches/report.py.

Run with `make bench` (which builds the data files through the Rust benches
first) or: .venv/bin/python python-host/benchmarks/run.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "target" / "bench-data"
MAIN_PY = ROOT / ".venv" / "bin" / "python"
ORACLE_PY = ROOT / ".venv-oracle" / "bin" / "python"
WORKER = Path(__file__).with_name("worker.py")
ROUNDS = 3
BUDGET_S = 0.4

#: Goals of issue 10 (same-run ratio of medians, wasm backend vs upstream).
GOALS: dict[str, tuple[str, float]] = {
    "base36_encode": ("≤ 1.6x upstream", 1.6),
    "format_float": ("≤ 12x upstream", 12.0),
    "truncate_long_string": ("≤ 12x upstream", 12.0),
    "read_last_n_lines_1GiB_n10": ("≤ 4x upstream", 4.0),
    "read_last_n_lines_3_lines": ("≤ 4x upstream", 4.0),
    "get_cpu_count": ("≤ 1.5x upstream", 1.5),
    "get_mem_size_gb": ("≤ 1.5x upstream", 1.5),
    "is_process_alive": ("faster than upstream (< 1x)", 1.0),
    "estimate_fd_for_directory_10k": ("≤ 3x upstream", 3.0),
    "get_max_workers_for_file_mounts": ("≤ 3x upstream", 3.0),
}


#: Floors (wasm backend only): ``name -> (upstream call, what it measures,
#: what it says)``.
FLOORS: dict[str, tuple[str, str, str]] = {
    "get_cpu_count_floor": (
        "get_cpu_count",
        "host facts that do no work (the call and its 3 imports)",
        "informative (the fixed cost; the work is upstream's own)",
    ),
    "thread_round_trips_3": (
        "read_last_n_lines_3_lines",
        "3 round trips to another thread (the tail's 3 WASI operations run on one)",
        "informative (a goal below it is out of reach through the C API)",
    ),
}


def ensure_data() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    blob = DATA / "random-16MiB.bin"
    if not blob.exists() or blob.stat().st_size != 16 << 20:
        blob.write_bytes(os.urandom(16 << 20))
    (DATA / "small.log").write_text("one\ntwo\nthree\n")
    if not (DATA / "log-1GiB.log").exists() or not (DATA / "dir10k").is_dir():
        sys.exit("run the Rust benches first (make bench) to create target/bench-data")


def ensure_oracle() -> None:
    if ORACLE_PY.exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(ORACLE_PY.parents[1])], check=True)
    subprocess.run(
        [str(ORACLE_PY), "-m", "pip", "install", "-q", "skypilot==0.14.1", "psutil"], check=True
    )


def run(system: str) -> dict[str, list[float]]:
    python = ORACLE_PY if system == "upstream" else MAIN_PY
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python-host" / "src"))
    out = subprocess.run(
        [str(python), str(WORKER), system, str(DATA), str(BUDGET_S)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def startup_ms() -> tuple[list[float], list[float]]:
    """`import wasmtime`, then `import skyutils_wasm` + a first call, each
    timed inside the same fresh interpreter (ms), 15 interpreters after one
    warm-up run. Timing both in one process keeps the noise of starting
    Python out of the difference. Bytecode caching is on, as for an
    installed package (pip compiles .pyc files at install time)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python-host" / "src"), SKYUTILS_BACKEND="wasm")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    code = (
        "import time; t0 = time.perf_counter(); import wasmtime; t1 = time.perf_counter(); "
        "import skyutils_wasm; skyutils_wasm.base36_encode('ff'); t2 = time.perf_counter(); "
        "print(t1 - t0, t2 - t1)"
    )
    base: list[float] = []
    ours: list[float] = []
    for i in range(16):
        out = subprocess.run(
            [str(MAIN_PY), "-c", code], check=True, capture_output=True, text=True, env=env
        ).stdout.split()
        if i:  # the first run writes bytecode and warms the caches
            base.append(float(out[0]) * 1000)
            ours.append(float(out[1]) * 1000)
    return base, ours


def fmt(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def main() -> None:
    ensure_data()
    ensure_oracle()
    samples: dict[str, dict[str, list[float]]] = {"upstream": {}, "wasm": {}, "pure": {}}
    for _ in range(ROUNDS):
        for system in samples:
            for name, times in run(system).items():
                samples[system].setdefault(name, []).extend(times)
    rows: list[list[str]] = []
    for name in samples["wasm"]:
        if name in FLOORS:
            # A floor: the wasm call without its work, against upstream's
            # whole call.
            of, what, note = FLOORS[name]
            ours = statistics.median(samples["wasm"][name])
            up = statistics.median(samples["upstream"][of])
            rows.append(
                [f"{of}: the floor", f"wasm, {what} vs upstream", f"{fmt(ours)} / {fmt(up)}"]
                + [f"{ours / up:.2f}x", note, "—"]
            )
            continue
        up = statistics.median(samples["upstream"][name])
        for system in ("wasm", "pure"):
            ours = statistics.median(samples[system][name])
            spread = f"min {fmt(min(samples[system][name]))}, max {fmt(max(samples[system][name]))}"
            goal, limit = (
                GOALS.get(name, ("informative", 0.0)) if system == "wasm" else ("informative", 0.0)
            )
            ratio = ours / up
            met = "—" if limit == 0.0 else ("met" if ratio <= limit else "**missed**")
            rows.append(
                [
                    f"{name} ({spread})",
                    f"{system} vs upstream",
                    f"{fmt(ours)} / {fmt(up)}",
                    f"{ratio:.2f}x",
                    goal,
                    met,
                ]
            )
    base, ours = startup_ms()
    extra = statistics.median(ours)
    rows.append(
        [
            f"import + first call, warm cache (min {min(ours):.1f} ms, max {max(ours):.1f} ms)",
            "skyutils_wasm after `import wasmtime`, same process",
            f"+{extra:.1f} ms (import wasmtime: {statistics.median(base):.1f} ms)",
            "—",
            "≤ 20 ms beyond import wasmtime",
            "met" if extra <= 20 else "**missed**",
        ]
    )
    target = ROOT / "target" / "python-bench.json"
    medians = {
        system: {name: statistics.median(times) for name, times in found.items()}
        for system, found in samples.items()
    }
    target.write_text(json.dumps({"rows": rows, "medians_ns": medians}, indent=1))
    for r in rows:
        print(" | ".join(r))


if __name__ == "__main__":
    main()
