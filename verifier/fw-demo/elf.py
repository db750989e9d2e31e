"""Sections and symbols of a little-endian ELF32 file (the firmware demo's
ELF), read without binutils. Shared by run.sh and bench/flash.sh."""
import struct

SHF_ALLOC, SHT_NOBITS, SHT_SYMTAB = 2, 8, 2


def load(path):
    """The file's bytes and its sections, as dicts of name, type, flags,
    addr, off, size, link and entsize."""
    elf = open(path, "rb").read()
    assert elf[:4] == b"\x7fELF" and elf[4] == 1 and elf[5] == 1, "not an ELF32 LE file"
    shoff, = struct.unpack_from("<I", elf, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x2E)
    sections = []
    for i in range(shnum):
        name, typ, flags, addr, off, size, link, info, align, entsize = struct.unpack_from(
            "<IIIIIIIIII", elf, shoff + i * shentsize)
        sections.append(dict(name=name, type=typ, flags=flags, addr=addr, off=off, size=size,
                             link=link, entsize=entsize))
    for s in sections:
        s["name"] = cstr(elf, sections[shstrndx]["off"] + s["name"])
    return elf, sections


def cstr(elf, at):
    """The NUL-terminated string at `at`."""
    return elf[at: elf.index(b"\0", at)].decode()


def symbols(elf, sections):
    """(name, value, size) of every named symbol of the symbol tables."""
    for s in sections:
        if s["type"] != SHT_SYMTAB:
            continue
        names = sections[s["link"]]["off"]
        for i in range(s["size"] // 16):
            st_name, st_value, st_size = struct.unpack_from("<III", elf, s["off"] + i * 16)
            if st_name:
                yield cstr(elf, names + st_name), st_value, st_size
