//! The kernel command line: space-separated words, `key=value` or bare flags.
//!
//! On Xen it is the `extra = "..."` of the domain's `xl.cfg`. Unknown words
//! are kept for the layers above (network settings, selftests). When a key
//! appears twice, the last one wins, as in Linux.

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

    /// The value of the last `key=value` word for `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.words()
            .filter_map(|word| word.split_once('='))
            .filter(|(name, _)| *name == key)
            .map(|(_, value)| value)
            .last()
    }

    /// Whether `key` appears as a bare word (`debug`) or as `key=value`.
    pub fn has(&self, key: &str) -> bool {
        self.words().any(|word| word == key || word.split_once('=').is_some_and(|(name, _)| name == key))
    }

    /// The log level asked for with `loglevel=`, if it names one.
    pub fn log_level(&self) -> Option<log::LevelFilter> {
        self.get("loglevel")?.parse().ok()
    }
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
    fn value_may_contain_equals_signs() {
        let line = CommandLine::new("opt=a=b");
        assert_eq!(line.get("opt"), Some("a=b"));
    }

    #[test]
    fn parses_log_levels() {
        assert_eq!(CommandLine::new("loglevel=debug").log_level(), Some(log::LevelFilter::Debug));
        assert_eq!(CommandLine::new("loglevel=WARN").log_level(), Some(log::LevelFilter::Warn));
        assert_eq!(CommandLine::new("loglevel=loud").log_level(), None);
        assert_eq!(CommandLine::new("").log_level(), None);
    }
}
