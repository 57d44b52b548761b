//! The kernel command line: space-separated words, `key=value` or bare flags.
//!
//! On Xen it is the `extra = "..."` of the domain's `xl.cfg`. The kernel
//! reads its own words ([`KERNEL_WORDS`], into [`KernelSettings`]) before
//! anything else runs, without allocating and without logging; the
//! appliance reads the whole line again once the heap and the log exist,
//! applies its own words and warns about every word that is unknown or
//! malformed, the kernel's included (with the value parsers here, so both
//! agree). When a key appears twice, the last one wins, as in Linux.
//!
//! Values:
//! - a number is decimal digits only (no sign);
//! - a size ([`parse_size`]) is a number of bytes, or a number followed by
//!   `k`/`K` (KiB), `m`/`M` (MiB) or `g`/`G` (GiB), as Linux's `memparse`;
//! - a flag ([`parse_flag`]) is on when the word is there bare, and takes
//!   `on`/`yes`/`1`/`true` or `off`/`no`/`0`/`false` as a value.

/// A word the command line takes, for `help` and for spotting typos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    /// The key (`loglevel`), or the whole word of a flag (`debugport`).
    pub key: &'static str,
    /// How it is written (`loglevel=off|error|warn|info|debug|trace`).
    pub form: &'static str,
    /// What it does, and its default, in a few words.
    pub help: &'static str,
}

/// The words the kernel reads.
pub const KERNEL_WORDS: &[Word] = &[
    Word { key: "loglevel", form: "loglevel=off|error|warn|info|debug|trace", help: "the log level (info)" },
    Word {
        key: "heap",
        form: "heap=SIZE",
        help: "heap size; a bare number is MiB (default: half the free memory; at least 1M)",
    },
    Word {
        key: "debugport",
        form: "debugport",
        help: "mirror the log to Xen's serial: port 0xe9 (x86_64), the vuart (ARM64)",
    },
    Word { key: "ticks", form: "ticks=N", help: "log N timer ticks a second apart, at most 3600 (a clock check)" },
    Word { key: "selftest", form: "selftest=panic|pagefault", help: "crash on purpose (for the tests)" },
];

/// The log level when `loglevel=` does not name one.
pub const DEFAULT_LOG_LEVEL: log::LevelFilter = log::LevelFilter::Info;
/// The smallest heap `heap=` may ask for.
pub const MIN_HEAP_BYTES: u64 = 1 << 20;
/// The heap is a whole number of these.
pub const HEAP_GRAIN_BYTES: u64 = 4096;
/// The most `ticks=` logs.
pub const MAX_TICKS: u64 = 3600;

/// What the kernel takes from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSettings {
    /// `loglevel=`, or [`DEFAULT_LOG_LEVEL`] when it names no level.
    pub log_level: log::LevelFilter,
    /// `heap=`, in bytes ([`heap_bytes_for`] of what it asks); `None`:
    /// not given or not a size, the kernel's default share.
    pub heap_bytes: Option<u64>,
    /// `debugport`: mirror the log to the debug port.
    pub debug_port: bool,
    /// `ticks=`, at most [`MAX_TICKS`]; 0 when not given or not a number.
    pub ticks: u64,
}

impl KernelSettings {
    /// Reads the kernel's words (allocates nothing, logs nothing).
    pub fn read(line: &CommandLine<'_>) -> Self {
        Self {
            log_level: line.get("loglevel").and_then(parse_log_level).unwrap_or(DEFAULT_LOG_LEVEL),
            heap_bytes: line.get("heap").and_then(parse_heap_request).map(heap_bytes_for),
            debug_port: line.flag("debugport").unwrap_or(false),
            ticks: line.get("ticks").and_then(parse_number).map_or(0, |ticks| ticks.min(MAX_TICKS)),
        }
    }
}

/// A borrowed view of the command line with typed look-ups.
#[derive(Debug, Clone, Copy)]
pub struct CommandLine<'a> {
    text: &'a str,
}

impl<'a> CommandLine<'a> {
    /// Wraps the raw text (already stripped of its terminating zero).
    pub const fn new(text: &'a str) -> Self {
        Self { text }
    }

    /// The whole command line as given.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Every word, in order.
    pub fn words(&self) -> impl Iterator<Item = &'a str> {
        self.text.split_ascii_whitespace()
    }

    /// The last word whose key is `key` (`key` bare or `key=value`), split
    /// into its key and its value (`None` for a bare word).
    pub fn last(&self, key: &str) -> Option<(&'a str, Option<&'a str>)> {
        self.words().map(split_word).filter(|(name, _)| *name == key).last()
    }

    /// The value of the last word for `key`; `None` when there is none or
    /// it is bare.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.last(key)?.1
    }

    /// Whether `key` appears as a bare word (`debug`) or as `key=value`.
    pub fn has(&self, key: &str) -> bool {
        self.last(key).is_some()
    }

    /// The flag `key` as its last word says ([`parse_flag`]): `None` when
    /// it is absent; a value that is neither on nor off counts as on (the
    /// word is there).
    pub fn flag(&self, key: &str) -> Option<bool> {
        let (_, value) = self.last(key)?;
        Some(parse_flag(value).unwrap_or(true))
    }

    /// The log level asked for with `loglevel=`, if it names one.
    pub fn log_level(&self) -> Option<log::LevelFilter> {
        self.get("loglevel").and_then(parse_log_level)
    }
}

/// A word as its key and its value (`None` for a bare word).
pub fn split_word(word: &str) -> (&str, Option<&str>) {
    match word.split_once('=') {
        Some((key, value)) => (key, Some(value)),
        None => (word, None),
    }
}

/// A number: decimal digits only, no sign, no suffix.
pub fn parse_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A size in bytes: a number, or a number followed by `k`/`K`, `m`/`M` or
/// `g`/`G` (times 1024, 1024² or 1024³). `None` if it is not one or does
/// not fit in 64 bits.
pub fn parse_size(text: &str) -> Option<u64> {
    let shift = match text.as_bytes().last()? {
        b'k' | b'K' => 10,
        b'm' | b'M' => 20,
        b'g' | b'G' => 30,
        _ => return parse_number(text),
    };
    // The suffix is one ASCII byte: the slice ends on a character boundary.
    parse_number(&text[..text.len() - 1])?.checked_mul(1 << shift)
}

/// A flag's value: a bare word (`None`) and `on`, `yes`, `1`, `true` are
/// on; `off`, `no`, `0`, `false` are off; anything else is not a flag value.
pub fn parse_flag(value: Option<&str>) -> Option<bool> {
    match value {
        None | Some("on" | "yes" | "1" | "true") => Some(true),
        Some("off" | "no" | "0" | "false") => Some(false),
        Some(_) => None,
    }
}

/// A log level by name (`off`, `error`, `warn`, `info`, `debug`, `trace`;
/// any case).
pub fn parse_log_level(text: &str) -> Option<log::LevelFilter> {
    text.parse().ok()
}

/// The name `loglevel=` takes for `level`.
pub fn log_level_name(level: log::LevelFilter) -> &'static str {
    match level {
        log::LevelFilter::Off => "off",
        log::LevelFilter::Error => "error",
        log::LevelFilter::Warn => "warn",
        log::LevelFilter::Info => "info",
        log::LevelFilter::Debug => "debug",
        log::LevelFilter::Trace => "trace",
    }
}

/// The bytes `heap=` asks for, before [`heap_bytes_for`]: a bare number is
/// MiB, anything else a size ([`parse_size`]). `None` if it is neither.
pub fn parse_heap_request(text: &str) -> Option<u64> {
    match parse_number(text) {
        Some(mib) => mib.checked_mul(1 << 20),
        None => parse_size(text),
    }
}

/// The heap the kernel makes for a request of `bytes`: at least
/// [`MIN_HEAP_BYTES`], rounded down to whole [`HEAP_GRAIN_BYTES`] (and at
/// most the free memory, which only the kernel knows).
pub fn heap_bytes_for(bytes: u64) -> u64 {
    bytes.max(MIN_HEAP_BYTES) / HEAP_GRAIN_BYTES * HEAP_GRAIN_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_values_and_flags() {
        let line = CommandLine::new("  ip=10.0.0.2/24 selftest=panic quiet ip=10.0.0.3/24 ");
        assert_eq!(line.get("ip"), Some("10.0.0.3/24"));
        assert_eq!(line.get("selftest"), Some("panic"));
        assert_eq!(line.get("quiet"), None);
        assert!(line.has("quiet"));
        assert!(line.has("ip"));
        assert!(!line.has("i"));
        assert_eq!(line.words().count(), 4);
    }

    #[test]
    fn the_last_word_for_a_key_counts_bare_or_not() {
        let line = CommandLine::new("port=80 port debugport=off debugport");
        assert_eq!(line.last("port"), Some(("port", None)));
        assert_eq!(line.get("port"), None, "a bare last word has no value");
        assert_eq!(line.flag("debugport"), Some(true));
        assert_eq!(CommandLine::new("debugport debugport=off").flag("debugport"), Some(false));
        assert_eq!(CommandLine::new("debugport=maybe").flag("debugport"), Some(true), "the word is there");
        assert_eq!(CommandLine::new("").flag("debugport"), None);
    }

    #[test]
    fn value_may_contain_equals_signs() {
        let line = CommandLine::new("opt=a=b");
        assert_eq!(line.get("opt"), Some("a=b"));
        assert_eq!(split_word("=5"), ("", Some("5")));
    }

    #[test]
    fn parses_log_levels() {
        assert_eq!(CommandLine::new("loglevel=debug").log_level(), Some(log::LevelFilter::Debug));
        assert_eq!(CommandLine::new("loglevel=WARN").log_level(), Some(log::LevelFilter::Warn));
        assert_eq!(CommandLine::new("loglevel=loud").log_level(), None);
        assert_eq!(CommandLine::new("").log_level(), None);
        for level in log::LevelFilter::iter() {
            assert_eq!(parse_log_level(log_level_name(level)), Some(level));
        }
    }

    #[test]
    fn parses_numbers_and_sizes() {
        assert_eq!(parse_number("1024"), Some(1024));
        for junk in ["", "+1", "-1", "1.5", "0x10", "1k", " 1", "99999999999999999999"] {
            assert_eq!(parse_number(junk), None, "{junk:?}");
        }
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("2k"), Some(2048));
        assert_eq!(parse_size("2K"), Some(2048));
        assert_eq!(parse_size("10M"), Some(10 << 20));
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("0K"), Some(0));
        for junk in ["", "K", "10MB", "10 M", "1.5M", "M10", "-1K", "17179869184G", "é"] {
            assert_eq!(parse_size(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn parses_flags() {
        assert_eq!(parse_flag(None), Some(true));
        for on in ["on", "yes", "1", "true"] {
            assert_eq!(parse_flag(Some(on)), Some(true));
        }
        for off in ["off", "no", "0", "false"] {
            assert_eq!(parse_flag(Some(off)), Some(false));
        }
        assert_eq!(parse_flag(Some("")), None);
        assert_eq!(parse_flag(Some("ON")), None);
    }

    #[test]
    fn heap_requests_are_mib_or_sizes_rounded_to_pages() {
        assert_eq!(parse_heap_request("16"), Some(16 << 20));
        assert_eq!(parse_heap_request("16M"), Some(16 << 20));
        assert_eq!(parse_heap_request("1536K"), Some(1536 << 10));
        assert_eq!(parse_heap_request("lots"), None);
        assert_eq!(parse_heap_request("99999999999999"), None, "MiB beyond 64 bits");
        assert_eq!(heap_bytes_for(0), MIN_HEAP_BYTES);
        assert_eq!(heap_bytes_for((1 << 20) + 5000), (1 << 20) + 4096);
    }

    #[test]
    fn kernel_settings_use_defaults_for_what_they_cannot_read() {
        let defaults = KernelSettings { log_level: DEFAULT_LOG_LEVEL, heap_bytes: None, debug_port: false, ticks: 0 };
        assert_eq!(KernelSettings::read(&CommandLine::new("")), defaults);
        assert_eq!(KernelSettings::read(&CommandLine::new("loglevel=loud heap=lots ticks=x debugport=no")), defaults);
        let read = KernelSettings::read(&CommandLine::new("loglevel=debug heap=8 ticks=9999 debugport"));
        assert_eq!(
            read,
            KernelSettings {
                log_level: log::LevelFilter::Debug,
                heap_bytes: Some(8 << 20),
                debug_port: true,
                ticks: 3600
            }
        );
    }
}
