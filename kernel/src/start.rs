//! The architecture-neutral start sequence and the two ways a domain ends
//! (as the appliance says when it returns, crash after a fatal error).

use crate::cmdline::KernelSettings;
use crate::memory::map::{MapError, MemoryMap};
use crate::memory::{self, ReservedRanges};
use crate::{BootInfo, CommandLine, arch, console, logger};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};
use xen_pv::abi::sched::ShutdownReason;
use xen_pv::hypercall;

/// What the architecture's entry code gathered.
pub struct BootData {
    /// The command line, copied out of boot memory.
    pub command_line: &'static str,
    /// The memory map as the hypervisor described it, checked.
    pub memory_map: Result<MemoryMap, MapError>,
    /// Ranges no allocator may hand out.
    pub reserved: ReservedRanges,
    /// Where Xen's pages (shared info, grant frames) go; `None` if the
    /// architecture found no room.
    pub foreign_area: Option<crate::pv::ForeignArea>,
}

/// Set once hypercalls work; before that, fatal errors can only halt.
static HYPERCALLS_READY: AtomicBool = AtomicBool::new(false);

unsafe extern "Rust" {
    /// The appliance's entry point, defined by [`crate::entry_point!`].
    fn xenecho_main(boot: &BootInfo) -> ShutdownReason;
}

/// Brings the kernel up, runs the appliance, ends the domain as it says.
pub fn start(mut boot: BootData) -> ! {
    let Some(xen_version) = arch::init_hypervisor() else {
        fatal(format_args!("not running on Xen (no sign of Xen: {})", arch::XEN_EVIDENCE));
    };
    HYPERCALLS_READY.store(true, Ordering::Release);
    let command_line = CommandLine::new(boot.command_line);
    // Malformed values fall back here without a word: the appliance reads
    // the whole line again and warns about them.
    let settings = KernelSettings::read(&command_line);

    match console::PvConsole::from_hvm_params() {
        Ok(pv_console) => {
            let frame = pv_console.frame();
            boot.reserved.push(frame << 12..(frame + 1) << 12);
            console::install(pv_console, settings.debug_port);
        }
        Err(error) => early_report(format_args!("no PV console ({error:?}): logging to the debug port only")),
    }
    logger::init(settings.log_level);
    log::info!("kernel up on Xen {}.{}", xen_version.0, xen_version.1);
    arch::log_platform();

    let memory_map = boot.memory_map.unwrap_or_else(|error| fatal(format_args!("memory map unusable: {error:?}")));
    let layout = memory::init(&memory_map, boot.reserved.as_slice(), settings.heap_bytes)
        .unwrap_or_else(|error| fatal(format_args!("memory set-up failed: {error:?}")));
    if let Err(error) = crate::pv::init(&memory_map, boot.foreign_area) {
        fatal(format_args!("Xen PV services failed: {error:?}"));
    }
    log::info!(
        "clock: {} ns since boot, {} {} kHz, wall clock {} s",
        crate::pv::now(),
        arch::CLOCK_NAME,
        crate::pv::clock_frequency() / 1000,
        crate::pv::wall_clock().seconds
    );
    if settings.ticks > 0 {
        log_ticks(settings.ticks);
    }
    let info = BootInfo { command_line, memory_map, xen_version, memory: layout };
    // SAFETY: `xenecho_main` is defined by `entry_point!` in the appliance
    // with exactly this signature; the kernel has no other definition.
    let reason = unsafe { xenecho_main(&info) };
    console::flush();
    hypercall::shutdown(reason)
}

/// Logs `count` ticks one second apart by the one-shot timer, with the
/// system time each woke at: a check of the clock and the timer that the
/// end-to-end tests compare with dom0's clock.
fn log_ticks(count: u64) {
    let start = crate::pv::now();
    for tick in 1..=count {
        crate::pv::sleep_until(start + tick * 1_000_000_000);
        log::info!("tick {tick}/{count} at {} us", crate::pv::now() / 1000);
    }
}

/// Reports an unrecoverable error on every console and crashes the domain.
///
/// The report is the last log lines the logger kept (`crash: the last N
/// log lines, oldest first:`, each line after `  | `), then the reason
/// (`FATAL: ...`), both time-stamped: on the PV console and the debug port
/// once hypercalls work; before that (not on Xen, or Xen's start info
/// unusable) on the debug port and the first serial port, so that a plain
/// emulator without Xen shows it too.
pub fn fatal(message: fmt::Arguments<'_>) -> ! {
    static FATAL_IN_PROGRESS: AtomicBool = AtomicBool::new(false);
    if FATAL_IN_PROGRESS.swap(true, Ordering::AcqRel) {
        end_crashed();
    }
    let on_xen = HYPERCALLS_READY.load(Ordering::Acquire);
    let emit = |bytes: &[u8]| {
        if on_xen {
            console::emergency_output(bytes);
        } else {
            arch::debug_port_write(bytes);
            arch::serial_write(bytes);
        }
    };
    let now = crate::pv::now();
    logger::with_recent_lines(|recent| {
        let mut line = logger::LineBuffer::new();
        logger::write_time_stamp(&mut line, now);
        match recent {
            Some(recent) if recent.is_empty() => {}
            Some(recent) => {
                let _ = writeln!(line, "crash: the last {} log lines, oldest first:", recent.len());
                emit(line.finish());
                for kept in recent.iter() {
                    emit(b"  | ");
                    emit(kept);
                }
            }
            None => {
                let _ = writeln!(line, "crash: the last log lines cannot be read (the crash came while one was kept)");
                emit(line.finish());
            }
        }
    });
    let mut line = logger::LineBuffer::new();
    logger::write_time_stamp(&mut line, now);
    let _ = writeln!(line, "FATAL: {message}");
    emit(line.finish());
    if on_xen {
        console::flush();
    }
    end_crashed()
}

fn end_crashed() -> ! {
    if HYPERCALLS_READY.load(Ordering::Acquire) {
        hypercall::shutdown(ShutdownReason::Crash);
    }
    arch::halt_forever()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    fatal(format_args!("{info}"))
}

/// Writes a line to the debug port, for failures before the logger exists.
fn early_report(message: fmt::Arguments<'_>) {
    let mut line = logger::LineBuffer::new();
    let _ = writeln!(line, "xenecho: {message}");
    arch::debug_port_write(line.finish());
}
