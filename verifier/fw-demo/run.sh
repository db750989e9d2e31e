#!/usr/bin/env bash
# Builds the Cortex-M4 firmware demo (opt-level "z", LTO, panic = "abort",
# codegen-units = 1), runs it under QEMU (mps2-an386, semihosting,
# -icount for instruction counts), and reports and checks:
#   flash   text + rodata + vector table (+ .data image) of the firmware,
#           without the embedded test vectors (own section, reported apart),
#           plus one typical license: budget FW_FLASH_BUDGET (48 KiB)
#   RAM     .data + .bss, and the stack high-water mark (painted stack):
#           budget FW_STACK_BUDGET (8 KiB)
#   heap    none: no allocator symbol may be linked
#   license typical license CBOR size: budget FW_LICENSE_BUDGET (512 bytes)
#   results every embedded vector must give its expected decision
# Exit status non-zero on any failure. Needs qemu-system-arm, python3 and
# the thumbv7em-none-eabihf target (.ci/fw-capi.sh installs them).
#
# FW_REPORT=<file> also writes the figures as key=value lines.
set -euo pipefail
DEMO="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$DEMO/../.." && pwd)"
cd "$DEMO"

FW_FLASH_BUDGET="${FW_FLASH_BUDGET:-49152}"
FW_STACK_BUDGET="${FW_STACK_BUDGET:-8192}"
FW_LICENSE_BUDGET="${FW_LICENSE_BUDGET:-512}"
QEMU_TIMEOUT="${QEMU_TIMEOUT:-120}"
export CARGO_TARGET_DIR="${FW_TARGET_DIR:-$DEMO/target}"
ELF="$CARGO_TARGET_DIR/thumbv7em-none-eabihf/release/tessera-fw-demo"

echo "--- build (release: opt-level z, lto, panic=abort, codegen-units=1)"
if ! cargo build --release --locked; then
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

python3 - "$ELF" "$QEMU_RC" "$ROOT/spec/vectors/licenses.json" \
  "$FW_FLASH_BUDGET" "$FW_STACK_BUDGET" "$FW_LICENSE_BUDGET" "${FW_REPORT:-}" <<'PY' "$OUT"
import json, re, struct, sys

elf_path, qemu_rc, licenses, flash_budget, stack_budget, license_budget, report = sys.argv[1:8]
out = sys.argv[8]
qemu_rc, flash_budget, stack_budget, license_budget = map(int, (qemu_rc, flash_budget, stack_budget, license_budget))

# --- ELF32 little-endian: sections and symbols (no binutils needed).
elf = open(elf_path, "rb").read()
assert elf[:4] == b"\x7fELF" and elf[4] == 1 and elf[5] == 1, "not an ELF32 LE file"
shoff, = struct.unpack_from("<I", elf, 0x20)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x2E)
sections = []
for i in range(shnum):
    name, typ, flags, addr, off, size, link, info, align, entsize = struct.unpack_from(
        "<IIIIIIIIII", elf, shoff + i * shentsize)
    sections.append(dict(name=name, type=typ, flags=flags, addr=addr, off=off, size=size,
                         link=link, entsize=entsize))
strtab = sections[shstrndx]
cstr = lambda base, o: elf[base + o: elf.index(b"\0", base + o)].decode()
for s in sections:
    s["name"] = cstr(strtab["off"], s["name"])
SHF_ALLOC, SHT_NOBITS, SHT_SYMTAB = 2, 8, 2
alloc = {s["name"]: s for s in sections if s["flags"] & SHF_ALLOC and s["size"]}
RAM = 0x2000_0000
flash_sections = {n: s["size"] for n, s in alloc.items() if s["type"] != SHT_NOBITS and s["addr"] < RAM}
data = sum(s["size"] for n, s in alloc.items() if s["type"] != SHT_NOBITS and s["addr"] >= RAM)
bss = sum(s["size"] for n, s in alloc.items() if s["type"] == SHT_NOBITS)
vectors = flash_sections.pop(".tessera_vectors", 0)
firmware = sum(flash_sections.values()) + data  # .data's image is in flash too

symbols = set()
for s in sections:
    if s["type"] == SHT_SYMTAB:
        names = sections[s["link"]]["off"]
        for i in range(s["size"] // 16):
            st_name, = struct.unpack_from("<I", elf, s["off"] + i * 16)
            if st_name:
                symbols.add(cstr(names, st_name))
alloc_symbols = sorted(x for x in symbols if re.search(
    r"__rust_alloc|__rust_dealloc|__rust_realloc|__rg_alloc|__rdl_alloc|__rust_alloc_error_handler|__rust_no_alloc_shim", x))

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

failures = []
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

kib = lambda b: f"{b / 1024:.1f} KiB"
rows = [
    ("flash: firmware (text+rodata+vectors table+data image)", firmware, kib(firmware)),
    ("flash: + one typical license = budgeted figure", flash, f"{kib(flash)} (budget {kib(flash_budget)})"),
    ("flash: embedded test vectors (.tessera_vectors, not budgeted)", vectors, kib(vectors)),
    ("RAM: .data + .bss", data + bss, f".data {data} B, .bss {bss} B"),
    ("RAM: stack high-water (painted)", stack, f"{kib(stack)} (budget {kib(stack_budget)})"),
    ("stack used by one verify call", call_stack, kib(call_stack)),
    ("heap", 0, f"none (no allocator among {len(symbols)} symbols)" if not alloc_symbols else "ALLOCATOR LINKED"),
    ("verify, typical license (first-activation-hw): instructions", insns,
     f"QEMU -icount, calibrated {cal.group(1)} insns = {cal.group(2)} SysTick ticks" if cal else "no calibration"),
    ("typical license CBOR", typical_len, f"bytes (budget {license_budget})"),
]
print("--- figures")
for label, value, note in rows:
    print(f"{label:<66} {value:>8}  {note}")
if report:
    with open(report, "w") as f:
        for k, v in [("flash_firmware", firmware), ("flash_budgeted", flash), ("flash_vectors", vectors),
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
