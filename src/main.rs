//! The xenecho kernel image: the appliance ([`xenecho::run`]) on the kernel.
//!
//! Built for a guest target (`x86_64-unknown-none` with `make`,
//! `aarch64-unknown-none-softfloat` with `make ARCH=aarch64`) this is the Xen
//! guest; built for the host it only explains itself, so that `cargo test`
//! covers the rest of the package.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
kernel::entry_point!(xenecho::run);

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("xenecho is a Xen guest kernel: build it with `make`, start it with `xl create xl.cfg`.");
    std::process::exit(2);
}
