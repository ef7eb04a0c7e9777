//! Compiles the XDP steering program (`bpf/steer.bpf.c`) to a BPF object in `OUT_DIR`, which
//! `src/steer/mod.rs` embeds with `include_bytes!`.
//!
//! Needs `clang` with the BPF target (already a build requirement of libxdp-sys). `CLANG` in
//! the environment overrides the compiler path. `-g` is required: libbpf reads the map
//! definitions from the object's BTF.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "bpf/steer.bpf.c";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("steer.bpf.o");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-target", "bpf", "-c", SOURCE, "-o"])
        .arg(&object)
        .status()
        .unwrap_or_else(|e| {
            panic!("running `{clang}` to build {SOURCE} failed: {e} (install clang, or set CLANG)")
        });
    assert!(
        status.success(),
        "`{clang}` could not compile {SOURCE} for the BPF target ({status})"
    );
}
