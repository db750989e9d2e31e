#!/usr/bin/env bash
# The C firmware example (examples/firmware.c) against the vendor CLI:
#
#   vendor: a signing key and its keyring, exported as the C keyring header
#           the firmware is built with;
#   boot 1: no license -> the firmware writes an activation request;
#   vendor: `tessera issue` accepts the request and answers with a license;
#   boot 2: the firmware accepts it (valid) and learns its SW serial;
#   boot 3: 26 days later the renewal is due -> a renewal request;
#   vendor: `tessera renew` answers with the next sequence;
#   boot 4: the firmware accepts it (valid again).
#
# usage: bash verifier/capi/examples/firmware.sh <libtessera_verifier_capi.a>
#        [<tessera binary>]
# Needs gcc. Exit status non-zero on any failure.
set -euo pipefail
EXAMPLES="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$EXAMPLES/../../.." && pwd)"
LIB="$(realpath "$1")"
TESSERA="${2:-$ROOT/target/debug/tessera}"
if [ ! -x "$TESSERA" ]; then
  (cd "$ROOT" && cargo build --quiet -p tessera-issuer --bin tessera)
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
mkdir vendor flash
export TESSERA_PASSPHRASE="firmware example passphrase"
export TESSERA_OPERATOR=firmware-example
export TESSERA_KEY="$WORK/vendor/signing.pem"
export TESSERA_KEYRING="$WORK/vendor/keyring.toml"
export TESSERA_LEDGER="$WORK/vendor/tessera.db"
T0=1767344400   # 2026-01-02T09:00:00Z
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

step() { printf -- '--- %s\n' "$1"; }
expect() { # output pattern
  if ! grep -q -- "$2" <<<"$1"; then
    printf '%s\n' "$1"
    echo "expected: $2" >&2
    exit 1
  fi
}

step "vendor: signing key, keyring, C keyring header"
"$TESSERA" keygen --out "$TESSERA_KEY" --keyring "$TESSERA_KEYRING" --valid-from 2025-01-01 \
  --label "firmware example key" >/dev/null
# A ledger is created by `tessera ledger init` where that command exists.
if "$TESSERA" ledger init --help >/dev/null 2>&1; then
  "$TESSERA" ledger init >/dev/null
fi
"$TESSERA" keyring export --format c -o vendor/tessera_keyring.h >/dev/null

step "firmware: build (gcc -std=c99 -Wall -Wextra -Werror) with the vendor's keyring"
gcc -std=c99 -Wall -Wextra -Werror -pedantic -O2 -I vendor -I "$EXAMPLES/../include" \
  "$EXAMPLES/firmware.c" "$LIB" -lpthread -ldl -lm -o firmware

step "boot 1: no license"
out="$(./firmware flash "$T0")"; printf '%s\n' "$out"
expect "$out" "wrote request.req (activation"

step "vendor: tessera issue"
"$TESSERA" issue --order "$EXAMPLES/order.toml" --request flash/request.req \
  -o flash/incoming.lic --now "$(iso "$T0")"

step "boot 2: the vendor's license"
out="$(./firmware flash $((T0 + 3600)))"; printf '%s\n' "$out"
expect "$out" "accepted incoming.lic: valid sequence=1 serial=SW-"
expect "$out" "license: valid sequence=1"
if grep -q "wrote request" <<<"$out"; then echo "no request while valid" >&2; exit 1; fi

step "boot 3: 26 days later, the renewal is due"
out="$(./firmware flash $((T0 + 26 * 86400)))"; printf '%s\n' "$out"
expect "$out" "license: renewal_due sequence=1"
expect "$out" "wrote request.req (renewal"

step "vendor: tessera renew"
"$TESSERA" renew --request flash/request.req -o flash/incoming.lic --now "$(iso $((T0 + 26 * 86400)))"

step "boot 4: the renewal"
out="$(./firmware flash $((T0 + 26 * 86400 + 3600)))"; printf '%s\n' "$out"
expect "$out" "accepted incoming.lic: valid sequence=2"
expect "$out" "license: valid sequence=2"

echo "firmware example: activation and renewal through tessera issue and tessera renew: OK"
