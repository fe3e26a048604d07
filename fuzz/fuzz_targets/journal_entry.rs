//! Feeds arbitrary bytes to the journal entry decoder (what `plumb repair`
//! reads from pack files): it never panics, and whatever decodes encodes
//! back to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plumb_core::journal::Entry;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = Entry::decode(data) {
        assert_eq!(entry.encode(), data, "decoded {entry:?} encodes differently");
    }
});
