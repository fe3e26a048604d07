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
