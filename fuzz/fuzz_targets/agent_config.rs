//! Feeds arbitrary text to the agent's configuration decoder: it must
//! never panic, every refusal names a line and column inside the text, and
//! what it accepts decodes the same way again.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use plumb::agent::config::{Config, ConfigError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.toml");
    match Config::parse(file, text) {
        Ok(config) => assert_eq!(Config::parse(file, text).ok(), Some(config)),
        Err(ConfigError::At { line, column, .. }) => {
            assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "line {line}");
            assert!(column >= 1, "column {column}");
        }
        Err(e) => panic!("a decoding error without a place: {e}"),
    }
});
