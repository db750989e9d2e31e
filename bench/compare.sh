#!/usr/bin/env bash
# Verifier cost, measured in one run on this machine:
#   1. criterion + an interleaved timing loop (verifier/benches/verify.rs):
#      full verify vs bare ed25519-dalek verify_strict on the same
#      Sig_structure, decode alone, encode+sign vs bare sign;
#   2. `openssl speed -seconds 3 ed25519` before and after (1), and our
#      verify rate over OpenSSL's;
#   3. valgrind --tool=callgrind instruction counts (Ir) per verify and per
#      bare verify_strict (bench/ir.sh, verifier/benches/verify_ir.rs), repeatable on a
#      noisy machine;
#   4. with qemu-system-arm installed: instructions on Cortex-M4 (fw-demo
#      under QEMU -icount) of verify and of bare verify_strict.
# Prints a summary to paste into bench/REPORT.md. Times depend on the
# machine and its load; the Ir and Cortex-M4 counts do not.
#
# usage: bash bench/compare.sh [--quick]   (--quick: shorter criterion runs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export CARGO_TERM_COLOR=never
# criterion writes its reports under $CARGO_TARGET_DIR/criterion.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
LOG="$(mktemp -d)"
trap 'rm -rf "$LOG"' EXIT
CRITERION_ARGS=()
if [ "${1:-}" = "--quick" ]; then
  CRITERION_ARGS=(--warm-up-time 1 --measurement-time 1)
fi

openssl_verify_rate() {
  openssl speed -seconds 3 ed25519 2>/dev/null | awk '/Ed25519/ { print $NF }' | tail -1
}

echo "=== machine"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
echo "rustc:   $(rustc --version)"
echo "openssl: $(openssl version)"

echo "=== build benches"
cargo bench -p tessera-verifier --features std --bench verify --no-run \
  --message-format=json 2>/dev/null >"$LOG/build.json"
exe() {
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[2] and m.get("executable"):
        print(m["executable"])' "$LOG/build.json" "$1" | tail -1
}
VERIFY_BENCH="$(exe verify)"

echo "=== openssl speed -seconds 3 ed25519 (before)"
OSSL_BEFORE="$(openssl_verify_rate)"
echo "OpenSSL Ed25519 verify/s: $OSSL_BEFORE"

echo "=== cargo bench -p tessera-verifier --features std --bench verify"
"$VERIFY_BENCH" --bench "${CRITERION_ARGS[@]}" | tee "$LOG/bench.txt" \
  | grep -E '^(TIME|RATIO|RATE|[a-z].*time:)'

echo "=== openssl speed -seconds 3 ed25519 (after)"
OSSL_AFTER="$(openssl_verify_rate)"
echo "OpenSSL Ed25519 verify/s: $OSSL_AFTER"

echo "=== valgrind --tool=callgrind (bench/ir.sh: Ir per call = (Ir(N=21) - Ir(N=1)) / 20)"
declare -A IR
if command -v valgrind >/dev/null 2>&1; then
  bash bench/ir.sh | tee "$LOG/ir.txt"
  while read -r mode count; do
    IR[$mode]="$count"
  done < <(sed -n 's/^Ir per call, \([a-z_]*\): \([0-9]*\)$/\1 \2/p' "$LOG/ir.txt")
else
  echo "valgrind not installed: skipped"
fi

M4=""
if command -v qemu-system-arm >/dev/null 2>&1; then
  echo "=== Cortex-M4 (fw-demo --features baseline, QEMU -icount shift=0)"
  (cd verifier/fw-demo && CARGO_TARGET_DIR="$PWD/target/baseline" \
    cargo build --release --locked --features baseline -q)
  # (the budgeted build, without the baseline, is measured by
  # verifier/fw-demo/run.sh; inlining differs slightly between the two)
  M4="$(timeout 120 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
    -semihosting-config enable=on,target=native -icount shift=0 \
    -kernel verifier/fw-demo/target/baseline/thumbv7em-none-eabihf/release/tessera-fw-demo)"
  printf '%s\n' "$M4" | grep -E '^(vector first-activation-hw|baseline|stack:|result)'
fi

echo "=== summary"
python3 - "$LOG/bench.txt" "$OSSL_BEFORE" "$OSSL_AFTER" \
  "${IR[verify]:-}" "${IR[verify_prepared]:-}" "${IR[strict]:-}" "${IR[strict_from_bytes]:-}" \
  <<'PY' "$M4"
import re, sys
bench, before, after, ir_v, ir_vp, ir_s, ir_fs, m4 = sys.argv[1:9]
text = open(bench).read()
t = {m.group(1).strip(): float(m.group(2)) for m in re.finditer(r"^TIME (.+?)\s+([\d.]+) us", text, re.M)}
r = {m.group(1).strip(): float(m.group(2)) for m in re.finditer(r"^RATIO (.+?)\s+([\d.]+)x", text, re.M)}
crit = {m.group(1).strip(): m.group(2) for m in re.finditer(r"^(\S.*?)\s+time:\s+\[\S+ \S+ (\S+ \S+)", text, re.M)}
ossl = (float(before) + float(after)) / 2
ours = 1e6 / t["full verify, prepared key"]
ours_raw = 1e6 / t["full verify"]
bare = 1e6 / t["bare verify_strict"]
print("| figure | value | bar |")
print("|---|---|---|")
print(f"| full verify (armor+decode+signature+binding+time), prepared key, criterion median | {crit.get('full verify, prepared key', '?')} | |")
print(f"| bare `verify_strict` (prepared key), criterion median | {crit.get('bare verify_strict', '?')} | |")
print(f"| full verify, raw keyring, criterion median | {crit.get('full verify', '?')} | |")
print(f"| bare `from_bytes`+`verify_strict`, criterion median | {crit.get('bare from_bytes+verify_strict', '?')} | |")
print(f"| full verify, prepared key / bare `verify_strict`, interleaved loop | {r['full verify, prepared key / bare verify_strict']:.3f}x | <= 1.10x |")
print(f"| full verify, raw keyring / bare `from_bytes`+`verify_strict`, interleaved loop | {r['full verify / bare from_bytes+verify_strict']:.3f}x | <= 1.10x |")
print(f"| decode alone (armor+CBOR, no signature) | {t['decode alone']:.2f} us ({r['decode alone / bare verify_strict']:.3f}x verify_strict) | |")
print(f"| license encode+sign / bare sign | {r['encode+sign / bare sign']:.3f}x | |")
print(f"| our verify rate (prepared key) / OpenSSL Ed25519 verify rate | {ours:.0f}/s / {ossl:.0f}/s = {ours / ossl:.2f}x | >= 2.5x |")
print(f"| our verify rate (raw keyring) / OpenSSL | {ours_raw:.0f}/s / {ossl:.0f}/s = {ours_raw / ossl:.2f}x | |")
print(f"| bare dalek verify_strict rate / OpenSSL | {bare:.0f}/s / {ossl:.0f}/s = {bare / ossl:.2f}x | |")
print(f"| OpenSSL verify/s before / after our bench | {float(before):.0f} / {float(after):.0f} | |")
if ir_v:
    iv, ivp, i_s, ifs = int(ir_v), int(ir_vp), int(ir_s), int(ir_fs)
    print(f"| callgrind Ir, verify with prepared key / bare verify_strict | {ivp} / {i_s} = {ivp / i_s:.3f}x | |")
    print(f"| callgrind Ir, verify with raw keyring / bare from_bytes+verify_strict | {iv} / {ifs} = {iv / ifs:.3f}x | |")
v = re.search(r"^vector first-activation-hw: .* insns=(\d+) stack=(\d+)", m4, re.M)
b = re.search(r"^baseline verify_strict: ok insns=(\d+) stack=(\d+)", m4, re.M)
if v and b:
    vi, vs, bi, bs = map(int, (v.group(1), v.group(2), b.group(1), b.group(2)))
    print(f"| Cortex-M4 instructions, verify / bare from_bytes+verify_strict | {vi} / {bi} = {vi / bi:.3f}x | |")
    print(f"| Cortex-M4 stack of one call, verify / bare | {vs} / {bs} bytes | |")
PY
