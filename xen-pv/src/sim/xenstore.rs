//! The simulated xenstore daemon (to be written: see the helper's task).

use crate::abi::xenstore::XenstoreInterface;

/// The simulated xenstore daemon.
#[derive(Default)]
pub struct XenstoreServer {}

impl XenstoreServer {
    /// An empty store.
    pub fn new() -> Self {
        Self {}
    }

    /// Serves every complete request on the ring; returns whether it wrote
    /// any response (so the caller raises the event channel).
    pub fn process(&mut self, _ring: &XenstoreInterface) -> bool {
        false
    }
}
