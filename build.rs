//! Build script: generates the microkernels into OUT_DIR (see `codegen/`).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
