//! The names of the target's temporary files.
//!
//! A change to `name` is prepared at a temporary name in the same
//! directory, derived from `name` alone so that [`recover`] can find it
//! again after a crash: `.<name>.plumb-tmp`, or, when that would not fit a
//! file name (255 bytes), `.plumb-tmp-<16 hex digits of BLAKE3(name)>`.
//!
//! [`recover`]: plumb_core::target::Target::recover

/// The longest file name most Unix file systems accept.
const NAME_MAX: usize = 255;

const SUFFIX: &[u8] = b".plumb-tmp";
const HASHED_PREFIX: &[u8] = b".plumb-tmp-";
const HASH_HEX: usize = 16;

/// The temporary name a change to `name` uses.
pub(crate) fn temp_name(name: &[u8]) -> Vec<u8> {
    if 1 + name.len() + SUFFIX.len() <= NAME_MAX {
        let mut out = Vec::with_capacity(1 + name.len() + SUFFIX.len());
        out.push(b'.');
        out.extend_from_slice(name);
        out.extend_from_slice(SUFFIX);
        out
    } else {
        let hash = blake3::hash(name);
        let mut out = HASHED_PREFIX.to_vec();
        out.extend_from_slice(&hash.to_hex().as_bytes()[..HASH_HEX]);
        out
    }
}

/// Whether `name` is one of the target's temporary names.
pub(crate) fn is_temp_name(name: &[u8]) -> bool {
    if let Some(hex) = name.strip_prefix(HASHED_PREFIX)
        && hex.len() == HASH_HEX
        && hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return true;
    }
    name.len() > 1 + SUFFIX.len() && name.starts_with(b".") && name.ends_with(SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised() {
        assert_eq!(temp_name(b"app.conf"), b".app.conf.plumb-tmp");
        assert!(is_temp_name(&temp_name(b"app.conf")));
        let long = vec![b'x'; 250];
        let t = temp_name(&long);
        assert_eq!(t.len(), HASHED_PREFIX.len() + HASH_HEX);
        assert!(is_temp_name(&t));
        assert!(temp_name(&vec![b'y'; 244]).len() == 255);
        for plain in [
            &b"app.conf"[..],
            b".plumb-tmp",
            b".hidden",
            b".plumb-tmp-xyz",
        ] {
            assert!(!is_temp_name(plain), "{plain:?}");
        }
    }
}
