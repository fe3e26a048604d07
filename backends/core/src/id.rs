//! Typed object ids: BLAKE3-256 hashes, displayed as `blake3:<64 hex>`.

use std::fmt;
use std::str::FromStr;

/// The raw 32-byte BLAKE3 hash that names an object of any kind.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId([u8; 32]);

/// The prefix every id carries when displayed, naming its algorithm.
pub const ALGORITHM_PREFIX: &str = "blake3:";

impl ObjectId {
    /// Wraps 32 raw hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw hash bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The id of the given canonical encoding.
    pub fn of_encoding(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex of the hash, without the algorithm prefix.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s
    }

    /// Parses 64 hex digits, with or without the `blake3:` prefix.
    pub fn from_hex(s: &str) -> Result<Self, IdParseError> {
        let hex = s.strip_prefix(ALGORITHM_PREFIX).unwrap_or(s);
        if hex.len() != 64 {
            return Err(IdParseError {
                input: s.to_owned(),
            });
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]);
            let lo = hex_value(pair[1]);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out[i] = (hi << 4) | lo,
                _ => {
                    return Err(IdParseError {
                        input: s.to_owned(),
                    });
                }
            }
        }
        Ok(Self(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ALGORITHM_PREFIX}{}", self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ObjectId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

/// A string that is not a full object id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an object id: {input:?} (expected 64 hex digits, optionally after `blake3:`)")]
pub struct IdParseError {
    /// What was given.
    pub input: String,
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(ObjectId);

        impl $name {
            /// Wraps an untyped id. The caller vouches for the kind.
            pub const fn new(id: ObjectId) -> Self {
                Self(id)
            }
            /// The untyped id.
            pub const fn object_id(&self) -> ObjectId {
                self.0
            }
            /// The raw hash bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                self.0.as_bytes()
            }
            /// Lower-case hex, without the algorithm prefix.
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
        }

        impl From<$name> for ObjectId {
            fn from(id: $name) -> ObjectId {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

typed_id!(
    /// The id of a [`crate::Blob`].
    BlobId
);
typed_id!(
    /// The id of a [`crate::Tree`].
    TreeId
);
typed_id!(
    /// The id of a [`crate::Snapshot`].
    SnapshotId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = ObjectId::of_encoding(b"x");
        assert_eq!(ObjectId::from_hex(&id.to_hex()).unwrap(), id);
        assert_eq!(id.to_string().parse::<ObjectId>().unwrap(), id);
        assert!(ObjectId::from_hex("zz").is_err());
        assert!(ObjectId::from_hex(&"g".repeat(64)).is_err());
    }
}
