//! The simulated netback's misbehaviours, and the queue of responses
//! waiting to be written.
//!
//! A test switches a [`Hostility`] on for a while ([`Lasting`]); the backend
//! then mangles the responses it creates (ids, receive status, offset and
//! flags, extra-info slots the frontend never asked for),
//! holds them back for some steps, or pushes a ring's response producer
//! ahead of the requests. Every response, mangled or not, goes through a
//! FIFO of [`Held`] responses with the step at which it may be written; a
//! transmit response keeps its slot's read-only mapping until then, as
//! netback keeps a packet's grants mapped until it answers.
//!
//! Never: mangle anything but the values the test asked for, or reorder
//! responses (a ring's responses are written in request order, so a held
//! response also holds back every later one).

use super::connect::IdTracker;
use crate::grant_table::SimMapping;
use std::vec::Vec;
use xen_pv::abi::PAGE_SIZE;

/// One of the two data rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ring {
    /// The guest's transmit ring.
    Transmit,
    /// The guest's receive ring.
    Receive,
}

/// A way the backend misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostility {
    /// Responses on the ring carry an id the guest never posted there.
    UnknownId(Ring),
    /// A response carries the id of the response before it (that request
    /// is answered twice, this one never).
    DuplicateId(Ring),
    /// Receive responses carry this status instead of the byte count
    /// (say 5000, more than a page, or -100, no known error).
    ReceiveStatus(i16),
    /// Receive responses carry an offset such that `offset + status` is
    /// past the end of the page.
    ReceiveOffsetPastPageEnd,
    /// At the end of a step the ring's response producer is set this many
    /// slots ahead of the responses written, and the guest notified.
    ProducerAhead(Ring, u32),
    /// Responses are held this many steps before being written.
    Delay(u32),
    /// Receive responses carry these `NETRXF_*` flags as well (say
    /// `extra_info` with no extra slot behind it, `more_data` on a frame's
    /// last slot, `csum_blank` on a frame that is not TCP or UDP).
    ReceiveFlags(u16),
    /// The next frame for the guest is sent as netback sends one with
    /// extra information: its first slot flagged `NETRXF_extra_info` and
    /// followed by this many extra-info slots (1 to 4; 0 is read as 1 and
    /// more as 4), each taking a receive request, all but the last flagged
    /// `XEN_NETIF_EXTRA_FLAG_MORE`; then its other data slots. The slots
    /// are well formed and of types the frontend has no use for (hash,
    /// XDP, multicast add and delete, in that order), after the GSO one if
    /// the frame is a large segment.
    ReceiveExtraInfo(u8),
    /// The next frame for the guest carries a GSO extra-info slot broken
    /// this way (whether or not it is a large segment).
    BadGso(GsoFault),
    /// Transmit responses break the rule of extra-info slots this way.
    Null(NullFault),
}

/// How [`Hostility::Null`] answers transmit slots: netback answers a
/// packet's extra-info slot with `NETIF_RSP_NULL` (only the status
/// written) right after its first slot's response, and never a data slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullFault {
    /// An extra-info slot is answered `NETIF_RSP_OKAY` (only the status
    /// written, as for `NETIF_RSP_NULL`: the id is what the slot held,
    /// which a frontend that trusted it would take for a request's).
    Withheld,
    /// A data slot's response carries `NETIF_RSP_NULL` instead of its
    /// status (its id right).
    OnData,
}

/// How [`Hostility::BadGso`] breaks a frame's GSO information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoFault {
    /// A well-formed GSO extra slot, on whatever frame comes next (a lie
    /// when the frame is not TCP over the IP version of its type, TCPv4
    /// unless the frame is an IPv6 TCP one the frontend may get segments
    /// of, or when the frontend did not ask).
    OnAnyFrame,
    /// The extra slot's type is none of netif's (9).
    UnknownType,
    /// The segment size is 0.
    SizeZero,
    /// The segment size is 65535, far above any MTU.
    SizeHuge,
    /// The GSO type is TCPv6 (a lie on an IPv4 frame; on any frame when
    /// the frontend did not ask for TCPv6 segments).
    TypeTcpv6,
    /// Two GSO extra slots in the chain.
    DuplicateType,
    /// Six extra slots, each flagged `XEN_NETIF_EXTRA_FLAG_MORE` but the
    /// last: longer than there are extra types.
    ChainTooLong,
    /// The GSO type is TCPv4 (a lie on an IPv6 frame).
    TypeTcpv4,
    /// `NETRXF_extra_info` on the first slot, and no extra slot behind it.
    MissingExtraSlot,
    /// The extra slots come after the frame's second data slot, flagged
    /// there (a frame of one slot gets them after its first).
    NotOnFirstSlot,
    /// A page of zeros after the frame's data: more than 65 535 bytes of
    /// IP packet (give it a frame of 61 440 bytes or more).
    TooLong,
}

/// How long a [`Hostility`] stays in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lasting {
    /// Until it has applied once (to one response, or one step's producer).
    Once,
    /// For this many steps, counting the next one.
    Steps(u32),
    /// Until [`super::SimNetback::behave`].
    Always,
}

/// A response waiting to be written.
pub(super) struct Held<const WORDS: usize> {
    /// The response's slot words.
    pub words: [u32; WORDS],
    /// The bits of the slot the response writes (netback writes only `id`
    /// and `status` of a transmit response, only `status` of a
    /// `NETIF_RSP_NULL` one); the others keep what the slot holds.
    pub mask: [u32; WORDS],
    /// The first step at which it may be written.
    pub release_at: u64,
    /// The grant mapping the response ends.
    pub mapping: Option<SimMapping>,
    /// The id of the request it answers, if the request had one.
    pub request_id: Option<u16>,
}

/// The misbehaviours in force.
#[derive(Default)]
pub(super) struct Active {
    modes: Vec<(Hostility, Lasting)>,
}

impl Active {
    pub fn add(&mut self, hostility: Hostility, lasting: Lasting) {
        self.modes.push((hostility, lasting));
    }

    /// The id a response to `id` carries on `ring`.
    pub fn mangle_id(&mut self, ring: Ring, id: u16, ids: &IdTracker) -> u16 {
        if self.use_first(|mode| (mode == Hostility::UnknownId(ring)).then_some(())).is_some() {
            return ids.never_posted();
        }
        let Some(previous) = ids.last_sent() else { return id };
        match self.use_first(|mode| (mode == Hostility::DuplicateId(ring)).then_some(())) {
            Some(()) => previous,
            None => id,
        }
    }

    /// The (offset, status) a receive response with this status carries.
    pub fn mangle_receive(&mut self, status: i16) -> (u16, i16) {
        let forced = self.use_first(|mode| match mode {
            Hostility::ReceiveStatus(value) => Some(value),
            _ => None,
        });
        let status = forced.unwrap_or(status);
        let past_end = self.use_first(|mode| (mode == Hostility::ReceiveOffsetPastPageEnd).then_some(()));
        let offset = match past_end {
            Some(()) => (PAGE_SIZE as i32 - i32::from(status) + 1).clamp(1, 0xffff) as u16,
            None => 0,
        };
        (offset, status)
    }

    /// The flags a receive response carries besides `flags`.
    pub fn mangle_receive_flags(&mut self, flags: u16) -> u16 {
        let extra = self.use_first(|mode| match mode {
            Hostility::ReceiveFlags(extra) => Some(extra),
            _ => None,
        });
        flags | extra.unwrap_or(0)
    }

    /// How many extra-info slots the next frame for the guest carries;
    /// uses the mode up only if `take`.
    pub fn receive_extras(&mut self, take: bool) -> u32 {
        let pick = |mode| match mode {
            Hostility::ReceiveExtraInfo(count) => Some(u32::from(count.clamp(1, 4))),
            _ => None,
        };
        if take {
            return self.use_first(pick).unwrap_or(0);
        }
        self.modes.iter().find_map(|(mode, _)| pick(*mode)).unwrap_or(0)
    }

    /// The GSO fault the next frame for the guest carries; uses the mode
    /// up only if `take`.
    pub fn gso_fault(&mut self, take: bool) -> Option<GsoFault> {
        let pick = |mode| match mode {
            Hostility::BadGso(fault) => Some(fault),
            _ => None,
        };
        if take {
            return self.use_first(pick);
        }
        self.modes.iter().find_map(|(mode, _)| pick(*mode))
    }

    /// Whether `fault` applies to the next transmit response it can apply
    /// to (used up if it was to apply once).
    pub fn null_fault(&mut self, fault: NullFault) -> bool {
        self.use_first(|mode| (mode == Hostility::Null(fault)).then_some(())).is_some()
    }

    /// How many steps the next response is held.
    pub fn delay(&mut self) -> u64 {
        let steps = self.use_first(|mode| match mode {
            Hostility::Delay(steps) => Some(steps),
            _ => None,
        });
        steps.map_or(0, u64::from)
    }

    /// The rings whose producer runs ahead this step, and by how much.
    pub fn producers_ahead(&mut self) -> Vec<(Ring, u32)> {
        let ahead = |mode: Hostility| match mode {
            Hostility::ProducerAhead(ring, by) => Some((ring, by)),
            _ => None,
        };
        let found = self.modes.iter().filter_map(|(mode, _)| ahead(*mode)).collect();
        self.modes.retain(|(mode, lasting)| ahead(*mode).is_none() || *lasting != Lasting::Once);
        found
    }

    /// Ages the step-limited modes.
    pub fn end_step(&mut self) {
        for (_, lasting) in &mut self.modes {
            if let Lasting::Steps(steps) = lasting {
                *steps = steps.saturating_sub(1);
            }
        }
        self.modes.retain(|(_, lasting)| *lasting != Lasting::Steps(0));
    }

    /// What `pick` finds in the oldest mode it matches; uses that mode up
    /// if it was to apply once.
    fn use_first<T>(&mut self, pick: impl Fn(Hostility) -> Option<T>) -> Option<T> {
        let index = self.modes.iter().position(|(mode, _)| pick(*mode).is_some())?;
        let (mode, lasting) = self.modes[index];
        if lasting == Lasting::Once {
            self.modes.remove(index);
        }
        pick(mode)
    }
}
