#!/usr/bin/env bash
# Runs each fuzz target for a short while (FUZZ_SECONDS, default 15) from a
# corpus seeded with the spec vectors (the signature target with the
# RFC 8032 / Wycheproof / CCTV / speccheck Ed25519 cases). Needs nightly and
# cargo-fuzz; installs them if missing and, outside CI, skips with a reason
# only if that install fails (with CI=true that is a failure).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-15}"
skip() {
  if [ "${CI:-}" = true ]; then
    echo "fuzz: $1" >&2
    exit 1
  fi
  echo "SKIP fuzz: $1"
  exit 0
}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal || skip "nightly toolchain could not be installed"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked || skip "cargo-fuzz could not be installed"
fi

# Seed corpora: every vector as raw CBOR, and the armored files as text.
python3 - <<'PY'
import json, pathlib
root = pathlib.Path("../spec/vectors")
for target in ("decode", "verify", "armor", "request", "signature"):
    pathlib.Path("corpus", target).mkdir(parents=True, exist_ok=True)
for f in ("licenses.json", "requests.json", "checkpoints.json"):
    for v in json.loads((root / f).read_text())["vectors"]:
        for target in ("decode", "verify"):
            (pathlib.Path("corpus", target) / v["name"]).write_bytes(bytes.fromhex(v["cbor"]))
for f in root.glob("*.lic"):
    (pathlib.Path("corpus/armor") / f.name).write_text(f.read_text())
for f in root.glob("*.req"):
    (pathlib.Path("corpus/armor") / f.name).write_text(f.read_text())
# signature: key (32) | signature (64) | message.
cases = []
third = root / "third-party"
for t in json.loads((third / "cctv_ed25519vectors.json").read_text()):
    cases.append((t["key"], t["sig"], t["msg"].encode().hex()))
for t in json.loads((third / "speccheck_cases.json").read_text()):
    cases.append((t["pub_key"], t["signature"], t["message"]))
for g in json.loads((third / "wycheproof_v1_ed25519_test.json").read_text())["testGroups"]:
    for t in g["tests"]:
        if len(t["sig"]) == 128:
            cases.append((g["publicKey"]["pk"], t["sig"], t["msg"]))
for i, (key, sig, msg) in enumerate(cases):
    (pathlib.Path("corpus/signature") / f"case-{i}").write_bytes(bytes.fromhex(key + sig + msg))
PY

for target in armor decode verify request signature; do
  echo "fuzzing $target for ${seconds}s"
  cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 2>&1 | tail -n 12
done
