//! Generates `$OUT_DIR/vectors.rs` from `spec/vectors/` (the keyring of
//! `keys.json` and a few vectors of `runtime.json`), and puts `memory.x`
//! where the linker finds it.
//!
//! Only the vectors below are embedded, one per verdict and per kind of
//! refusal, so the flash figure stays about the verifier; their bytes go to
//! the `.tessera_vectors` section, which `run.sh` reports separately.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

use serde_json::Value;

/// The embedded runtime vectors: every verdict, and the refusals firmware
/// must handle differently (`spec/RUNTIME.md` §8).
const SELECTED: &[&str] = &[
    "first-activation-hw",
    "check-after-activation",
    "renewal-due",
    "grace-14-days",
    "expired-emergency-only",
    "expired-locked",
    "not-yet-valid",
    "copied-to-other-machine",
    "replayed-older-license",
    "clock-set-back",
    "state-corrupt",
    "bad-signature",
];

fn bytes(b: &[u8]) -> String {
    let mut s = String::from("[");
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        write!(s, "{x:#04x}").unwrap();
    }
    s.push(']');
    s
}

fn unhex(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("hex string");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn opt_num(v: Option<&Value>) -> String {
    match v.and_then(Value::as_i64) {
        Some(n) => format!("Some({n})"),
        None => "None".into(),
    }
}

/// Byte strings of the vectors, each a static in `.tessera_vectors`.
#[derive(Default)]
struct Blobs {
    src: String,
    count: usize,
}

impl Blobs {
    /// Emits a static holding `data`; returns its name.
    fn add(&mut self, data: &[u8]) -> String {
        let name = format!("BLOB_{}", self.count);
        self.count += 1;
        writeln!(
            self.src,
            "#[link_section = \".tessera_vectors\"]\nstatic {name}: [u8; {}] = {};",
            data.len(),
            bytes(data)
        )
        .unwrap();
        name
    }
}

/// A CBOR byte string at `at`: (contents, next offset). Only the heads the
/// vectors use (lengths below 65536).
fn bstr(b: &[u8], at: usize) -> (&[u8], usize) {
    assert_eq!(b[at] >> 5, 2, "byte string expected");
    let (len, head) = match b[at] & 0x1f {
        n @ 0..=23 => (n as usize, 1),
        24 => (b[at + 1] as usize, 2),
        25 => ((b[at + 1] as usize) << 8 | b[at + 2] as usize, 3),
        _ => panic!("unsupported length"),
    };
    (&b[at + head..at + head + len], at + head + len)
}

/// `--features baseline`: the Sig_structure, signature and public key of
/// the first selected vector, for a bare `verify_strict`.
fn baseline(blobs: &mut Blobs, all: &[Value], ring: &[Value]) {
    let v = all.iter().find(|v| v["name"] == SELECTED[0]).unwrap();
    let cose = unhex(&v["license"]);
    // 18([protected, {}, payload, signature]): d2 84 ...
    assert_eq!(&cose[..2], &[0xd2, 0x84]);
    let (protected, next) = bstr(&cose, 2);
    assert_eq!(cose[next], 0xa0);
    let (payload, next) = bstr(&cose, next + 1);
    let (signature, _) = bstr(&cose, next);
    let mut msg = vec![0x84, 0x6a];
    msg.extend_from_slice(b"Signature1");
    let push_bstr = |m: &mut Vec<u8>, b: &[u8]| {
        match b.len() {
            n @ 0..=23 => m.push(0x40 | n as u8),
            n @ 24..=255 => m.extend_from_slice(&[0x58, n as u8]),
            n => m.extend_from_slice(&[0x59, (n >> 8) as u8, n as u8]),
        }
        m.extend_from_slice(b);
    };
    push_bstr(&mut msg, protected);
    push_bstr(&mut msg, &[]);
    push_bstr(&mut msg, payload);
    let pk = unhex(&ring[0]["public_key"]);
    let (m, s, k) = (blobs.add(&msg), blobs.add(signature), blobs.add(&pk));
    writeln!(
        blobs.src,
        "/// Sig_structure, signature and key of the first vector.\n\
         pub static BASELINE: (&[u8], &[u8; 64], &[u8; 32]) = (&{m}, &{s}, &{k});"
    )
    .unwrap();
}

/// The licenses of the lifecycle walk (`src/main.rs`, `lifecycle`): the
/// vendor's answers to the demo's activation and renewal requests (the
/// sample appliance's 30-day leases of sequence 1 and 2 in
/// `spec/vectors/runtime.json`), and the state record both leave.
fn lifecycle(blobs: &mut Blobs, all: &[Value]) {
    let find = |name: &str| all.iter().find(|v| v["name"] == name).unwrap();
    let activation = unhex(&find("replayed-older-license")["license"]);
    let renewal = unhex(&find("reinstall-license-in-force")["license"]);
    let after = unhex(&find("replayed-older-license")["state_in"]);
    let (a, r, s) = (blobs.add(&activation), blobs.add(&renewal), blobs.add(&after));
    writeln!(
        blobs.src,
        "/// The vendor's answer to the activation request (sequence 1).\n\
         pub static LIFECYCLE_ACTIVATION: &[u8] = &{a};\n\
         /// The vendor's answer to the renewal request (sequence 2).\n\
         pub static LIFECYCLE_RENEWAL: &[u8] = &{r};\n\
         /// The state record after both were accepted.\n\
         pub static LIFECYCLE_STATE: &[u8; 64] = &{s};"
    )
    .unwrap();
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let spec = manifest.join("../../spec/vectors");
    for f in ["keys.json", "runtime.json"] {
        println!("cargo:rerun-if-changed={}", spec.join(f).display());
    }
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    fs::copy(manifest.join("memory.x"), out.join("memory.x")).unwrap();
    // cortex-m-rt's `device` feature includes the device's interrupt
    // handler names; this demo binds all 32 to the default handler.
    fs::write(out.join("device.x"), "/* no device interrupt handlers */\n").unwrap();
    println!("cargo:rustc-link-search={}", out.display());

    let read = |f: &str| -> Value {
        serde_json::from_str(&fs::read_to_string(spec.join(f)).unwrap()).unwrap()
    };
    let keys = read("keys.json");
    let runtime = read("runtime.json");

    let mut src =
        String::from("// @generated by build.rs from spec/vectors/keys.json and runtime.json.\n\n");
    let ring = keys["keyring"].as_array().unwrap();
    writeln!(
        src,
        "/// The keyring of `spec/vectors/keys.json` (test keys only).\n\
         pub static KEYRING: [KeyEntry; {}] = [",
        ring.len()
    )
    .unwrap();
    for k in ring {
        writeln!(
            src,
            "    KeyEntry {{ kid: {}, public_key: {}, valid_from: {}, valid_until: {}, retired: {} }},",
            bytes(&unhex(&k["kid"])),
            bytes(&unhex(&k["public_key"])),
            k["valid_from"].as_i64().unwrap(),
            opt_num(Some(&k["valid_until"])),
            k["retired"].as_bool().unwrap(),
        )
        .unwrap();
    }
    src.push_str("];\n\n");

    let all = runtime["vectors"].as_array().unwrap();
    let mut blobs = Blobs::default();
    let mut table = String::new();
    for (i, name) in SELECTED.iter().enumerate() {
        let v = all
            .iter()
            .find(|v| v["name"] == *name)
            .unwrap_or_else(|| panic!("runtime vector {name} not found"));
        let e = &v["expected"];
        let d = &v["device"];
        let text = |b: &mut Blobs, v: &Value| match v.as_str() {
            Some(s) => format!("Some(&{})", b.add(s.as_bytes())),
            None => "None".into(),
        };
        let mut comps = Vec::new();
        for c in d["components"].as_array().unwrap() {
            let raw = match c.get("raw_hex") {
                Some(h) => unhex(h),
                None => c["raw"].as_str().unwrap().as_bytes().to_vec(),
            };
            comps.push(format!(
                "({}, &{})",
                c["kind"].as_u64().unwrap(),
                blobs.add(&raw)
            ));
        }
        writeln!(
            blobs.src,
            "#[link_section = \".tessera_vectors\"]\nstatic COMPONENTS_{i}: [(u8, &[u8]); {}] = [{}];",
            comps.len(),
            comps.join(", ")
        )
        .unwrap();
        let verdict = &e["verdict"];
        let grants = e.get("grants");
        writeln!(
            table,
            "    Vector {{\n        name: &{name},\n        license: &{license},\n        now: {now},\n        \
             state_in: &{state_in},\n        hw_serial: {hw},\n        sw_serial: {sw},\n        \
             components: &COMPONENTS_{i},\n        expected: Expected {{\n            result: &{result},\n            \
             verdict: {vcode},\n            fields: [{days_left}, {until}, {next_check}, {dsr}, {matched}, \
             {needed}, {seq}, {users}, {features}, {storage}],\n            \
             state_out: &{state_out},\n        }},\n    }},",
            name = blobs.add(name.as_bytes()),
            license = blobs.add(&unhex(&v["license"])),
            now = v["now"].as_i64().unwrap(),
            state_in = blobs.add(&unhex(&v["state_in"])),
            hw = text(&mut blobs, &d["hw_serial"]),
            sw = text(&mut blobs, &d["sw_serial"]),
            result = blobs.add(e["result"].as_str().unwrap().as_bytes()),
            vcode = text(&mut blobs, &verdict["code"]),
            days_left = opt_num(verdict.get("days_left")),
            until = opt_num(verdict.get("until")),
            next_check = opt_num(e.get("next_check")),
            dsr = opt_num(e.get("days_since_renewal")),
            matched = opt_num(e.get("matched_components").or(e.get("matched"))),
            needed = opt_num(e.get("needed")),
            seq = opt_num(e.get("seq")),
            users = opt_num(grants.and_then(|g| g.get("total_users"))),
            features = opt_num(grants.and_then(|g| g.get("features_enabled"))),
            storage = opt_num(grants.and_then(|g| g.get("storage_gb"))),
            state_out = blobs.add(&unhex(&e["state_out"])),
        )
        .unwrap();
    }
    lifecycle(&mut blobs, all);
    if env::var_os("CARGO_FEATURE_BASELINE").is_some() {
        baseline(&mut blobs, all, ring);
    }
    src.push_str(&blobs.src);
    writeln!(
        src,
        "\n/// The embedded runtime vectors.\n\
         #[link_section = \".tessera_vectors\"]\n\
         pub static VECTORS: [Vector; {}] = [\n{table}];",
        SELECTED.len()
    )
    .unwrap();
    fs::write(out.join("vectors.rs"), src).unwrap();
}
