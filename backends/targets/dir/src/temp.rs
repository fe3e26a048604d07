//! The names of the target's temporary files.
//!
//! A change to `name` is prepared at a temporary name in the same
//! directory that carries a fresh 64-bit tag, so it is never the name of a
//! file already there (it is created with `O_EXCL`, and a clash only means
//! another tag is drawn): `.<name>.plumb-tmp-<16 hex tag>`, or, when that
//! would not fit a file name (255 bytes), `.<16 hex of BLAKE3(name)>` in
//! place of `.<name>`.
//!
//! A leftover of a killed apply is recognised by that exact shape *and* by
//! sitting beside the path it was for: its [`head_of`] is the [`head`] of
//! that path's name. Nothing else is ever removed as a
//! temporary; a user's `.name.plumb-tmp` is an ordinary file.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The longest file name most Unix file systems accept.
const NAME_MAX: usize = 255;

/// The marker every temporary name holds, before its tag.
const MARKER: &[u8] = b".plumb-tmp-";
/// Hex digits of a tag, and of the hash standing for a long name.
const HEX: usize = 16;

/// A temporary name for a change to `name`, with a tag never drawn before
/// by this process.
pub(crate) fn temp_name(name: &[u8]) -> Vec<u8> {
    let mut out = head(name);
    out.extend_from_slice(MARKER);
    out.extend_from_slice(&next_tag());
    out
}

/// What a temporary name of `name` starts with: `.<name>`, or `.<hash>`
/// when `name` is too long for that.
pub(crate) fn head(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(NAME_MAX);
    out.push(b'.');
    if 1 + name.len() + MARKER.len() + HEX <= NAME_MAX {
        out.extend_from_slice(name);
    } else {
        out.extend_from_slice(&blake3::hash(name).to_hex().as_bytes()[..HEX]);
    }
    out
}

/// The [`head`] of `candidate` if it has the shape of a temporary name
/// (of some name): `.<something>.plumb-tmp-<16 lowercase hex>`.
pub(crate) fn head_of(candidate: &[u8]) -> Option<&[u8]> {
    let cut = candidate.len().checked_sub(MARKER.len() + HEX)?;
    let (head, tail) = candidate.split_at(cut);
    let tag = tail.strip_prefix(MARKER)?;
    (tag.iter().all(is_hex) && head.len() > 1 && head.starts_with(b".")).then_some(head)
}

/// Whether `name` has the shape of one of the target's temporary names.
pub(crate) fn is_temp_name(name: &[u8]) -> bool {
    head_of(name).is_some()
}

fn is_hex(b: &u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'f')
}

/// A fresh tag: a keyed hash of a counter, under a key drawn once per
/// process from its id, the time and an address.
fn next_tag() -> [u8; HEX] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let key = KEY.get_or_init(|| {
        let mut seed = blake3::Hasher::new();
        seed.update(&std::process::id().to_le_bytes());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        seed.update(&now.to_le_bytes());
        seed.update(&(std::ptr::from_ref(&COUNTER) as usize).to_le_bytes());
        *seed.finalize().as_bytes()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut out = [0; HEX];
    out.copy_from_slice(
        &blake3::keyed_hash(key, &n.to_le_bytes())
            .to_hex()
            .as_bytes()[..HEX],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_temp_of(candidate: &[u8], name: &[u8]) -> bool {
        head_of(candidate) == Some(&head(name)[..])
    }

    #[test]
    fn temp_names_are_recognised() {
        let t = temp_name(b"app.conf");
        assert!(t.starts_with(b".app.conf.plumb-tmp-"), "{t:?}");
        assert_eq!(t.len(), b".app.conf.plumb-tmp-".len() + HEX);
        assert!(is_temp_name(&t));
        assert!(is_temp_of(&t, b"app.conf"));
        assert!(!is_temp_of(&t, b"app.con"));
        assert!(!is_temp_of(&t, b"pp.conf"));
        assert_ne!(temp_name(b"app.conf"), t, "a fresh tag each time");

        let long = vec![b'x'; 250];
        let t = temp_name(&long);
        assert_eq!(t.len(), 1 + HEX + MARKER.len() + HEX);
        assert!(is_temp_name(&t));
        assert!(is_temp_of(&t, &long));
        assert!(!is_temp_of(&t, &long[1..]));
        assert_eq!(temp_name(&vec![b'y'; 227]).len(), 255);
        assert_eq!(
            temp_name(&vec![b'y'; 228]).len(),
            1 + HEX + MARKER.len() + HEX
        );

        for plain in [
            &b"app.conf"[..],
            b".plumb-tmp",
            b".app.conf.plumb-tmp",
            b".hidden",
            b".plumb-tmp-0123456789abcdef",
            b".a.plumb-tmp-0123456789ABCDEF",
            b".a.plumb-tmp-0123456789abcde",
            b"a.plumb-tmp-0123456789abcdef",
        ] {
            assert!(!is_temp_name(plain), "{plain:?}");
            assert!(!is_temp_of(plain, b"a"), "{plain:?}");
        }
        assert!(is_temp_name(b".a.plumb-tmp-0123456789abcdef"));
        assert!(is_temp_of(b".a.plumb-tmp-0123456789abcdef", b"a"));
    }
}
