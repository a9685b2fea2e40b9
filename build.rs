//! Build script: renders the SIMD microkernels and their registry into
//! `$OUT_DIR/kernels.rs` (see `codegen/mod.rs`), which `src/kernels/mod.rs` includes.

#[path = "codegen/mod.rs"]
mod codegen;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=codegen/mod.rs");
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let path = std::path::Path::new(&out).join("kernels.rs");
    let text = codegen::generate();
    // Rewrite only on change, so an unchanged generator does not trigger a rebuild.
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&path, text).expect("cannot write the generated kernels to OUT_DIR");
    }
}
