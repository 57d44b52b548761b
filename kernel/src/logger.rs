//! The `log` backend: one line per record, written whole to the console.
//!
//! Lines are formatted into a fixed buffer on the stack (no heap, so logging
//! works before the heap exists and while it is exhausted) and handed to the
//! console in one write, which costs one notification per line. Each line
//! starts with the time since boot from the kernel's monotonic clock
//! (`[   12.345] INFO  target: message`; `0.000` before the clock runs).
//!
//! The last [`RECENT_LINES`] lines are also kept (cut to
//! [`RECENT_LINE_BYTES`] each, in a fixed ring: no heap), so that a crash
//! report can repeat them on every output it has.

use core::fmt;

/// Longest line kept; longer ones are cut and end in `...`.
pub const LINE_CAPACITY: usize = 512;

/// A line being formatted.
pub struct LineBuffer {
    bytes: [u8; LINE_CAPACITY],
    len: usize,
    truncated: bool,
}

impl LineBuffer {
    /// An empty line.
    pub const fn new() -> Self {
        Self { bytes: [0; LINE_CAPACITY], len: 0, truncated: false }
    }

    /// The text so far, ending in `...\n` if it was cut.
    pub fn finish(&mut self) -> &[u8] {
        if self.truncated {
            self.len = LINE_CAPACITY - 4;
            self.bytes[self.len..].copy_from_slice(b"...\n");
            self.len = LINE_CAPACITY;
        }
        &self.bytes[..self.len]
    }
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for LineBuffer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = LINE_CAPACITY - self.len;
        let count = room.min(text.len());
        self.bytes[self.len..self.len + count].copy_from_slice(&text.as_bytes()[..count]);
        self.len += count;
        self.truncated |= count < text.len();
        Ok(())
    }
}

/// The time stamp that starts a line: `[   12.345] ` for `uptime_ns`
/// nanoseconds since boot (seconds right-aligned in five places, then
/// milliseconds).
pub fn write_time_stamp(line: &mut LineBuffer, uptime_ns: u64) {
    use fmt::Write;
    let millis = uptime_ns / 1_000_000;
    let _ = write!(line, "[{:>5}.{:03}] ", millis / 1000, millis % 1000);
}

/// Formats a record the way the kernel logs it, stamped `uptime_ns`
/// nanoseconds since boot.
pub fn format_record(
    line: &mut LineBuffer,
    uptime_ns: u64,
    level: log::Level,
    target: &str,
    args: &fmt::Arguments<'_>,
) {
    use fmt::Write;
    write_time_stamp(line, uptime_ns);
    let _ = writeln!(line, "{level:<5} {target}: {args}");
}

/// How many recent lines a crash report repeats.
pub const RECENT_LINES: usize = 8;
/// How much of each recent line is kept; a longer one is cut and ends in
/// `...`.
pub const RECENT_LINE_BYTES: usize = 160;

/// The last [`RECENT_LINES`] log lines, in a fixed ring.
pub struct RecentLines {
    lines: [[u8; RECENT_LINE_BYTES]; RECENT_LINES],
    lengths: [usize; RECENT_LINES],
    /// Lines kept so far (the next one goes to `count % RECENT_LINES`).
    count: usize,
}

impl RecentLines {
    /// No lines.
    pub const fn new() -> Self {
        Self { lines: [[0; RECENT_LINE_BYTES]; RECENT_LINES], lengths: [0; RECENT_LINES], count: 0 }
    }

    /// Keeps `line` (a whole line, ending in a newline), dropping the oldest.
    pub fn push(&mut self, line: &[u8]) {
        let slot = self.count % RECENT_LINES;
        let kept = &mut self.lines[slot];
        if line.len() <= RECENT_LINE_BYTES {
            kept[..line.len()].copy_from_slice(line);
            self.lengths[slot] = line.len();
        } else {
            let cut = RECENT_LINE_BYTES - 4;
            kept[..cut].copy_from_slice(&line[..cut]);
            kept[cut..].copy_from_slice(b"...\n");
            self.lengths[slot] = RECENT_LINE_BYTES;
        }
        self.count = self.count.wrapping_add(1);
    }

    /// The lines kept, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let held = self.count.min(RECENT_LINES);
        (self.count - held..self.count).map(|number| {
            let slot = number % RECENT_LINES;
            &self.lines[slot][..self.lengths[slot]]
        })
    }

    /// How many lines are kept.
    pub fn len(&self) -> usize {
        self.count.min(RECENT_LINES)
    }

    /// Whether no line was kept yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl Default for RecentLines {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_os = "none")]
pub use platform::{init, with_recent_lines};

#[cfg(target_os = "none")]
mod platform {
    use super::*;

    struct KernelLogger;

    static LOGGER: KernelLogger = KernelLogger;
    static RECENT: spin::Mutex<RecentLines> = spin::Mutex::new(RecentLines::new());

    impl log::Log for KernelLogger {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::max_level()
        }

        fn log(&self, record: &log::Record<'_>) {
            if !self.enabled(record.metadata()) {
                return;
            }
            let mut line = LineBuffer::new();
            format_record(&mut line, crate::pv::now(), record.level(), record.target(), record.args());
            let text = line.finish();
            // Never wait here: a fault while the ring is held would wait forever.
            if let Some(mut recent) = RECENT.try_lock() {
                recent.push(text);
            }
            crate::console::output(text);
        }

        fn flush(&self) {
            crate::console::flush();
        }
    }

    /// Installs the logger at `level`.
    pub fn init(level: log::LevelFilter) {
        // A second call (there is none) would keep the first logger.
        let _ = log::set_logger(&LOGGER);
        log::set_max_level(level);
    }

    /// Calls `report` with the recent lines, or with `None` when they are
    /// being written (a crash in the middle of logging a line).
    pub fn with_recent_lines(report: impl FnOnce(Option<&RecentLines>)) {
        match RECENT.try_lock() {
            Some(recent) => report(Some(&recent)),
            None => report(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn formats_time_level_target_and_message() {
        let mut line = LineBuffer::new();
        format_record(&mut line, 12_345_678_901, log::Level::Info, "xenecho", &format_args!("ram {} KiB", 65536));
        assert_eq!(line.finish(), b"[   12.345] INFO  xenecho: ram 65536 KiB\n");
        let mut line = LineBuffer::new();
        format_record(&mut line, 0, log::Level::Warn, "kernel::start", &format_args!("early"));
        assert_eq!(line.finish(), b"[    0.000] WARN  kernel::start: early\n");
        let mut line = LineBuffer::new();
        format_record(&mut line, 123_456_789_000_000, log::Level::Error, "x", &format_args!("late"));
        assert_eq!(line.finish(), b"[123456.789] ERROR x: late\n", "a wider number of seconds widens the stamp");
    }

    #[test]
    fn keeps_the_last_lines_oldest_first() {
        let mut recent = RecentLines::new();
        assert!(recent.is_empty());
        assert_eq!(recent.iter().count(), 0);
        recent.push(b"one\n");
        recent.push(b"two\n");
        assert_eq!(recent.iter().collect::<Vec<_>>(), [b"one\n".as_slice(), b"two\n"]);
        for number in 0..20 {
            recent.push(format!("line {number}\n").as_bytes());
        }
        assert_eq!(recent.len(), RECENT_LINES);
        let kept: Vec<String> = recent.iter().map(|line| String::from_utf8(line.to_vec()).unwrap()).collect();
        let expected: Vec<String> = (20 - RECENT_LINES..20).map(|number| format!("line {number}\n")).collect();
        assert_eq!(kept, expected);
    }

    #[test]
    fn cuts_long_recent_lines_visibly() {
        let mut recent = RecentLines::new();
        let long = format!("{}\n", "z".repeat(RECENT_LINE_BYTES * 2));
        recent.push(long.as_bytes());
        let kept = recent.iter().next().unwrap();
        assert_eq!(kept.len(), RECENT_LINE_BYTES);
        assert!(kept.ends_with(b"...\n"));
        recent.push(&long.as_bytes()[..RECENT_LINE_BYTES]);
        assert_eq!(recent.iter().nth(1).unwrap(), &long.as_bytes()[..RECENT_LINE_BYTES], "exactly full: kept whole");
    }

    #[test]
    fn cuts_long_lines_visibly() {
        let mut line = LineBuffer::new();
        let long = "y".repeat(LINE_CAPACITY * 2);
        write!(line, "{long}").unwrap();
        let text = line.finish();
        assert_eq!(text.len(), LINE_CAPACITY);
        assert!(text.ends_with(b"...\n"));
        assert!(text[..LINE_CAPACITY - 4].iter().all(|&byte| byte == b'y'));
    }
}
