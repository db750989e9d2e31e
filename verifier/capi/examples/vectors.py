#!/usr/bin/env python3
"""Runs the C example (verify.c) on every vector of spec/vectors and checks
each result against the expectation the Rust verifier wrote there.

usage: vectors.py <verify binary> [<spec/vectors dir>]

Feeds the binary the command lines described at the top of verify.c:
the keyring of keys.json, every license of licenses.json (decode only),
the armored sample files, and every runtime vector of runtime.json (full
verify with device identity, clock and state). Exit status 0 when all
agree, 1 otherwise.
"""
import json
import os
import subprocess
import sys


def hx(text):
    return text.encode("utf-8").hex()


def component_value(c):
    return c["raw_hex"] if "raw_hex" in c else hx(c["raw"])


def main():
    binary = sys.argv[1]
    vectors = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "spec", "vectors")
    load = lambda name: json.load(open(os.path.join(vectors, name), encoding="utf-8"))
    keys = load("keys.json")
    licenses = load("licenses.json")["vectors"]
    runtime = load("runtime.json")["vectors"]

    lines, expected = [], {}
    for k in keys["keyring"]:
        until = "-" if k["valid_until"] is None else str(k["valid_until"])
        lines.append(f"key {k['kid']} {k['public_key']} {k['valid_from']} {until} {int(k['retired'])}")

    def license_expectation(result, decoded):
        e = {"result": result}
        if result == "ok":
            e.update(serial=decoded["serial"], sequence=str(decoded["sequence"]),
                     issued_at=str(decoded["issued_at"]), lease_end=str(decoded["lease_end"]))
        return e

    for v in licenses:
        name = "license/" + v["name"]
        lines.append(f"decode {name} {v['cbor']}")
        expected[name] = license_expectation(v["expected"], v.get("decoded"))

    by_name = {v["name"]: v for v in licenses}
    armored = [("typical.lic", "typical"), ("minimal.lic", "minimal"), ("maximal.lic", "maximal")]
    for file, vector in armored:
        text = open(os.path.join(vectors, file), encoding="utf-8").read()
        name = "armor/" + file
        lines.append(f"armor {name} {hx(text)}")
        expected[name] = license_expectation("ok", by_name[vector]["decoded"])
    request = open(os.path.join(vectors, "request.req"), encoding="utf-8").read()
    lines.append(f"armor armor/request.req {hx(request)}")
    expected["armor/request.req"] = {"result": "armor.wrong_label"}
    typical = open(os.path.join(vectors, "typical.lic"), encoding="utf-8").read()
    cut = typical[: typical.index("-----END")]
    lines.append(f"armor armor/cut-short {hx(cut)}")
    expected["armor/cut-short"] = {"result": "armor.missing_end"}

    for v in runtime:
        name = "runtime/" + v["name"]
        d = v["device"]
        hw = "-" if d["hw_serial"] is None else hx(d["hw_serial"])
        sw = "-" if d["sw_serial"] is None else hx(d["sw_serial"])
        comps = " ".join(f"{c['kind']} {component_value(c)}" for c in d["components"])
        lines.append(f"verify {name} {v['now']} {v['state_in']} {v['license']} {hw} {sw} "
                     f"{len(d['components'])} {comps}".rstrip())
        e = v["expected"]
        x = {"result": e["result"], "state_out": e["state_out"],
             "state_changed": str(int(e["state_out"] != v["state_in"]))}
        if e["result"] == "ok":
            verdict = e["verdict"]
            x["verdict"] = verdict["code"]
            if "days_left" in verdict:
                x["days_left"] = str(verdict["days_left"])
            if "until" in verdict:
                x["until"] = str(verdict["until"])
            x["next_check"] = str(e["next_check"])
            dsr = e["days_since_renewal"]
            x["days_since_renewal"] = str(-1 if dsr is None else dsr)
            x["matched"] = str(e["matched_components"])
            g = e["grants"]
            if g is None:
                x["grants"] = "none"
            else:
                x["users"] = str(g["total_users"])
                x["features_enabled"] = str(g["features_enabled"])
                x["storage_gb"] = str(g["storage_gb"])
                role = g["role"]
                x["role"] = role if isinstance(role, str) else "client_of:" + role["client_of"]
                x["services"] = ",".join(f"{c}:{s}:{t}" for c, s, t in g["services"]) or "-"
        elif e["result"] == "wrong_device":
            x["matched"], x["needed"] = str(e["matched"]), str(e["needed"])
        elif e["result"] == "superseded":
            x["seq"] = str(e["seq"])
        expected[name] = x

    run = subprocess.run([binary], input="\n".join(lines) + "\n", capture_output=True,
                         text=True, timeout=120)
    if run.returncode != 0:
        print(f"{binary} exited with {run.returncode}: {run.stderr}", file=sys.stderr)
        return 1
    got = {}
    for out in run.stdout.splitlines():
        name, *fields = out.split(" ")
        got[name] = dict(f.split("=", 1) for f in fields)

    bad = 0
    for name, want in expected.items():
        have = got.get(name)
        if have != want:
            bad += 1
            print(f"MISMATCH {name}\n  expected {want}\n  got      {have}")
    counts = {kind: sum(1 for n in expected if n.startswith(kind + "/"))
              for kind in ("license", "armor", "runtime")}
    print(f"C example: {len(expected) - bad}/{len(expected)} vectors agree "
          f"({counts['license']} license, {counts['armor']} armor, {counts['runtime']} runtime)")
    return 1 if bad or len(got) != len(expected) else 0


if __name__ == "__main__":
    sys.exit(main())
