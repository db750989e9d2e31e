#!/usr/bin/env bash
# Where the firmware demo's flash goes, by module: builds verifier/fw-demo
# as verifier/fw-demo/run.sh does (release, thumbv7em-none-eabihf) and
# attributes every byte of the firmware figure that run.sh checks (vector
# table, .text, .rodata, .data image; without the embedded test vectors and
# the secure element's stand-in) to the module of the symbol it belongs to.
#
#   bash bench/flash.sh            markdown table, largest first
#   bash bench/flash.sh --symbols  the 40 largest functions and constants too
#   bash bench/flash.sh --sources  code by the source file it was written in
#                                  (needs llvm-dwarfdump)
#
# The verifier is listed by module, everything else by crate. Functions
# are attributed where they are defined after inlining: a generic
# of `core` inlined into `tessera_verifier::cbor` counts for `cbor`; a trait
# method counts for the module of the type it is implemented on. Bytes that
# no symbol covers (anonymous constants such as string literals, alignment
# padding) are listed per section. Needs python3 and the
# thumbv7em-none-eabihf target; no binutils.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEMO="$ROOT/verifier/fw-demo"
export CARGO_TARGET_DIR="${FW_TARGET_DIR:-$DEMO/target}"
ELF="$CARGO_TARGET_DIR/thumbv7em-none-eabihf/release/tessera-fw-demo"
(cd "$DEMO" && cargo build --release --locked --quiet ${FW_FEATURES:+--features "$FW_FEATURES"})

PYTHONPATH="$DEMO" PYTHONDONTWRITEBYTECODE=1 python3 - "$ELF" "${1:-}" <<'PY'
import collections, re, struct, subprocess, sys

from elf import SHF_ALLOC, SHT_NOBITS, load, symbols as elf_symbols

elf_path, mode = sys.argv[1], sys.argv[2]
elf, sections = load(elf_path)
APART = (".tessera_vectors", ".secure_element")
flash = [s for s in sections if s["flags"] & SHF_ALLOC and s["size"] and s["type"] != SHT_NOBITS
         and s["name"] not in APART]

ESCAPES = {"$LT$": "<", "$GT$": ">", "$RF$": "&", "$BP$": "*", "$C$": ",", "$SP$": "@",
           "$LP$": "(", "$RP$": ")"}

def demangle(sym):
    """Rust symbol names as paths: legacy mangling (_ZN ... E) in full, v0
    (_R, the precompiled core) as far as its plain module path goes."""
    if sym.startswith("_R"):
        return v0(sym)
    if not sym.startswith("_ZN"):
        return None
    i, parts = 3, []
    while i < len(sym) and sym[i] != "E":
        m = re.match(r"\d+", sym[i:])
        if not m:
            return None
        n = int(m.group()); i += len(m.group())
        parts.append(sym[i:i + n]); i += n
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    text = "::".join(p[1:] if p.startswith("_$") else p for p in parts)
    text = re.sub(r"\$u([0-9a-f]+)\$", lambda m: chr(int(m.group(1), 16)), text)
    for k, v in ESCAPES.items():
        text = text.replace(k, v)
    return text.replace("..", "::")

def v0(sym):
    def ident(i):
        m = re.match(r"(\d+)_?", sym[i:])
        n = int(m.group(1)); i += len(m.group())
        return sym[i:i + n], i + n
    def disambiguator(i):
        return sym.index("_", i) + 1 if sym[i] == "s" else i
    def path(i):
        if sym[i] == "C":
            name, i = ident(disambiguator(i + 1))
            return [name], i
        if sym[i] == "N":
            inner, i = path(i + 2)
            name, i = ident(disambiguator(i))
            return inner + [name], i
        raise ValueError(sym)
    try:
        return "::".join(path(2)[0])
    except (ValueError, AttributeError, IndexError):
        m = re.search(r"C(?:s[0-9A-Za-z]*_)?(\d+)", sym)
        return ident(m.start(1))[0] + "::?" if m else None

def balanced(text, i):
    """Index after the `<...>` that opens at text[i]."""
    depth = 0
    for j in range(i, len(text)):
        depth += {"<": 1, ">": -1}.get(text[j], 0)
        if depth == 0:
            return j + 1
    return len(text)

def plain(path):
    """The leading module pieces of a path (lower-case, before a type,
    a function name or an impl)."""
    out, i = [], 0
    path = re.sub(r"^(?:&(?:mut )?|\*(?:const|mut) )", "", path)
    pieces = []
    while i < len(path):
        if path[i] == "<":
            i = balanced(path, i); continue
        j = path.find("::", i)
        j = len(path) if j < 0 else j
        lt = path.find("<", i, j)
        if lt >= 0:
            pieces.append(path[i:lt]); i = balanced(path, lt); continue
        pieces.append(path[i:j]); i = j + 2
    for p in pieces[:-1]:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", p):
            break
        out.append(p)
    return "::".join(out)

def module(name):
    """The module a symbol is defined in: for `<T as Trait>::f` and `<T>::f`,
    T's module (the trait's when T is a generic parameter, an array or a
    slice); for `crate::<impl ...>::f`, the path before the impl."""
    if name.startswith("<"):
        end = balanced(name, 0)
        inner = name[1:end - 1]
        depth, split = 0, None
        for j, ch in enumerate(inner):
            depth += {"<": 1, ">": -1}.get(ch, 0)
            if depth == 0 and inner.startswith(" as ", j):
                split = j; break
        ty = inner if split is None else inner[:split]
        trait = None if split is None else inner[split + 4:]
        found = plain(ty + "::_")
        if not found and trait:
            found = plain(trait + "::_")
        return found or name
    name = re.sub(r"::<impl .*", "::_", name)
    name = re.sub(r"(::\{\{closure\}\})+$", "", name)
    return plain(name) or name

# Symbols by address (aliases once, the largest size), with their module.
symbols = {}
for raw, st_value, st_size in elf_symbols(elf, sections):
    addr = st_value & ~1
    if st_size and (addr not in symbols or symbols[addr][0] < st_size):
        symbols[addr] = (st_size, raw)

C_RUNTIME = {"Reset", "HardFault", "_HardFault", "DefaultHandler_", "DefaultPreInit", "main",
             "__EXCEPTIONS", "__INTERRUPTS", "__RESET_VECTOR"}
ANON = "constants without a name (tables, jump tables)"
STRINGS = "string literals (error codes, demo output)"

def owner(raw):
    name = demangle(raw)
    if name is None:  # C-level symbols
        if raw in ("memcpy", "memmove", "memset", "memcmp", "bcmp") or raw.startswith("__aeabi_mem"):
            return "memory functions (fw-demo's `mem` or compiler_builtins)", raw
        if raw.startswith("__aeabi_"):
            return "compiler_builtins", raw
        if raw.startswith("OUTLINED_FUNCTION_"):
            return "machine outliner (shared instruction sequences)", raw
        if raw.startswith(".L"):
            return ANON, raw
        if raw in C_RUNTIME:
            return "cortex_m_rt (reset, vector table, fault handlers)", raw
        return "tessera_fw_demo", raw  # its #[exception] handlers (SysTick)
    if "ed25519_dalek" in name or "curve25519_dalek" in name:
        return None, name  # the secure element's stand-in, counted apart by run.sh
    return module(name), name

# SHA-2 round constants are anonymous in .rodata: found by their first words.
KNOWN = [(struct.pack("<Q", 0x428A2F98D728AE22), 640, "sha2"),
         (struct.pack("<I", 0x428A2F98) + struct.pack("<I", 0x71374491), 256, "sha2")]

def gap(sec, lo, hi):
    """Bytes [lo, hi) of a flash section that no symbol covers."""
    data = elf[sec["off"] + lo - sec["addr"]: sec["off"] + hi - sec["addr"]]
    out = collections.Counter()
    i = 0
    while i < len(data):
        hit = next(((n, m) for k, n, m in KNOWN if data.startswith(k, i)), None)
        if hit:
            out[hit[1]] += min(hit[0], len(data) - i); i += hit[0]; continue
        m = re.match(rb"[\x20-\x7e\n]{4,}", data[i:])
        if m:
            out[STRINGS] += len(m.group()); i += len(m.group()); continue
        out[ANON if sec["name"] == ".rodata" else f"padding ({sec['name']})"] += 1
        i += 1
    return out

sizes, largest, code = collections.Counter(), [], []
total = 0
for s in flash:
    lo, hi = s["addr"], s["addr"] + s["size"]
    total += s["size"]
    last = lo
    for addr in sorted(a for a in symbols if lo <= a < hi) + [hi]:
        if addr > last:
            sizes.update(gap(s, last, addr))
            last = addr
        if addr == hi:
            break
        size, raw = symbols[addr]
        start, end = max(addr, last), min(addr + size, hi)
        if end <= start:
            continue
        mod, name = owner(raw)
        last = end
        if mod is None:
            total -= end - start
            continue
        if re.fullmatch(r"[a-z0-9_:]+", mod) and not mod.startswith("tessera_verifier"):
            mod = {"__rustc": "core"}.get(mod.split("::")[0], mod.split("::")[0])
        sizes[mod] += end - start
        largest.append((end - start, name))
        if s["name"] == ".text":
            code.append((start, end, mod))

if mode == "--sources":
    # Code by the source file its instructions come from (DWARF line table):
    # inlined code counts where it was written, not where it landed.
    dwarf = lambda what: subprocess.run(["llvm-dwarfdump", what, elf_path],
                                        capture_output=True, text=True, check=True).stdout
    comp_dirs, stmt = {}, None  # line table offset -> its unit's compilation directory
    for line in dwarf("--debug-info").splitlines():
        m = re.search(r"DW_AT_stmt_list\s*\((0x[0-9a-f]+)\)", line)
        if m:
            stmt = int(m.group(1), 16)
        m = re.search(r'DW_AT_comp_dir\s*\("(.*)"\)', line)
        if m and stmt is not None:
            comp_dirs[stmt] = m.group(1); stmt = None
    rows, files, dirs, current, prev, comp = [], {}, {}, None, None, ""
    absolute = lambda d: d if d.startswith("/") else comp + "/" + d
    for line in dwarf("--debug-line").splitlines():
        m = re.match(r"debug_line\[(0x[0-9a-f]+)\]", line)
        if m:
            comp = comp_dirs.get(int(m.group(1), 16), "")
            files, dirs, current, prev = {}, {0: comp}, None, None
            continue
        m = re.match(r'include_directories\[\s*(\d+)\] = "(.*)"', line)
        if m:
            dirs[int(m.group(1))] = absolute(m.group(2)); continue
        m = re.match(r"file_names\[\s*(\d+)\]:", line)
        if m:
            current = int(m.group(1)); files[current] = ["", 0]; continue
        m = re.match(r'\s+name: "(.*)"', line)
        if m and current is not None:
            files[current][0] = m.group(1); continue
        m = re.match(r"\s+dir_index: (\d+)", line)
        if m and current is not None:
            files[current][1] = int(m.group(1)); continue
        m = re.match(r"0x([0-9a-f]+)\s+\d+\s+\d+\s+(\d+)\s+\d+\s+\d+\s*(.*)", line)
        if m:
            addr, f = int(m.group(1), 16), int(m.group(2))
            if prev is not None and addr > prev[0]:
                name, d = files.get(prev[1], ("?", 0))
                path = name if name.startswith("/") else dirs.get(d, comp) + "/" + name
                rows.append((prev[0], addr, path))
            prev = None if "end_sequence" in m.group(3) else (addr, f)
    def source(path):
        m = re.search(r"/verifier/(src/.*)", path)
        if m:
            return "verifier/" + m.group(1)
        if "/verifier/fw-demo/" in path:
            return "tessera_fw_demo"
        m = re.search(r"registry/src/[^/]+/([^/]+?)-\d[^/]*/", path)
        if m:
            return m.group(1).replace("-", "_")
        m = re.search(r"/library/([^/]+)/", path)
        if m:
            return m.group(1).replace("-", "_")
        return path
    rows.sort()
    import bisect
    starts = [r[0] for r in rows]
    for start, end, mod in code:
        i = max(bisect.bisect_right(starts, start) - 1, 0)
        done = 0
        while i < len(rows) and rows[i][0] < end:
            lo, hi = max(rows[i][0], start), min(rows[i][1], end)
            if hi > lo:
                sizes[source(rows[i][2])] += hi - lo; done += hi - lo
            i += 1
        sizes[mod] -= done
    sizes = +sizes

print(f"firmware flash without vectors and secure element stand-in: {total} bytes")
print()
print("| source file (after inlining) | bytes | share |" if mode == "--sources"
      else "| module | bytes | share |")
print("|---|---:|---:|")
small = [(mod, n) for mod, n in sizes.items() if n < 100]
for mod, n in sorted(sizes.items(), key=lambda kv: -kv[1]):
    if n >= 100:
        label = f"`{mod}`" if re.fullmatch(r"[a-z0-9_:]+|verifier/src/[a-z0-9_/]+\.rs", mod) else mod
        print(f"| {label} | {n:,} | {100 * n / total:.1f} % |")
if small:
    n = sum(n for _, n in small)
    names = ", ".join(mod for mod, _ in sorted(small, key=lambda kv: -kv[1]))
    print(f"| under 100 B each: {names} | {n:,} | {100 * n / total:.1f} % |")
print(f"| total | {total:,} | 100 % |")
if mode == "--symbols":
    print()
    for n, name in sorted(largest, reverse=True)[:40]:
        print(f"{n:6,}  {name}")
PY
