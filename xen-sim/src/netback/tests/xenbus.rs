//! The handshake, the backend state machine, teardown, flapping, detach and attach.

use super::*;

#[test]
fn creation_writes_the_toolstack_and_netback_nodes_and_waits_in_init_wait() {
    let xen = sim();
    let options = NetbackOptions { mtu: Some(1500), ..NetbackOptions::default() };
    let netback = SimNetback::new(&xen, options);
    let (frontend, backend) = ("/local/domain/1/device/vif/0", "/local/domain/0/backend/vif/1/0");
    assert_eq!((netback.frontend_path(), netback.backend_path()), (frontend, backend));
    let expected = [
        ("/local/domain/1/device/vif/0/backend", backend),
        ("/local/domain/1/device/vif/0/backend-id", "0"),
        ("/local/domain/1/device/vif/0/mac", "00:16:3e:00:00:01"),
        ("/local/domain/1/device/vif/0/state", "1"),
        ("/local/domain/1/device/vif/0/handle", "0"),
        ("/local/domain/1/device/vif/0/mtu", "1500"),
        ("/local/domain/0/backend/vif/1/0/frontend", frontend),
        ("/local/domain/0/backend/vif/1/0/frontend-id", "1"),
        ("/local/domain/0/backend/vif/1/0/state", "2"),
        ("/local/domain/0/backend/vif/1/0/feature-sg", "1"),
        ("/local/domain/0/backend/vif/1/0/feature-rx-copy", "1"),
        ("/local/domain/0/backend/vif/1/0/feature-gso-tcpv4", "1"),
        ("/local/domain/0/backend/vif/1/0/feature-split-event-channels", "1"),
        ("/local/domain/0/backend/vif/1/0/mac", "00:16:3e:00:00:01"),
    ];
    for (path, value) in expected {
        assert_eq!(read(&xen, path).as_deref(), Some(value), "{path}");
    }
    assert_eq!(netback.state(), XenbusState::InitWait);
}

#[test]
fn advertised_features_are_configurable() {
    let xen = sim();
    let features = AdvertisedFeatures { scatter_gather: false, gso_tcpv4: false, ..AdvertisedFeatures::default() };
    let options = NetbackOptions { device: 2, mac: [2, 0, 0, 0, 0, 9], features, ..NetbackOptions::default() };
    let netback = SimNetback::new(&xen, options);
    let backend = netback.backend_path();
    assert_eq!(backend, "/local/domain/0/backend/vif/1/2");
    assert_eq!(read(&xen, &std::format!("{backend}/feature-sg")).as_deref(), Some("0"));
    assert_eq!(read(&xen, &std::format!("{backend}/feature-gso-tcpv4")).as_deref(), Some("0"));
    assert_eq!(read(&xen, "/local/domain/1/device/vif/2/mac").as_deref(), Some("02:00:00:00:00:09"));
    assert_eq!(read(&xen, "/local/domain/1/device/vif/2/mtu"), None);
}

#[test]
fn handshake_reaches_connected_on_both_sides() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (netback, mut frontend) = connected(&xen, &events);
    assert_eq!(netback.state(), XenbusState::Connected);
    assert_eq!(frontend.backend_value("state").as_deref(), Some("4"));
    let features = netback.frontend_features().unwrap();
    assert_eq!(features.transmit_ring_reference, frontend.transmit_ring_reference);
    assert_eq!((features.transmit_port, features.receive_port), (frontend.port, frontend.port));
    assert!(features.receive_notify && features.scatter_gather && features.no_checksum_offload);
    assert!(!features.split_event_channels);
    assert!(xen.grants().is_mapped(frontend.transmit_ring_reference));
    assert!(xen.grants().is_mapped(frontend.receive_ring_reference));
    assert_eq!(frontend.revoke(frontend.transmit_ring_reference), Err(RevokeError::StillInUse));
    assert_eq!(netback.counters().connects, 1);
}

#[test]
fn missing_request_rx_copy_fails_the_connection_like_netback() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (netback, mut frontend) = connected_with(&xen, &events, NetbackOptions::default(), |keys| {
        keys.remove("request-rx-copy");
    });
    assert!(!netback.is_connected());
    assert_eq!(netback.state(), XenbusState::Closing);
    assert_eq!(frontend.backend_value("state").as_deref(), Some("5"));
    let error = read(&xen, "/local/domain/0/error/backend/vif/1/0/error").unwrap();
    assert_eq!(error, "95 reading /local/domain/1/device/vif/0/request-rx-copy");
    assert_eq!(netback.violations(Violation::ReceiveCopyNotRequested), 1);
    assert_eq!(netback.counters().connect_failures, 1);
    assert_eq!(frontend.revoke(frontend.transmit_ring_reference), Ok(()), "nothing stays mapped");
}

#[test]
fn every_bad_handshake_value_fails_the_connection() {
    let cases: [(&str, &str, Violation); 7] = [
        ("request-rx-copy", "0", Violation::ReceiveCopyNotRequested),
        ("tx-ring-ref", "7", Violation::BadRingReference),
        ("rx-ring-ref", "70000", Violation::BadRingReference),
        ("event-channel", "99", Violation::BadEventChannel),
        ("event-channel", "1", Violation::BadEventChannel),
        ("tx-ring-ref", "12x", Violation::MalformedKey),
        ("multi-queue-num-queues", "2", Violation::BadQueueCount),
    ];
    for (key, value, violation) in cases {
        let xen = sim();
        let events = EventChannels::new(&xen, xen.shared_info());
        let (netback, mut frontend) = connected_with(&xen, &events, NetbackOptions::default(), |keys| {
            keys.insert(key.to_string(), value.to_string());
        });
        assert_eq!(netback.state(), XenbusState::Closing, "{key} = {value}");
        assert_eq!(netback.violations(violation), 1, "{key} = {value}: {:?}", netback.errors());
        assert_eq!(xen.grants().active_mappings(), 0, "{key} = {value}");
        assert_eq!(frontend.backend_value("state").as_deref(), Some("5"));
    }
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (netback, _) = connected_with(&xen, &events, NetbackOptions::default(), |keys| {
        keys.remove("event-channel");
    });
    assert_eq!(netback.violations(Violation::MissingKey), 1);
}

#[test]
fn a_ring_whose_indices_are_more_than_a_ring_apart_is_refused() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let mut netback = SimNetback::new(&xen, NetbackOptions::default());
    let mut frontend = TestFrontend::new(&xen, &events);
    frontend.receive.set_word(frontend.memory(), 0, 300);
    frontend.connect();
    netback.step();
    assert_eq!(netback.violations(Violation::BadRingIndices), 1);
    assert_eq!(xen.grants().active_mappings(), 0);
}

#[test]
fn split_event_channels_carry_each_ring_s_notifications() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let receive_port = events.alloc_unbound(0).unwrap();
    let (mut netback, mut frontend) = connected_with(&xen, &events, NetbackOptions::default(), |keys| {
        let transmit_port = keys.remove("event-channel").unwrap();
        keys.insert("event-channel-tx".to_string(), transmit_port);
        keys.insert("event-channel-rx".to_string(), receive_port.to_string());
    });
    let features = netback.frontend_features().unwrap();
    assert!(features.split_event_channels);
    assert_eq!(features.receive_port, receive_port);
    frontend.post_receive_buffers(1);
    netback.inject(&frame(64, 8));
    netback.step();
    assert!(events.take_pending(receive_port) && !frontend.take_notification());
}

#[test]
fn initialised_connects_only_when_asked_to() {
    for (connect_on_initialised, expected) in [(false, XenbusState::InitWait), (true, XenbusState::Connected)] {
        let xen = sim();
        let events = EventChannels::new(&xen, xen.shared_info());
        let mut netback = SimNetback::new(&xen, NetbackOptions { connect_on_initialised, ..NetbackOptions::default() });
        let mut frontend = TestFrontend::new(&xen, &events);
        frontend.connect();
        frontend.set_state(XenbusState::Initialised);
        netback.step();
        assert_eq!(netback.state(), expected);
    }
}

#[test]
fn a_frontend_writing_a_state_frontends_never_write_closes_the_backend() {
    for bad in ["2", "7", "junk"] {
        let xen = sim();
        let events = EventChannels::new(&xen, xen.shared_info());
        let (mut netback, mut frontend) = connected(&xen, &events);
        frontend.store.write(&std::format!("{DEVICE}/state"), bad).unwrap();
        netback.step();
        assert_eq!(netback.state(), XenbusState::Closing, "{bad}");
        assert_eq!(netback.violations(Violation::BadFrontendState), 1);
        assert_eq!(xen.grants().active_mappings(), 0);
    }
}

#[test]
fn teardown_follows_the_frontend_and_a_new_handshake_works() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.misbehave(Hostility::Delay(10), Lasting::Always);
    frontend.send_frame(&frame(60, 1));
    netback.step();
    assert_eq!(netback.take_transmitted(), [frame(60, 1)], "delivered at once, answered later");
    assert_eq!(xen.grants().active_mappings(), 3, "two rings and a held transmit slot");
    frontend.set_state(XenbusState::Closing);
    netback.step();
    assert_eq!((netback.state(), xen.grants().active_mappings()), (XenbusState::Closing, 0));
    assert_eq!(frontend.revoke(frontend.transmit_grants[0]), Ok(()));
    frontend.set_state(XenbusState::Closed);
    netback.step();
    assert_eq!(frontend.backend_value("state").as_deref(), Some("6"));
    frontend.set_state(XenbusState::Initialising);
    netback.step();
    assert_eq!(netback.state(), XenbusState::InitWait);
    netback.behave();
    let mut again = TestFrontend::new(&xen, &events);
    again.connect();
    netback.step();
    assert!(netback.is_connected());
    again.send_frame(&frame(60, 2));
    netback.step();
    assert_eq!(netback.take_transmitted(), [frame(60, 2)]);
    assert_eq!((netback.counters().connects, netback.counters().disconnects), (2, 1));
}

#[test]
fn state_flapping_unmaps_and_the_backend_follows_the_frontend_again() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    for state in [XenbusState::Closing, XenbusState::Closed, XenbusState::InitWait] {
        netback.flap_state(state);
        assert_eq!(frontend.backend_value("state"), Some(state.number().to_string()));
        assert!(!netback.is_connected());
        assert_eq!(xen.grants().active_mappings(), 0, "leaving Connected unmaps everything");
    }
    assert_eq!(frontend.revoke(frontend.transmit_ring_reference), Ok(()));
    assert_eq!(frontend.revoke(frontend.receive_ring_reference), Ok(()));
    frontend.set_state(XenbusState::Closed);
    netback.step();
    frontend.set_state(XenbusState::Initialising);
    netback.step();
    assert_eq!(netback.state(), XenbusState::InitWait);
    let mut fresh = TestFrontend::new(&xen, &events);
    fresh.connect();
    netback.step();
    assert!(netback.is_connected());
    assert_eq!(netback.counters().state_flaps, 3);
}

#[test]
fn graceful_detach_waits_for_the_frontend_then_a_fresh_backend_attaches() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.detach(Detach::Graceful);
    assert_eq!(frontend.backend_value("state").as_deref(), Some("5"));
    assert_eq!(frontend.backend_value("online").as_deref(), Some("0"));
    netback.step();
    assert_eq!(netback.attachment(), Attachment::Detaching);
    frontend.set_state(XenbusState::Closing);
    netback.step();
    assert_eq!(xen.grants().active_mappings(), 0);
    frontend.set_state(XenbusState::Closed);
    netback.step();
    assert_eq!(netback.attachment(), Attachment::Detached);
    assert_eq!(read(&xen, netback.backend_path()), None);
    assert_eq!(read(&xen, netback.frontend_path()), None);
    netback.step();

    netback.attach_with(NetbackOptions { mac: [0, 0x16, 0x3e, 0, 0, 2], ..NetbackOptions::default() });
    assert_eq!(netback.state(), XenbusState::InitWait);
    let mut fresh = TestFrontend::new(&xen, &events);
    assert_eq!(fresh.store.read(&std::format!("{DEVICE}/mac")).unwrap(), "00:16:3e:00:00:02");
    fresh.connect();
    netback.step();
    assert!(netback.is_connected());
    fresh.send_frame(&frame(60, 1));
    netback.step();
    assert_eq!(netback.take_transmitted().len(), 1);
    let counters = netback.counters();
    assert_eq!((counters.detaches, counters.attaches, counters.connects), (1, 1, 2));
}

#[test]
fn forced_detach_removes_the_vif_at_once() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.detach(Detach::Forced);
    assert_eq!(netback.attachment(), Attachment::Detached);
    assert_eq!(xen.grants().active_mappings(), 0);
    assert_eq!(frontend.revoke(frontend.receive_ring_reference), Ok(()));
    assert_eq!(frontend.store.read(DEVICE), Err(xen_pv::xenstore::XenstoreError::NotFound));
    netback.attach();
    assert_eq!(read(&xen, "/local/domain/1/device/vif/0/state").as_deref(), Some("1"));
}

#[test]
fn a_feature_value_other_than_0_or_1_is_counted() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (netback, _frontend) = connected_with(&xen, &events, NetbackOptions::default(), |keys| {
        keys.insert("feature-sg".to_string(), "yes".to_string());
        keys.insert("feature-gso-tcpv4".to_string(), "2".to_string());
    });
    assert!(netback.is_connected());
    assert_eq!(netback.violations(Violation::BadFeatureValue), 2);
    let features = netback.frontend_features().unwrap();
    assert!(!features.scatter_gather && features.gso_tcpv4, "read as xenbus_read_unsigned does");
}

#[test]
fn dropping_the_backend_ends_its_mappings() {
    let xen = sim();
    let events = EventChannels::new(&xen, xen.shared_info());
    let (mut netback, mut frontend) = connected(&xen, &events);
    netback.misbehave(Hostility::Delay(5), Lasting::Always);
    frontend.send_frame(&frame(60, 1));
    netback.step();
    drop(netback);
    assert_eq!(xen.grants().active_mappings(), 0);
    assert_eq!(frontend.revoke(frontend.transmit_grants[0]), Ok(()));
}
