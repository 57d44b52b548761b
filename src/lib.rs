//! xenecho, the appliance: what runs once the kernel is up.
//!
//! For now (the walking skeleton) it reports what it was given — version,
//! Xen version, memory map, command line — proves the heap works, runs a
//! self-test when the command line asks for one, and returns, which powers
//! the domain off. The HTTP echo service will live here.
//!
//! This crate holds no `unsafe` code.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod echo;


use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use kernel::BootInfo;
use kernel::selftest::Selftest;

/// The version and source revision printed in the banner.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("XENECHO_REVISION"), ")");

/// The TCP echo port (RFC 862).
pub const ECHO_PORT: u16 = 7;

/// What the appliance serves on the network.
pub struct Appliance {
    echo: echo::EchoService,
}

impl kernel::Service for Appliance {
    fn start(&mut self, sockets: &mut smoltcp::iface::SocketSet<'static>) {
        self.echo.start(sockets);
        log::info!("serving TCP echo on port {ECHO_PORT}");
    }

    fn poll(
        &mut self,
        sockets: &mut smoltcp::iface::SocketSet<'static>,
        _now: smoltcp::time::Instant,
    ) -> Option<smoltcp::time::Instant> {
        self.echo.poll(sockets);
        None
    }
}

/// The appliance's entry point: reports what it was given, then returns the
/// service the kernel runs on the network.
pub fn run(boot: &BootInfo) -> kernel::ServiceBox {
    report(boot);
    alloc::boxed::Box::new(Appliance { echo: echo::EchoService::new(ECHO_PORT, 8) })
}

fn report(boot: &BootInfo) {
    log::info!("xenecho {VERSION}: HTTP echo appliance on Xen {}.{}", boot.xen_version.0, boot.xen_version.1);
    log::info!("command line: \"{}\"", boot.command_line.as_str());
    log::info!("memory map ({} KiB of RAM):", boot.memory_map.ram_bytes() / 1024);
    for region in boot.memory_map.regions() {
        log::info!("  {region}");
    }
    let heap = &boot.memory.heap;
    log::info!(
        "heap {:#x}-{:#x} ({} KiB), {} frames left for pages",
        heap.start,
        heap.end,
        (heap.end - heap.start) / 1024,
        boot.memory.free_frames
    );
    match exercise_heap() {
        Ok(summary) => log::info!("heap check passed: {summary}"),
        Err(problem) => log::error!("heap check FAILED: {problem}"),
    }
    match Selftest::requested(&boot.command_line) {
        Ok(None) => {}
        #[cfg(target_os = "none")]
        Ok(Some(test)) => {
            log::warn!("running selftest {test:?}");
            test.run();
        }
        #[cfg(not(target_os = "none"))]
        Ok(Some(test)) => log::warn!("selftest {test:?} only runs on Xen"),
        Err(unknown) => log::error!("unknown selftest {:?}: ignored", unknown.0),
    }
}

/// Allocates, uses and frees `Vec`, `Box`, `String` and `BTreeMap` values and
/// checks what comes back. Returns a one-line summary, or what went wrong.
pub fn exercise_heap() -> Result<String, String> {
    let numbers: Vec<u64> = (1..=10_000).collect();
    let sum: u64 = numbers.iter().sum();
    if sum != 50_005_000 {
        return Err(alloc::format!("sum of 1..=10000 is {sum}"));
    }
    let boxed = Box::new([0xa5u8; 4096]);
    if boxed.iter().any(|&byte| byte != 0xa5) {
        return Err("boxed page changed under us".into());
    }
    let mut text = String::new();
    for word in ["grant", "event", "ring"] {
        text.push_str(word);
        text.push(' ');
    }
    let mut counts = BTreeMap::new();
    for byte in text.bytes() {
        *counts.entry(byte).or_insert(0u32) += 1;
    }
    if counts.get(&b'n') != Some(&3) {
        return Err(alloc::format!("letter count wrong: {counts:?}"));
    }
    Ok(alloc::format!("vec sum {sum}, box 4 KiB, string {:?}, {} distinct bytes", text.trim_end(), counts.len()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn heap_exercise_passes_on_the_host_allocator() {
        let summary = super::exercise_heap().unwrap();
        assert!(summary.contains("vec sum 50005000"), "{summary}");
    }
}
