//! Faults on purpose, asked for on the command line (`selftest=...`), so the
//! end-to-end tests can prove that failures are reported, not hidden.

use crate::CommandLine;

/// A requested self-test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selftest {
    /// `selftest=panic`: a Rust panic.
    Panic,
    /// `selftest=pagefault`: a read of an unmapped address.
    PageFault,
}

/// A `selftest=` value that names no test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownSelftest<'a>(pub &'a str);

impl Selftest {
    /// The test `selftest=` names with `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "panic" => Some(Self::Panic),
            "pagefault" => Some(Self::PageFault),
            _ => None,
        }
    }

    /// The name `selftest=` takes for this test.
    pub fn name(self) -> &'static str {
        match self {
            Self::Panic => "panic",
            Self::PageFault => "pagefault",
        }
    }

    /// The test the command line asks for, if any (its last `selftest=`).
    pub fn requested<'a>(command_line: &CommandLine<'a>) -> Result<Option<Self>, UnknownSelftest<'a>> {
        match command_line.get("selftest") {
            None => Ok(None),
            Some(name) => Self::from_name(name).map(Some).ok_or(UnknownSelftest(name)),
        }
    }

    /// Runs the test; neither returns.
    #[cfg(target_os = "none")]
    pub fn run(self) -> ! {
        match self {
            Self::Panic => panic!("selftest: panic requested on the command line"),
            Self::PageFault => crate::arch::trigger_page_fault(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        assert_eq!(Selftest::requested(&CommandLine::new("a=b")), Ok(None));
        assert_eq!(Selftest::requested(&CommandLine::new("selftest=panic")), Ok(Some(Selftest::Panic)));
        assert_eq!(Selftest::requested(&CommandLine::new("selftest=pagefault")), Ok(Some(Selftest::PageFault)));
        assert_eq!(Selftest::requested(&CommandLine::new("selftest=boom")), Err(UnknownSelftest("boom")));
        for test in [Selftest::Panic, Selftest::PageFault] {
            assert_eq!(Selftest::from_name(test.name()), Some(test));
        }
    }
}
