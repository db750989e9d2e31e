#!/usr/bin/env python3
"""Replaces the random parts of golden CLI output (license ids, hashes,
armored bytes) with trycmd wildcards after `TRYCMD=overwrite`.

    TRYCMD=overwrite cargo test -p tessera-issuer --test cli; python3 issuer/tests/normalize.py
"""
import pathlib
import re

HERE = pathlib.Path(__file__).parent / "cmd"
RULES = [
    (re.compile(r"license id [0-9a-f]{32}"), "license id [..]"),
    (re.compile(r"(?<![-\w])license [0-9a-f]{32}\b"), "license [..]"),
    (re.compile(r"(  license id +)[0-9a-f]{32}"), r"\1[..]"),
    (re.compile(r"(  [a-z]+ +)[0-9a-f]{32}$", re.M), r"\1[..]"),
    (re.compile(r'"license_id": "[0-9a-f]{32}"'), '"license_id": "[..]"'),
    (re.compile(r'"license": "-----BEGIN[^"]*"'), '"license": "[..]"'),
    (re.compile(r'"(hash|prev_hash)": "[0-9a-f]{64}"'), r'"\1": "[..]"'),
    (re.compile(r"^head [0-9a-f]{64}$", re.M), "head [..]"),
    (re.compile(r"^head (\d+) [0-9a-f]{64}$", re.M), r"head \1 [..]"),
    (re.compile(r"ledger id [0-9a-f]{32}"), "ledger id [..]"),
    (re.compile(r"ledger [0-9a-f]{32}"), "ledger [..]"),
    (re.compile(r"\(id [0-9a-f]{32},"), "(id [..],"),
    (re.compile(r"head [0-9a-f]{64}, signed by kid [0-9a-f]{16}"), "head [..], signed by kid [..]"),
    (re.compile(r"(-----BEGIN TESSERA LICENSE-----\n)(?:[A-Za-z0-9+/=]+\n)+(-----END TESSERA LICENSE-----)"), r"\1...\n\2"),
    (re.compile(r"^( *)kid [0-9a-f]{16}$", re.M), r"\1kid [..]"),
    (re.compile(r"(-----BEGIN PUBLIC KEY-----\n)[A-Za-z0-9+/=]+\n"), r"\1[..]\n"),
]

for path in sorted(p for p in HERE.glob("*.trycmd") if p.name != "misc.trycmd"):
    text = path.read_text()
    new = text
    for pattern, repl in RULES:
        new = pattern.sub(repl, new)
    if new != text:
        path.write_text(new)
        print(f"normalized {path.name}")
