//! netfront against the simulated netback: the handshake, frames both ways
//! (by smoltcp's token API, as the kernel uses it), event suppression, every
//! hostile backend behaviour, and detach/attach.
//!
//! Every test of the driver runs twice, over each of the DMA layer's
//! translations ([`ADDRESSINGS`]): the grant table, as on Xen, and the
//! identity translation of bare metal, where the backend is told frame
//! numbers and nothing can be revoked. The same netfront code passes both:
//! it depends on the handle API, not on grants
//! (`netfront_uses_no_grant_table_api` below checks its source for that too).
#![forbid(unsafe_code)]

use dma::sim::SimPageSource;
use dma::{BackendTrust, BounceCapacity, DmaDevice, IdentityTranslation};
use netfront::testing::{
    ADDRESSINGS, Addressing, CONFIG, EXTENDED_MARKER, Rig, act, act_extended, frame, ip_frame, ipv6_frame,
    run_input_over, setup_for, with_backend, with_config, with_each_backend, with_each_link, with_link_over,
};
use netfront::{Netfront, NetfrontConfig};
use smoltcp::phy::{Device, RxToken, TxToken};
use xen_pv::event_channel::EventChannels;
use xen_sim::SimXen;
use xen_sim::netback::{Detach, Hostility, Lasting, NetbackOptions, ReceiveChecksum, Ring};
use xen_sim::random::XorShift;

/// netfront's code names nothing of grant tables: no grant table type,
/// reference type, operation or flag, outside comments. It is written
/// against the DMA layer's handles and its translation seam alone (the test
/// support module, which wires the simulation's grant table, aside).
#[test]
fn netfront_uses_no_grant_table_api() {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = 0;
    for entry in std::fs::read_dir(&source).expect("netfront/src") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|extension| extension != "rs") || path.ends_with("testing.rs") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).expect("a source file");
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default().to_lowercase();
            for word in ["grant", "gnttab", "gtf_"] {
                assert!(!code.contains(word), "{}:{}: {word} in {line:?}", path.display(), number + 1);
            }
        }
    }
    assert!(files >= 8, "only {files} source files found");
}

/// The driver's type takes any translation as it is, with no adapter: here
/// the identity translation itself, not the rig's choice of two.
#[test]
fn netfront_builds_over_the_identity_translation_directly() {
    let xen = SimXen::new(1);
    let events = EventChannels::new(&xen, xen.shared_info());
    let pages = SimPageSource::new(xen.grants());
    let dma = DmaDevice::new(IdentityTranslation, &pages, 0, BackendTrust::Trusted).expect("DMA set-up");
    let netfront: Netfront<'_, SimXen, IdentityTranslation, &SimPageSource<'_>> =
        Netfront::new(&events, dma, true, CONFIG);
    assert!(!netfront.is_up(), "no vif yet");
    assert!(!netfront.dma().is_bouncing());
}

#[test]
fn handshake_writes_every_key_and_connects_both_ends() {
    with_each_link(BackendTrust::Trusted, |rig| {
        let features = rig.netback.frontend_features().expect("the backend read the frontend's keys");
        // Large segments asked for over IPv4 and IPv6, and so checksum
        // offload on for both (Linux netback keeps TSO off a vif without IP
        // checksum offload, TSO6 off one without IPv6's).
        assert!(features.receive_notify && features.scatter_gather && features.gso_tcpv4 && features.gso_tcpv6);
        assert!(!features.no_checksum_offload && features.ipv6_checksum_offload);
        if rig.addressing == Addressing::Identity {
            for reference in [features.transmit_ring_reference, features.receive_ring_reference] {
                assert!(rig.pages.is_outstanding(u64::from(reference)), "ring reference {reference} is a page's frame");
            }
        }
        assert!(!features.split_event_channels);
        assert_eq!(rig.netfront.port(), Some(features.transmit_port));
        assert!(rig.netback.is_connected());
        assert_eq!(rig.netfront.device().unwrap().mac.to_string(), "00:16:3e:00:00:01");
        assert_eq!(rig.netfront.counters().connects, 1);
        assert!(rig.netback.errors().is_empty(), "{:?}", rig.netback.errors());
    });
}

#[test]
fn frames_flow_both_ways_byte_for_byte() {
    with_each_link(BackendTrust::Trusted, |rig| {
        let outgoing: Vec<Vec<u8>> = (0..40).map(|index| frame(60 + index * 37, index as u8)).collect();
        for frame in &outgoing {
            assert!(rig.send(frame));
            rig.netback.step();
            rig.netfront.poll_rings();
        }
        rig.settle();
        assert_eq!(rig.netback.take_transmitted(), outgoing);
        let incoming: Vec<Vec<u8>> = (0..40).map(|index| frame(1514 - index * 29, 100 + index as u8)).collect();
        for frame in &incoming {
            assert!(rig.netback.inject(frame));
        }
        let mut received = Vec::new();
        for _ in 0..10 {
            received.extend(rig.receive_all());
            rig.netfront.poll_rings();
        }
        assert_eq!(received, incoming);
        let counters = rig.netfront.counters();
        assert_eq!((counters.rx_frames, counters.tx_frames, counters.violations), (40, 40, 0));
        assert!(rig.netback.errors().is_empty(), "{:?}", rig.netback.errors());
    });
}

#[test]
fn rx_scatter_gather_reassembles_frames_larger_than_a_page() {
    with_each_link(BackendTrust::Trusted, |rig| {
        let big = frame(9000, 7);
        assert!(rig.netback.inject(&big));
        let received = rig.receive_all();
        assert_eq!(received, vec![big]);
    });
}

#[test]
fn bounce_mode_carries_the_same_frames() {
    let capacity = BounceCapacity { read_only_pages: 40, writable_pages: 40 };
    with_each_link(BackendTrust::Untrusted(capacity), |rig| {
        let out = frame(700, 1);
        assert!(rig.send(&out));
        rig.settle();
        assert_eq!(rig.netback.take_transmitted(), vec![out]);
        let incoming = frame(1200, 2);
        rig.netback.inject(&incoming);
        assert_eq!(rig.receive_all(), vec![incoming]);
    });
}

#[test]
fn notifications_are_suppressed_while_the_backend_is_busy() {
    with_each_link(BackendTrust::Trusted, |rig| {
        let before = rig.netfront.counters().notifications_sent;
        for index in 0..20 {
            assert!(rig.send(&frame(100, index)));
        }
        let sent = rig.netfront.counters().notifications_sent - before;
        assert!(sent <= 2, "20 frames queued before the backend ran took {sent} notifications");
        rig.settle();
        assert_eq!(rig.netback.take_transmitted().len(), 20);
    });
}

/// A guest too short of memory for the configured pools connects with
/// smaller ones (halved until they fit) and carries frames, rather than
/// staying off the network.
#[test]
fn a_guest_short_of_memory_connects_with_smaller_pools() {
    // Room for the two ring pages and 2 x 16 buffers, not for the rig's 2 x 32.
    const { assert!(CONFIG.rx_buffers > netfront::MIN_POOL_BUFFERS && CONFIG.tx_buffers > netfront::MIN_POOL_BUFFERS) };
    let memory_pages = 2 + 2 * netfront::MIN_POOL_BUFFERS + 8;
    with_each_backend(memory_pages, BackendTrust::Trusted, NetbackOptions::default(), |rig| {
        assert_eq!(rig.pages.outstanding_pages(), 2 + 2 * netfront::MIN_POOL_BUFFERS);
        let outgoing = frame(600, 1);
        assert!(rig.send(&outgoing));
        rig.settle();
        assert_eq!(rig.netback.take_transmitted(), vec![outgoing]);
        let incoming = frame(900, 2);
        assert!(rig.netback.inject(&incoming));
        assert_eq!(rig.receive_all(), vec![incoming]);
    });
}

/// Makes the backend misbehave once on `ring`'s next responses, and checks
/// the frontend disconnects, counts a violation and connects again.
fn survives(hostility: Hostility, exercise_rx: bool) {
    with_each_link(BackendTrust::Trusted, |rig| {
        rig.netback.misbehave(hostility, Lasting::Once);
        if exercise_rx {
            rig.netback.inject(&frame(300, 9));
            let _ = rig.receive_all();
        } else {
            rig.send(&frame(300, 9));
            rig.netback.step();
            rig.netfront.poll_rings();
        }
        rig.settle();
        let counters = rig.netfront.counters();
        assert_eq!(counters.violations, 1, "{hostility:?} was not caught");
        assert_eq!(counters.disconnects, 1);
        assert_eq!(counters.connects, 2, "{hostility:?}: the frontend did not reconnect");
        assert!(rig.netfront.is_up());
        rig.netback.behave();
        let after = frame(400, 3);
        rig.netback.inject(&after);
        assert_eq!(rig.receive_all(), vec![after], "frames flow again after {hostility:?}");
    });
}

#[test]
fn an_unknown_rx_id_disconnects_and_reconnects() {
    survives(Hostility::UnknownId(Ring::Receive), true);
}

/// After a violation the ring is not trusted: good frames behind the bad
/// response are not read, nothing is sent, and the next control poll
/// replaces the link (the fuzzer's stall: frames read off a broken link
/// while the teardown waited).
#[test]
fn a_broken_link_is_not_used_until_it_is_replaced() {
    with_each_link(BackendTrust::Trusted, |rig| {
        rig.netback.misbehave(Hostility::UnknownId(Ring::Receive), Lasting::Once);
        for index in 0..3 {
            assert!(rig.netback.inject(&frame(200, index)));
        }
        assert_eq!(rig.receive_all(), Vec::<Vec<u8>>::new(), "the bad first response stops the reading");
        assert!(rig.netfront.broken_link());
        assert_eq!(rig.receive_all(), Vec::<Vec<u8>>::new(), "nothing more is read off the broken ring");
        assert!(!rig.send(&frame(100, 9)), "nothing is sent on it");
        assert!(!rig.netfront.poll_rings());
        let received = rig.netfront.counters().rx_frames;
        assert_eq!(received, 0);
        rig.settle();
        assert!(!rig.netfront.broken_link());
        assert_eq!(rig.netfront.counters().connects, 2);
        let after = frame(400, 3);
        assert!(rig.netback.inject(&after));
        assert_eq!(rig.receive_all(), vec![after]);
    });
}

#[test]
fn an_unknown_tx_id_disconnects_and_reconnects() {
    survives(Hostility::UnknownId(Ring::Transmit), false);
}

#[test]
fn a_duplicate_tx_response_disconnects_and_reconnects() {
    with_each_link(BackendTrust::Trusted, |rig| {
        rig.netback.misbehave(Hostility::DuplicateId(Ring::Transmit), Lasting::Once);
        rig.send(&frame(100, 1));
        rig.send(&frame(100, 2));
        rig.settle();
        assert_eq!(rig.netfront.counters().violations, 1);
        assert!(rig.netfront.is_up());
    });
}

#[test]
fn an_oversized_rx_status_disconnects_and_reconnects() {
    survives(Hostility::ReceiveStatus(5000), true);
}

#[test]
fn an_unknown_negative_rx_status_disconnects_and_reconnects() {
    survives(Hostility::ReceiveStatus(-100), true);
}

#[test]
fn an_rx_offset_past_the_page_disconnects_and_reconnects() {
    survives(Hostility::ReceiveOffsetPastPageEnd, true);
}

#[test]
fn a_producer_running_ahead_disconnects_and_reconnects() {
    survives(Hostility::ProducerAhead(Ring::Receive, 5), true);
}

#[test]
fn delayed_responses_are_just_late() {
    with_each_link(BackendTrust::Trusted, |rig| {
        rig.netback.misbehave(Hostility::Delay(3), Lasting::Once);
        let late = frame(500, 4);
        rig.netback.inject(&late);
        let mut received = Vec::new();
        for _ in 0..6 {
            received.extend(rig.receive_all());
        }
        assert_eq!(received, vec![late]);
        assert_eq!(rig.netfront.counters().violations, 0);
    });
}

#[test]
fn detach_and_attach_bring_the_link_back_and_release_every_grant() {
    with_each_link(BackendTrust::Trusted, |rig| {
        let grants_before = rig.xen.grants().active_mappings();
        assert!(grants_before >= 2, "the backend maps both rings");
        rig.netback.detach(Detach::Graceful);
        rig.settle();
        assert!(!rig.netfront.is_up());
        assert_eq!(rig.netfront.retired_count(), 0, "everything was revoked once the backend let go");
        assert_eq!(rig.xen.grants().active_mappings(), 0);
        rig.netback.attach();
        rig.settle();
        assert!(rig.netfront.is_up());
        assert_eq!(rig.netfront.counters().connects, 2);
        let again = frame(200, 5);
        rig.netback.inject(&again);
        assert_eq!(rig.receive_all(), vec![again]);
    });
}

#[test]
fn state_flapping_is_followed_without_loss_of_memory() {
    with_each_link(BackendTrust::Trusted, |rig| {
        for _ in 0..3 {
            rig.netback.flap_state(xen_sim::netback::XenbusState::Closing);
            rig.settle();
        }
        rig.settle();
        assert!(rig.netfront.is_up(), "reconnected after the flaps");
        assert_eq!(rig.netfront.retired_count(), 0);
    });
}

/// A seeded random-script run: whatever the backend does, the frontend
/// never panics, and once the backend behaves again frames flow. The same
/// scripts run over both addressings.
#[test]
fn random_hostile_scripts_never_break_the_frontend() {
    for addressing in ADDRESSINGS {
        let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..40 {
            with_link_over(addressing, BackendTrust::Trusted, |rig| {
                for _ in 0..60 {
                    let value = random.next_u64();
                    act(rig, value as u8, (value >> 8) as usize % 9000);
                }
                rig.assert_recovers();
            });
        }
    }
}

/// Every input the fuzzer saved (fuzz/regressions/netfront_backend-*) still
/// recovers: the bugs they found stay fixed.
#[test]
fn saved_fuzz_inputs_recover() {
    for (name, input) in netfront::testing::saved_inputs() {
        for addressing in ADDRESSINGS {
            eprintln!("replaying {name} over {addressing:?}");
            run_input_over(addressing, &input);
        }
    }
}

/// Extra-info slots behind a frame's first slot, one or a chain (each but
/// the last flagged `XEN_NETIF_EXTRA_FLAG_MORE`), are skipped and their
/// buffers reposted; the frame and the ones after it arrive whole.
#[test]
fn extra_info_slots_are_skipped_alone_or_in_chains() {
    for extras in 1..=4 {
        with_each_link(BackendTrust::Trusted, |rig| {
            rig.netback.misbehave(Hostility::ReceiveExtraInfo(extras), Lasting::Once);
            let frames = [frame(5000, 1), frame(60, 2)];
            for frame in &frames {
                assert!(rig.netback.inject(frame));
            }
            let mut received = Vec::new();
            for _ in 0..4 {
                received.extend(rig.turn());
            }
            assert!(received == frames, "{extras} extra slots: {} of {} frames arrived", received.len(), frames.len());
            let counters = rig.netfront.counters();
            assert_eq!((counters.violations, counters.connects), (0, 1), "{extras} extra slots");
            assert!(rig.netback.errors().is_empty(), "{:?}", rig.netback.errors());
        });
    }
}

/// A backend that sends partial checksums although the frontend asked for
/// complete ones: TCP and UDP frames over IPv4 and IPv6 (some behind a
/// hop-by-hop header), one slot or several, reach the stack with their
/// checksums completed, byte for byte as sent.
#[test]
fn partial_checksums_the_frontend_did_not_ask_for_are_completed() {
    let options = NetbackOptions { receive_checksum: ReceiveChecksum::PartialRegardless, ..NetbackOptions::default() };
    let config = NetfrontConfig { large_segments: false, ..CONFIG };
    for addressing in ADDRESSINGS {
        let options = NetbackOptions { addressing, ..options.clone() };
        with_config(1024, BackendTrust::Trusted, options, config, partial_checksums_are_completed);
    }
}

fn partial_checksums_are_completed(rig: &mut Rig<'_, '_>) {
    let features = rig.netback.frontend_features().expect("connected");
    assert!(features.no_checksum_offload && !features.ipv6_checksum_offload, "complete checksums asked for");
    let mut frames: Vec<Vec<u8>> = [(60, true), (1514, false), (9000, true), (6000, false)]
        .into_iter()
        .enumerate()
        .map(|(index, (length, tcp))| ip_frame(length, tcp, index as u8))
        .collect();
    frames.extend(
        [(80, true, false), (1514, false, true), (9000, true, true), (6000, false, false)]
            .map(|(length, tcp, hop_by_hop)| ipv6_frame(length, tcp, hop_by_hop, length as u8)),
    );
    for frame in &frames {
        assert!(rig.netback.inject(frame));
    }
    let mut received = Vec::new();
    for _ in 0..4 {
        received.extend(rig.turn());
    }
    assert!(received == frames, "{} of {} frames arrived as sent", received.len(), frames.len());
    let counters = rig.netfront.counters();
    assert_eq!((counters.rx_checksums_completed, counters.rx_checksums_unsupported), (8, 0));
}

/// Seeded random extended scripts (every configuration, every action):
/// the frontend never panics and the link recovers. The same scripts run
/// over both addressings.
#[test]
fn random_extended_scripts_never_break_the_frontend() {
    for addressing in ADDRESSINGS {
        let mut random = XorShift(0x2545_f491_4f6c_dd1d);
        for selector in 0..64u8 {
            let setup = setup_for(selector);
            let options = NetbackOptions { addressing, ..setup.options };
            with_backend(setup.memory_pages, setup.trust, options, |rig| {
                for _ in 0..40 {
                    let value = random.next_u64();
                    act_extended(rig, value as u8, (value >> 8) as usize % 9000);
                }
                rig.assert_recovers();
            });
        }
        // The marker's byte alone, or with a configuration and nothing else.
        run_input_over(addressing, &[EXTENDED_MARKER]);
        run_input_over(addressing, &[EXTENDED_MARKER, 0xff]);
    }
}

#[test]
fn transmit_tokens_from_the_receive_path_never_overrun_the_ring() {
    // At a 9000-byte MTU a frame takes three slots; with the backend not
    // completing transmits, tokens from `transmit` stop when there is no
    // room, but tokens handed out with received frames promise nothing: the
    // link must check for itself and drop (counted), never panic.
    let options = NetbackOptions { mtu: Some(9000), ..NetbackOptions::default() };
    with_each_backend(2048, BackendTrust::Trusted, options, |rig| {
        assert_eq!(rig.netfront.device().unwrap().mtu, 9000);
        for index in 0..8 {
            assert!(rig.netback.inject(&frame(200, index)));
        }
        rig.netback.step();
        let jumbo = frame(9014, 9);
        let mut queued = 0;
        while rig.send(&jumbo) {
            queued += 1;
            assert!(queued <= 256, "transmit tokens without end");
        }
        assert!(queued >= 80, "only {queued} jumbo frames fit");
        let dropped_before = rig.netfront.counters().tx_dropped;
        let mut received = 0;
        while let Some((rx, tx)) = rig.netfront.receive(smoltcp::time::Instant::ZERO) {
            rx.consume(|bytes| assert!(!bytes.is_empty()));
            tx.consume(jumbo.len(), |buffer| buffer.copy_from_slice(&jumbo));
            received += 1;
        }
        assert!(received >= 1, "no receive-path token to try");
        assert_eq!(rig.netfront.counters().tx_dropped, dropped_before + received, "each one dropped, counted");
        rig.settle();
        assert_eq!(rig.netback.take_transmitted().len(), queued, "every queued frame went out, nothing else");
        assert!(rig.send(&jumbo), "room again once the backend completed");
        assert!(rig.netback.errors().is_empty(), "{:?}", rig.netback.errors());
    });
}

/// A frame over a page goes out from a buffer mapped for it alone, which
/// comes back only once the backend has answered every slot of it. A
/// backend may answer the first slot while it still maps the later ones
/// (fuzz/regressions/netfront_backend-deferred-1): over grants an unmap
/// then would be refused, but over the identity translation nothing can
/// refuse it and the pages would be freed under the backend. So the buffer
/// waits for its last response, and is then unmapped and freed at once,
/// with nothing refused or deferred, over either translation.
#[test]
fn a_jumbo_frame_s_buffer_is_freed_once_the_backend_has_answered_every_slot() {
    let options = NetbackOptions { mtu: Some(9000), ..NetbackOptions::default() };
    with_each_backend(1024, BackendTrust::Trusted, options, |rig| {
        // The first slot's response is written two steps on, the second's
        // (and its mapping's end) three.
        rig.netback.misbehave(Hostility::Delay(2), Lasting::Once);
        rig.netback.misbehave(Hostility::Delay(3), Lasting::Once);
        assert!(rig.send(&frame(4668, 1)));
        let held = rig.idle_pages + 2;
        assert_eq!(rig.pages.outstanding_pages(), held, "two pages mapped for the frame");
        let mut first_answered_alone = false;
        for _ in 0..6 {
            rig.turn();
            if rig.netback.counters().transmit_responses == 1 {
                first_answered_alone = true;
                assert_eq!(rig.pages.outstanding_pages(), held, "the buffer waits for the second slot's answer");
            }
        }
        assert!(first_answered_alone, "the backend answered the first slot a step before the second");
        assert_eq!(rig.netback.take_transmitted(), vec![frame(4668, 1)]);
        let dma = rig.netfront.dma_counters();
        assert_eq!(dma.unmap_refusals, 0, "nothing to refuse: the backend had let go of every page");
        assert_eq!(dma.deferred_pending, 0);
        assert_eq!(rig.pages.outstanding_pages(), rig.idle_pages, "both pages freed");
        assert_eq!(rig.netfront.counters().connects, 1, "no reconnect needed");
    });
}

/// Bounce mode with a jumbo MTU: a frame over a page is mapped for itself
/// and needs bounce pages beyond the pool's. With room for it, it goes out
/// byte for byte, and only its bytes are copied; with none, the frontend
/// says it cannot send (smoltcp keeps the data) instead of taking the
/// frame and dropping it.
#[test]
fn bounce_mode_sends_frames_over_a_page_or_says_it_cannot() {
    let options = NetbackOptions { mtu: Some(9000), ..NetbackOptions::default() };
    let roomy = BounceCapacity { read_only_pages: CONFIG.tx_buffers + 3, writable_pages: CONFIG.rx_buffers };
    with_each_backend(1024, BackendTrust::Untrusted(roomy), options.clone(), |rig| {
        let jumbo = frame(9014, 7);
        let before = rig.netfront.dma_counters().bounce_bytes;
        assert!(rig.send(&jumbo));
        assert_eq!(rig.netfront.dma_counters().bounce_bytes - before, 9014, "the frame's bytes, copied once");
        rig.settle();
        assert_eq!(rig.netback.take_transmitted(), vec![jumbo]);
        assert_eq!(rig.netfront.counters().tx_dropped, 0);
    });
    let pools_only = BounceCapacity { read_only_pages: CONFIG.tx_buffers, writable_pages: CONFIG.rx_buffers };
    with_each_backend(1024, BackendTrust::Untrusted(pools_only), options, |rig| {
        assert!(rig.netfront.transmit(smoltcp::time::Instant::ZERO).is_none(), "no token it could not honour");
        assert_eq!(rig.netfront.counters().tx_dropped, 0);
    });
}
