#!/usr/bin/env bash
# `make run`: every one of the twelve functions through the component, on a
# generated sample log and this repository's own files.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/skyutils
demo=target/demo
mkdir -p "$demo"
for i in $(seq 1 2000); do printf '%s INFO replica-%d request %d served in %d ms\r\n' "2026-11-26T19:$((i % 60)):00" $((i % 3)) "$i" $((i * 7 % 251)); done > "$demo/sample.log"
ln -sfn sample.log "$demo/latest.log"

run() { printf '\n$ skyutils %s\n' "$*"; "$bin" "$@" || true; }
echo "skyutils demo: SkyPilot's twelve utilities running inside the WebAssembly component"
run read-last-n-lines "$demo/latest.log" -n 3
run --json read-last-n-lines "$demo/sample.log" -n 2
run hash-file Cargo.toml --alg sha256
run hash-file wit/world.wit --alg md5
run --json hash-file README.md --alg shake_128 --length 16
run find-free-port 20001
run base36-encode "$(printf 'skypilot' | md5sum | cut -d' ' -f1)"
run format-float 1234.5678 --precision 2
run format-float 1e23
run truncate-long-string "sky launch -c mycluster --gpus A100:8 task.yaml" --max-length 25
run truncate-long-string us-central1-a-very-long-zone-name --max-length 25 --middle
run cpu-count
run mem-size-gb
run parallel-threads --cloud kubernetes
run is-process-alive $$
run max-workers-for-file-mounts --mount /remote/src=guest/src --mount /remote/wit=wit --cloud aws
run estimate-fd guest/src
run sysinfo
echo
echo "Errors keep upstream's exception class and message:"
run read-last-n-lines "$demo/missing.log" -n 1
run --json base36-encode -ff
run --allow-dir "$demo" hash-file /etc/passwd

echo
echo "The same component from Python (skyutils_wasm, a drop-in for sky.utils):"
py=.venv/bin/python
[ -x "$py" ] || py=python3
printf '\n$ python -c "from skyutils_wasm import common_utils as cu; ..."\n'
PYTHONPATH=python-host/src "$py" -c '
import skyutils_wasm
from skyutils_wasm import common_utils as cu
print(cu.read_last_n_lines("'"$demo"'/latest.log", 2))
print(cu.format_float(1234.5678, 2), cu.get_cpu_count(), cu.base36_encode("ff"))
print({k: v for k, v in skyutils_wasm.backend_info().items() if k in ("backend", "conversion")})
' || true
