//! From manifests and filelogs to plumb trees and blobs, each converted
//! once.

use std::collections::HashMap;

use plumb_core::source::IngestSink;
use plumb_core::{BlobId, EntryValue, Name, ObjectId, Tree, TreeEntry, TreeId};

use crate::changeset::{parse_manifest_line, split_file_text};
use crate::error::HgError;
use crate::repo::Repo;

/// What one file revision became.
#[derive(Debug, Clone)]
pub(crate) struct FileRecord {
    /// The blob of its content (metadata stripped).
    pub blob: BlobId,
    /// The path it was copied or renamed from, if recorded.
    pub copy: Option<Vec<u8>>,
}

/// Converts manifests into trees and file revisions into blobs, with an
/// in-memory memo in front of the sink cache.
pub(crate) struct Converter<'a> {
    repo: &'a Repo,
    sink: &'a dyn IngestSink,
    /// `""`, or the scoping subdirectory followed by `/`.
    scope: Vec<u8>,
    files: HashMap<[u8; 20], FileRecord>,
    /// Per directory prefix: the manifest lines of its last conversion and
    /// the tree they gave.
    dirs: HashMap<Vec<u8>, (Vec<u8>, TreeId)>,
    pub files_read: u64,
    pub bytes_read: u64,
}

/// The sink cache key of a file revision: `f` + filelog node.
fn file_key(node: &[u8; 20]) -> Vec<u8> {
    let mut k = Vec::with_capacity(21);
    k.push(b'f');
    k.extend_from_slice(node);
    k
}

impl<'a> Converter<'a> {
    pub fn new(repo: &'a Repo, sink: &'a dyn IngestSink, scope: Vec<u8>) -> Self {
        Self {
            repo,
            sink,
            scope,
            files: HashMap::new(),
            dirs: HashMap::new(),
            files_read: 0,
            bytes_read: 0,
        }
    }

    /// The sink cache key of a manifest's tree: `m` + manifest node + the
    /// scope.
    fn manifest_key(&self, node: &[u8; 20]) -> Vec<u8> {
        let mut k = Vec::with_capacity(21 + self.scope.len());
        k.push(b'm');
        k.extend_from_slice(node);
        k.extend_from_slice(&self.scope);
        k
    }

    /// The tree of manifest `node` (whose text is `text`), scoped.
    pub fn tree(&mut self, node: &[u8; 20], text: &[u8]) -> Result<TreeId, HgError> {
        let key = self.manifest_key(node);
        if let Some(v) = self.sink.cache_get(&key)?
            && let Ok(bytes) = <[u8; 32]>::try_from(v.as_slice())
        {
            return Ok(TreeId::new(ObjectId::from_bytes(bytes)));
        }
        let range = scoped_range(text, &self.scope);
        let scope = self.scope.clone();
        let id = self.build(&scope, range)?;
        self.sink.cache_put(&key, id.as_bytes())?;
        Ok(id)
    }

    /// The tree of the manifest lines `range`, all below `prefix`.
    fn build(&mut self, prefix: &[u8], range: &[u8]) -> Result<TreeId, HgError> {
        if let Some((bytes, id)) = self.dirs.get(prefix)
            && bytes.as_slice() == range
        {
            return Ok(*id);
        }
        let mut entries = Vec::new();
        let mut pos = 0;
        while pos < range.len() {
            let end = line_end(range, pos);
            let raw = &range[pos..end];
            // Only a file directly here needs its node parsed.
            let path_len = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
            let rel = raw.get(prefix.len()..path_len).unwrap_or_default();
            if let Some(slash) = rel.iter().position(|b| *b == b'/') {
                let sub = &rel[..slash];
                let path = &raw[..path_len];
                let sub_prefix = &raw[..prefix.len() + slash + 1];
                let mut q = pos;
                while q < range.len() && range[q..].starts_with(sub_prefix) {
                    q = next_line(range, q);
                }
                let sub_prefix = sub_prefix.to_vec();
                let id = self.build(&sub_prefix, &range[pos..q])?;
                entries.push(TreeEntry {
                    name: name(sub, path)?,
                    value: EntryValue::Tree(id),
                });
                pos = q;
            } else {
                let line = parse_manifest_line(raw).map_err(HgError::Corrupt)?;
                let rel = &line.path[prefix.len()..];
                let blob = self.record(line.path, &line.node)?.blob;
                let value = match line.flags {
                    b"" => EntryValue::File(blob),
                    b"x" => EntryValue::Executable(blob),
                    b"l" => EntryValue::Symlink(blob),
                    other => {
                        return Err(HgError::BadPath {
                            path: String::from_utf8_lossy(line.path).into_owned(),
                            reason: format!(
                                "unsupported manifest flags {:?}",
                                String::from_utf8_lossy(other)
                            ),
                        });
                    }
                };
                entries.push(TreeEntry {
                    name: name(rel, line.path)?,
                    value,
                });
                pos = next_line(range, pos);
            }
        }
        let tree = Tree::new(entries).map_err(|e| HgError::BadPath {
            path: String::from_utf8_lossy(prefix).into_owned(),
            reason: e.to_string(),
        })?;
        let id = self.sink.put_tree(&tree)?;
        self.dirs.insert(prefix.to_vec(), (range.to_vec(), id));
        Ok(id)
    }

    /// What revision `node` of `path` became, converting it if needed.
    pub fn record(&mut self, path: &[u8], node: &[u8; 20]) -> Result<FileRecord, HgError> {
        if let Some(r) = self.files.get(node) {
            return Ok(r.clone());
        }
        let key = file_key(node);
        if let Some(v) = self.sink.cache_get(&key)?
            && v.len() >= 33
            && let Ok(bytes) = <[u8; 32]>::try_from(&v[..32])
        {
            let rec = FileRecord {
                blob: BlobId::new(ObjectId::from_bytes(bytes)),
                copy: (v[32] == 1).then(|| v[33..].to_vec()),
            };
            self.files.insert(*node, rec.clone());
            return Ok(rec);
        }
        let text = self.repo.file_text(path, node)?;
        self.files_read += 1;
        self.bytes_read += text.len() as u64;
        let (meta, content) = split_file_text(&text);
        let blob = self.sink.put_blob(content)?;
        let copy = meta.into_iter().find(|(k, _)| k == b"copy").map(|(_, v)| v);
        let mut value = blob.as_bytes().to_vec();
        match &copy {
            Some(c) => {
                value.push(1);
                value.extend_from_slice(c);
            }
            None => value.push(0),
        }
        self.sink.cache_put(&key, &value)?;
        let rec = FileRecord { blob, copy };
        self.files.insert(*node, rec.clone());
        Ok(rec)
    }

    /// Whether `path` lies inside the scope.
    pub fn in_scope(&self, path: &[u8]) -> bool {
        path.starts_with(&self.scope)
    }
}

fn name(bytes: &[u8], path: &[u8]) -> Result<Name, HgError> {
    Name::new(bytes).map_err(|e| HgError::BadPath {
        path: String::from_utf8_lossy(path).into_owned(),
        reason: e.to_string(),
    })
}

fn line_end(text: &[u8], pos: usize) -> usize {
    text[pos..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(text.len(), |i| pos + i)
}

fn next_line(text: &[u8], pos: usize) -> usize {
    (line_end(text, pos) + 1).min(text.len())
}

/// The lines of `text` whose path starts with `prefix` (contiguous, since
/// a manifest is sorted by path).
fn scoped_range<'t>(text: &'t [u8], prefix: &[u8]) -> &'t [u8] {
    if prefix.is_empty() {
        return text;
    }
    let mut pos = 0;
    while pos < text.len() && !text[pos..].starts_with(prefix) {
        pos = next_line(text, pos);
    }
    let start = pos;
    while pos < text.len() && text[pos..].starts_with(prefix) {
        pos = next_line(text, pos);
    }
    &text[start..pos]
}

/// The node of `path` in a sorted manifest text, by binary search.
pub(crate) fn manifest_find(text: &[u8], path: &[u8]) -> Option<([u8; 20], Vec<u8>)> {
    let (mut lo, mut hi) = (0usize, text.len());
    // Invariant: lines starting before `lo` sort before `path`; lines
    // starting at or after `hi` sort after it.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = text[..mid]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let start = start.max(lo);
        let end = line_end(text, start);
        let line = &text[start..end];
        let p = &line[..line.iter().position(|b| *b == 0).unwrap_or(line.len())];
        match p.cmp(path) {
            std::cmp::Ordering::Less => lo = (end + 1).min(text.len()).max(start + 1),
            std::cmp::Ordering::Greater => hi = start,
            std::cmp::Ordering::Equal => {
                let l = parse_manifest_line(line).ok()?;
                return Some((l.node, l.flags.to_vec()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_and_scope() {
        let h = "0".repeat(40);
        let text = format!("a\0{h}\nb/c\0{h}x\nb/d\0{h}\nb0\0{h}l\nc\0{h}\n");
        let t = text.as_bytes();
        for p in ["a", "b/c", "b/d", "b0", "c"] {
            assert!(manifest_find(t, p.as_bytes()).is_some(), "{p}");
        }
        assert_eq!(manifest_find(t, b"b/c").unwrap().1, b"x");
        for p in ["", "b", "0", "zz", "b/"] {
            assert!(manifest_find(t, p.as_bytes()).is_none(), "{p}");
        }
        assert_eq!(
            scoped_range(t, b"b/"),
            format!("b/c\0{h}x\nb/d\0{h}\n").as_bytes()
        );
        assert_eq!(scoped_range(t, b"q/"), b"");
    }
}
