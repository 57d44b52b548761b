//! Records how the crate is built, for the `dma_lookup` benchmark to print
//! beside its timings (a timing means little without the optimisation level
//! it was built at): Cargo's profile family and opt-level of this build, as
//! `DMA_BUILD_PROFILE` and `DMA_BUILD_OPT_LEVEL` for the package's targets.
//! The library itself does not read them.
#![forbid(unsafe_code)]

fn main() {
    for (exported, set_by_cargo) in [("DMA_BUILD_PROFILE", "PROFILE"), ("DMA_BUILD_OPT_LEVEL", "OPT_LEVEL")] {
        let value = std::env::var(set_by_cargo).unwrap_or_else(|_| "unknown".to_owned());
        println!("cargo:rustc-env={exported}={value}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
