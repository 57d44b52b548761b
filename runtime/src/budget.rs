//! A per-turn budget on received frames, in the manner of Linux's NAPI
//! budget: one turn of the event loop lets the stack take at most
//! [`RX_FRAMES_PER_TURN`] frames, then serves the sockets, then comes back
//! for more. Between two batches the services see every connection a batch
//! opened: the HTTP pool keeps at least a budget's worth of sockets
//! listening, so a burst of SYNs (a flood among them) finds a listener for
//! each and a client's SYN is never answered with RST for lack of one.
//!
//! Contract: a plain `smoltcp::phy::Device` wrapper; it never holds a frame
//! back from a later turn, only ends this turn's receiving early.

use smoltcp::phy::{Device, DeviceCapabilities};
use smoltcp::time::Instant;

/// Most frames the stack takes in one turn.
pub const RX_FRAMES_PER_TURN: usize = 32;

/// `device` with at most `left` more frames to hand out.
pub struct Budgeted<'d, D: Device> {
    device: &'d mut D,
    left: usize,
}

impl<'d, D: Device> Budgeted<'d, D> {
    /// `device` for one turn: [`RX_FRAMES_PER_TURN`] frames.
    pub fn new(device: &'d mut D) -> Self {
        Self { device, left: RX_FRAMES_PER_TURN }
    }

    /// Whether the turn used its whole budget (more frames may wait).
    pub fn exhausted(&self) -> bool {
        self.left == 0
    }
}

impl<D: Device> Device for Budgeted<'_, D> {
    type RxToken<'a>
        = D::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if self.left == 0 {
            return None;
        }
        let tokens = self.device.receive(timestamp)?;
        self.left -= 1;
        Some(tokens)
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.device.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}
