//! The simulated Ethernet: ports on a hub, each a smoltcp `Device`. A frame
//! sent on a port reaches the port its destination MAC names, or every other
//! port when broadcast; frames to or from an unplugged port are lost. Each
//! port counts the frames it sent and took in ([`PortCounts`]), so a test
//! can say which hosts the appliance's packets went to.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, EthernetFrame};

/// Most frames waiting at one port; beyond it frames are dropped, as a
/// full NIC ring would.
const QUEUE_FRAMES: usize = 4096;

/// What one port's frames did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounts {
    /// Frames the port sent.
    pub sent: u64,
    /// Frames the port took in.
    pub received: u64,
    /// Frames for the port dropped because its queue was full.
    pub dropped: u64,
}

impl PortCounts {
    /// Frames either way.
    pub fn frames(&self) -> u64 {
        self.sent + self.received
    }
}

struct PortQueue {
    mac: EthernetAddress,
    plugged: bool,
    waiting: VecDeque<Vec<u8>>,
    counts: PortCounts,
}

#[derive(Default)]
struct Queues {
    ports: Vec<PortQueue>,
    /// Frames sent, not yet delivered: (sending port, frame).
    sent: Vec<(usize, Vec<u8>)>,
}

/// The hub.
#[derive(Default)]
pub struct Hub {
    queues: Rc<RefCell<Queues>>,
}

/// One port of the hub, a smoltcp device.
pub struct Port {
    queues: Rc<RefCell<Queues>>,
    index: usize,
    mac: EthernetAddress,
}

impl Hub {
    /// A new port with `mac`.
    pub fn plug(&mut self, mac: EthernetAddress) -> Port {
        let mut queues = self.queues.borrow_mut();
        queues.ports.push(PortQueue { mac, plugged: true, waiting: VecDeque::new(), counts: PortCounts::default() });
        Port { queues: self.queues.clone(), index: queues.ports.len() - 1, mac }
    }

    /// Cuts the port with `mac` off: nothing reaches it or leaves it again.
    pub fn unplug(&mut self, mac: EthernetAddress) {
        let mut queues = self.queues.borrow_mut();
        for port in queues.ports.iter_mut().filter(|port| port.mac == mac) {
            port.plugged = false;
            port.waiting.clear();
        }
    }

    /// Moves every sent frame to the queues of the ports it is for.
    pub fn deliver(&mut self) {
        let mut queues = self.queues.borrow_mut();
        let sent = core::mem::take(&mut queues.sent);
        for (from, frame) in sent {
            if !queues.ports[from].plugged {
                continue;
            }
            let Ok(ethernet) = EthernetFrame::new_checked(&frame[..]) else { continue };
            let destination = ethernet.dst_addr();
            for (index, port) in queues.ports.iter_mut().enumerate() {
                let addressed = destination == port.mac || destination.is_broadcast();
                if index == from || !port.plugged || !addressed {
                    continue;
                }
                if port.waiting.len() < QUEUE_FRAMES {
                    port.waiting.push_back(frame.clone());
                } else {
                    port.counts.dropped += 1;
                }
            }
        }
    }

    /// Whether no frame is waiting anywhere.
    pub fn is_quiet(&self) -> bool {
        let queues = self.queues.borrow();
        queues.sent.is_empty() && queues.ports.iter().all(|port| port.waiting.is_empty())
    }
}

impl Port {
    /// The port's MAC.
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }

    /// Takes the next frame waiting for this port.
    pub fn receive_frame(&mut self) -> Option<Vec<u8>> {
        let mut queues = self.queues.borrow_mut();
        let port = &mut queues.ports[self.index];
        let frame = port.waiting.pop_front()?;
        port.counts.received += 1;
        Some(frame)
    }

    /// Sends a frame from this port.
    pub fn send_frame(&mut self, frame: Vec<u8>) {
        let mut queues = self.queues.borrow_mut();
        queues.ports[self.index].counts.sent += 1;
        queues.sent.push((self.index, frame));
    }

    /// What this port's frames did so far.
    pub fn counts(&self) -> PortCounts {
        self.queues.borrow().ports[self.index].counts
    }
}

/// A received frame.
pub struct RxToken(Vec<u8>);

/// Room for one frame to send.
pub struct TxToken<'a>(&'a mut Port);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, length: usize, f: F) -> R {
        // The wire's memory, not the appliance's.
        let mut frame = super::uncounted(|| alloc::vec![0; length]);
        let result = f(&mut frame);
        super::uncounted(|| self.0.send_frame(frame));
        result
    }
}

impl Device for Port {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.receive_frame()?;
        Some((RxToken(frame), TxToken(self)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = 1514;
        capabilities
    }
}
