//! The PV console: the kernel's log goes into the output ring that
//! xenconsoled (dom0) drains into `xl console`.
//!
//! The ring logic ([`write_some`], [`pending`]) is pure and tested on the host
//! against a console page in ordinary memory. On Xen, `PvConsole` adds the
//! notification and the waiting: a full ring waits for the backend a bounded
//! number of times and then drops output (counted), because a stalled console
//! daemon must never stop the appliance.

use core::sync::atomic::{AtomicU64, Ordering, fence};
use xen_pv::abi::console::{CONSOLE_OUTPUT_SIZE, ConsoleInterface};

/// Copies as much of `bytes` into the output ring as fits and publishes it.
/// Returns how many bytes were written.
pub fn write_some(ring: &ConsoleInterface, bytes: &[u8]) -> usize {
    let consumer = ring.out_cons.load(Ordering::Acquire);
    let producer = ring.out_prod.load(Ordering::Relaxed);
    // A backend that moves its consumer index ahead of our producer is
    // broken; treat the ring as full rather than overwrite unread data.
    let used = producer.wrapping_sub(consumer) as usize;
    let space = CONSOLE_OUTPUT_SIZE.saturating_sub(used);
    let count = space.min(bytes.len());
    for (offset, &byte) in bytes[..count].iter().enumerate() {
        let index = producer.wrapping_add(offset as u32) as usize % CONSOLE_OUTPUT_SIZE;
        ring.output[index].store(byte, Ordering::Relaxed);
    }
    // The bytes must be visible before the new producer index (Xen's wmb()).
    fence(Ordering::Release);
    ring.out_prod.store(producer.wrapping_add(count as u32), Ordering::Release);
    count
}

/// Bytes written but not yet consumed by the backend.
pub fn pending(ring: &ConsoleInterface) -> usize {
    let producer = ring.out_prod.load(Ordering::Relaxed);
    let consumer = ring.out_cons.load(Ordering::Acquire);
    (producer.wrapping_sub(consumer) as usize).min(CONSOLE_OUTPUT_SIZE)
}

/// Bytes dropped because the backend did not drain the ring in time.
pub static DROPPED_BYTES: AtomicU64 = AtomicU64::new(0);

#[cfg(target_os = "none")]
pub use platform::*;

#[cfg(target_os = "none")]
mod platform {
    use super::*;
    use core::sync::atomic::AtomicBool;
    use xen_pv::abi::event_channel::Port;
    use xen_pv::abi::hvm::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN};
    use xen_pv::hypercall::{Hypervisor, XEN, XenError};

    /// How long a writer waits for a backend that makes no progress before
    /// it drops the rest of its output; before the clock exists, how many
    /// times it yields instead.
    const PATIENCE_NS: u64 = 2_000_000_000;
    const PATIENCE_YIELDS: u32 = 10_000;

    /// The PV console of this domain.
    pub struct PvConsole {
        ring: &'static ConsoleInterface,
        port: core::sync::atomic::AtomicU32,
    }

    impl PvConsole {
        /// Finds the console page and event channel through the HVM params.
        pub fn from_hvm_params() -> Result<Self, XenError> {
            let frame = XEN.hvm_get_param(HVM_PARAM_CONSOLE_PFN)?;
            let port = XEN.hvm_get_param(HVM_PARAM_CONSOLE_EVTCHN)? as Port;
            if frame == 0 || frame >= 1 << 20 {
                // Only the low 4 GiB are mapped at boot; Xen puts the page there.
                return Err(XenError::EINVAL);
            }
            let address = frame << 12;
            // SAFETY: Xen gave this frame to the domain as its console page: it
            // is identity-mapped (below 4 GiB), page-aligned, outside RAM the
            // allocators hand out (it is reserved at boot), and shared only
            // with the console backend, which we access through atomics.
            let ring = unsafe { &*(address as *const ConsoleInterface) };
            Ok(Self { ring, port: core::sync::atomic::AtomicU32::new(port) })
        }

        fn port(&self) -> Port {
            self.port.load(Ordering::Relaxed)
        }

        /// The frame of the console page, to keep it out of the allocators.
        pub fn frame(&self) -> u64 {
            (self.ring as *const ConsoleInterface as u64) >> 12
        }

        /// Writes all of `bytes`, waiting for the backend while the ring is
        /// full; drops what is left if the backend stops draining.
        pub fn write(&self, mut bytes: &[u8]) {
            let mut patience = Patience::new();
            while !bytes.is_empty() {
                let written = write_some(self.ring, bytes);
                bytes = &bytes[written..];
                let _ = XEN.event_channel_send(self.port());
                if written > 0 {
                    patience = Patience::new();
                } else if !patience.wait(self.port()) {
                    DROPPED_BYTES.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    return;
                }
            }
        }

        /// Waits (boundedly) until the backend has read everything; used
        /// before the domain ends, so the last lines are not lost with it.
        pub fn flush(&self) {
            let mut patience = Patience::new();
            while pending(self.ring) > 0 {
                let _ = XEN.event_channel_send(self.port());
                if !patience.wait(self.port()) {
                    return;
                }
            }
        }
    }

    /// Waiting for the console backend: sleeping on its event channel once
    /// the PV clock runs, yielding before that; either way bounded.
    struct Patience {
        deadline: Option<u64>,
        yields_left: u32,
    }

    impl Patience {
        fn new() -> Self {
            let now = crate::pv::now();
            Self { deadline: (now > 0).then_some(now + PATIENCE_NS), yields_left: PATIENCE_YIELDS }
        }

        /// Waits a little; false once patience has run out.
        fn wait(&mut self, port: Port) -> bool {
            match self.deadline {
                Some(deadline) => {
                    let step = (crate::pv::now() + 10_000_000).min(deadline);
                    let _ = crate::pv::wait(&[port], Some(step));
                    crate::pv::take_pending(port);
                    crate::pv::now() < deadline
                }
                None => {
                    XEN.yield_now();
                    self.yields_left = self.yields_left.saturating_sub(1);
                    self.yields_left > 0
                }
            }
        }
    }

    static CONSOLE: spin::Once<PvConsole> = spin::Once::new();
    /// The console page moved after a resume: the PV console is not used.
    static CONSOLE_MOVED: AtomicBool = AtomicBool::new(false);
    static WRITER: spin::Mutex<()> = spin::Mutex::new(());
    static MIRROR_TO_DEBUG_PORT: AtomicBool = AtomicBool::new(false);

    /// Makes `console` the destination of all output from now on; with
    /// `mirror`, output also goes to the debug port (Xen's serial line).
    pub fn install(console: PvConsole, mirror: bool) {
        MIRROR_TO_DEBUG_PORT.store(mirror, Ordering::Relaxed);
        CONSOLE.call_once(|| console);
    }

    /// Writes `bytes` to the PV console, or to the debug port before the
    /// console is up.
    pub fn output(bytes: &[u8]) {
        let Some(console) = CONSOLE.get().filter(|_| !CONSOLE_MOVED.load(Ordering::Relaxed)) else {
            crate::arch::debug_port_write(bytes);
            return;
        };
        let _serialised = WRITER.lock();
        console.write(bytes);
        if MIRROR_TO_DEBUG_PORT.load(Ordering::Relaxed) {
            crate::arch::debug_port_write(bytes);
        }
    }

    /// Writes `bytes` everywhere without taking the writer lock: for the
    /// fatal paths, which may interrupt a write in progress.
    pub fn emergency_output(bytes: &[u8]) {
        crate::arch::debug_port_write(bytes);
        if let Some(console) = CONSOLE.get().filter(|_| !CONSOLE_MOVED.load(Ordering::Relaxed)) {
            console.write(bytes);
        }
    }

    /// After a resume in a new domain: the console page is where it was
    /// (the toolstack restores `HVM_PARAM_CONSOLE_PFN`), its event channel
    /// is a new one (`HVM_PARAM_CONSOLE_EVTCHN`). Output goes there from
    /// now on; if the page moved after all, the PV console is left alone
    /// (its new page was never reserved) and output goes to the debug port.
    pub fn resume() {
        let Some(console) = CONSOLE.get() else { return };
        let page = XEN.hvm_get_param(HVM_PARAM_CONSOLE_PFN);
        let port = XEN.hvm_get_param(HVM_PARAM_CONSOLE_EVTCHN);
        match (page, port) {
            (Ok(frame), Ok(port)) if frame == console.frame() => console.port.store(port as Port, Ordering::Relaxed),
            _ => {
                CONSOLE_MOVED.store(true, Ordering::Relaxed);
                crate::arch::debug_port_write(b"xenecho: the PV console moved after a resume: debug port only\n");
            }
        }
    }

    /// Waits (boundedly) for the console backend to read everything.
    pub fn flush() {
        if let Some(console) = CONSOLE.get().filter(|_| !CONSOLE_MOVED.load(Ordering::Relaxed)) {
            console.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(ring: &ConsoleInterface, from: u32, count: usize) -> Vec<u8> {
        (0..count)
            .map(|offset| ring.output[(from as usize + offset) % CONSOLE_OUTPUT_SIZE].load(Ordering::Relaxed))
            .collect()
    }

    #[test]
    fn writes_then_stops_when_full() {
        let ring = ConsoleInterface::new_zeroed();
        assert_eq!(write_some(&ring, b"hello"), 5);
        assert_eq!(pending(&ring), 5);
        assert_eq!(output(&ring, 0, 5), b"hello");
        let big = vec![b'x'; 4000];
        assert_eq!(write_some(&ring, &big), CONSOLE_OUTPUT_SIZE - 5);
        assert_eq!(write_some(&ring, b"more"), 0);
        ring.out_cons.store(100, Ordering::Release);
        assert_eq!(write_some(&ring, &big), 100);
    }

    #[test]
    fn wraps_around_the_ring_and_the_index() {
        let ring = ConsoleInterface::new_zeroed();
        let start = u32::MAX - 2;
        ring.out_prod.store(start, Ordering::Relaxed);
        ring.out_cons.store(start, Ordering::Relaxed);
        assert_eq!(write_some(&ring, b"abcdef"), 6);
        assert_eq!(ring.out_prod.load(Ordering::Relaxed), start.wrapping_add(6));
        assert_eq!(output(&ring, start % CONSOLE_OUTPUT_SIZE as u32, 6), b"abcdef");
        assert_eq!(pending(&ring), 6);
    }

    #[test]
    fn a_backend_running_ahead_is_treated_as_a_full_ring() {
        let ring = ConsoleInterface::new_zeroed();
        ring.out_prod.store(10, Ordering::Relaxed);
        ring.out_cons.store(20, Ordering::Relaxed);
        assert_eq!(write_some(&ring, b"data"), 0);
        assert_eq!(ring.out_prod.load(Ordering::Relaxed), 10);
        assert_eq!(pending(&ring), CONSOLE_OUTPUT_SIZE);
    }
}
