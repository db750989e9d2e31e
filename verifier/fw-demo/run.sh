#!/usr/bin/env bash
# Builds the Cortex-M4 firmware demo (opt-level "z", LTO, panic = "abort",
# codegen-units = 1), runs it under QEMU (mps2-an386, semihosting,
# -icount for instruction counts), and reports and checks:
#   flash   text + rodata + vector table (+ .data image) of the firmware,
#           without the embedded test vectors and the secure element's
#           stand-in (own sections, reported apart), plus one typical
#           license: budget FW_FLASH_BUDGET. The stand-in's figure takes
#           every ed25519-dalek and curve25519-dalek function, which the
#           verifier built with small-stack (as this demo is) does not use.
#   RAM     .data + .bss, and the stack high-water mark (painted stack):
#           budget FW_STACK_BUDGET
#   insns   instructions of one verify (typical license): budget
#           FW_INSNS_BUDGET
#   heap    none: no allocator symbol may be linked
#   license typical license CBOR size: budget FW_LICENSE_BUDGET (512 bytes)
#   results every embedded vector must give its expected decision, the
#           license loop (activation, renewal) must end in the expected
#           state, and the requests it writes must verify as the vendor
#           checks them (COSE_Sign1 of type tessera-request, kid of the
#           device key it carries, Ed25519 signature checked by openssl)
# The budgets are the figures of bench/REPORT.md + 5 %; the product bars
# are 36 KiB of flash, 6 KiB of stack and 2.4 M instructions.
# Exit status non-zero on any failure. Needs qemu-system-arm, python3 and
# the thumbv7em-none-eabihf target (.ci/fw-capi.sh installs them).
#
# FW_REPORT=<file> also writes the figures as key=value lines.
set -euo pipefail
DEMO="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$DEMO/../.." && pwd)"
cd "$DEMO"

FW_FLASH_BUDGET="${FW_FLASH_BUDGET:-38353}"
FW_STACK_BUDGET="${FW_STACK_BUDGET:-6077}"
FW_INSNS_BUDGET="${FW_INSNS_BUDGET:-2222472}"
FW_LICENSE_BUDGET="${FW_LICENSE_BUDGET:-512}"
# Extra cargo features of the demo (`baseline`, `builtin-mem`).
FW_FEATURES="${FW_FEATURES:-}"
QEMU_TIMEOUT="${QEMU_TIMEOUT:-120}"
export CARGO_TARGET_DIR="${FW_TARGET_DIR:-$DEMO/target}"
ELF="$CARGO_TARGET_DIR/thumbv7em-none-eabihf/release/tessera-fw-demo"

echo "--- build (release: opt-level z, lto, panic=abort, codegen-units=1)"
if ! cargo build --release --locked ${FW_FEATURES:+--features "$FW_FEATURES"}; then
  echo "hint: when the verifier's dependencies change, refresh this demo's lock file:" >&2
  echo "  (cd verifier/fw-demo && cargo update -p tessera-verifier)" >&2
  exit 1
fi

echo "--- run: qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -icount shift=0"
set +e
OUT="$(timeout "$QEMU_TIMEOUT" qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
  -semihosting-config enable=on,target=native -icount shift=0 -kernel "$ELF" 2>&1)"
QEMU_RC=$?
set -e
printf '%s\n' "$OUT"

PYTHONPATH="$DEMO" PYTHONDONTWRITEBYTECODE=1 python3 - "$ELF" "$QEMU_RC" "$ROOT/spec/vectors/licenses.json" \
  "$FW_FLASH_BUDGET" "$FW_STACK_BUDGET" "$FW_LICENSE_BUDGET" "${FW_REPORT:-}" "$FW_INSNS_BUDGET" <<'PY' "$OUT"
import base64, hashlib, json, os, re, shutil, subprocess, sys, tempfile

from elf import SHF_ALLOC, SHT_NOBITS, load, symbols as elf_symbols

elf_path, qemu_rc, licenses, flash_budget, stack_budget, license_budget, report, insns_budget = sys.argv[1:9]
out = sys.argv[9]
qemu_rc, flash_budget, stack_budget, license_budget, insns_budget = map(
    int, (qemu_rc, flash_budget, stack_budget, license_budget, insns_budget))

# --- ELF32 little-endian: sections and symbols (elf.py, no binutils needed).
elf, sections = load(elf_path)
alloc = {s["name"]: s for s in sections if s["flags"] & SHF_ALLOC and s["size"]}
RAM = 0x2000_0000
flash_sections = {n: s["size"] for n, s in alloc.items() if s["type"] != SHT_NOBITS and s["addr"] < RAM}
data = sum(s["size"] for n, s in alloc.items() if s["type"] != SHT_NOBITS and s["addr"] >= RAM)
bss = sum(s["size"] for n, s in alloc.items() if s["type"] == SHT_NOBITS)
vectors = flash_sections.pop(".tessera_vectors", 0)
secure_element = flash_sections.pop(".secure_element", 0)
firmware = sum(flash_sections.values()) + data  # .data's image is in flash too

symbols = set()
# The secure element stand-in's code outside its own section: every
# function and constant of ed25519-dalek and curve25519-dalek (by address,
# aliases counted once).
dalek = {}
flash_ranges = [(s["addr"], s["addr"] + s["size"]) for n, s in alloc.items()
                if s["type"] != SHT_NOBITS and s["addr"] < RAM and n not in (".secure_element", ".tessera_vectors")]
for name, st_value, st_size in elf_symbols(elf, sections):
    symbols.add(name)
    addr = st_value & ~1
    if st_size and ("ed25519_dalek" in name or "curve25519_dalek" in name) \
            and any(lo <= addr < hi for lo, hi in flash_ranges):
        dalek[addr] = max(dalek.get(addr, 0), st_size)
alloc_symbols = sorted(x for x in symbols if re.search(
    r"__rust_alloc|__rust_dealloc|__rust_realloc|__rg_alloc|__rdl_alloc|__rust_alloc_error_handler|__rust_no_alloc_shim", x))

secure_element += sum(dalek.values())
firmware -= sum(dalek.values())

typical = next(v for v in json.load(open(licenses))["vectors"] if v["name"] == "typical")
typical_len = len(typical["cbor"]) // 2
flash = firmware + typical_len

# --- QEMU output.
m = re.search(r"^result: (\d+)/(\d+) ok$", out, re.M)
passed, total = (int(m.group(1)), int(m.group(2))) if m else (0, -1)
hw = re.search(r"^stack: high_water=(\d+)", out, re.M)
stack = int(hw.group(1)) if hw else -1
cal = re.search(r"calibration: loop_insns=(\d+) ticks=(\d+)", out)
first = re.search(r"^vector first-activation-hw: \S+.* insns=(\d+) stack=(\d+)", out, re.M)
insns = int(first.group(1)) if first else -1
call_stack = int(first.group(2)) if first else -1

# --- The requests the firmware wrote, checked as the vendor checks them.
def cbor(b, i=0):
    """One CBOR item at b[i]: (value, next index). Tags as ("tag", n, v)."""
    ib = b[i]; major, info = ib >> 5, ib & 31; i += 1
    if info < 24: arg = info
    else:
        n = {24: 1, 25: 2, 26: 4, 27: 8}[info]; arg = int.from_bytes(b[i:i + n], "big"); i += n
    if major == 0: return arg, i
    if major == 1: return -1 - arg, i
    if major in (2, 3):
        v = b[i:i + arg]; return (v if major == 2 else v.decode()), i + arg
    if major == 4:
        items = []
        for _ in range(arg):
            v, i = cbor(b, i); items.append(v)
        return items, i
    if major == 5:
        m = {}
        for _ in range(arg):
            k, i = cbor(b, i); v, i = cbor(b, i); m[k] = v
        return m, i
    if major == 6:
        v, i = cbor(b, i); return ("tag", arg, v), i
    return {20: False, 21: True, 22: None}[arg], i

def head(major, n):
    return bytes([major << 5 | n]) if n < 24 else bytes([major << 5 | 24, n]) if n < 256 else bytes([major << 5 | 25]) + n.to_bytes(2, "big")

def check_request(text):
    data = base64.b64decode("".join(text))
    (tag, number, (protected, unprotected, payload, signature)), end = cbor(data)
    hdr, _ = cbor(protected)
    claims, _ = cbor(payload)
    device_key = claims[-65537][7]
    problems = []
    if (tag, number, unprotected, end) != ("tag", 18, {}, len(data)): problems.append("not a COSE_Sign1")
    if hdr.get(16) != "tessera-request" or hdr.get(1) != -8: problems.append(f"header {hdr}")
    if hdr.get(4) != hashlib.sha256(device_key).digest()[:8]: problems.append("kid is not the device key's")
    sig_structure = b"\x84" + head(3, 10) + b"Signature1" + head(2, len(protected)) + protected + b"\x40" + head(2, len(payload)) + payload
    if not shutil.which("openssl"):
        return problems + (["openssl missing"] if os.environ.get("CI") == "true" else []), "signature not checked (no openssl)"
    with tempfile.TemporaryDirectory() as d:
        spki = bytes.fromhex("302a300506032b6570032100") + device_key
        pem = "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(spki).decode() + "\n-----END PUBLIC KEY-----\n"
        for name, content in (("key.pem", pem.encode()), ("msg", sig_structure), ("sig", signature)):
            open(os.path.join(d, name), "wb").write(content)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "key.pem", "-rawin",
                            "-in", "msg", "-sigfile", "sig"], cwd=d, capture_output=True, text=True)
        if r.returncode != 0: problems.append("signature: " + (r.stdout + r.stderr).strip())
    serial = claims.get(2) or claims[-65537].get(3)
    return problems, f"{len(data)} bytes, serial {serial}, signature verified by openssl"

requests, current = [], None
for line in out.splitlines():
    if line == "-----BEGIN TESSERA REQUEST-----": current = []
    elif line == "-----END TESSERA REQUEST-----" and current is not None: requests.append(current); current = None
    elif current is not None: current.append(line)
request_notes = []
request_problems = []
for text in requests:
    problems, note = check_request(text)
    request_problems += problems
    request_notes.append(note)

failures = []
if len(requests) != 2:
    failures.append(f"the license loop wrote {len(requests)} requests, 2 expected (activation, renewal)")
failures += ["request: " + p for p in request_problems]
if not any("tessera_verifier" in x for x in symbols):
    failures.append("no tessera_verifier symbol in the ELF symbol table (is the verifier linked?)")
if qemu_rc != 0:
    failures.append(f"QEMU exited with {qemu_rc} (1: a vector disagreed; 124: timeout)")
if not m or passed != total:
    failures.append(f"vectors: {passed}/{total} gave their expected decision")
if flash > flash_budget:
    failures.append(f"flash {flash} B > budget {flash_budget} B (by {flash - flash_budget} B)")
if stack < 0 or stack > stack_budget:
    failures.append(f"stack high-water {stack} B > budget {stack_budget} B (by {stack - stack_budget} B)")
if alloc_symbols:
    failures.append("allocator symbols linked: " + ", ".join(alloc_symbols))
if typical_len > license_budget:
    failures.append(f"typical license {typical_len} B > budget {license_budget} B")
if insns < 0 or insns > insns_budget:
    failures.append(f"instructions per verify {insns} > budget {insns_budget} (by {insns - insns_budget})")

kib = lambda b: f"{b / 1024:.1f} KiB"
rows = [
    ("flash: firmware (text+rodata+vectors table+data image)", firmware, kib(firmware)),
    ("flash: + one typical license = budgeted figure", flash, f"{kib(flash)} (budget {kib(flash_budget)})"),
    ("flash: embedded test vectors (.tessera_vectors, not budgeted)", vectors, kib(vectors)),
    ("flash: secure element stand-in (.secure_element, not budgeted)", secure_element, kib(secure_element)),
    ("RAM: .data + .bss", data + bss, f".data {data} B, .bss {bss} B"),
    ("RAM: stack high-water (painted)", stack, f"{kib(stack)} (budget {kib(stack_budget)})"),
    ("stack used by one verify call", call_stack, kib(call_stack)),
    ("heap", 0, f"none (no allocator among {len(symbols)} symbols)" if not alloc_symbols else "ALLOCATOR LINKED"),
    ("verify, typical license (first-activation-hw): instructions", insns,
     (f"QEMU -icount, calibrated {cal.group(1)} insns = {cal.group(2)} SysTick ticks" if cal else "no calibration")
     + f" (budget {insns_budget})"),
    ("requests written by the license loop, checked as the vendor does", len(requests), "; ".join(request_notes)),
    ("typical license CBOR", typical_len, f"bytes (budget {license_budget})"),
]
print("--- figures")
for label, value, note in rows:
    print(f"{label:<66} {value:>8}  {note}")
if report:
    with open(report, "w") as f:
        for k, v in [("flash_firmware", firmware), ("flash_budgeted", flash), ("flash_vectors", vectors),
                     ("flash_secure_element", secure_element),
                     ("ram_data", data), ("ram_bss", bss), ("stack_high_water", stack),
                     ("stack_verify_call", call_stack), ("verify_insns", insns),
                     ("typical_license_bytes", typical_len), ("vectors_passed", passed),
                     ("vectors_total", total)]:
            f.write(f"{k}={v}\n")
if failures:
    print("--- FAILED")
    for f in failures:
        print("  " + f)
    sys.exit(1)
print("--- all checks passed")
PY
