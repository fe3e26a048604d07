//! The canonical decoder: accepts exactly what the encoders produce.

use crate::attrs::{Attrs, MODE_BITS, Owner, check_name};
use crate::id::{BlobId, ObjectId, SnapshotId, TreeId};
use crate::leb128::{self, Leb128Error};
use crate::name::{Name, NameError};
use crate::object::{
    Blob, EntryValue, FORMAT_VERSION, Kind, MAX_TZ_MINUTES, Object, Person, Snapshot,
    TREE_ATTRS_VERSION, Tree, TreeEntry, attr_flags,
};

/// Why bytes are not the canonical encoding of an object. `offset` is the
/// byte position where decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended early.
    #[error("truncated at byte {offset}")]
    Truncated {
        /// Where.
        offset: usize,
    },
    /// A length or number is malformed.
    #[error("bad number at byte {offset}: {source}")]
    Number {
        /// Where.
        offset: usize,
        /// What is wrong with it.
        source: Leb128Error,
    },
    /// The first byte names no kind.
    #[error("unknown object kind byte {byte:#04x}")]
    UnknownKind {
        /// The byte.
        byte: u8,
    },
    /// The object is of another kind than asked for.
    #[error("expected a {expected}, found a {found}")]
    WrongKind {
        /// What was asked for.
        expected: Kind,
        /// What the bytes hold.
        found: Kind,
    },
    /// The version byte is not one this decoder knows.
    #[error("unsupported {kind} format version {version}")]
    UnsupportedVersion {
        /// The object kind.
        kind: Kind,
        /// The version byte.
        version: u8,
    },
    /// Bytes follow the end of the object.
    #[error("{count} trailing bytes after the object at byte {offset}")]
    TrailingBytes {
        /// Where the object ended.
        offset: usize,
        /// How many bytes follow.
        count: usize,
    },
    /// A tree entry name breaks the name rules.
    #[error("bad entry name at byte {offset}: {source}")]
    BadName {
        /// Where.
        offset: usize,
        /// Which rule.
        source: NameError,
    },
    /// Tree entries are not in strictly ascending order (or repeat a name).
    #[error("tree entries out of order or duplicated at byte {offset}")]
    Unsorted {
        /// Where.
        offset: usize,
    },
    /// A tree entry's kind byte is unknown.
    #[error("unknown tree entry kind {byte:#04x} at byte {offset}")]
    UnknownEntryKind {
        /// Where.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// A text field is not UTF-8.
    #[error("{field} at byte {offset} is not UTF-8")]
    NotUtf8 {
        /// Where.
        offset: usize,
        /// Which field.
        field: &'static str,
    },
    /// A field that must not be empty is.
    #[error("{field} at byte {offset} is empty")]
    Empty {
        /// Where.
        offset: usize,
        /// Which field.
        field: &'static str,
    },
    /// A number is outside its field's range.
    #[error("{field} at byte {offset} is out of range")]
    OutOfRange {
        /// Where.
        offset: usize,
        /// Which field.
        field: &'static str,
    },
    /// A tree entry's attributes break a rule (or a version-2 tree has
    /// none at all).
    #[error("bad attributes at byte {offset}: {reason}")]
    Attributes {
        /// Where.
        offset: usize,
        /// Which rule.
        reason: &'static str,
    },
}

/// Decodes any object.
pub fn decode(bytes: &[u8]) -> Result<Object, DecodeError> {
    let mut r = Reader::new(bytes);
    let (kind, version) = r.header()?;
    let object = match kind {
        Kind::Blob => Object::Blob(r.blob_body()?),
        Kind::Tree => Object::Tree(r.tree_body(version)?),
        Kind::Snapshot => Object::Snapshot(r.snapshot_body()?),
    };
    r.finish()?;
    Ok(object)
}

/// Decodes a blob; any other kind is an error.
pub fn decode_blob(bytes: &[u8]) -> Result<Blob, DecodeError> {
    let mut r = Reader::new(bytes);
    r.expect_kind(Kind::Blob)?;
    let blob = r.blob_body()?;
    r.finish()?;
    Ok(blob)
}

/// Decodes a tree; any other kind is an error.
pub fn decode_tree(bytes: &[u8]) -> Result<Tree, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.expect_kind(Kind::Tree)?;
    let tree = r.tree_body(version)?;
    r.finish()?;
    Ok(tree)
}

/// Decodes a snapshot; any other kind is an error.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, DecodeError> {
    let mut r = Reader::new(bytes);
    r.expect_kind(Kind::Snapshot)?;
    let snapshot = r.snapshot_body()?;
    r.finish()?;
    Ok(snapshot)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The kind and version; trees have two versions, other kinds one.
    fn header(&mut self) -> Result<(Kind, u8), DecodeError> {
        let byte = self.u8()?;
        let kind = Kind::from_byte(byte).ok_or(DecodeError::UnknownKind { byte })?;
        let version = self.u8()?;
        let known =
            version == FORMAT_VERSION || (kind == Kind::Tree && version == TREE_ATTRS_VERSION);
        if !known {
            return Err(DecodeError::UnsupportedVersion { kind, version });
        }
        Ok((kind, version))
    }

    fn expect_kind(&mut self, expected: Kind) -> Result<u8, DecodeError> {
        let (found, version) = self.header()?;
        if found != expected {
            return Err(DecodeError::WrongKind { expected, found });
        }
        Ok(version)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        let rest = self.bytes.len() - self.pos;
        if rest != 0 {
            return Err(DecodeError::TrailingBytes {
                offset: self.pos,
                count: rest,
            });
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or(DecodeError::Truncated { offset: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    fn number(&mut self) -> Result<u64, DecodeError> {
        let (v, n) = leb128::read(&self.bytes[self.pos..]).map_err(|source| match source {
            Leb128Error::Truncated => DecodeError::Truncated {
                offset: self.bytes.len(),
            },
            source => DecodeError::Number {
                offset: self.pos,
                source,
            },
        })?;
        self.pos += n;
        Ok(v)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let rest = self.bytes.len() - self.pos;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= rest)
            .ok_or(DecodeError::Truncated {
                offset: self.bytes.len(),
            })?;
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn sized(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.number()?;
        self.take(n)
    }

    fn text(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let offset = self.pos;
        let bytes = self.sized()?;
        if bytes.is_empty() {
            return Err(DecodeError::Empty { offset, field });
        }
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::NotUtf8 { offset, field })
    }

    fn id(&mut self) -> Result<ObjectId, DecodeError> {
        let bytes = self.take(32)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(bytes);
        Ok(ObjectId::from_bytes(out))
    }

    /// A count of items that each take at least `min_size` bytes; a count
    /// the remaining input cannot hold is truncation, caught before any
    /// allocation.
    fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let n = self.number()?;
        let rest = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min_size as u64) > rest {
            return Err(DecodeError::Truncated {
                offset: self.bytes.len(),
            });
        }
        Ok(n as usize)
    }

    fn blob_body(&mut self) -> Result<Blob, DecodeError> {
        Ok(Blob::new(self.sized()?.to_vec()))
    }

    fn tree_body(&mut self, version: u8) -> Result<Tree, DecodeError> {
        let attributed = version == TREE_ATTRS_VERSION;
        let start = self.pos;
        // Smallest entry: 1-byte length, 1-byte name, kind, 1-byte length,
        // 1-byte revision (and a flags byte in version 2).
        let count = self.count(5 + usize::from(attributed))?;
        let mut entries: Vec<TreeEntry> = Vec::with_capacity(count);
        for _ in 0..count {
            let offset = self.pos;
            let name_bytes = self.sized()?;
            let name =
                Name::new(name_bytes).map_err(|source| DecodeError::BadName { offset, source })?;
            if let Some(prev) = entries.last()
                && prev.name >= name
            {
                return Err(DecodeError::Unsorted { offset });
            }
            let kind_offset = self.pos;
            let value = match self.u8()? {
                0x01 => EntryValue::File(BlobId::new(self.id()?)),
                0x02 => EntryValue::Executable(BlobId::new(self.id()?)),
                0x03 => EntryValue::Symlink(BlobId::new(self.id()?)),
                0x04 => EntryValue::Tree(TreeId::new(self.id()?)),
                0x05 => EntryValue::Submodule(self.text("submodule revision")?),
                byte => {
                    return Err(DecodeError::UnknownEntryKind {
                        offset: kind_offset,
                        byte,
                    });
                }
            };
            let mut entry = TreeEntry::new(name, value);
            if attributed {
                let offset = self.pos;
                entry.attrs = self.attrs()?;
                entry
                    .check_attrs()
                    .map_err(|reason| DecodeError::Attributes { offset, reason })?;
            }
            entries.push(entry);
        }
        if attributed && entries.iter().all(|e| e.attrs.is_empty()) {
            return Err(DecodeError::Attributes {
                offset: start,
                reason: "a version-2 tree without attributes (it is written in version 1)",
            });
        }
        Ok(Tree::from_sorted(entries))
    }

    /// An entry's attributes: flags, then the fields they announce.
    fn attrs(&mut self) -> Result<Attrs, DecodeError> {
        use attr_flags::*;
        let offset = self.pos;
        let flags = self.u8()?;
        let bad = |reason| DecodeError::Attributes { offset, reason };
        if flags & !ALL != 0 {
            return Err(bad("unknown attribute flag"));
        }
        if flags & OWNER_ID != 0 && flags & OWNER_NAME != 0
            || flags & GROUP_ID != 0 && flags & GROUP_NAME != 0
        {
            return Err(bad("an owner or group both by number and by name"));
        }
        let mut attrs = Attrs::default();
        if flags & MODE != 0 {
            let at = self.pos;
            let m = self.number()?;
            attrs.mode = Some(
                u32::try_from(m)
                    .ok()
                    .filter(|m| m & !MODE_BITS == 0)
                    .ok_or(DecodeError::OutOfRange {
                        offset: at,
                        field: "mode",
                    })?,
            );
        }
        attrs.owner = self.owner(flags, OWNER_ID, OWNER_NAME, "owner")?;
        attrs.group = self.owner(flags, GROUP_ID, GROUP_NAME, "group")?;
        Ok(attrs)
    }

    /// An owner or group, by number or by name as `flags` say.
    fn owner(
        &mut self,
        flags: u8,
        id: u8,
        name: u8,
        field: &'static str,
    ) -> Result<Option<Owner>, DecodeError> {
        let offset = self.pos;
        if flags & id != 0 {
            let n = self.number()?;
            let n = u32::try_from(n).map_err(|_| DecodeError::OutOfRange { offset, field })?;
            return Ok(Some(Owner::Id(n)));
        }
        if flags & name != 0 {
            let text = self.text(field)?;
            check_name(&text).map_err(|reason| DecodeError::Attributes { offset, reason })?;
            return Ok(Some(Owner::Name(text)));
        }
        Ok(None)
    }

    fn person(&mut self) -> Result<Person, DecodeError> {
        let name = self.sized()?.to_vec();
        let email = self.sized()?.to_vec();
        let time = leb128::unzigzag(self.number()?);
        let offset = self.pos;
        let tz = leb128::unzigzag(self.number()?);
        let tz_minutes = i32::try_from(tz)
            .ok()
            .filter(|m| (-MAX_TZ_MINUTES..=MAX_TZ_MINUTES).contains(m))
            .ok_or(DecodeError::OutOfRange {
                offset,
                field: "timezone offset",
            })?;
        Ok(Person {
            name,
            email,
            time,
            tz_minutes,
        })
    }

    fn snapshot_body(&mut self) -> Result<Snapshot, DecodeError> {
        let tree = TreeId::new(self.id()?);
        let count = self.count(32)?;
        let mut parents = Vec::with_capacity(count);
        for _ in 0..count {
            parents.push(SnapshotId::new(self.id()?));
        }
        let revision = self.text("native revision")?;
        let author = self.person()?;
        let committer = self.person()?;
        let message = self.sized()?.to_vec();
        let count = self.count(3)?;
        let mut extra = Vec::with_capacity(count);
        for _ in 0..count {
            let key = self.text("extra field name")?;
            let value = self.sized()?.to_vec();
            extra.push((key, value));
        }
        Ok(Snapshot {
            tree,
            parents,
            revision,
            author,
            committer,
            message,
            extra,
        })
    }
}
