//! The `log` backend: one line per record, written whole to the console.
//!
//! Lines are formatted into a fixed buffer on the stack (no heap, so logging
//! works before the heap exists and while it is exhausted) and handed to the
//! console in one write, which costs one notification per line.

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

/// Formats a record the way the kernel logs it.
pub fn format_record(line: &mut LineBuffer, level: log::Level, target: &str, args: &fmt::Arguments<'_>) {
    use fmt::Write;
    let _ = writeln!(line, "[{level:<5}] {target}: {args}");
}

#[cfg(target_os = "none")]
pub use platform::init;

#[cfg(target_os = "none")]
mod platform {
    use super::*;

    struct KernelLogger;

    static LOGGER: KernelLogger = KernelLogger;

    impl log::Log for KernelLogger {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::max_level()
        }

        fn log(&self, record: &log::Record<'_>) {
            if !self.enabled(record.metadata()) {
                return;
            }
            let mut line = LineBuffer::new();
            format_record(&mut line, record.level(), record.target(), record.args());
            crate::console::output(line.finish());
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn formats_level_target_and_message() {
        let mut line = LineBuffer::new();
        format_record(&mut line, log::Level::Info, "xenecho", &format_args!("ram {} KiB", 65536));
        assert_eq!(line.finish(), b"[INFO ] xenecho: ram 65536 KiB\n");
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
