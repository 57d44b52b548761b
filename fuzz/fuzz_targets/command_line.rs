//! Fuzzes the command line: arbitrary bytes become a heap size (the first
//! two bytes, in 4 KiB pages) and the text of `extra=` (the rest, as the
//! kernel keeps it: the valid UTF-8 up to the first invalid byte), which
//! `xenecho::config::Config::read` reads. It must never panic, every
//! warning must be one line, and the settings must stay within their bounds.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use xenecho::config::Config;

fuzz_target!(|data: &[u8]| {
    let (heap, text) = match data {
        [low, high, rest @ ..] => (usize::from(u16::from_le_bytes([*low, *high])) * 4096, rest),
        _ => (0, data),
    };
    let text = match core::str::from_utf8(text) {
        Ok(text) => text,
        Err(error) => core::str::from_utf8(&text[..error.valid_up_to()]).unwrap_or_default(),
    };
    let config = Config::read(text, heap);
    assert!(config.warnings.iter().all(|warning| !warning.contains('\n')));
    let http = config.settings.http;
    assert!(http.connections >= 1 && http.backlog >= 1);
    assert!(http.port != 0);
    if let Some(metrics_port) = config.settings.metrics_port {
        assert!(metrics_port != 0 && metrics_port != http.port);
    }
    assert!(config.drain.as_secs() <= 60);
    let _ = config.describe();
});
