//! One name for "Linux-like" (Linux and Android: futex, `/proc`, `/dev/shm`), so the sources
//! say `cfg(linux_like)` instead of repeating `cfg(any(target_os = "linux", target_os =
//! "android"))` (rustix does the same).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(linux_like)");
    // A build script runs on the host: the target is in CARGO_CFG_TARGET_OS.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" {
        println!("cargo:rustc-cfg=linux_like");
    }
}
