//! Tree entry names: the one place where a stored path could escape a root.

use std::fmt;

/// A validated tree entry name: raw bytes, never empty, never `.` or `..`,
/// with no `/` and no NUL byte. Names need not be UTF-8.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Vec<u8>);

/// Why some bytes are not a valid tree entry name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("empty name")]
    Empty,
    /// The name is `.` or `..`.
    #[error("name {name:?} refers to a directory itself or its parent")]
    Dot {
        /// The offending name, lossily as text.
        name: String,
    },
    /// The name holds a `/` or a NUL byte.
    #[error("name {name:?} contains a {what}")]
    Forbidden {
        /// The offending name, lossily as text.
        name: String,
        /// Which byte: `"slash"` or `"NUL byte"`.
        what: &'static str,
    },
}

/// Whether `name` is the name of version-control metadata or of plumb's
/// own store: `.git`, `.hg` or `.plumb` in any letter case, also with
/// trailing dots or spaces (which some file systems drop) and as the 8.3
/// short names `GIT~1`, `HG~1`, `PLUMB~1`. No source snapshots an entry so
/// named, at any depth, and the reconciler writes no path through one: a
/// configuration tree must never plant a repository's hooks or config, or
/// rewrite a store, in a target.
pub fn is_reserved_name(name: &[u8]) -> bool {
    const RESERVED: [&[u8]; 6] = [b".git", b".hg", b".plumb", b"git~1", b"hg~1", b"plumb~1"];
    let end = name
        .iter()
        .rposition(|b| !matches!(b, b'.' | b' '))
        .map_or(0, |i| i + 1);
    let trimmed = &name[..end];
    // `.git.` trims to `.git`; `.git` itself ends in a letter.
    RESERVED.iter().any(|r| trimmed.eq_ignore_ascii_case(r))
}

impl Name {
    /// Validates and wraps `bytes`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, NameError> {
        let bytes = bytes.into();
        Self::check(&bytes)?;
        Ok(Self(bytes))
    }

    /// Checks `bytes` against the name rules without copying them.
    pub fn check(bytes: &[u8]) -> Result<(), NameError> {
        if bytes.is_empty() {
            return Err(NameError::Empty);
        }
        if bytes == b"." || bytes == b".." {
            return Err(NameError::Dot {
                name: String::from_utf8_lossy(bytes).into_owned(),
            });
        }
        let what = if bytes.contains(&b'/') {
            "slash"
        } else if bytes.contains(&0) {
            "NUL byte"
        } else {
            return Ok(());
        };
        Err(NameError::Forbidden {
            name: String::from_utf8_lossy(bytes).into_owned(),
            what,
        })
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The raw bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl TryFrom<&str> for Name {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, NameError> {
        Self::new(s.as_bytes())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_in_any_disguise() {
        for name in [
            &b".git"[..],
            b".GIT",
            b".Hg",
            b".plumb",
            b".PLUMB",
            b".git ",
            b".git.",
            b".hg. .",
            b"GIT~1",
            b"hg~1",
        ] {
            assert!(is_reserved_name(name), "{name:?}");
        }
        for name in [
            &b"git"[..],
            b".gitignore",
            b".github",
            b".hgignore",
            b".hgtags",
            b"..git",
            b".git~1",
            b"x.git",
            b".plumbignore",
            b".",
            b"",
        ] {
            assert!(!is_reserved_name(name), "{name:?}");
        }
    }

    #[test]
    fn rules() {
        assert!(Name::new("a.conf").is_ok());
        assert!(Name::new(b"\xff\xfe".to_vec()).is_ok());
        assert!(Name::new("...").is_ok());
        assert_eq!(Name::new(""), Err(NameError::Empty));
        assert!(matches!(Name::new("."), Err(NameError::Dot { .. })));
        assert!(matches!(Name::new(".."), Err(NameError::Dot { .. })));
        assert!(matches!(Name::new("a/b"), Err(NameError::Forbidden { .. })));
        assert!(matches!(
            Name::new(b"a\0b".to_vec()),
            Err(NameError::Forbidden { .. })
        ));
    }
}
