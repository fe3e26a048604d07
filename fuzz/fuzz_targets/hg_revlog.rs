//! Feeds arbitrary bytes to the Mercurial revlog decoders: the index
//! parser, the chunk decompressor and the delta applier. None may panic,
//! and each must stay within its output limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plumb_source_hg::revlog::{chunk, index, patch};

/// The output limit given to the decoders: small, so a decoder that
/// ignored it would be caught by the size assertions below.
const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = index::parse(data) {
        let n = idx.entries.len();
        assert!(n * index::ENTRY_SIZE <= data.len());
        for (rev, e) in idx.entries.iter().enumerate() {
            assert!(e.p1 < rev as i32 && e.p2 < rev as i32 && e.base <= rev as i32);
        }
        if idx.inline {
            assert_eq!(idx.inline_positions.len(), n);
        }
    }

    if let Ok(out) = chunk::decompress(data, LIMIT) {
        assert!(out.len() <= LIMIT.max(data.len()));
    }

    // Split the input: a one-byte length-prefixed base, then a patch.
    if let Some((&split, rest)) = data.split_first() {
        let split = usize::from(split).min(rest.len());
        let (base, delta) = rest.split_at(split);
        if let Ok(out) = patch::apply(base, delta, LIMIT) {
            assert!(out.len() <= LIMIT);
        }
        if let Ok(out) = patch::apply(delta, base, 16) {
            assert!(out.len() <= 16);
        }
    }
});
