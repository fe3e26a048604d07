//! Reading revlogs: the index, chunk decompression, delta chains and node
//! verification.
//!
//! The decoders ([`index::parse`], [`chunk::decompress`], [`patch::apply`])
//! take bytes and return errors, never panic, and bound what they allocate
//! by their input or an explicit limit, so they can be fed untrusted bytes
//! (the `hg_revlog` fuzz target does). [`Revlog`] ties them to files.

pub mod chunk;
pub mod index;
pub mod patch;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha1::{Digest, Sha1};

pub use index::{Entry, Index, NULL_NODE};

/// Why revlog bytes cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevlogError {
    /// The index or a chunk ends early.
    #[error("truncated")]
    Truncated,
    /// The index is not version 1.
    #[error("revlog version {0} is not supported (only version 1)")]
    Version(u32),
    /// The index header has flags other than inline and generaldelta.
    #[error("unknown revlog header flags {0:#06x}")]
    HeaderFlags(u16),
    /// More revisions than a revision number can name.
    #[error("too many revisions")]
    TooManyRevisions,
    /// An index entry is inconsistent.
    #[error("revision {rev}: {reason}")]
    BadEntry {
        /// The revision.
        rev: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A chunk's header byte names no known compression.
    #[error("unknown chunk compression header {0:#04x}")]
    Compression(u8),
    /// A compressed chunk does not decompress.
    #[error("{what} chunk does not decompress: {reason}")]
    Decompress {
        /// `zlib` or `zstd`.
        what: &'static str,
        /// The decoder's explanation.
        reason: String,
    },
    /// Output would exceed the allowed size.
    #[error("data larger than the {limit} bytes allowed")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A delta is malformed.
    #[error("malformed delta: {reason}")]
    Patch {
        /// What is wrong.
        reason: &'static str,
    },
}

/// A failure to read one revision of one revlog file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The content is corrupt or of an unsupported kind.
    #[error("{}{}: {reason}", path.display(), rev.map(|r| format!(", revision {r}")).unwrap_or_default())]
    Corrupt {
        /// The index file.
        path: PathBuf,
        /// The revision, if one is concerned.
        rev: Option<usize>,
        /// What is wrong.
        reason: String,
    },
}

/// The bound on what one chunk of revision `rev` may decompress to, or a
/// delta may produce: generous for any real delta, yet finite.
fn chunk_limit(raw: u32, base_raw: u32) -> usize {
    (raw as usize)
        .saturating_add(base_raw as usize)
        .saturating_mul(13)
        .saturating_add(1 << 16)
}

/// The SHA-1 node of a text with parents `p1`, `p2`: the hash of the two
/// parent nodes in ascending order, then the text.
pub fn node_hash(p1: &[u8; 20], p2: &[u8; 20], text: &[u8]) -> [u8; 20] {
    let (a, b) = if p1 <= p2 { (p1, p2) } else { (p2, p1) };
    let mut h = Sha1::new();
    h.update(a);
    h.update(b);
    h.update(text);
    h.finalize().into()
}

enum Data {
    /// The whole index file, revision data interleaved.
    Inline(Vec<u8>),
    /// The separate data file.
    Split { file: File, path: PathBuf },
}

/// An open revlog: its parsed index and a way to read its chunks. Keeps the
/// last full text it built, so reading revisions in order applies each delta
/// once.
pub struct Revlog {
    path: PathBuf,
    index: Index,
    data: Data,
    nodemap: RefCell<Option<HashMap<[u8; 20], u32>>>,
    last: RefCell<Option<(usize, Arc<Vec<u8>>)>>,
}

impl std::fmt::Debug for Revlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revlog")
            .field("path", &self.path)
            .field("revisions", &self.index.entries.len())
            .finish()
    }
}

impl Revlog {
    /// Opens the revlog whose index is `index_path` (`….i`); its data file,
    /// if the index is not inline, is the same path ending in `.d`
    /// (`data_path` overrides that, for hashed store paths). A missing index
    /// is an empty revlog.
    pub fn open(index_path: &Path, data_path: Option<PathBuf>) -> Result<Self, ReadError> {
        let bytes = match std::fs::read(index_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(ReadError::Io {
                    path: index_path.to_path_buf(),
                    source,
                });
            }
        };
        let index = index::parse(&bytes).map_err(|e| ReadError::Corrupt {
            path: index_path.to_path_buf(),
            rev: None,
            reason: e.to_string(),
        })?;
        let data = if index.inline || index.entries.is_empty() {
            Data::Inline(bytes)
        } else {
            let path = data_path.unwrap_or_else(|| index_path.with_extension("d"));
            let file = File::open(&path).map_err(|source| ReadError::Io {
                path: path.clone(),
                source,
            })?;
            Data::Split { file, path }
        };
        Ok(Self {
            path: index_path.to_path_buf(),
            index,
            data,
            nodemap: RefCell::new(None),
            last: RefCell::new(None),
        })
    }

    /// The index file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of revisions.
    pub fn len(&self) -> usize {
        self.index.entries.len()
    }

    /// Whether there are no revisions.
    pub fn is_empty(&self) -> bool {
        self.index.entries.is_empty()
    }

    /// The index entry of `rev`.
    pub fn entry(&self, rev: usize) -> Option<&Entry> {
        self.index.entries.get(rev)
    }

    /// The index entries.
    pub fn entries(&self) -> &[Entry] {
        &self.index.entries
    }

    /// The node of `rev`, or the null node for `-1` (or anything invalid).
    pub fn node(&self, rev: i32) -> [u8; 20] {
        usize::try_from(rev)
            .ok()
            .and_then(|r| self.index.entries.get(r))
            .map_or(NULL_NODE, |e| e.node)
    }

    /// The revision whose node is `node`, if any.
    pub fn rev(&self, node: &[u8; 20]) -> Option<usize> {
        let mut map = self.nodemap.borrow_mut();
        let map = map.get_or_insert_with(|| {
            self.index
                .entries
                .iter()
                .enumerate()
                .map(|(r, e)| (e.node, r as u32))
                .collect()
        });
        map.get(node).map(|r| *r as usize)
    }

    fn corrupt(&self, rev: usize, reason: impl std::fmt::Display) -> ReadError {
        ReadError::Corrupt {
            path: self.path.clone(),
            rev: Some(rev),
            reason: reason.to_string(),
        }
    }

    /// The raw (still compressed) chunk of `rev`.
    fn raw_chunk(&self, rev: usize) -> Result<std::borrow::Cow<'_, [u8]>, ReadError> {
        let e = &self.index.entries[rev];
        let len = e.compressed_len as usize;
        match &self.data {
            Data::Inline(bytes) => {
                let start = self.index.inline_positions[rev] as usize;
                Ok(std::borrow::Cow::Borrowed(&bytes[start..start + len]))
            }
            Data::Split { file, path } => {
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, e.offset).map_err(|source| {
                    if source.kind() == std::io::ErrorKind::UnexpectedEof {
                        self.corrupt(rev, format!("data runs past the end of {}", path.display()))
                    } else {
                        ReadError::Io {
                            path: path.clone(),
                            source,
                        }
                    }
                })?;
                Ok(std::borrow::Cow::Owned(buf))
            }
        }
    }

    /// The full text of `rev`, rebuilt from its delta chain and checked
    /// against its node. A revision with flags (censored, ellipsis,
    /// externally stored) is refused: its text is not what its node names.
    pub fn text(&self, rev: usize) -> Result<Vec<u8>, ReadError> {
        self.shared_text(rev).map(Arc::unwrap_or_clone)
    }

    /// Like [`text`](Self::text), but shares the text with the revlog's
    /// memory of the last one built instead of copying it.
    pub fn shared_text(&self, rev: usize) -> Result<Arc<Vec<u8>>, ReadError> {
        let entry = *self
            .index
            .entries
            .get(rev)
            .ok_or_else(|| self.corrupt(rev, "no such revision"))?;
        if entry.flags != 0 {
            return Err(self.corrupt(
                rev,
                format!(
                    "revision flags {:#06x} ({}) are not supported",
                    entry.flags,
                    flag_names(entry.flags)
                ),
            ));
        }
        // The chain, newest first, down to a full text or to the text we
        // still hold.
        let mut chain = Vec::new();
        let mut start: Option<Arc<Vec<u8>>> = None;
        let mut at = rev;
        {
            let last = self.last.borrow();
            loop {
                if let Some((lrev, text)) = last.as_ref()
                    && *lrev == at
                {
                    start = Some(Arc::clone(text));
                    break;
                }
                chain.push(at);
                let base = self.index.entries[at].base;
                if base == at as i32 {
                    break;
                }
                if base < 0 {
                    // A delta against the empty text.
                    break;
                }
                at = if self.index.generaldelta {
                    base as usize
                } else {
                    at.checked_sub(1)
                        .ok_or_else(|| self.corrupt(rev, "broken delta chain"))?
                };
            }
        }
        if chain.is_empty()
            && let Some(text) = start
        {
            // The text held is the one asked for (checked when built).
            return Ok(text);
        }
        let mut built: Option<Vec<u8>> = None;
        let mut base_raw = 0u32;
        for (i, &r) in chain.iter().rev().enumerate() {
            let e = &self.index.entries[r];
            let limit = chunk_limit(e.raw_len, base_raw);
            let raw = self.raw_chunk(r)?;
            let chunk = chunk::decompress(&raw, limit).map_err(|err| self.corrupt(r, err))?;
            let is_full = i == 0 && e.base == r as i32;
            let next = if is_full {
                chunk.into_owned()
            } else {
                let base: &[u8] = match (&built, &start) {
                    (Some(b), _) => b,
                    (None, Some(s)) => s,
                    (None, None) => &[],
                };
                patch::apply(base, &chunk, limit).map_err(|err| self.corrupt(r, err))?
            };
            built = Some(next);
            base_raw = e.raw_len;
        }
        let text = built.unwrap_or_default();
        if text.len() != entry.raw_len as usize {
            return Err(self.corrupt(
                rev,
                format!(
                    "text is {} bytes, the index says {}",
                    text.len(),
                    entry.raw_len
                ),
            ));
        }
        let node = node_hash(&self.node(entry.p1), &self.node(entry.p2), &text);
        if node != entry.node {
            return Err(self.corrupt(
                rev,
                format!(
                    "hash mismatch: node {} but the text hashes to {}",
                    hex(&entry.node),
                    hex(&node)
                ),
            ));
        }
        let text = Arc::new(text);
        *self.last.borrow_mut() = Some((rev, Arc::clone(&text)));
        Ok(text)
    }
}

fn flag_names(flags: u16) -> String {
    let mut names = Vec::new();
    for (bit, name) in [
        (1u16 << 15, "censored"),
        (1 << 14, "ellipsis"),
        (1 << 13, "externally stored"),
        (1 << 12, "has sidedata"),
    ] {
        if flags & bit != 0 {
            names.push(name);
        }
    }
    if names.is_empty() {
        "unknown".to_owned()
    } else {
        names.join(", ")
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Parses 40 hex digits into a node.
pub fn parse_node(hex: &[u8]) -> Option<[u8; 20]> {
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let v = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        out[i] = (v(pair[0])? << 4) | v(pair[1])?;
    }
    Some(out)
}
