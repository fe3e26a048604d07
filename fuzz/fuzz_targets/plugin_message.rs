//! Feeds arbitrary bytes to the plugin protocol's message decoder: it must
//! never panic, and whatever it accepts must hold only what the spec allows
//! (valid paths and names, a blocked path's `at` above it, no duplicate
//! children).
#![no_main]

use libfuzzer_sys::fuzz_target;
use plumb_target_exec::protocol::{Message, Observation, decode_message};

fuzz_target!(|data: &[u8]| {
    let Ok(message) = decode_message(data) else {
        return;
    };
    if let Message::Observed { path, observation } = &message {
        match observation {
            Observation::Blocked { at, .. } => {
                assert!(path.starts_with(at) && at != path, "{at:?} not above {path:?}");
            }
            Observation::Dir {
                children: Some(children),
                ..
            } => {
                let mut sorted = children.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), children.len(), "duplicate children");
            }
            _ => {}
        }
    }
    // Every byte string the decoder gives back re-encodes to a value that
    // decodes to the same bytes.
    if let Message::Observed {
        observation: Observation::Symlink { target },
        ..
    } = &message
    {
        let line = format!(
            r#"{{"type":"observed","path":"p","kind":"symlink","target":{}}}"#,
            plumb_target_exec::protocol::bytes_value(target)
        );
        match decode_message(line.as_bytes()) {
            Ok(Message::Observed {
                observation: Observation::Symlink { target: back },
                ..
            }) => assert_eq!(&back, target),
            other => panic!("re-encoded symlink target does not decode: {other:?}"),
        }
    }
});
