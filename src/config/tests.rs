use super::*;
use proptest::prelude::*;

const MIB: usize = 1 << 20;

fn read(line: &str) -> Config {
    Config::read(line, 64 * MIB)
}

/// The warnings `line` gives on a 64 MiB heap.
fn warnings(line: &str) -> Vec<String> {
    read(line).warnings
}

#[track_caller]
fn warns(line: &str, expected: &[&str]) {
    assert_eq!(warnings(line), expected, "{line:?}");
}

#[test]
fn the_defaults_say_nothing() {
    let config = read("");
    assert_eq!(config.warnings, Vec::<String>::new());
    assert_eq!(config.net, Some(NetConfig::Dhcp));
    assert!(!config.untrusted_backend && !config.help);
    assert_eq!(config.selftest, None);
    assert_eq!(config.settings.http.port, 80);
    assert_eq!(config.settings.metrics_port, Some(19100));
    assert_eq!(config.settings.metrics_address, None);
    assert_eq!(config.drain, runtime::DEFAULT_DRAIN);
    assert_eq!(config.settings.http.per_client, None);
    assert_eq!(config.settings.http.limits.max_body_bytes, None);
    assert_eq!(config.settings.http.limits.min_rate_bytes_per_second, 1024);
    assert_eq!(read("loglevel=info").warnings, Vec::<String>::new(), "xl.cfg's own line");
}

#[test]
fn unknown_words_are_ignored_with_the_likely_word() {
    warns("prot=8080", &["prot=8080: unknown word (did you mean port?): ignored"]);
    warns("max_body=10", &["max_body=10: unknown word (did you mean max-body?): ignored"]);
    warns("loglvl=debug", &["loglvl=debug: unknown word (did you mean loglevel?): ignored"]);
    warns("PORT=80", &["PORT=80: unknown word (did you mean port?): ignored"]);
    warns("connection=4", &["connection=4: unknown word (did you mean connections?): ignored"]);
    warns("debug", &["debug: unknown word (did you mean debugport?): ignored"]);
    warns("untrusted", &["untrusted: unknown word (did you mean untrusted-backend?): ignored"]);
    warns("quiet", &["quiet: unknown word (help lists the words): ignored"]);
    warns("=5", &["=5: unknown word (help lists the words): ignored"]);
    warns("x=\u{1b}[2J", &["x=\\u{1b}[2J: unknown word (help lists the words): ignored"]);
    let long = "z".repeat(100);
    warns(&long, &[&format!("{}...: unknown word (help lists the words): ignored", "z".repeat(48))]);
    assert_eq!(read("prot=8080").settings.http.port, 80, "an unknown word changes nothing");
}

#[test]
fn a_repeated_word_counts_once_the_last() {
    let config = read("port=8080 port=8081 debugport debugport=off");
    assert_eq!(
        config.warnings,
        [
            "port=8080: repeated later (the last one, port=8081, counts): ignored",
            "debugport: repeated later (the last one, debugport=off, counts): ignored",
        ]
    );
    assert_eq!(config.settings.http.port, 8081);
    assert!(!config.kernel.debug_port);
    warns(
        "port=80 port",
        &[
            "port=80: repeated later (the last one, port, counts): ignored",
            "port: needs a value (port=N): using port=80",
        ],
    );
    warns(
        "port=80 port=7",
        &[
            "port=80: repeated later (the last one, port=7, counts): ignored",
            "port=7: the TCP echo service has port 7: using port=80",
        ],
    );
}

#[test]
fn a_word_without_its_value_uses_the_default() {
    warns("loglevel", &["loglevel: needs a value (loglevel=off|error|warn|info|debug|trace): using loglevel=info"]);
    warns("max-body", &["max-body: needs a value (max-body=SIZE|unlimited): using max-body=unlimited"]);
    warns("ip", &["ip: needs a value (ip=dhcp|ADDR/LEN): using ip=dhcp"]);
    warns("gw", &["gw: needs a value (gw=ADDR): using gw=none"]);
    warns("selftest", &["selftest: needs a value (selftest=panic|pagefault): using selftest=none"]);
    warns("ticks", &["ticks: needs a value (ticks=N): using ticks=0"]);
    warns("heap", &["heap: needs a value (heap=SIZE): using heap=64M"]);
}

#[test]
fn flags_take_on_or_off() {
    let config = read("debugport=on untrusted-backend=yes help=0");
    assert_eq!(config.warnings, Vec::<String>::new());
    assert!(config.kernel.debug_port && config.untrusted_backend && !config.help);
    let config = read("debugport=maybe untrusted-backend= help=please");
    assert_eq!(
        config.warnings,
        [
            "debugport=maybe: not on or off: using debugport=on",
            "untrusted-backend=: not on or off: using untrusted-backend=on",
            "help=please: not on or off: using help=on",
        ]
    );
    assert!(config.kernel.debug_port && config.untrusted_backend && config.help, "the word is there");
}

#[test]
fn transmitted_large_segments_are_on_unless_turned_off() {
    let netfront = |line: &str| read(line).runtime_config().map(|config| config.netfront.tx_large_segments);
    assert_eq!(netfront(""), Some(true));
    assert_eq!(netfront("tx-large-segments=off"), Some(false));
    assert_eq!(netfront("tx-large-segments=off tx-large-segments"), Some(true), "the last word wins");
    let config = read("tx-large-segments=off");
    assert_eq!(config.warnings, Vec::<String>::new());
    assert!(config.describe()[0].contains(" tx-large-segments=off"), "{:?}", config.describe());
    assert_eq!(read("").value("tx-large-segments"), "on");
}

#[test]
fn the_kernel_words_are_checked_as_the_kernel_read_them() {
    warns("loglevel=loud", &["loglevel=loud: not off, error, warn, info, debug or trace: using loglevel=info"]);
    warns(
        "loglevel=warning",
        &["loglevel=warning: not off, error, warn, info, debug or trace (did you mean warn?): using loglevel=info"],
    );
    assert_eq!(read("loglevel=DEBUG").kernel.log_level, log::LevelFilter::Debug);
    warns("ticks=lots", &["ticks=lots: not a number: using ticks=0"]);
    warns("ticks=5000", &["ticks=5000: at most 3600: using ticks=3600"]);
    warns("selftest=boom", &["selftest=boom: not panic or pagefault: using selftest=none"]);
    warns("selftest=panik", &["selftest=panik: not panic or pagefault (did you mean panic?): using selftest=none"]);
    assert_eq!(read("selftest=pagefault").selftest, Some(Selftest::PageFault));
}

#[test]
fn heap_warnings_show_the_heap_the_kernel_made() {
    // The kernel made the heap from what it read; these are its sizes.
    let heap = |line: &str, made: usize| Config::read(line, made).warnings;
    assert_eq!(
        heap("heap=lots", 31 * MIB),
        ["heap=lots: not a size (MiB, or a number with k, M or G): using heap=31M"]
    );
    assert_eq!(heap("heap=512K", MIB), ["heap=512K: at least 1M: using heap=1M"]);
    assert_eq!(heap("heap=1025K", MIB), ["heap=1025K: not a whole number of 4K pages: using heap=1M"]);
    assert_eq!(heap("heap=100", 60 * MIB), ["heap=100: more than the free memory: using heap=60M"]);
    assert_eq!(heap("heap=100G", 60 * MIB + 4096), ["heap=100G: more than the free memory: using heap=61444K"]);
    assert_eq!(heap("heap=16", 16 * MIB), Vec::<String>::new());
    assert_eq!(heap("heap=1536K", 1536 * 1024), Vec::<String>::new());
    assert_eq!(Config::read("heap=8M", 8 * MIB).kernel.heap_bytes, Some(8 << 20));
}

#[test]
fn ports_conflict_in_a_fixed_order() {
    let ports = |line: &str| {
        let config = read(line);
        (config.settings.http.port, config.settings.metrics_port.unwrap_or(0), config.warnings)
    };
    assert_eq!(ports("port=8080 metrics-port=9200"), (8080, 9200, vec![]));
    assert_eq!(
        ports("port=http"),
        (80, 19100, vec!["port=http: not a port number (1 to 65535): using port=80".into()])
    );
    assert_eq!(ports("port=0"), (80, 19100, vec!["port=0: not a port number (1 to 65535): using port=80".into()]));
    assert_eq!(
        ports("port=65536"),
        (80, 19100, vec!["port=65536: not a port number (1 to 65535): using port=80".into()])
    );
    assert_eq!(ports("port=7"), (80, 19100, vec!["port=7: the TCP echo service has port 7: using port=80".into()]));
    assert_eq!(
        ports("port=8080 metrics-port=8080"),
        (8080, 19100, vec!["metrics-port=8080: HTTP has port 8080: using metrics-port=19100".into()])
    );
    assert_eq!(
        ports("metrics-port=7"),
        (80, 19100, vec!["metrics-port=7: the TCP echo service has port 7: using metrics-port=19100".into()])
    );
    assert_eq!(
        ports("metrics-port=80"),
        (80, 19100, vec!["metrics-port=80: HTTP has port 80: using metrics-port=19100".into()])
    );
    assert_eq!(
        ports("port=19100"),
        (19100, 19101, vec!["metrics-port (the default): HTTP has port 19100: using metrics-port=19101".into()])
    );
    assert_eq!(
        ports("port=19100 metrics-port=0"),
        (19100, 19101, vec!["metrics-port=0: not a port number (1 to 65535) or off: using metrics-port=19101".into()])
    );
}

#[test]
fn connections_are_clamped_to_what_the_heap_holds() {
    let settings = |line: &str, heap: usize| Config::read(line, heap).settings;
    let heap = 16 * MIB;
    let plan = settings("", heap).http;
    let budget = crate::http_heap_budget(heap);
    assert!(server::HttpPlan::heap_bytes(plan.connections, plan.backlog, plan.socket_bytes, &plan.limits) <= budget);
    let more = plan.connections + 1;
    let more_backlog = server::HttpPlan::default_backlog(more);
    assert!(server::HttpPlan::heap_bytes(more, more_backlog, plan.socket_bytes, &plan.limits) > budget);
    let clamped = Config::read("connections=100000", heap);
    assert_eq!(clamped.settings.http.connections, plan.connections, "clamped, not crashed");
    assert_eq!(
        clamped.warnings,
        [format!(
            "connections=100000: does not fit in the heap left for HTTP ({} KiB): using connections={}",
            budget / 1024,
            plan.connections
        )]
    );
    assert_eq!(settings("connections=10", heap).http.connections, 10);
    assert_eq!(settings("connections=10", heap).http.backlog, 10, "small pools: as many as the slots");
    assert_eq!(settings("connections=100", heap).http.backlog, 2 * runtime::budget::RX_FRAMES_PER_TURN);
    assert_eq!(settings("connections=200", 64 * MIB).http.backlog, 100);
    // 1 MiB leaves 219 KiB for HTTP (512 KiB, the SYN cookies' 164 KiB and
    // an eighth are kept): with 16K buffers, 2 slots (56 KiB each) and 2
    // spare sockets (32 KiB each).
    let small = settings("socket-buffer=16K", MIB).http;
    assert_eq!((small.connections, small.backlog), (2, 2));
    let squeezed = Config::read("socket-buffer=16K connections=5 backlog=40", MIB);
    assert_eq!(
        (squeezed.settings.http.connections, squeezed.settings.http.backlog),
        (2, 3),
        "both shrink to what fits"
    );
    assert_eq!(
        squeezed.warnings,
        [
            "connections=5: does not fit in the heap left for HTTP (219 KiB): using connections=2",
            "backlog=40: does not fit in the heap left for HTTP (219 KiB): using backlog=3",
        ]
    );
    // Without socket-buffer=, the buffers shrink first: 4K ones make room
    // for the 5 slots asked for (32 KiB each), and 7 spare sockets (8 KiB).
    let shrunk = Config::read("connections=5 backlog=40", MIB);
    let plan = shrunk.settings.http;
    assert_eq!((plan.connections, plan.backlog, plan.socket_bytes), (5, 7, 4096));
    assert_eq!(shrunk.warnings, ["backlog=40: does not fit in the heap left for HTTP (219 KiB): using backlog=7"]);
    let tiny = settings("connections=3 backlog=40", 256 * 1024).http;
    assert_eq!((tiny.connections, tiny.backlog), (1, 1), "never below one of each");
    let huge = Config::read("connections=5000", 1 << 30);
    assert_eq!(huge.settings.http.connections, MAX_CONNECTIONS);
    assert_eq!(huge.warnings, ["connections=5000: at most 1024: using connections=1024"]);
    let endless = Config::read("backlog=18446744073709551615", 16 * MIB);
    assert!(endless.settings.http.backlog < 1000, "a huge backlog is cut quickly");
}

/// The heap boot makes for an x86_64 PVH guest of `mib` MiB whose image
/// ends at `image_end` (`kernel::memory::pvh_layout`: the kernel's own
/// layout code, over the memory map libxl writes).
fn guest_heap(mib: u64, image_end: u64) -> usize {
    let layout = kernel::memory::pvh_layout(mib << 20, image_end, None).expect("a layout");
    (layout.heap.end - layout.heap.start) as usize
}

/// Where this commit's x86_64 image ends (`nm build/xenecho.elf`).
const IMAGE_END: u64 = 0x1b_e000;

/// The plan a guest of `mib` MiB gets by default: slots, backlog, socket
/// buffer.
fn guest_plan(mib: u64, image_end: u64) -> (usize, usize, usize) {
    let plan = Config::read("", guest_heap(mib, image_end)).settings.http;
    (plan.connections, plan.backlog, plan.socket_bytes)
}

#[test]
fn a_4_mb_guest_holds_16_slots_with_smaller_buffers_and_larger_guests_keep_16k() {
    // 4 MB: a 1660 KiB heap leaves 776 KiB for HTTP; 16K buffers would
    // hold 8 slots, 8K ones 13, 4K ones 19 (32 KiB each, and 8 KiB for
    // each spare socket).
    assert_eq!(guest_plan(4, IMAGE_END), (19, 19, 4096));
    // The largest image the checks let through still leaves 16.
    let (slots, backlog, _) = guest_plan(4, kernel::memory::PVH_IMAGE_END_BOUND);
    assert!(slots >= server::SMALL_HEAP_SLOTS && backlog >= slots, "{slots} slots, backlog {backlog}");
    // 8 MB and 64 MB keep 16K buffers, with more slots than before the
    // first MiB was released (24 and 377 then).
    assert_eq!(guest_plan(8, IMAGE_END), (29, 29, server::DEFAULT_SOCKET_BYTES));
    assert_eq!(guest_plan(64, IMAGE_END), (384, 192, server::DEFAULT_SOCKET_BYTES));
    let (slots, _, bytes) = guest_plan(8, kernel::memory::PVH_IMAGE_END_BOUND);
    assert!(slots >= 24 && bytes == server::DEFAULT_SOCKET_BYTES, "{slots} slots of {bytes}");
}

#[test]
fn a_small_heaps_buffers_shrink_only_as_far_as_its_slots_need() {
    let heap = guest_heap(4, IMAGE_END);
    let plan = |line: &str| {
        let config = Config::read(line, heap);
        assert_eq!(config.warnings, Vec::<String>::new(), "{line:?}");
        let plan = config.settings.http;
        (plan.connections, plan.socket_bytes)
    };
    assert_eq!(plan("socket-buffer=16K"), (8, 16 * 1024), "an explicit socket-buffer= wins");
    assert_eq!(plan("connections=4"), (4, 16 * 1024), "4 slots fit with 16K buffers");
    assert_eq!(plan("connections=10"), (10, 8 * 1024));
    let many = Config::read("connections=100", heap);
    assert_eq!((many.settings.http.connections, many.settings.http.socket_bytes), (19, 4096), "16 are made room for");
    assert_eq!(
        many.warnings,
        ["connections=100: does not fit in the heap left for HTTP (776 KiB): using connections=19"]
    );
    // Where 4K buffers hold fewer than 16 slots, they stay at 4K.
    assert_eq!(Config::read("", 600 * 1024).settings.http.socket_bytes, 4096);
    // The settings line says so, and reads back the same.
    let config = Config::read("", heap);
    let line = config.describe()[1].clone();
    assert!(line.ends_with(" min-rate=1K socket-buffer=4K"), "{line}");
    let again = Config::read(line.trim_start_matches("settings: "), heap);
    assert_eq!((again.settings, again.warnings), (config.settings, Vec::new()));
}

#[test]
fn counts_that_are_not_numbers_or_zero() {
    let config = read("connections=lots backlog=0 per-client=many");
    let http = config.settings.http;
    assert_eq!(
        config.warnings,
        [
            format!("connections=lots: not a number: using connections={}", http.connections),
            "backlog=0: at least 1: using backlog=1".into(),
            "per-client=many: not a number or off: using per-client=off".into(),
        ]
    );
    assert_eq!(http.backlog, 1);
    assert_eq!(http.connections, read("backlog=1").settings.http.connections, "the default slots");
    let zero = read("connections=0");
    assert_eq!(zero.warnings, ["connections=0: at least 1: using connections=1"]);
    assert_eq!(zero.settings.http.connections, 1);
    assert_eq!(read("per-client=0").settings.http.per_client, None);
    assert_eq!(read("per-client=off").settings.http.per_client, None);
    assert_eq!(read("per-client=3").settings.http.per_client, Some(3));
    assert!(read("per-client=0 per-client=off").warnings.len() == 1, "only the repeat");
}

#[test]
fn sizes_take_suffixes() {
    let limits = |line: &str| {
        let config = read(line);
        (
            config.settings.http.limits.max_body_bytes,
            config.settings.http.limits.min_rate_bytes_per_second,
            config.warnings,
        )
    };
    assert_eq!(limits("max-body=10M min-rate=2k"), (Some(10 << 20), 2048, vec![]));
    assert_eq!(limits("max-body=1000 min-rate=0"), (Some(1000), 0, vec![]));
    assert_eq!(limits("max-body=unlimited min-rate=off"), (None, 0, vec![]));
    assert_eq!(
        limits("max-body=10MB"),
        (
            None,
            1024,
            vec![
                "max-body=10MB: not a size (bytes, or a number with k, M or G) or unlimited: using max-body=unlimited"
                    .into()
            ]
        )
    );
    assert_eq!(
        limits("min-rate=fast"),
        (
            None,
            1024,
            vec![
                "min-rate=fast: not a size (bytes a second, or a number with k, M or G) or off: using min-rate=1K"
                    .into()
            ]
        )
    );
    assert_eq!(
        limits("min-rate=8G"),
        (None, u32::MAX, vec!["min-rate=8G: at most 4294967295: using min-rate=4294967295".into()])
    );
}

#[test]
fn addresses_never_guess() {
    use core::net::Ipv4Addr;
    use smoltcp::wire::Ipv4Cidr;
    let config = read("ip=10.0.0.2/24 gw=10.0.0.1");
    assert_eq!(
        config.net,
        Some(NetConfig::Static {
            address: Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, 2), 24),
            gateway: Some(Ipv4Addr::new(10, 0, 0, 1))
        })
    );
    assert_eq!(config.warnings, Vec::<String>::new());
    let down = read("ip=dhpc");
    assert_eq!(down.net, None);
    assert!(down.runtime_config().is_none());
    assert_eq!(
        down.warnings,
        ["ip=dhpc: not dhcp or ADDRESS/LEN (e.g. 10.0.0.2/24) (did you mean dhcp?): the network stays down"]
    );
    warns("ip=10.0.0.2", &["ip=10.0.0.2: not dhcp or ADDRESS/LEN (e.g. 10.0.0.2/24): the network stays down"]);
    warns("ip=10.0.0.2/24 gw=nowhere", &["gw=nowhere: not an IPv4 address: the network stays down"]);
    let dhcp = read("gw=10.0.0.1");
    assert_eq!(dhcp.net, Some(NetConfig::Dhcp));
    assert_eq!(dhcp.warnings, ["gw=10.0.0.1: only used with a static ip=: ignored"]);
    let untrusted = read("untrusted-backend").runtime_config().expect("a network");
    assert!(untrusted.force_untrusted);
}

#[test]
fn ipv6_words_are_read_and_bad_ones_keep_the_network_down() {
    use core::net::Ipv6Addr;
    use smoltcp::wire::Ipv6Cidr;
    let config = read("ip6=fd00:88::9/64 gw6=fe80::1");
    assert_eq!(config.warnings, Vec::<String>::new());
    assert_eq!(config.ipv6.address, Some(Ipv6Cidr::new(Ipv6Addr::new(0xfd00, 0x88, 0, 0, 0, 0, 0, 9), 64)));
    assert_eq!(config.ipv6.gateway, Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)));
    let runtime = config.runtime_config().expect("a network");
    assert_eq!(runtime.ipv6, config.ipv6);
    assert_eq!(runtime.net, NetConfig::Dhcp, "IPv4 as before");
    assert_eq!(
        config.describe()[0],
        "settings: loglevel=info heap=64M debugport=off ip=dhcp ip6=fd00:88::9/64 gw6=fe80::1 untrusted-backend=off drain=5"
    );
    // gw6= alone: a router for SLAAC's addresses.
    let router = read("gw6=2001:db8::1");
    assert_eq!((router.warnings.len(), router.ipv6.address, router.ipv6.gateway.is_some()), (0, None, true));
    for (line, warning) in [
        ("ip6=fd00::9", "ip6=fd00::9: not a unicast IPv6 ADDRESS/LEN (e.g. fd00::2/64): the network stays down"),
        (
            "ip6=10.0.0.2/24",
            "ip6=10.0.0.2/24: not a unicast IPv6 ADDRESS/LEN (e.g. fd00::2/64): the network stays down",
        ),
        ("ip6=ff02::1/64", "ip6=ff02::1/64: not a unicast IPv6 ADDRESS/LEN (e.g. fd00::2/64): the network stays down"),
        (
            "ip6=fd00::9/129",
            "ip6=fd00::9/129: not a unicast IPv6 ADDRESS/LEN (e.g. fd00::2/64): the network stays down",
        ),
        ("gw6=router", "gw6=router: not a unicast IPv6 address: the network stays down"),
        ("gw6=ff02::2", "gw6=ff02::2: not a unicast IPv6 address: the network stays down"),
    ] {
        let down = read(&format!("ip=10.0.0.2/24 {line}"));
        assert_eq!(down.warnings, [warning], "{line}");
        assert_eq!(down.net, None, "{line}");
        assert!(down.runtime_config().is_none(), "{line}");
    }
}

#[test]
fn the_settings_are_described_as_words_the_line_takes() {
    let config = Config::read(
        "ip=10.0.0.2/24 gw=10.0.0.1 connections=20 backlog=50 per-client=3 max-body=1000 min-rate=0 ticks=2",
        16 * MIB,
    );
    assert_eq!(
        config.describe(),
        [
            "settings: loglevel=info heap=16M debugport=off ip=10.0.0.2/24 gw=10.0.0.1 untrusted-backend=off drain=5 ticks=2",
            "settings: port=80 metrics-port=19100 connections=20 backlog=50 per-client=3 max-body=1000 min-rate=0",
        ]
    );
    let config = Config::read("loglevel=debug debugport max-body=10M connections=4 backlog=8", 20 * MIB + 8192);
    assert_eq!(
        config.describe(),
        [
            "settings: loglevel=debug heap=20488K debugport=on ip=dhcp untrusted-backend=off drain=5",
            "settings: port=80 metrics-port=19100 connections=4 backlog=8 per-client=off max-body=10M min-rate=1K",
        ]
    );
    assert_eq!(
        read("ip=junk selftest=panic").describe()[0],
        "settings: loglevel=info heap=64M debugport=off ip=none untrusted-backend=off drain=5 selftest=panic"
    );
}

#[test]
fn help_lists_every_word_once() {
    let lines = help_lines();
    assert_eq!(lines.len(), 1 + KERNEL_WORDS.len() + APPLIANCE_WORDS.len() + VIF_WORDS.len());
    assert!(lines.iter().all(|line| line.starts_with("help: ") && !line.contains('\n')));
    assert_eq!(lines[1], "help: loglevel=off|error|warn|info|debug|trace the log level (info)");
    assert!(lines.contains(&"help: max-body=SIZE|unlimited    the largest request body (unlimited)".to_string()));
    for word in known_words() {
        assert_eq!(lines.iter().filter(|line| line.contains(&format!(" {} ", word.form))).count(), 1, "{}", word.key);
    }
    let keys: Vec<&str> = known_words().map(|word| word.key).collect();
    for (index, key) in keys.iter().enumerate() {
        assert!(!keys[index + 1..].contains(key), "{key} listed twice");
    }
    let config = read("help port=8080");
    assert!(config.help);
    assert_eq!(config.settings.http.port, 8080, "the other words still count");
}

#[test]
fn suggestions_stay_close() {
    let keys = || known_words().map(|word| word.key);
    assert_eq!(closest("prot", keys()), Some("port"));
    assert_eq!(closest("metrics_port", keys()), Some("metrics-port"));
    assert_eq!(closest("id", keys()), Some("ip"));
    assert_eq!(closest("pi", keys()), Some("ip"), "a swap is one edit");
    assert_eq!(closest("xyz", keys()), None);
    assert_eq!(closest("a", keys()), None);
    assert_eq!(closest("", keys()), None);
    assert_eq!(closest(&"p".repeat(1000), keys()), None);
    assert_eq!(edit_distance(b"kitten", b"sitting"), 3);
    assert_eq!(edit_distance(b"", b"abc"), 3);
    assert_eq!(edit_distance(b"abc", b""), 3);
    assert_eq!(edit_distance(b"ab", b"ba"), 1);
}

#[test]
fn sizes_are_written_with_the_largest_suffix_that_fits() {
    assert_eq!(format_size(0), "0");
    assert_eq!(format_size(1000), "1000");
    assert_eq!(format_size(1024), "1K");
    assert_eq!(format_size(1536 * 1024), "1536K");
    assert_eq!(format_size(10 << 20), "10M");
    assert_eq!(format_size(2 << 30), "2G");
    for bytes in [0, 1, 1000, 1024, 4096, 10 << 20, 3 << 30, u64::MAX] {
        assert_eq!(cmdline::parse_size(&format_size(bytes)), Some(bytes));
    }
}

/// Words as an operator might write them, right or wrong.
fn word() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        proptest::sample::select(known_words().map(|word| word.key).collect::<Vec<_>>()).prop_map(String::from),
        "[a-z-]{1,12}",
    ];
    let value = prop_oneof![
        Just(None),
        "[0-9]{1,22}[kKmMgGB]?".prop_map(Some),
        proptest::sample::select(vec![
            "dhcp",
            "off",
            "on",
            "unlimited",
            "panic",
            "info",
            "10.0.0.2/24",
            "10.0.0.1",
            ""
        ])
        .prop_map(|value| Some(value.to_string())),
        "\\PC{0,12}".prop_map(Some),
    ];
    (key, value).prop_map(|(key, value)| match value {
        Some(value) => format!("{key}={value}"),
        None => key,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any text: no panic, every warning one line of bounded length, every
    /// unknown or repeated word warned about, values within their bounds.
    #[test]
    fn any_line_reads_without_a_panic(
        text in prop_oneof![
            proptest::collection::vec(word(), 0..12).prop_map(|words| words.join(" ")),
            "\\PC{0,200}",
            proptest::collection::vec(any::<u8>(), 0..200).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        ],
        heap in 0usize..(256 * MIB),
    ) {
        let config = Config::read(&text, heap);
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        for warning in &config.warnings {
            prop_assert!(!warning.contains('\n') && warning.len() < 400, "{warning:?}");
        }
        prop_assert!(config.warnings.len() <= words.len() + 4);
        for (index, word) in words.iter().enumerate() {
            let (key, _) = cmdline::split_word(word);
            let known = known_words().any(|known| known.key == key);
            let repeated = words[index + 1..].iter().any(|later| cmdline::split_word(later).0 == key);
            if !known || repeated {
                let start = format!("{}: ", shown(word));
                prop_assert!(config.warnings.iter().any(|warning| warning.starts_with(&start)), "{word:?} in {:?}", config.warnings);
            }
        }
        let http = config.settings.http;
        prop_assert!((1..=MAX_CONNECTIONS).contains(&http.connections));
        prop_assert!(http.backlog >= 1);
        prop_assert!(http.port != 0 && http.port != ECHO_PORT);
        if let Some(metrics_port) = config.settings.metrics_port {
            prop_assert!(metrics_port != 0 && metrics_port != ECHO_PORT);
            prop_assert!(metrics_port != http.port);
        }
        prop_assert!(config.drain <= runtime::MAX_DRAIN);
        prop_assert!(config.kernel.ticks <= cmdline::MAX_TICKS);
        prop_assert_eq!(config.kernel, KernelSettings::read(&CommandLine::new(&text)), "as the kernel read it");
    }

    /// What the settings line says reads back as the same settings, with
    /// no warning.
    #[test]
    fn the_settings_line_reads_back(
        port in 1u16..,
        connections in 1usize..40,
        backlog in 1usize..40,
        per_client in proptest::option::of(1usize..100),
        max_body in proptest::option::of(0u64..(1 << 40)),
        min_rate in any::<u32>(),
        level in 0usize..6,
        flags in any::<(bool, bool)>(),
    ) {
        let mut line = format!("port={port} connections={connections} backlog={backlog} min-rate={min_rate} loglevel={}", LOG_LEVELS[level]);
        if let Some(limit) = per_client { line.push_str(&format!(" per-client={limit}")); }
        if let Some(bytes) = max_body { line.push_str(&format!(" max-body={bytes}")); }
        if flags.0 { line.push_str(" debugport"); }
        if flags.1 { line.push_str(" ip=10.1.2.3/16 gw=10.1.0.1 ip6=fd00:1::3/64 gw6=fe80::1"); }
        let first = Config::read(&line, 64 * MIB);
        let again_line = first.describe().map(|text| text.trim_start_matches("settings:").to_string()).join(" ");
        let again = Config::read(&again_line, 64 * MIB);
        prop_assert_eq!(&again.warnings, &Vec::<String>::new(), "{}", again_line);
        prop_assert_eq!(again.settings, first.settings);
        prop_assert_eq!(again.net, first.net);
        prop_assert_eq!(again.ipv6, first.ipv6);
        prop_assert_eq!(again.kernel.log_level, first.kernel.log_level);
        prop_assert_eq!(again.kernel.debug_port, first.kernel.debug_port);
    }
}

/// The metrics listener can be turned off and bound to one address; the
/// drain is read in seconds, within its bound; each with its warning.
#[test]
fn metrics_words_and_the_drain() {
    let off = read("metrics-port=off");
    assert_eq!((off.settings.metrics_port, off.warnings.len()), (None, 0));
    assert_eq!(
        off.describe()[1],
        "settings: port=80 metrics-port=off connections=787 backlog=393 per-client=off max-body=unlimited min-rate=1K"
    );
    let bound = read("metrics-address=10.0.0.2 ip=10.0.0.2/24");
    assert_eq!(bound.settings.metrics_address, Some(smoltcp::wire::Ipv4Address::new(10, 0, 0, 2)));
    assert!(bound.describe()[1].starts_with("settings: port=80 metrics-port=19100 metrics-address=10.0.0.2 "));
    assert_eq!(bound.warnings, Vec::<String>::new());
    let dhcp = read("metrics-address=10.0.0.9");
    assert_eq!(dhcp.settings.metrics_address, Some(smoltcp::wire::Ipv4Address::new(10, 0, 0, 9)), "not known yet");
    warns(
        "metrics-address=10.0.0.9 ip=10.0.0.2/24",
        &["metrics-address=10.0.0.9: not the appliance's address (10.0.0.2): using metrics-address=any"],
    );
    warns("metrics-address=here", &["metrics-address=here: not an IPv4 address: using metrics-address=any"]);
    warns(
        "metrics-port=off metrics-address=10.0.0.2",
        &["metrics-address=10.0.0.2: the metrics are off (metrics-port=off): ignored"],
    );
    warns("metrics-port=of", &["metrics-port=of: not a port number (1 to 65535) or off: using metrics-port=19100"]);
    assert_eq!(read("drain=0").drain, core::time::Duration::ZERO);
    assert_eq!(read("drain=30").runtime_config().expect("a network").drain, core::time::Duration::from_secs(30));
    let long = read("drain=600");
    assert_eq!(
        (long.drain.as_secs(), long.warnings.as_slice()),
        (60, &["drain=600: at most 60: using drain=60".to_string()][..])
    );
    warns("drain=5s", &["drain=5s: not a number of seconds (0 to 60): using drain=5"]);
}

/// xl.cfg's comments and README's table name every word.
#[test]
fn every_word_is_documented() {
    let xl_cfg = include_str!("../../xl.cfg");
    let readme = include_str!("../../README.md");
    let table: Vec<&str> = readme.lines().filter(|line| line.starts_with("| `")).collect();
    for word in known_words() {
        let key = word.key;
        let listed = |line: &str| {
            let rest = line.strip_prefix("#   ").and_then(|rest| rest.strip_prefix(key));
            rest.is_some_and(|rest| rest.starts_with('=') || rest.starts_with(' '))
        };
        assert!(xl_cfg.lines().any(listed), "xl.cfg lists {key}");
        assert!(
            table.iter().any(|row| row.contains(&format!("`{key}=")) || row.contains(&format!("`{key}`"))),
            "README.md's table lists {key}"
        );
    }
}

/// The end-to-end check's guest (tests/e2e/check-11-config.sh) on a 64 MB
/// guest's heap: what it expects, line for line.
#[test]
fn the_end_to_end_guest_line() {
    let config = Config::read(
        "loglevl=debug max-body=10MB loglevel=loud per-client=lots port=8080 metrics-port=8080 connections=0 \
         min-rate=fast max-body=2K",
        31 * MIB,
    );
    assert_eq!(
        config.warnings,
        [
            "loglevl=debug: unknown word (did you mean loglevel?): ignored",
            "max-body=10MB: repeated later (the last one, max-body=2K, counts): ignored",
            "loglevel=loud: not off, error, warn, info, debug or trace: using loglevel=info",
            "per-client=lots: not a number or off: using per-client=off",
            "connections=0: at least 1: using connections=1",
            "min-rate=fast: not a size (bytes a second, or a number with k, M or G) or off: using min-rate=1K",
            "metrics-port=8080: HTTP has port 8080: using metrics-port=19100",
        ]
    );
    assert_eq!(
        config.describe()[1],
        "settings: port=8080 metrics-port=19100 connections=1 backlog=1 per-client=off max-body=2K min-rate=1K"
    );
    assert_eq!(help_lines().len(), 28, "the check counts 28 help lines");
}

#[test]
fn vif_words_give_vifs_their_own_interfaces() {
    let config = read("metrics-vif=1 vif1.ip=10.89.0.2/24 vif1.gw=10.89.0.1 vif2.ip6=fd00:89::5/64 ip=dhcp");
    assert_eq!(config.warnings, Vec::<String>::new());
    let static1 = NetConfig::parse(Some("10.89.0.2/24"), Some("10.89.0.1")).unwrap();
    let ipv6_2 = Ipv6Static::parse(Some("fd00:89::5/64"), None).unwrap();
    assert_eq!(
        config.vifs,
        [
            runtime::VifConfig { number: 1, net: static1, ipv6: Ipv6Static::default() },
            runtime::VifConfig { number: 2, net: NetConfig::Dhcp, ipv6: ipv6_2 },
        ]
    );
    assert_eq!(config.settings.metrics_vif, Some(1));
    assert_eq!(config.net, Some(NetConfig::Dhcp), "ip= is the main interface's");
    assert_eq!(config.runtime_config().unwrap().vifs, config.vifs);
    let [first, second] = config.describe();
    assert!(first.ends_with(" vif1.ip=10.89.0.2/24 vif1.gw=10.89.0.1 vif2.ip=dhcp vif2.ip6=fd00:89::5/64"), "{first}");
    assert!(second.contains(" metrics-vif=1 "), "{second}");
    // The lines pasted back give the same settings.
    let again = read(&format!("{} {}", &first["settings: ".len()..], &second["settings: ".len()..]));
    assert_eq!((again.vifs, again.settings.metrics_vif), (config.vifs, Some(1)));
}

#[test]
fn metrics_vif_alone_asks_its_vif_for_a_lease() {
    let config = read("metrics-vif=3");
    assert_eq!(config.vifs, [runtime::VifConfig::dhcp(3)]);
    assert_eq!(config.settings.metrics_vif, Some(3));
    assert_eq!(read("metrics-vif=main").settings.metrics_vif, None);
    let off = read("metrics-port=off metrics-vif=1");
    assert_eq!((off.settings.metrics_vif, off.vifs.len()), (None, 0));
    assert_eq!(off.warnings, ["metrics-vif=1: the metrics are off (metrics-port=off): ignored"]);
}

#[test]
fn bad_vif_words_are_said_and_keep_the_network_down() {
    let bad = read("vif1.ip=junk");
    assert_eq!(bad.net, None);
    assert_eq!(bad.warnings, ["vif1.ip=junk: not dhcp or ADDRESS/LEN (e.g. 10.0.0.2/24): the network stays down"]);
    assert_eq!(read("vif2.gw6=ff02::1").net, None);
    assert_eq!(
        warnings("metrics-vif=99 vif40.ip=dhcp vif1.ip vif01.ip=dhcp vif1.ip=dhcp vif1.ip=10.89.0.2/24"),
        [
            "metrics-vif=99: not a vif number (0 to 31) or main: using metrics-vif=main",
            "vif40.ip=dhcp: unknown word (help lists the words): ignored",
            "vif1.ip: repeated later (the last one, vif1.ip=10.89.0.2/24, counts): ignored",
            "vif01.ip=dhcp: unknown word (help lists the words): ignored",
            "vif1.ip=dhcp: repeated later (the last one, vif1.ip=10.89.0.2/24, counts): ignored",
        ]
    );
    let many: Vec<String> = (1..=8).map(|vif| format!("vif{vif}.ip=dhcp")).collect();
    let config = read(&many.join(" "));
    assert_eq!(config.vifs.len(), runtime::MAX_NUMBERED_VIFS);
    assert_eq!(config.warnings, ["vif8.ip=dhcp: more than 7 vifs with their own interface: ignored"]);
}

#[test]
fn the_socket_buffer_sizes_the_slots() {
    let default = read("");
    assert_eq!(default.settings.http.socket_bytes, server::DEFAULT_SOCKET_BYTES);
    let large = read("socket-buffer=64K");
    assert_eq!(large.warnings, Vec::<String>::new());
    assert_eq!(large.settings.http.socket_bytes, 64 * 1024);
    assert!(large.settings.http.connections < default.settings.http.connections, "fewer slots fit");
    assert!(large.describe()[1].ends_with(" min-rate=1K socket-buffer=64K"), "{}", large.describe()[1]);
    assert_eq!(warnings("socket-buffer=1K"), ["socket-buffer=1K: from 4K to 256K: using socket-buffer=4K"]);
    assert_eq!(warnings("socket-buffer=1G"), ["socket-buffer=1G: from 4K to 256K: using socket-buffer=256K"]);
    assert_eq!(
        warnings("socket-buffer=big"),
        ["socket-buffer=big: not a size (bytes, or a number with k, M or G): using socket-buffer=16K"]
    );
}
