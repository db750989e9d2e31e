#!/usr/bin/env bash
# CI for the C ABI and the firmware demo (called from .ci/run):
#   - installs what it needs (qemu-system-arm, gcc, python3, cbindgen, the
#     thumbv7em-none-eabihf target);
#   - verifier/capi: the checked-in header must equal a fresh cbindgen run
#     and compile as C90, C99 and C++11; the static library (capi profile,
#     panic = "abort") builds for the host and for thumbv7em-none-eabihf;
#     the vector driver agrees with the vectors of spec/vectors (the
#     expectations the Rust verifier wrote); the hostile calls of
#     tests/hostile.c run under ASan and UBSan; the firmware example
#     (examples/firmware.c) walks activation and renewal through the vendor
#     CLI (tessera issue, tessera renew);
#   - verifier/fw-demo: builds, runs under QEMU and checks its budgets
#     (flash, stack, no heap, license size, every vector's decision).
# Exits non-zero on any failure. Budgets: FW_FLASH_BUDGET, FW_STACK_BUDGET,
# FW_LICENSE_BUDGET (bytes; defaults in verifier/fw-demo/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export CARGO_TERM_COLOR=never
export CARGO_INCREMENTAL=0
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
START=$(date +%s)

step() { printf '\n=== %s (%s, +%ss)\n' "$1" "$(date -u +%H:%M:%S)" "$(( $(date +%s) - START ))"; }

step "tools"
missing=()
command -v qemu-system-arm >/dev/null 2>&1 || missing+=(qemu-system-arm)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v timeout >/dev/null 2>&1 || missing+=(coreutils)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
rustup target add thumbv7em-none-eabihf >/dev/null
if ! command -v cbindgen >/dev/null 2>&1; then
  cargo install cbindgen --locked --quiet
fi
qemu-system-arm --version | head -1
cbindgen --version
gcc --version | head -1

CAPI=verifier/capi
CBINDGEN=(cbindgen --quiet --config "$CAPI/cbindgen.toml" --crate tessera-verifier-capi)

step "capi: header is not stale"
FRESH="$(mktemp)"
trap 'rm -f "$FRESH"' EXIT
"${CBINDGEN[@]}" --output "$FRESH" "$CAPI"
if ! diff -u "$CAPI/include/tessera.h" "$FRESH"; then
  echo "verifier/capi/include/tessera.h is stale; regenerate it with:" >&2
  echo "  ${CBINDGEN[*]} --output $CAPI/include/tessera.h $CAPI" >&2
  exit 1
fi

# The profile the static library for C is built with (workspace
# Cargo.toml): release, LTO, panic = "abort" (no unwinding can reach C).
PROFILE=(--profile capi)

step "capi: static library (host, panic=abort)"
cargo build -p tessera-verifier-capi --lib "${PROFILE[@]}"
LIB="$TARGET/capi/libtessera_verifier_capi.a"
ls -l "$LIB"

step "capi: static library for thumbv7em-none-eabihf (no_std firmware)"
cargo build -p tessera-verifier-capi --lib --target thumbv7em-none-eabihf "${PROFILE[@]}" \
  --no-default-features --features small-stack
THUMB_LIB="$TARGET/thumbv7em-none-eabihf/capi/libtessera_verifier_capi.a"
ls -l "$THUMB_LIB"
# Every function the header declares is defined in the firmware library.
declared="$(grep -oE '\btessera_[a-z0-9_]+\(' "$CAPI/include/tessera.h" | tr -d '(' | sort -u)"
defined="$(readelf -sW "$THUMB_LIB" 2>/dev/null \
  | awk '$5 == "GLOBAL" && $4 == "FUNC" && $7 != "UND" { print $8 }' | grep '^tessera_' | sort -u)"
if [ "$declared" != "$defined" ]; then
  echo "functions declared in tessera.h vs defined in the thumbv7em library differ:" >&2
  diff <(echo "$declared") <(echo "$defined") >&2 || true
  exit 1
fi
echo "all $(echo "$declared" | wc -l) functions of tessera.h are defined for thumbv7em-none-eabihf"

step "capi: the header alone as C90, C99 and C++11 (included twice)"
printf '#include "tessera.h"\n#include "tessera.h"\n' >"$FRESH.c"
for std in c90 c99; do
  gcc -x c -std=$std -pedantic -Wall -Wextra -Werror -I "$CAPI/include" -fsyntax-only "$FRESH.c"
done
if command -v g++ >/dev/null 2>&1; then
  g++ -x c++ -std=c++11 -Wall -Wextra -Werror -I "$CAPI/include" -fsyntax-only "$FRESH.c"
fi
rm -f "$FRESH.c"

step "capi: vector driver (gcc -std=c99 -Wall -Wextra -Werror) on the spec vectors"
mkdir -p "$TARGET/c"
gcc -std=c99 -Wall -Wextra -Werror -pedantic -O2 -I "$CAPI/include" \
  "$CAPI/examples/verify.c" "$LIB" -lpthread -ldl -lm -o "$TARGET/c/verify"
python3 "$CAPI/examples/vectors.py" "$TARGET/c/verify" spec/vectors

step "capi: hostile calls under AddressSanitizer and UndefinedBehaviorSanitizer"
gcc -std=c99 -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all \
  -fno-omit-frame-pointer -I "$CAPI/include" "$CAPI/tests/hostile.c" "$LIB" -lpthread -ldl -lm \
  -o "$TARGET/c/hostile"
"$TARGET/c/hostile" spec/vectors/typical.lic

step "capi: firmware example, activation and renewal through tessera issue / renew"
bash "$CAPI/examples/firmware.sh" "$LIB"

step "fw-demo: build, run under QEMU, check budgets"
FW_REPORT="$TARGET/fw-figures.txt" bash verifier/fw-demo/run.sh

step "fw-demo: the flash table of bench/REPORT.md accounts for the whole firmware"
bash bench/flash.sh | tee "$TARGET/fw-flash.md"
by_module="$(sed -n 's/^| total | \([0-9,]*\) .*/\1/p' "$TARGET/fw-flash.md" | tr -d ,)"
firmware="$(sed -n 's/^flash_firmware=//p' "$TARGET/fw-figures.txt")"
if [ "$by_module" != "$firmware" ]; then
  echo "bench/flash.sh counts $by_module bytes, run.sh's firmware figure is $firmware" >&2
  exit 1
fi

step "done in $(( $(date +%s) - START ))s"
