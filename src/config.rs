//! The command line (`extra = "..."` in xl.cfg), all of it, as the
//! appliance runs with it.
//!
//! [`Config::read`] takes every word once, in order, and either applies it
//! or notes one warning line about it (`word: what is wrong: using
//! key=value`, or `: ignored`, or `: the network stays down`):
//!
//! - an unknown word is ignored, with the closest known word when it looks
//!   like a typo (`prot=8080: unknown word (did you mean port?): ignored`);
//! - a word repeated later is ignored: the last one counts;
//! - a value that is not understood is replaced by the word's default, one
//!   out of range by the nearest value in range;
//! - conflicts are resolved in a fixed order: the TCP echo port (7) comes
//!   first, then `port=`, then `metrics-port=`; a port that is 0 or taken
//!   goes back to its default (for the metrics port, the first free port
//!   from 19100 up). Socket buffers come first: without `socket-buffer=`,
//!   a small heap's default ones halve (16K, 8K, 4K) until it holds 16
//!   slots (or the fewer `connections=` asks for). Slots come before the
//!   backlog: `connections=` beyond what the heap holds is cut to that,
//!   then `backlog=` to what fits beside them;
//! - `ip=` that is neither `dhcp` nor an address with a prefix length, or
//!   `gw=` that is not an address, keeps the network down (the appliance
//!   never guesses an address); `gw=` without a static `ip=` is ignored.
//!   The same for `ip6=` that is not an IPv6 address with a prefix length
//!   and `gw6=` that is not an IPv6 address (both unicast); `gw6=` alone
//!   is taken (a router for the addresses router advertisements bring).
//!
//! The kernel read its own words ([`KERNEL_WORDS`]) before the log existed:
//! the warnings about them come from here, with the kernel's own parsers, and
//! the values shown are the ones the kernel used ([`KernelSettings`]).
//!
//! Everything here is pure (no machine, no log) and total: any text gives a
//! configuration, never a panic.

use crate::{DEFAULT_HTTP_PORT, DEFAULT_METRICS_PORT, ECHO_PORT, MAX_CONNECTIONS, Settings, http, pool, server};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use kernel::cmdline::{self, CommandLine, KERNEL_WORDS, KernelSettings, Word};
use kernel::selftest::Selftest;
use runtime::netconfig::NetConfigError;
use runtime::{Ipv6Static, NetConfig};

/// The words the appliance reads (the kernel's are [`KERNEL_WORDS`]).
pub const APPLIANCE_WORDS: &[Word] = &[
    Word { key: "ip", form: "ip=dhcp|ADDR/LEN", help: "the address: by DHCP (default), or static (ip=10.0.0.2/24)" },
    Word { key: "gw", form: "gw=ADDR", help: "the default router, with a static ip=" },
    Word {
        key: "ip6",
        form: "ip6=ADDR/LEN",
        help: "a static IPv6 address (ip6=fd00::2/64), beside the link-local one and SLAAC's",
    },
    Word {
        key: "gw6",
        form: "gw6=ADDR",
        help: "the IPv6 default router (gw6=fe80::1; default: from router advertisements)",
    },
    Word { key: "port", form: "port=N", help: "the HTTP port (80)" },
    Word {
        key: "metrics-port",
        form: "metrics-port=N|off",
        help: "the Prometheus metrics port (19100); off: no metrics listener",
    },
    Word {
        key: "metrics-address",
        form: "metrics-address=ADDR",
        help: "metrics only to this address of the appliance (default: any)",
    },
    Word {
        key: "metrics-vif",
        form: "metrics-vif=N|main",
        help: "metrics, /healthz and /readyz on vif N alone (default: main, beside HTTP)",
    },
    Word { key: "connections", form: "connections=N", help: "HTTP connection slots (default: what the heap holds)" },
    Word {
        key: "backlog",
        form: "backlog=N",
        help: "spare sockets for handshakes and refusals (default: half the slots, at least 64)",
    },
    Word { key: "per-client", form: "per-client=N|off", help: "most connections one client address may hold (off)" },
    Word {
        key: "socket-buffer",
        form: "socket-buffer=SIZE",
        help: "each connection's socket buffer each way (16K, less in a small heap; 4K to 256K): more, faster bulk; fewer slots",
    },
    Word { key: "max-body", form: "max-body=SIZE|unlimited", help: "the largest request body (unlimited)" },
    Word {
        key: "min-rate",
        form: "min-rate=SIZE|off",
        help: "the slowest a body or response may move, bytes a second (1K; 0 or off: no floor)",
    },
    Word {
        key: "drain",
        form: "drain=SECONDS",
        help: "on xl shutdown or reboot, let connections in flight finish this long first (5; 0 to 60)",
    },
    Word { key: "untrusted-backend", form: "untrusted-backend", help: "bounce every network buffer (XSA-403)" },
    Word {
        key: "tx-large-segments",
        form: "tx-large-segments=on|off",
        help: "send TCP data to a backend that takes them as large segments (on)",
    },
    Word { key: "help", form: "help", help: "list these words at boot, then boot as the other words say" },
];

/// The words for one vif's own interface (`vif1.ip=10.89.0.2/24`): `N`
/// is its device number, up to [`MAX_VIF_NUMBER`].
pub const VIF_WORDS: &[Word] = &[
    Word { key: "ip", form: "vifN.ip=dhcp|ADDR/LEN", help: "vif N gets an interface of its own, with this address" },
    Word { key: "gw", form: "vifN.gw=ADDR", help: "its default router, with a static vifN.ip=" },
    Word { key: "ip6", form: "vifN.ip6=ADDR/LEN", help: "its static IPv6 address" },
    Word { key: "gw6", form: "vifN.gw6=ADDR", help: "its IPv6 default router" },
];

/// The highest vif device number the `vifN.` words and `metrics-vif=` take.
pub const MAX_VIF_NUMBER: u32 = 31;

/// The vif number and word of a `vifN.` key (`vif1.ip`: 1 and `ip`).
fn vif_word(key: &str) -> Option<(u32, &'static Word)> {
    let (vif, word) = key.strip_prefix("vif")?.split_once('.')?;
    let number = vif.parse::<u32>().ok().filter(|&number| number <= MAX_VIF_NUMBER && vif == number.to_string())?;
    Some((number, VIF_WORDS.iter().find(|known| known.key == word)?))
}

/// Every word the command line takes: the kernel's, then the appliance's.
pub fn known_words() -> impl Iterator<Item = &'static Word> + Clone {
    KERNEL_WORDS.iter().chain(APPLIANCE_WORDS)
}

/// The lines `help` logs: a heading, then one line per word.
pub fn help_lines() -> Vec<String> {
    let mut lines = Vec::new();
    lines.push(String::from(
        "help: the words extra= takes (a repeated key: the last counts; sizes: a number, or one with k, M or G):",
    ));
    lines.extend(known_words().chain(VIF_WORDS).map(|word| format!("help: {:<26} {}", word.form, word.help)));
    lines
}

/// The command line read: every setting as the appliance and the kernel
/// use it, and a warning line for every word not taken as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The kernel's words, as it read them at boot.
    pub kernel: KernelSettings,
    /// The heap the kernel made, in bytes.
    pub heap_bytes: usize,
    /// How the interface gets its address; `None`: the network stays down.
    pub net: Option<NetConfig>,
    /// `ip6=` and `gw6=`.
    pub ipv6: Ipv6Static,
    /// The vifs with an interface of their own (`vifN.` words, and
    /// `metrics-vif=`), by device number.
    pub vifs: Vec<runtime::VifConfig>,
    /// `untrusted-backend`.
    pub untrusted_backend: bool,
    /// `tx-large-segments` (on unless `=off`).
    pub tx_large_segments: bool,
    /// `selftest=`.
    pub selftest: Option<Selftest>,
    /// `help`.
    pub help: bool,
    /// `drain=`: how long connections in flight may finish when the domain
    /// is asked to end.
    pub drain: core::time::Duration,
    /// The HTTP and metrics services.
    pub settings: Settings,
    /// One line per word not taken as written, in the order of the words
    /// (then the conflicts).
    pub warnings: Vec<String>,
}

/// How a warning ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// `: using key=value`, the value in effect.
    Using(&'static str),
    /// `: ignored`.
    Ignored,
    /// `: the network stays down`.
    NetworkDown,
}

/// A word not taken as written.
struct Note {
    /// The key whose word in effect it is about (`None` for an unknown word
    /// or one repeated later), for the rule of one warning per word.
    key: Option<&'static str>,
    /// The word as shown (escaped, cut).
    word: String,
    /// What is wrong.
    problem: String,
    ending: Ending,
}

/// What the words ask, once each word's own text is checked.
#[derive(Default)]
struct Asked<'a> {
    ip: Option<&'a str>,
    gw: Option<&'a str>,
    ip6: Option<&'a str>,
    gw6: Option<&'a str>,
    port: Option<u16>,
    /// `Some(None)`: `metrics-port=off`.
    metrics_port: Option<Option<u16>>,
    metrics_address: Option<&'a str>,
    /// `Some(None)`: `metrics-vif=main`.
    metrics_vif: Option<Option<u32>>,
    /// The `vifN.` words, by vif (only `ip`, `gw`, `ip6` and `gw6` used).
    vifs: Vec<(u32, Asked<'a>)>,
    drain: Option<u64>,
    connections: Option<usize>,
    backlog: Option<usize>,
    per_client: Option<Option<usize>>,
    socket_bytes: Option<usize>,
    max_body: Option<Option<u64>>,
    min_rate: Option<u32>,
}

const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];
const SELFTESTS: &[&str] = &["panic", "pagefault"];
/// Longest word shown in a warning; the rest is cut (`...`).
const SHOWN_CHARS: usize = 48;

impl Config {
    /// Reads the command line `text` for a kernel that made a heap of
    /// `heap_bytes`.
    pub fn read(text: &str, heap_bytes: usize) -> Self {
        let line = CommandLine::new(text);
        let kernel = KernelSettings::read(&line);
        let mut notes = Vec::new();
        let mut asked = Asked::default();
        // The word each known key takes effect from: its last.
        let words: Vec<&str> = line.words().collect();
        let mut last: Vec<(&str, usize)> = Vec::new();
        for (index, word) in words.iter().enumerate() {
            let (key, _) = cmdline::split_word(word);
            match last.iter_mut().find(|(known, _)| *known == key) {
                Some(entry) => entry.1 = index,
                None if known_words().any(|known| known.key == key) || vif_word(key).is_some() => {
                    last.push((key, index))
                }
                None => {}
            }
        }
        for (index, &word) in words.iter().enumerate() {
            let (key, value) = cmdline::split_word(word);
            let effective = last.iter().find(|(name, _)| *name == key).map_or(index, |&(_, at)| at);
            if let Some((number, known)) = vif_word(key) {
                if effective != index {
                    let problem = format!("repeated later (the last one, {}, counts)", shown(words[effective]));
                    notes.push(Note { key: None, word: shown(word), problem, ending: Ending::Ignored });
                } else if value.is_none() {
                    let problem = format!("needs a value ({})", known.form);
                    notes.push(Note { key: None, word: shown(word), problem, ending: Ending::Ignored });
                } else {
                    let position = match asked.vifs.iter().position(|(vif, _)| *vif == number) {
                        Some(position) => position,
                        None => {
                            asked.vifs.push((number, Asked::default()));
                            asked.vifs.len() - 1
                        }
                    };
                    check_word(known, value, &mut asked.vifs[position].1);
                }
                continue;
            }
            let Some(known) = known_words().find(|known| known.key == key) else {
                let problem = match closest(key, known_words().map(|known| known.key)) {
                    Some(suggestion) => format!("unknown word (did you mean {suggestion}?)"),
                    None => String::from("unknown word (help lists the words)"),
                };
                notes.push(Note { key: None, word: shown(word), problem, ending: Ending::Ignored });
                continue;
            };
            if effective != index {
                let problem = format!("repeated later (the last one, {}, counts)", shown(words[effective]));
                notes.push(Note { key: None, word: shown(word), problem, ending: Ending::Ignored });
                continue;
            }
            if let Some((problem, ending)) = check_word(known, value, &mut asked) {
                notes.push(Note { key: Some(known.key), word: shown(word), problem, ending });
            }
        }

        let mut resolve = Resolver { notes, line: &line };
        let net = resolve.network(&asked);
        let ipv6 = resolve.ipv6(&asked);
        let vifs = resolve.vifs(&asked, &words);
        let net = net.filter(|_| ipv6.is_some() && vifs.is_some());
        let ipv6 = ipv6.unwrap_or_default();
        let mut settings = resolve.settings(&asked, heap_bytes);
        settings.metrics_address = resolve.metrics_address(&asked, settings.metrics_port, net);
        let mut vifs = vifs.unwrap_or_default();
        settings.metrics_vif = resolve.metrics_vif(&asked, settings.metrics_port, &mut vifs);
        if let Some(asked_heap) = kernel.heap_bytes
            && (heap_bytes as u64) < asked_heap
        {
            resolve.note("heap", String::from("more than the free memory"), Ending::Using("heap"));
        }
        let mut config = Config {
            kernel,
            heap_bytes,
            net,
            ipv6,
            vifs,
            untrusted_backend: line.flag("untrusted-backend").unwrap_or(false),
            tx_large_segments: line.flag("tx-large-segments").unwrap_or(true),
            selftest: Selftest::requested(&line).ok().flatten(),
            help: line.flag("help").unwrap_or(false),
            drain: asked.drain.map_or(runtime::DEFAULT_DRAIN, core::time::Duration::from_secs),
            settings,
            warnings: Vec::new(),
        };
        config.warnings = resolve
            .notes
            .iter()
            .map(|note| match note.ending {
                Ending::Using(key) => format!("{}: {}: using {key}={}", note.word, note.problem, config.value(key)),
                Ending::Ignored => format!("{}: {}: ignored", note.word, note.problem),
                Ending::NetworkDown => format!("{}: {}: the network stays down", note.word, note.problem),
            })
            .collect();
        config
    }

    /// The value in effect for `key`, as the command line would write it.
    pub fn value(&self, key: &str) -> String {
        let plan = &self.settings.http;
        let on_off = |on: bool| String::from(if on { "on" } else { "off" });
        match key {
            "loglevel" => cmdline::log_level_name(self.kernel.log_level).into(),
            "heap" => format_size(self.heap_bytes as u64),
            "debugport" => on_off(self.kernel.debug_port),
            "ticks" => self.kernel.ticks.to_string(),
            "selftest" => self.selftest.map_or("none", Selftest::name).into(),
            "ip" => match self.net {
                None => "none".into(),
                Some(NetConfig::Dhcp) => "dhcp".into(),
                Some(NetConfig::Static { address, .. }) => address.to_string(),
            },
            "gw" => match self.net {
                Some(NetConfig::Static { gateway: Some(gateway), .. }) => gateway.to_string(),
                _ => "none".into(),
            },
            "ip6" => self.ipv6.address.map_or("none".into(), |address| address.to_string()),
            "gw6" => self.ipv6.gateway.map_or("none".into(), |gateway| gateway.to_string()),
            "port" => plan.port.to_string(),
            "metrics-port" => self.settings.metrics_port.map_or("off".into(), |port| port.to_string()),
            "metrics-address" => self.settings.metrics_address.map_or("any".into(), |address| address.to_string()),
            "metrics-vif" => self.settings.metrics_vif.map_or("main".into(), |vif| vif.to_string()),
            "drain" => self.drain.as_secs().to_string(),
            "connections" => plan.connections.to_string(),
            "backlog" => plan.backlog.to_string(),
            "per-client" => plan.per_client.map_or("off".into(), |limit| limit.to_string()),
            "socket-buffer" => format_size(plan.socket_bytes as u64),
            "max-body" => plan.limits.max_body_bytes.map_or("unlimited".into(), format_size),
            "min-rate" => format_size(plan.limits.min_rate_bytes_per_second.into()),
            "untrusted-backend" => on_off(self.untrusted_backend),
            "tx-large-segments" => on_off(self.tx_large_segments),
            "help" => on_off(self.help),
            _ => "?".into(),
        }
    }

    /// The settings in effect as `key=value` lines for the log: the
    /// kernel's and the network's, then the services' (`ticks=` and
    /// `selftest=` only when asked).
    pub fn describe(&self) -> [String; 2] {
        let mut first = String::from("settings:");
        let mut keys = Vec::from(["loglevel", "heap", "debugport", "ip"]);
        if matches!(self.net, Some(NetConfig::Static { gateway: Some(_), .. })) {
            keys.push("gw");
        }
        if self.ipv6.address.is_some() {
            keys.push("ip6");
        }
        if self.ipv6.gateway.is_some() {
            keys.push("gw6");
        }
        keys.push("untrusted-backend");
        if !self.tx_large_segments {
            keys.push("tx-large-segments");
        }
        keys.push("drain");
        if self.kernel.ticks > 0 {
            keys.push("ticks");
        }
        if self.selftest.is_some() {
            keys.push("selftest");
        }
        for key in keys {
            first.push_str(&format!(" {key}={}", self.value(key)));
        }
        for vif in &self.vifs {
            let number = vif.number;
            match vif.net {
                NetConfig::Dhcp => first.push_str(&format!(" vif{number}.ip=dhcp")),
                NetConfig::Static { address, gateway } => {
                    first.push_str(&format!(" vif{number}.ip={address}"));
                    if let Some(gateway) = gateway {
                        first.push_str(&format!(" vif{number}.gw={gateway}"));
                    }
                }
            }
            if let Some(address) = vif.ipv6.address {
                first.push_str(&format!(" vif{number}.ip6={address}"));
            }
            if let Some(gateway) = vif.ipv6.gateway {
                first.push_str(&format!(" vif{number}.gw6={gateway}"));
            }
        }
        [first, format!("settings: {}", self.settings.describe())]
    }

    /// The network runtime's configuration; `None` keeps the network down.
    pub fn runtime_config(&self) -> Option<runtime::RuntimeConfig> {
        let net = self.net?;
        Some(runtime::RuntimeConfig {
            ipv6: self.ipv6,
            vifs: self.vifs.clone(),
            force_untrusted: self.untrusted_backend,
            drain: self.drain,
            netfront: runtime::NetfrontConfig { tx_large_segments: self.tx_large_segments, ..Default::default() },
            ..runtime::RuntimeConfig::new(net)
        })
    }

    /// Logs the help (if asked), the warnings, then the settings, under the
    /// appliance's name (`xenecho`, the target operators grep for), not this
    /// module's.
    pub fn log(&self) {
        if self.help {
            help_lines().iter().for_each(|line| log::info!(target: "xenecho", "{line}"));
        }
        self.warnings.iter().for_each(|warning| log::warn!(target: "xenecho", "{warning}"));
        self.describe().iter().for_each(|line| log::info!(target: "xenecho", "{line}"));
    }
}

/// Checks the word that takes effect for `word`'s key (its `value`: `None`
/// if bare), notes what it asks in `asked`, and says what is wrong with it.
fn check_word<'a>(word: &Word, value: Option<&'a str>, asked: &mut Asked<'a>) -> Option<(String, Ending)> {
    let key = word.key;
    let flag = matches!(key, "debugport" | "untrusted-backend" | "tx-large-segments" | "help");
    let Some(value) = value else {
        return (!flag).then(|| (format!("needs a value ({})", word.form), Ending::Using(key)));
    };
    let using = |problem: &str| Some((String::from(problem), Ending::Using(key)));
    let number = || cmdline::parse_number(value).map(|number| usize::try_from(number).unwrap_or(usize::MAX));
    match key {
        _ if flag => {
            cmdline::parse_flag(Some(value)).is_none().then(|| (String::from("not on or off"), Ending::Using(key)))
        }
        "loglevel" => match cmdline::parse_log_level(value) {
            Some(_) => None,
            None => using(&format!("not off, error, warn, info, debug or trace{}", suggestion(value, LOG_LEVELS))),
        },
        "heap" => match cmdline::parse_heap_request(value) {
            None => using("not a size (MiB, or a number with k, M or G)"),
            Some(bytes) if bytes < cmdline::MIN_HEAP_BYTES => using("at least 1M"),
            Some(bytes) if !bytes.is_multiple_of(cmdline::HEAP_GRAIN_BYTES) => using("not a whole number of 4K pages"),
            Some(_) => None,
        },
        "ticks" => match cmdline::parse_number(value) {
            None => using("not a number"),
            Some(ticks) if ticks > cmdline::MAX_TICKS => using("at most 3600"),
            Some(_) => None,
        },
        "selftest" => match Selftest::from_name(value) {
            Some(_) => None,
            None => using(&format!("not panic or pagefault{}", suggestion(value, SELFTESTS))),
        },
        "ip" => {
            asked.ip = Some(value);
            None
        }
        "gw" => {
            asked.gw = Some(value);
            None
        }
        "ip6" => {
            asked.ip6 = Some(value);
            None
        }
        "gw6" => {
            asked.gw6 = Some(value);
            None
        }
        "metrics-port" if value == "off" => {
            asked.metrics_port = Some(None);
            None
        }
        "port" | "metrics-port" => match cmdline::parse_number(value).and_then(|port| u16::try_from(port).ok()) {
            Some(port) if port > 0 => {
                if key == "port" {
                    asked.port = Some(port);
                } else {
                    asked.metrics_port = Some(Some(port));
                }
                None
            }
            _ if key == "metrics-port" => using("not a port number (1 to 65535) or off"),
            _ => using("not a port number (1 to 65535)"),
        },
        "metrics-vif" if value == "main" => {
            asked.metrics_vif = Some(None);
            None
        }
        "metrics-vif" => match cmdline::parse_number(value).and_then(|vif| u32::try_from(vif).ok()) {
            Some(vif) if vif <= MAX_VIF_NUMBER => {
                asked.metrics_vif = Some(Some(vif));
                None
            }
            _ => using(&format!("not a vif number (0 to {MAX_VIF_NUMBER}) or main")),
        },
        "metrics-address" => match value.parse::<smoltcp::wire::Ipv4Address>() {
            Ok(_) => {
                asked.metrics_address = Some(value);
                None
            }
            Err(_) => using("not an IPv4 address"),
        },
        "drain" => match cmdline::parse_number(value) {
            None => using("not a number of seconds (0 to 60)"),
            Some(seconds) if seconds > runtime::MAX_DRAIN.as_secs() => {
                asked.drain = Some(runtime::MAX_DRAIN.as_secs());
                using("at most 60")
            }
            Some(seconds) => {
                asked.drain = Some(seconds);
                None
            }
        },
        "connections" | "backlog" => {
            let slot = if key == "connections" { &mut asked.connections } else { &mut asked.backlog };
            match number() {
                None => using("not a number"),
                Some(0) => {
                    *slot = Some(1);
                    using("at least 1")
                }
                Some(count) => {
                    *slot = Some(count);
                    None
                }
            }
        }
        "per-client" => {
            asked.per_client =
                if value == "off" { Some(None) } else { number().map(|limit| (limit > 0).then_some(limit)) };
            if asked.per_client.is_some() { None } else { using("not a number or off") }
        }
        "socket-buffer" => {
            let (min, max) = (server::MIN_SOCKET_BYTES, server::MAX_SOCKET_BYTES);
            match cmdline::parse_size(value).map(|bytes| usize::try_from(bytes).unwrap_or(usize::MAX)) {
                None => using("not a size (bytes, or a number with k, M or G)"),
                Some(bytes) if bytes < min || bytes > max => {
                    asked.socket_bytes = Some(bytes.clamp(min, max));
                    using(&format!("from {} to {}", format_size(min as u64), format_size(max as u64)))
                }
                Some(bytes) => {
                    asked.socket_bytes = Some(bytes);
                    None
                }
            }
        }
        "max-body" => {
            asked.max_body = if value == "unlimited" { Some(None) } else { cmdline::parse_size(value).map(Some) };
            if asked.max_body.is_some() {
                None
            } else {
                using("not a size (bytes, or a number with k, M or G) or unlimited")
            }
        }
        "min-rate" => {
            let rate = if value == "off" { Some(0) } else { cmdline::parse_size(value) };
            asked.min_rate = rate.map(|rate| u32::try_from(rate).unwrap_or(u32::MAX));
            match rate {
                None => using("not a size (bytes a second, or a number with k, M or G) or off"),
                Some(rate) if rate > u64::from(u32::MAX) => using(&format!("at most {}", u32::MAX)),
                Some(_) => None,
            }
        }
        _ => None,
    }
}

/// The settings that depend on one another, and their conflicts.
struct Resolver<'l, 'a> {
    notes: Vec<Note>,
    line: &'l CommandLine<'a>,
}

impl Resolver<'_, '_> {
    /// Notes a conflict about `key`, unless its word has a warning already
    /// (one line per word). The word is the command line's, or, when the
    /// line does not have it, the default (`metrics-port=19100 (the default)`).
    fn note(&mut self, key: &'static str, problem: String, ending: Ending) {
        if self.notes.iter().any(|note| note.key == Some(key)) {
            return;
        }
        let word = match self.line.last(key) {
            Some((_, Some(value))) => shown(&format!("{key}={value}")),
            Some((_, None)) => String::from(key),
            None => format!("{key} (the default)"),
        };
        self.notes.push(Note { key: Some(key), word, problem, ending });
    }

    /// `ip=` and `gw=`.
    fn network(&mut self, asked: &Asked<'_>) -> Option<NetConfig> {
        match NetConfig::parse(asked.ip, asked.gw) {
            Ok(NetConfig::Dhcp) => {
                if asked.gw.is_some() {
                    self.note("gw", String::from("only used with a static ip="), Ending::Ignored);
                }
                Some(NetConfig::Dhcp)
            }
            Ok(config) => Some(config),
            Err(error) => {
                let (key, problem) = address_problem(error);
                self.note(key, problem, Ending::NetworkDown);
                None
            }
        }
    }

    /// `ip6=` and `gw6=`; `None`: a value that does not parse (the network
    /// stays down).
    fn ipv6(&mut self, asked: &Asked<'_>) -> Option<Ipv6Static> {
        match Ipv6Static::parse(asked.ip6, asked.gw6) {
            Ok(config) => Some(config),
            Err(error) => {
                let (key, problem) = address_problem(error);
                self.note(key, problem, Ending::NetworkDown);
                None
            }
        }
    }

    /// The services: ports, then slots and backlog in the heap.
    fn settings(&mut self, asked: &Asked<'_>, heap_bytes: usize) -> Settings {
        let port = match asked.port {
            Some(ECHO_PORT) => {
                self.note("port", format!("the TCP echo service has port {ECHO_PORT}"), Ending::Using("port"));
                DEFAULT_HTTP_PORT
            }
            Some(port) => port,
            None => DEFAULT_HTTP_PORT,
        };
        let taken = |candidate: u16| candidate == ECHO_PORT || candidate == port;
        let metrics_port = asked.metrics_port.unwrap_or(Some(DEFAULT_METRICS_PORT)).map(|wanted| {
            if !taken(wanted) {
                return wanted;
            }
            let holder = if wanted == ECHO_PORT { "the TCP echo service" } else { "HTTP" };
            self.note("metrics-port", format!("{holder} has port {wanted}"), Ending::Using("metrics-port"));
            (DEFAULT_METRICS_PORT..=u16::MAX).find(|&candidate| !taken(candidate)).unwrap_or(DEFAULT_METRICS_PORT)
        });

        let defaults = http::Limits::default();
        let limits = http::Limits {
            max_body_bytes: asked.max_body.unwrap_or(defaults.max_body_bytes),
            min_rate_bytes_per_second: asked.min_rate.unwrap_or(defaults.min_rate_bytes_per_second),
            ..defaults
        };
        let budget = crate::http_heap_budget(heap_bytes);
        // Slots come first: they are sized with the backlog they would
        // default to (or the one asked for, if smaller); the backlog then
        // gets what is left.
        let backlog_for = |connections| {
            let default = server::HttpPlan::default_backlog(connections);
            asked.backlog.map_or(default, |asked| asked.min(default))
        };
        // The socket buffers come before both: a small heap's default ones
        // shrink until its slots fit.
        let socket_bytes = asked
            .socket_bytes
            .unwrap_or_else(|| server::default_socket_bytes(budget, asked.connections, backlog_for, &limits));
        let fits =
            |connections, backlog| server::HttpPlan::heap_bytes(connections, backlog, socket_bytes, &limits) <= budget;
        let affordable = (1..=MAX_CONNECTIONS).take_while(|&count| fits(count, backlog_for(count))).last().unwrap_or(1);
        let connections = match asked.connections {
            Some(count) if count > affordable => {
                let problem = if count > MAX_CONNECTIONS && affordable == MAX_CONNECTIONS {
                    format!("at most {MAX_CONNECTIONS}")
                } else {
                    format!("does not fit in the heap left for HTTP ({} KiB)", budget / 1024)
                };
                self.note("connections", problem, Ending::Using("connections"));
                affordable
            }
            Some(count) => count,
            None => affordable,
        };
        let mut backlog = asked.backlog.unwrap_or_else(|| server::HttpPlan::default_backlog(connections));
        if !fits(connections, backlog) {
            // The largest backlog that fits (at least 1), by halving: a
            // huge `backlog=` must not take a huge loop.
            let (mut low, mut high) = (1, backlog);
            while high - low > 1 {
                let middle = low + (high - low) / 2;
                if fits(connections, middle) { low = middle } else { high = middle }
            }
            if low != backlog {
                let problem = format!("does not fit in the heap left for HTTP ({} KiB)", budget / 1024);
                self.note("backlog", problem, Ending::Using("backlog"));
            }
            backlog = low;
        }
        Settings {
            http: server::HttpPlan {
                port,
                connections,
                backlog,
                per_client: asked.per_client.unwrap_or(None),
                limits,
                bounds: pool::TcpBounds::default(),
                socket_bytes,
            },
            metrics_port,
            metrics_address: None,
            metrics_vif: None,
        }
    }

    /// The `vifN.` words, each vif's as `ip=` and friends are read; `None`:
    /// a value that does not parse (the network stays down). Vifs beyond
    /// [`runtime::MAX_NUMBERED_VIFS`] are ignored.
    fn vifs(&mut self, asked: &Asked<'_>, words: &[&str]) -> Option<Vec<runtime::VifConfig>> {
        let mut vifs = Vec::new();
        let mut down = false;
        let mut sorted: Vec<&(u32, Asked<'_>)> = asked.vifs.iter().collect();
        sorted.sort_by_key(|(number, _)| *number);
        for &(number, ref words_of) in sorted {
            let word = |sub: &str| {
                let key = format!("vif{number}.{sub}");
                words.iter().rev().find(|word| cmdline::split_word(word).0 == key).map_or(key, |word| shown(word))
            };
            let parsed = NetConfig::parse(words_of.ip, words_of.gw)
                .and_then(|net| Ipv6Static::parse(words_of.ip6, words_of.gw6).map(|ipv6| (net, ipv6)));
            let (net, ipv6) = match parsed {
                Ok(parsed) => parsed,
                Err(error) => {
                    let (sub, problem) = address_problem(error);
                    self.notes.push(Note { key: None, word: word(sub), problem, ending: Ending::NetworkDown });
                    down = true;
                    continue;
                }
            };
            if vifs.len() == runtime::MAX_NUMBERED_VIFS {
                let note = Note { key: None, word: word("ip"), problem: too_many_vifs(), ending: Ending::Ignored };
                self.notes.push(note);
                continue;
            }
            vifs.push(runtime::VifConfig { number, net, ipv6 });
        }
        (!down).then_some(vifs)
    }

    /// `metrics-vif=`, once the metrics port and the numbered vifs are
    /// known: ignored with the metrics off; otherwise the vif gets an
    /// interface of its own (by DHCP, unless its `vifN.` words say more).
    fn metrics_vif(
        &mut self,
        asked: &Asked<'_>,
        metrics_port: Option<u16>,
        vifs: &mut Vec<runtime::VifConfig>,
    ) -> Option<u32> {
        let vif = asked.metrics_vif.flatten()?;
        if metrics_port.is_none() {
            self.note("metrics-vif", String::from("the metrics are off (metrics-port=off)"), Ending::Ignored);
            return None;
        }
        if !vifs.iter().any(|numbered| numbered.number == vif) {
            if vifs.len() == runtime::MAX_NUMBERED_VIFS {
                self.note("metrics-vif", too_many_vifs(), Ending::Using("metrics-vif"));
                return None;
            }
            vifs.push(runtime::VifConfig::dhcp(vif));
            vifs.sort_by_key(|numbered| numbered.number);
        }
        Some(vif)
    }

    /// `metrics-address=`, once the metrics port and the network are
    /// known: ignored with the metrics off, and replaced by any address
    /// when it is not the static `ip=` (the listener would never answer).
    /// With DHCP the address is not known yet: it is taken as given.
    fn metrics_address(
        &mut self,
        asked: &Asked<'_>,
        metrics_port: Option<u16>,
        net: Option<NetConfig>,
    ) -> Option<smoltcp::wire::Ipv4Address> {
        let address: smoltcp::wire::Ipv4Address = asked.metrics_address?.parse().ok()?;
        if metrics_port.is_none() {
            self.note("metrics-address", String::from("the metrics are off (metrics-port=off)"), Ending::Ignored);
            return None;
        }
        match net {
            Some(NetConfig::Static { address: own, .. }) if own.address() != address => {
                let problem = format!("not the appliance's address ({})", own.address());
                self.note("metrics-address", problem, Ending::Using("metrics-address"));
                None
            }
            _ => Some(address),
        }
    }
}

/// The word (`ip`, `gw`, `ip6` or `gw6`, of an interface) whose value does
/// not parse, and what is wrong with it.
fn address_problem(error: NetConfigError<'_>) -> (&'static str, String) {
    match error {
        NetConfigError::BadAddress(text) => {
            ("ip", format!("not dhcp or ADDRESS/LEN (e.g. 10.0.0.2/24){}", suggestion(text, &["dhcp"])))
        }
        NetConfigError::BadGateway(_) => ("gw", String::from("not an IPv4 address")),
        NetConfigError::BadIpv6Address(_) => ("ip6", String::from("not a unicast IPv6 ADDRESS/LEN (e.g. fd00::2/64)")),
        NetConfigError::BadIpv6Gateway(_) => ("gw6", String::from("not a unicast IPv6 address")),
    }
}

/// Why a vif beyond [`runtime::MAX_NUMBERED_VIFS`] gets no interface.
fn too_many_vifs() -> String {
    format!("more than {} vifs with their own interface", runtime::MAX_NUMBERED_VIFS)
}

/// A size as the command line writes it: with the largest of `G`, `M` or
/// `K` that divides it, else in bytes.
pub fn format_size(bytes: u64) -> String {
    match bytes {
        0 => String::from("0"),
        _ if bytes.is_multiple_of(1 << 30) => format!("{}G", bytes >> 30),
        _ if bytes.is_multiple_of(1 << 20) => format!("{}M", bytes >> 20),
        _ if bytes.is_multiple_of(1 << 10) => format!("{}K", bytes >> 10),
        _ => bytes.to_string(),
    }
}

/// A word of the command line as a warning shows it: control and other
/// unprintable characters escaped, at most [`SHOWN_CHARS`] characters.
fn shown(word: &str) -> String {
    let mut text = String::new();
    for (count, character) in word.chars().enumerate() {
        if count == SHOWN_CHARS {
            text.push_str("...");
            break;
        }
        match character {
            ' '..='~' => text.push(character),
            other => text.extend(other.escape_debug()),
        }
    }
    text
}

/// ` (did you mean X?)` when `typed` looks like a typo of one of
/// `candidates`; nothing otherwise.
fn suggestion(typed: &str, candidates: &[&'static str]) -> String {
    closest(typed, candidates.iter().copied()).map_or(String::new(), |close| format!(" (did you mean {close}?)"))
}

/// The candidate `typed` is most likely a typo of: the nearest by edits
/// (letters inserted, deleted, changed or swapped; case ignored), at most
/// one edit away for a candidate of four letters or fewer and two for a
/// longer one; failing that, the first that one of them starts with (two
/// letters or more: `debug` for `debugport`).
fn closest<'w>(typed: &str, mut candidates: impl Iterator<Item = &'w str> + Clone) -> Option<&'w str> {
    // Longer words are not typos of these: compare no more than this.
    const LONGEST: usize = 40;
    let typed: Vec<u8> = typed.bytes().take(LONGEST + 1).map(|byte| byte.to_ascii_lowercase()).collect();
    if typed.is_empty() || typed.len() > LONGEST {
        return None;
    }
    let near = candidates
        .clone()
        .filter_map(|candidate| {
            let limit = if candidate.len() <= 4 { 1 } else { 2 };
            let distance = edit_distance(&typed, candidate.as_bytes());
            (distance <= limit).then_some((distance, candidate))
        })
        .min_by_key(|&(distance, _)| distance);
    if let Some((_, candidate)) = near {
        return Some(candidate);
    }
    candidates.find(|candidate| {
        let candidate = candidate.as_bytes();
        typed.len().min(candidate.len()) >= 2 && (candidate.starts_with(&typed) || typed.starts_with(candidate))
    })
}

/// Edits (insertions, deletions, changes, swaps of neighbours) from `from`
/// to `to`: the optimal string alignment distance.
fn edit_distance(from: &[u8], to: &[u8]) -> usize {
    let width = to.len() + 1;
    let mut rows = [Vec::from_iter(0..width), Vec::from_iter(0..width), Vec::from_iter(0..width)];
    for (row, &letter) in from.iter().enumerate().map(|(row, letter)| (row + 1, letter)) {
        let (older, rest) = rows.split_at_mut(1);
        let (previous, current) = rest.split_at_mut(1);
        let (two_back, previous, current) = (&older[0], &previous[0], &mut current[0]);
        current[0] = row;
        for column in 1..width {
            let change = usize::from(letter != to[column - 1]);
            let mut best = (previous[column] + 1).min(current[column - 1] + 1).min(previous[column - 1] + change);
            if row > 1 && column > 1 && letter == to[column - 2] && from[row - 2] == to[column - 1] {
                best = best.min(two_back[column - 2] + 1);
            }
            current[column] = best;
        }
        rows.rotate_left(1);
    }
    rows[1][width - 1]
}

#[cfg(test)]
mod tests;
