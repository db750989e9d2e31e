#!/usr/bin/env bash
# Instructions (callgrind Ir) per verify and per bare ed25519-dalek
# verify_strict on the same bytes (verifier/benches/verify_ir.rs). Unlike
# times, the counts are the same from run to run, so CI can hold the bar
# "full verify <= 1.10x bare verify_strict" without flaking.
#
# Ir per call = (Ir at N = 21 - Ir at N = 1) / 20, so setup cost cancels.
# Prints one line per mode ("Ir per call, MODE: COUNT") and the two ratios.
#
# usage: bash bench/ir.sh [--check [BAR]]
#   --check: exit 1 if a ratio exceeds BAR (default 1.10): verify with a
#            prepared key / bare verify_strict, and verify with a raw
#            keyring / bare from_bytes + verify_strict.
# Needs valgrind (apt package valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
CHECK=""
BAR="1.10"
if [ "${1:-}" = "--check" ]; then
  CHECK=1
  BAR="${2:-1.10}"
fi
if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind is not installed (apt-get install valgrind)" >&2
  exit 2
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cargo bench -p tessera-verifier --features std --bench verify_ir --no-run \
  --message-format=json 2>"$WORK/build.err" >"$WORK/build.json" || {
  cat "$WORK/build.err" >&2
  exit 1
}
BIN="$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "verify_ir" and m.get("executable"):
        print(m["executable"])' "$WORK/build.json" | tail -1)"

ir() { # mode n -> total Ir of the run
  TESSERA_IR_MODE="$1" TESSERA_IR_N="$2" valgrind --tool=callgrind \
    --callgrind-out-file="$WORK/cg.$1.$2" "$BIN" >"$WORK/out.$1.$2" 2>&1 || {
    cat "$WORK/out.$1.$2" >&2
    echo "callgrind run of $1 failed" >&2
    exit 1
  }
  local count
  count="$(awk '/Collected/ { print $NF }' "$WORK/out.$1.$2")"
  if [ -z "$count" ]; then
    cat "$WORK/out.$1.$2" >&2
    echo "callgrind printed no instruction count for $1 (above)" >&2
    exit 1
  fi
  echo "$count"
}

declare -A IR
for mode in verify verify_prepared strict strict_from_bytes; do
  a="$(ir "$mode" 1)"
  b="$(ir "$mode" 21)"
  IR[$mode]=$(((b - a) / 20))
  echo "Ir per call, $mode: ${IR[$mode]}"
done

python3 - "${IR[verify_prepared]}" "${IR[strict]}" "${IR[verify]}" "${IR[strict_from_bytes]}" \
  "$BAR" "$CHECK" <<'PY'
import sys
vp, s, v, fs = map(int, sys.argv[1:5])
bar, check = float(sys.argv[5]), sys.argv[6] == "1"
failed = False
for label, a, b in (
    ("verify, prepared key / bare verify_strict", vp, s),
    ("verify, raw keyring / bare from_bytes+verify_strict", v, fs),
):
    ratio = a / b
    over = ratio > bar
    failed |= over
    mark = f"  OVER the {bar:.2f}x bar" if over else (f"  (bar {bar:.2f}x)" if check else "")
    print(f"Ir ratio, {label}: {a} / {b} = {ratio:.3f}x{mark}")
if check and failed:
    print("full verify costs more than the bar over the bare primitive: see bench/REPORT.md for where the instructions go", file=sys.stderr)
    sys.exit(1)
PY
