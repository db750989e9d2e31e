#!/usr/bin/env bash
# Runs each fuzz target for a short while (FUZZ_SECONDS, default 15) from a
# corpus seeded with the spec vectors. Needs nightly and cargo-fuzz; installs
# them if missing and skips with a reason only if that install fails.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-15}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal || { echo "SKIP fuzz: nightly toolchain could not be installed"; exit 0; }
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked || { echo "SKIP fuzz: cargo-fuzz could not be installed"; exit 0; }
fi

# Seed corpora: every vector as raw CBOR, and the armored files as text.
python3 - <<'PY'
import json, pathlib
root = pathlib.Path("../spec/vectors")
for target in ("decode", "verify", "armor"):
    pathlib.Path("corpus", target).mkdir(parents=True, exist_ok=True)
for f in ("licenses.json", "requests.json"):
    for v in json.loads((root / f).read_text())["vectors"]:
        for target in ("decode", "verify"):
            (pathlib.Path("corpus", target) / v["name"]).write_bytes(bytes.fromhex(v["cbor"]))
for f in root.glob("*.lic"):
    (pathlib.Path("corpus/armor") / f.name).write_text(f.read_text())
for f in root.glob("*.req"):
    (pathlib.Path("corpus/armor") / f.name).write_text(f.read_text())
PY

for target in armor decode verify; do
  echo "fuzzing $target for ${seconds}s"
  cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 2>&1 | tail -n 12
done
