//! Picks the linker script for the kernel image's architecture and records
//! what the banner prints about the build.
#![forbid(unsafe_code)]

use std::env;
use std::process::Command;

fn main() {
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if target_os == "none" {
        let script = format!("{}/kernel/linker-{target_arch}.ld", env!("CARGO_MANIFEST_DIR"));
        println!("cargo:rerun-if-changed={script}");
        println!("cargo:rustc-link-arg-bins=-T{script}");
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
        println!("cargo:rustc-link-arg-bins=-znostart-stop-gc");
    }
    // The revision: XENECHO_REVISION from the environment when set (a
    // build from a source archive, or one that must not depend on the
    // work tree), else what git says, else "unknown".
    println!("cargo:rerun-if-env-changed=XENECHO_REVISION");
    let revision = env::var("XENECHO_REVISION").ok().filter(|given| !given.is_empty()).unwrap_or_else(|| {
        Command::new("git")
            .args(["describe", "--always", "--dirty", "--abbrev=12"])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .filter(|revision| !revision.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    });
    println!("cargo:rustc-env=XENECHO_REVISION={revision}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
}
