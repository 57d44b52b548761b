//! Xenbus device states (`io/xenbus.h`): the `state` node both ends of a
//! split driver write in xenstore.

/// `enum xenbus_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum XenbusState {
    /// 0: no state written yet.
    Unknown = 0,
    /// 1: setting up.
    Initialising = 1,
    /// 2: the backend waits for the frontend's details.
    InitWait = 2,
    /// 3: the frontend's details are written.
    Initialised = 3,
    /// 4: in service.
    Connected = 4,
    /// 5: going away.
    Closing = 5,
    /// 6: gone.
    Closed = 6,
    /// 7: reconfiguring.
    Reconfiguring = 7,
    /// 8: reconfigured.
    Reconfigured = 8,
}

impl XenbusState {
    const ALL: [XenbusState; 9] = [
        Self::Unknown,
        Self::Initialising,
        Self::InitWait,
        Self::Initialised,
        Self::Connected,
        Self::Closing,
        Self::Closed,
        Self::Reconfiguring,
        Self::Reconfigured,
    ];

    /// The state with this number.
    pub fn from_number(number: u32) -> Option<Self> {
        Self::ALL.get(usize::try_from(number).ok()?).copied()
    }

    /// Its number, as written in a `state` node.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// Parses the decimal value of a `state` node (untrusted text).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != 1 {
            return None;
        }
        Self::from_number(text.parse().ok()?)
    }

    /// The value to write to a `state` node.
    pub fn as_str(self) -> &'static str {
        ["0", "1", "2", "3", "4", "5", "6", "7", "8"][self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_junk_is_refused() {
        for number in 0..=8u32 {
            let state = XenbusState::from_number(number).unwrap();
            assert_eq!(state.number(), number);
            assert_eq!(XenbusState::parse(state.as_str()), Some(state));
        }
        assert_eq!(XenbusState::parse(" 4\n"), Some(XenbusState::Connected));
        for junk in ["", "9", "-1", "4x", "04", "connected"] {
            assert_eq!(XenbusState::parse(junk), None, "{junk:?}");
        }
        assert_eq!(XenbusState::from_number(9), None);
    }
}
