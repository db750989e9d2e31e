//! Regenerates `spec/vectors/` from the published test keys and samples:
//! `cargo run -p tessera-verifier --features std --example gen_vectors`.
//! `tests/vectors.rs` fails while the checked-in files differ from this.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/support/vectors.rs"]
mod vectors;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, content) in vectors::files() {
        std::fs::write(dir.join(&name), content).unwrap();
        println!("wrote spec/vectors/{name}");
    }
}
