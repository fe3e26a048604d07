//! The three object kinds and their canonical encoders.

use crate::attrs::{Attrs, Owner};
use crate::id::{BlobId, ObjectId, SnapshotId, TreeId};
use crate::leb128;
use crate::name::Name;

/// The version byte every object of this format carries.
pub const FORMAT_VERSION: u8 = 1;

/// The version byte of a tree whose entries carry attributes (a tree
/// without any keeps [`FORMAT_VERSION`], its bytes and its id).
pub const TREE_ATTRS_VERSION: u8 = 2;

/// Largest timezone offset, in minutes, that a [`Person`] may carry:
/// ±99:59, the most a `±HHMM` field can say.
pub const MAX_TZ_MINUTES: i32 = 99 * 60 + 59;

/// The kind of an object, as its first encoded byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Bytes.
    Blob,
    /// A directory listing.
    Tree,
    /// A revision: a tree with history and metadata.
    Snapshot,
}

impl Kind {
    /// The kind byte.
    pub const fn byte(self) -> u8 {
        match self {
            Kind::Blob => 0x01,
            Kind::Tree => 0x02,
            Kind::Snapshot => 0x03,
        }
    }

    /// The kind named by a kind byte.
    pub const fn from_byte(b: u8) -> Option<Kind> {
        match b {
            0x01 => Some(Kind::Blob),
            0x02 => Some(Kind::Tree),
            0x03 => Some(Kind::Snapshot),
            _ => None,
        }
    }

    /// A lower-case word for messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Tree => "tree",
            Kind::Snapshot => "snapshot",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Any object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "objects are decoded, used and dropped; boxing the snapshot would cost an allocation each"
)]
pub enum Object {
    /// A blob.
    Blob(Blob),
    /// A tree.
    Tree(Tree),
    /// A snapshot.
    Snapshot(Snapshot),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Blob(_) => Kind::Blob,
            Object::Tree(_) => Kind::Tree,
            Object::Snapshot(_) => Kind::Snapshot,
        }
    }
}

/// An object's canonical encoding with its id, computed once.
///
/// Only this crate makes one, and only from a valid object, so whoever
/// holds one may store its bytes under its id without decoding or hashing
/// them again (a source that hashes on one thread and stores on another
/// pays once).
#[derive(Clone, PartialEq, Eq)]
pub struct Encoded {
    kind: Kind,
    id: ObjectId,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Encoded({} {}, {} bytes)",
            self.kind,
            self.id,
            self.bytes.len()
        )
    }
}

impl Encoded {
    fn new(kind: Kind, bytes: Vec<u8>) -> Self {
        Self {
            kind,
            id: ObjectId::of_encoding(&bytes),
            bytes,
        }
    }

    /// The object's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The object's id: the hash of [`bytes`](Self::bytes).
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The canonical encoding.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The canonical encoding, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// A file's content, or a symlink's target: bytes, nothing else.
#[derive(Clone, PartialEq, Eq)]
pub struct Blob(Vec<u8>);

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl Blob {
    /// Wraps bytes.
    pub fn new(data: Vec<u8>) -> Self {
        Self(data)
    }

    /// The bytes.
    pub fn data(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, owned.
    pub fn into_data(self) -> Vec<u8> {
        self.0
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        Self::encoding_of(&self.0)
    }

    /// The canonical encoding of a blob holding `data`, without making a
    /// [`Blob`] first.
    pub fn encoding_of(data: &[u8]) -> Vec<u8> {
        let (head, n) = Self::header(data.len());
        let mut out = Vec::with_capacity(n + data.len());
        out.extend_from_slice(&head[..n]);
        out.extend_from_slice(data);
        out
    }

    /// The id.
    pub fn id(&self) -> BlobId {
        Self::id_of(&self.0)
    }

    /// The encoding and id of a blob holding `data`, in one pass.
    pub fn encoded(data: &[u8]) -> Encoded {
        Encoded::new(Kind::Blob, Self::encoding_of(data))
    }

    /// The id of a blob holding `data`, computed without copying it.
    pub fn id_of(data: &[u8]) -> BlobId {
        let (head, n) = Self::header(data.len());
        let mut hasher = blake3::Hasher::new();
        hasher.update(&head[..n]);
        hasher.update(data);
        BlobId::new(ObjectId::from_bytes(*hasher.finalize().as_bytes()))
    }

    /// The bytes that precede the content in the encoding of a blob of
    /// `len` bytes (kind, version, length), and how many there are.
    pub fn header(len: usize) -> ([u8; 12], usize) {
        let mut out = [0u8; 12];
        out[0] = Kind::Blob.byte();
        out[1] = FORMAT_VERSION;
        let (leb, n) = leb128::encode(len as u64);
        out[2..2 + n].copy_from_slice(&leb[..n]);
        (out, 2 + n)
    }
}

/// What a tree entry points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryValue {
    /// A regular file.
    File(BlobId),
    /// A regular file with the executable bit.
    Executable(BlobId),
    /// A symbolic link; the blob holds the target, never followed.
    Symlink(BlobId),
    /// A subdirectory.
    Tree(TreeId),
    /// A pinned revision of a foreign repository (`git:sha1:<hex>`), never followed.
    Submodule(String),
}

impl EntryValue {
    /// The entry-kind byte of the encoding.
    pub const fn kind_byte(&self) -> u8 {
        match self {
            EntryValue::File(_) => 0x01,
            EntryValue::Executable(_) => 0x02,
            EntryValue::Symlink(_) => 0x03,
            EntryValue::Tree(_) => 0x04,
            EntryValue::Submodule(_) => 0x05,
        }
    }

    /// A short word for listings: `file`, `exec`, `link`, `tree`, `submodule`.
    pub const fn kind_name(&self) -> &'static str {
        match self {
            EntryValue::File(_) => "file",
            EntryValue::Executable(_) => "exec",
            EntryValue::Symlink(_) => "link",
            EntryValue::Tree(_) => "tree",
            EntryValue::Submodule(_) => "submodule",
        }
    }

    /// The blob behind a file, executable or symlink.
    pub fn blob(&self) -> Option<BlobId> {
        match self {
            EntryValue::File(id) | EntryValue::Executable(id) | EntryValue::Symlink(id) => {
                Some(*id)
            }
            EntryValue::Tree(_) | EntryValue::Submodule(_) => None,
        }
    }
}

/// One named entry of a [`Tree`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TreeEntry {
    /// The entry's name.
    pub name: Name,
    /// What it points at.
    pub value: EntryValue,
    /// Its permission bits, owner and group, where recorded; only files,
    /// executables and subdirectories carry them.
    pub attrs: Attrs,
}

impl TreeEntry {
    /// An entry without attributes.
    pub fn new(name: Name, value: EntryValue) -> Self {
        Self {
            name,
            value,
            attrs: Attrs::default(),
        }
    }

    /// Why this entry's attributes cannot be encoded, if they cannot: a
    /// symlink or submodule with attributes, a mode out of range or at odds
    /// with the entry kind (a file's mode has no execute bit, an
    /// executable's has at least one), a bad owner or group name.
    pub fn check_attrs(&self) -> Result<(), &'static str> {
        if self.attrs.is_empty() {
            return Ok(());
        }
        match (&self.value, self.attrs.mode) {
            (EntryValue::Symlink(_) | EntryValue::Submodule(_), _) => {
                return Err("only files, executables and directories carry attributes");
            }
            (EntryValue::File(_), Some(m)) if m & 0o111 != 0 => {
                return Err("a file's mode has an execute bit (that is an executable)");
            }
            (EntryValue::Executable(_), Some(m)) if m & 0o111 == 0 => {
                return Err("an executable's mode has no execute bit");
            }
            _ => {}
        }
        self.attrs.validate()
    }
}

/// Why a list of entries is not a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// Two entries share a name.
    #[error("duplicate entry {name:?} in tree")]
    Duplicate {
        /// The name, lossily as text.
        name: String,
    },
    /// A submodule entry pins an empty revision.
    #[error("submodule entry {name:?} has an empty revision")]
    EmptySubmodule {
        /// The name, lossily as text.
        name: String,
    },
    /// An entry's attributes cannot be encoded.
    #[error("entry {name:?}: {reason}")]
    Attributes {
        /// The name, lossily as text.
        name: String,
        /// Which rule they break.
        reason: &'static str,
    },
}

impl TreeError {
    /// The name of the entry at fault, lossily as text.
    pub fn name(&self) -> &str {
        match self {
            TreeError::Duplicate { name }
            | TreeError::EmptySubmodule { name }
            | TreeError::Attributes { name, .. } => name,
        }
    }
}

/// A directory listing: entries in strictly ascending order of raw name bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    entries: Vec<TreeEntry>,
}

impl Tree {
    /// Sorts `entries` by raw name bytes; rejects duplicate names, empty
    /// submodule revisions and attributes [`TreeEntry::check_attrs`]
    /// refuses.
    pub fn new(mut entries: Vec<TreeEntry>) -> Result<Self, TreeError> {
        entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        for pair in entries.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(TreeError::Duplicate {
                    name: pair[0].name.to_string(),
                });
            }
        }
        for e in &entries {
            if let EntryValue::Submodule(rev) = &e.value
                && rev.is_empty()
            {
                return Err(TreeError::EmptySubmodule {
                    name: e.name.to_string(),
                });
            }
            e.check_attrs().map_err(|reason| TreeError::Attributes {
                name: e.name.to_string(),
                reason,
            })?;
        }
        Ok(Self { entries })
    }

    /// Wraps entries the decoder has already proven sorted and valid.
    pub(crate) fn from_sorted(entries: Vec<TreeEntry>) -> Self {
        Self { entries }
    }

    /// The entries, in ascending order of raw name bytes.
    pub fn entries(&self) -> &[TreeEntry] {
        &self.entries
    }

    /// The entries, owned.
    pub fn into_entries(self) -> Vec<TreeEntry> {
        self.entries
    }

    /// Whether the tree has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry named `name`, if any.
    pub fn get(&self, name: &[u8]) -> Option<&TreeEntry> {
        self.entries
            .binary_search_by(|e| e.name.as_bytes().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Whether any entry carries attributes (and so the tree is encoded
    /// in tree version 2).
    pub fn has_attrs(&self) -> bool {
        self.entries.iter().any(|e| !e.attrs.is_empty())
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let attributed = self.has_attrs();
        let mut out = Vec::with_capacity(4 + self.entries.len() * 48);
        out.push(Kind::Tree.byte());
        out.push(if attributed {
            TREE_ATTRS_VERSION
        } else {
            FORMAT_VERSION
        });
        leb128::write(&mut out, self.entries.len() as u64);
        for e in &self.entries {
            let name = e.name.as_bytes();
            leb128::write(&mut out, name.len() as u64);
            out.extend_from_slice(name);
            out.push(e.value.kind_byte());
            match &e.value {
                EntryValue::File(id) | EntryValue::Executable(id) | EntryValue::Symlink(id) => {
                    out.extend_from_slice(id.as_bytes());
                }
                EntryValue::Tree(id) => out.extend_from_slice(id.as_bytes()),
                EntryValue::Submodule(rev) => {
                    leb128::write(&mut out, rev.len() as u64);
                    out.extend_from_slice(rev.as_bytes());
                }
            }
            if attributed {
                write_attrs(&mut out, &e.attrs);
            }
        }
        out
    }

    /// The id.
    pub fn id(&self) -> TreeId {
        TreeId::new(ObjectId::of_encoding(&self.encode()))
    }

    /// The encoding and the id, computed once.
    pub fn encoded(&self) -> Encoded {
        Encoded::new(Kind::Tree, self.encode())
    }
}

/// Who made a change, and when.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Person {
    /// The name, as the source recorded it (not necessarily UTF-8).
    pub name: Vec<u8>,
    /// The e-mail address, as the source recorded it.
    pub email: Vec<u8>,
    /// Seconds since the Unix epoch, UTC.
    pub time: i64,
    /// The local timezone's offset from UTC, in minutes (east positive),
    /// within ±99 hours 59 minutes (5,999).
    pub tz_minutes: i32,
}

/// A revision: a tree, its parents, its origin and its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The root tree.
    pub tree: TreeId,
    /// Parent snapshots, first parent first.
    pub parents: Vec<SnapshotId>,
    /// The source's native revision, scheme first (`git:sha1:<hex>`, `hg:<hex>`, `dir:<n>`).
    pub revision: String,
    /// Who wrote the change.
    pub author: Person,
    /// Who recorded it.
    pub committer: Person,
    /// The message, as the source recorded it.
    pub message: Vec<u8>,
    /// Further named fields in the source's order (for example a commit's
    /// raw signature); names are non-empty UTF-8 and may repeat.
    pub extra: Vec<(String, Vec<u8>)>,
}

impl Default for TreeId {
    fn default() -> Self {
        Tree::default().id()
    }
}

/// Why a snapshot cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The native revision is empty.
    #[error("snapshot has an empty native revision")]
    EmptyRevision,
    /// An extra field has an empty name.
    #[error("snapshot has an extra field with an empty name")]
    EmptyExtraName,
    /// A timezone offset is out of range.
    #[error("timezone offset of {minutes} minutes is out of range (at most ±{MAX_TZ_MINUTES})")]
    Timezone {
        /// The offset given.
        minutes: i32,
    },
}

impl Snapshot {
    /// Checks what the types alone do not.
    pub fn validate(&self) -> Result<(), SnapshotError> {
        if self.revision.is_empty() {
            return Err(SnapshotError::EmptyRevision);
        }
        if self.extra.iter().any(|(k, _)| k.is_empty()) {
            return Err(SnapshotError::EmptyExtraName);
        }
        for p in [&self.author, &self.committer] {
            if !(-MAX_TZ_MINUTES..=MAX_TZ_MINUTES).contains(&p.tz_minutes) {
                return Err(SnapshotError::Timezone {
                    minutes: p.tz_minutes,
                });
            }
        }
        Ok(())
    }

    /// The canonical encoding, or why there is none.
    pub fn encode(&self) -> Result<Vec<u8>, SnapshotError> {
        self.validate()?;
        let mut out = Vec::with_capacity(128 + self.message.len());
        out.push(Kind::Snapshot.byte());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(self.tree.as_bytes());
        leb128::write(&mut out, self.parents.len() as u64);
        for p in &self.parents {
            out.extend_from_slice(p.as_bytes());
        }
        write_bytes(&mut out, self.revision.as_bytes());
        for p in [&self.author, &self.committer] {
            write_bytes(&mut out, &p.name);
            write_bytes(&mut out, &p.email);
            leb128::write(&mut out, leb128::zigzag(p.time));
            leb128::write(&mut out, leb128::zigzag(i64::from(p.tz_minutes)));
        }
        write_bytes(&mut out, &self.message);
        leb128::write(&mut out, self.extra.len() as u64);
        for (k, v) in &self.extra {
            write_bytes(&mut out, k.as_bytes());
            write_bytes(&mut out, v);
        }
        Ok(out)
    }

    /// The id, or why there is none.
    pub fn id(&self) -> Result<SnapshotId, SnapshotError> {
        Ok(SnapshotId::new(ObjectId::of_encoding(&self.encode()?)))
    }

    /// The values of the extra fields named `key`, in order.
    pub fn extra_values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.extra
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

/// Attribute flag bits (spec/encoding.md, section 3.2).
pub(crate) mod attr_flags {
    /// A mode follows.
    pub const MODE: u8 = 0x01;
    /// An owner id follows.
    pub const OWNER_ID: u8 = 0x02;
    /// An owner name follows.
    pub const OWNER_NAME: u8 = 0x04;
    /// A group id follows.
    pub const GROUP_ID: u8 = 0x08;
    /// A group name follows.
    pub const GROUP_NAME: u8 = 0x10;
    /// Every defined bit.
    pub const ALL: u8 = 0x1f;
}

/// An entry's attributes in a version-2 tree: a flags byte, then the mode,
/// the owner and the group, each only when its flag is set.
fn write_attrs(out: &mut Vec<u8>, attrs: &Attrs) {
    use attr_flags::*;
    let who = |o: &Option<Owner>, id: u8, name: u8| match o {
        None => 0,
        Some(Owner::Id(_)) => id,
        Some(Owner::Name(_)) => name,
    };
    let mode = if attrs.mode.is_some() { MODE } else { 0 };
    let flags =
        mode | who(&attrs.owner, OWNER_ID, OWNER_NAME) | who(&attrs.group, GROUP_ID, GROUP_NAME);
    out.push(flags);
    if let Some(m) = attrs.mode {
        leb128::write(out, u64::from(m));
    }
    for o in [&attrs.owner, &attrs.group].into_iter().flatten() {
        match o {
            Owner::Id(n) => leb128::write(out, u64::from(*n)),
            Owner::Name(s) => write_bytes(out, s.as_bytes()),
        }
    }
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    leb128::write(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}
