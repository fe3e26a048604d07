//! Feeds arbitrary bytes to the Git object readers plumb applies to what a
//! repository (or a ref annotation in the store) holds: the commit
//! splitter, the identity reader and the tag reader. None may panic, and
//! what they return must be drawn from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plumb_source_git::commit;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = commit::parse(data) {
        assert!(c.message.len() <= data.len());
        if let Some(p) = &c.signed_payload {
            // The payload is the commit minus its signature headers.
            assert!(p.len() < data.len());
        }
        for line in [c.author, c.committer].into_iter().flatten() {
            let _ = commit::person(line);
        }
    }
    let _ = commit::person(data);
    if let Ok(t) = plumb_source_git::parse_tag(data) {
        if let Some(p) = &t.signed_payload {
            assert!(data.starts_with(p));
            let sig = t.signature.as_deref().expect("a payload only with a signature");
            assert_eq!(p.len() + sig.len(), data.len());
        }
        assert!(t.message.len() <= data.len());
    }
});
