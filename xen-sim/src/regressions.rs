//! The inputs the fuzzers found (`fuzz/regressions/`), for the tests that
//! replay them through the same driver as their fuzz target.

extern crate std;

use std::string::{String, ToString};
use std::vec::Vec;

/// Every saved input whose file name starts with `prefix` (a fuzz target's
/// name and a dash), by file name, with that name: possibly none.
pub fn saved_inputs(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut inputs: Vec<_> = std::fs::read_dir(&directory)
        .expect("fuzz/regressions")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with(prefix)))
        .map(|path| (path.display().to_string(), std::fs::read(&path).expect("saved input")))
        .collect();
    inputs.sort();
    inputs
}
