//! From manifests and filelogs to plumb trees and blobs, each converted
//! once.
//!
//! The converter keeps the tree of the last manifest it converted in
//! memory, with each directory's id. A new manifest is compared with that
//! one line by line (both are sorted by path, and runs of equal bytes are
//! skipped at memory speed), the lines that differ are applied to the
//! in-memory tree, and only the directories on their paths are encoded and
//! stored again. So a changeset costs work in proportion to what it
//! changed, plus one comparison of its manifest with the last.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use plumb_core::source::IngestSink;
use plumb_core::{BlobId, EntryValue, Name, ObjectId, Tree, TreeEntry, TreeId, is_reserved_name};

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

/// An entry of the in-memory tree.
enum Node {
    File(EntryValue),
    Dir(Dir),
}

/// A directory of the in-memory tree, with its id while it is unchanged.
#[derive(Default)]
struct Dir {
    entries: BTreeMap<Vec<u8>, Node>,
    id: Option<TreeId>,
}

/// One line that differs between the last manifest and the new one.
enum Change<'a> {
    /// A path the new manifest no longer has.
    Remove(&'a [u8]),
    /// A line of the new manifest that the last one lacks.
    Set(&'a [u8]),
}

/// Converts manifests into trees and file revisions into blobs, with an
/// in-memory memo in front of the sink cache.
pub(crate) struct Converter<'a> {
    repo: &'a Repo,
    sink: &'a dyn IngestSink,
    /// `""`, or the scoping subdirectory followed by `/`.
    scope: Vec<u8>,
    files: HashMap<[u8; 20], FileRecord>,
    /// The tree of the scoped lines of `last`.
    root: Dir,
    /// The last manifest converted, and where its scoped lines lie.
    last: (Arc<Vec<u8>>, usize, usize),
    pub files_read: u64,
    pub bytes_read: u64,
    /// Paths left out (a reserved component, see
    /// [`plumb_core::is_reserved_name`]), one line each naming the
    /// changeset and the path.
    pub warnings: Vec<String>,
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
            root: Dir::default(),
            last: (Arc::default(), 0, 0),
            files_read: 0,
            bytes_read: 0,
            warnings: Vec::new(),
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

    /// The tree of manifest `node` (whose text is `text`), scoped; paths
    /// through a reserved name are left out, with a warning naming
    /// `changeset` (the revision the manifest is converted for).
    pub fn tree(
        &mut self,
        node: &[u8; 20],
        text: Arc<Vec<u8>>,
        changeset: &str,
    ) -> Result<TreeId, HgError> {
        let key = self.manifest_key(node);
        if let Some(v) = self.sink.cache_get(&key)?
            && let Ok(bytes) = <[u8; 32]>::try_from(v.as_slice())
        {
            return Ok(TreeId::new(ObjectId::from_bytes(bytes)));
        }
        let (start, end) = scoped_bounds(&text, &self.scope);
        let (old, old_start, old_end) = std::mem::take(&mut self.last);
        let mut changes = Vec::new();
        diff(&old[old_start..old_end], &text[start..end], &mut changes)?;
        // Removals first, so that a file may replace a directory (or the
        // reverse) within one changeset.
        for c in &changes {
            if let Change::Remove(path) = c {
                if is_reserved_path(path) {
                    continue;
                }
                let rel = &path[self.scope.len()..];
                if !remove(&mut self.root, rel) {
                    return Err(HgError::Corrupt(format!(
                        "manifest comparison lost track of {:?}",
                        String::from_utf8_lossy(path)
                    )));
                }
            }
        }
        for c in &changes {
            if let Change::Set(line) = c {
                let path = path_of(line);
                if is_reserved_path(path) {
                    check_path(path)?;
                    self.warnings.push(format!(
                        "{changeset}: left out {}: repository metadata or a plumb store is never snapshotted",
                        String::from_utf8_lossy(path)
                    ));
                    continue;
                }
                self.set(line)?;
            }
        }
        drop(changes);
        let id = dir_id(self.sink, &mut self.root, &self.scope)?;
        self.last = (text, start, end);
        self.sink.cache_put(&key, id.as_bytes())?;
        Ok(id)
    }

    /// Applies one manifest line to the in-memory tree.
    fn set(&mut self, line: &[u8]) -> Result<(), HgError> {
        let line = parse_manifest_line(line).map_err(HgError::Corrupt)?;
        let path = line.path;
        check_path(path)?;
        let blob = self.record(path, &line.node)?.blob;
        let value = match line.flags {
            b"" => EntryValue::File(blob),
            b"x" => EntryValue::Executable(blob),
            b"l" => EntryValue::Symlink(blob),
            other => {
                return Err(HgError::BadPath {
                    path: String::from_utf8_lossy(path).into_owned(),
                    reason: format!(
                        "unsupported manifest flags {:?}",
                        String::from_utf8_lossy(other)
                    ),
                });
            }
        };
        let both = || HgError::BadPath {
            path: String::from_utf8_lossy(path).into_owned(),
            reason: "it is both a file and a directory".to_owned(),
        };
        let mut dir = &mut self.root;
        let mut parts = path[self.scope.len()..].split(|b| *b == b'/').peekable();
        while let Some(part) = parts.next() {
            dir.id = None;
            if parts.peek().is_none() {
                match dir.entries.get_mut(part) {
                    Some(Node::File(v)) => *v = value,
                    Some(Node::Dir(_)) => return Err(both()),
                    None => {
                        dir.entries.insert(part.to_vec(), Node::File(value));
                    }
                }
                return Ok(());
            }
            if !dir.entries.contains_key(part) {
                dir.entries.insert(part.to_vec(), Node::Dir(Dir::default()));
            }
            match dir.entries.get_mut(part) {
                Some(Node::Dir(d)) => dir = d,
                _ => return Err(both()),
            }
        }
        Ok(())
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
        let text = self
            .repo
            .file_text(path, node, self.sink.max_object_size())?;
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

/// Checks that every component of the tracked path `path` is a valid name
/// (none empty, `.`, `..`, or holding a NUL), before the path is used to
/// find or open anything.
pub(crate) fn check_path(path: &[u8]) -> Result<(), HgError> {
    path.split(|b| *b == b'/')
        .try_for_each(Name::check)
        .map_err(|e| HgError::BadPath {
            path: String::from_utf8_lossy(path).into_owned(),
            reason: e.to_string(),
        })
}

/// Whether the tracked path `path` goes through a reserved name.
pub(crate) fn is_reserved_path(path: &[u8]) -> bool {
    path.split(|b| *b == b'/').any(is_reserved_name)
}

/// Removes `rel` from the tree below `dir`, and directories it leaves
/// empty; false if it was not there.
fn remove(dir: &mut Dir, rel: &[u8]) -> bool {
    let (part, rest) = match rel.iter().position(|b| *b == b'/') {
        Some(i) => (&rel[..i], Some(&rel[i + 1..])),
        None => (rel, None),
    };
    let found = match (dir.entries.get_mut(part), rest) {
        (Some(Node::File(_)), None) => {
            dir.entries.remove(part);
            true
        }
        (Some(Node::Dir(sub)), Some(rest)) => {
            let found = remove(sub, rest);
            if sub.entries.is_empty() {
                dir.entries.remove(part);
            }
            found
        }
        _ => false,
    };
    if found {
        dir.id = None;
    }
    found
}

/// The id of `dir`, storing it and every changed directory below it.
fn dir_id(sink: &dyn IngestSink, dir: &mut Dir, prefix: &[u8]) -> Result<TreeId, HgError> {
    if let Some(id) = dir.id {
        return Ok(id);
    }
    let mut entries = Vec::with_capacity(dir.entries.len());
    for (k, node) in &mut dir.entries {
        let value = match node {
            Node::File(v) => v.clone(),
            Node::Dir(d) => EntryValue::Tree(dir_id(sink, d, prefix)?),
        };
        let name = Name::new(k.clone()).map_err(|e| HgError::BadPath {
            path: String::from_utf8_lossy(k).into_owned(),
            reason: e.to_string(),
        })?;
        entries.push(TreeEntry::new(name, value));
    }
    let tree = Tree::new(entries).map_err(|e| HgError::BadPath {
        path: String::from_utf8_lossy(prefix).into_owned(),
        reason: e.to_string(),
    })?;
    let id = sink.put_tree(&tree)?;
    dir.id = Some(id);
    Ok(id)
}

/// The path of a manifest line (up to its NUL).
fn path_of(line: &[u8]) -> &[u8] {
    &line[..line.iter().position(|b| *b == 0).unwrap_or(line.len())]
}

/// How many leading bytes `a` and `b` share.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const STEP: usize = 256;
    let n = a.len().min(b.len());
    let mut k = 0;
    while k + STEP <= n && a[k..k + STEP] == b[k..k + STEP] {
        k += STEP;
    }
    while k < n && a[k] == b[k] {
        k += 1;
    }
    k
}

/// The lines of the sorted manifest text `new` that `old` lacks, and the
/// paths of `old` that `new` lacks, in path order. Each line of `new` that
/// is reported is checked to sort strictly between its neighbours, so an
/// unsorted manifest is an error rather than a wrong tree.
fn diff<'a>(old: &'a [u8], new: &'a [u8], out: &mut Vec<Change<'a>>) -> Result<(), HgError> {
    let (mut i, mut j) = (0, 0);
    loop {
        let k = common_prefix(&old[i..], &new[j..]);
        // Back to the start of the line holding the first difference.
        let back = old[i..i + k]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1);
        i += back;
        j += back;
        match (i < old.len(), j < new.len()) {
            (false, false) => return Ok(()),
            (true, false) => {
                out.push(Change::Remove(path_of(&old[i..line_end(old, i)])));
                i = next_line(old, i);
            }
            (false, true) => {
                check_order(new, j)?;
                out.push(Change::Set(&new[j..line_end(new, j)]));
                j = next_line(new, j);
            }
            (true, true) => {
                let op = path_of(&old[i..line_end(old, i)]);
                let nl = &new[j..line_end(new, j)];
                match op.cmp(path_of(nl)) {
                    std::cmp::Ordering::Less => {
                        out.push(Change::Remove(op));
                        i = next_line(old, i);
                    }
                    std::cmp::Ordering::Greater => {
                        check_order(new, j)?;
                        out.push(Change::Set(nl));
                        j = next_line(new, j);
                    }
                    std::cmp::Ordering::Equal => {
                        check_order(new, j)?;
                        out.push(Change::Set(nl));
                        i = next_line(old, i);
                        j = next_line(new, j);
                    }
                }
            }
        }
    }
}

/// Checks that the line of `text` starting at `pos` sorts strictly after
/// the line before it and before the line after it.
fn check_order(text: &[u8], pos: usize) -> Result<(), HgError> {
    let this = path_of(&text[pos..line_end(text, pos)]);
    let unsorted = || {
        HgError::Corrupt(format!(
            "the manifest is not sorted by path (at {:?})",
            String::from_utf8_lossy(this)
        ))
    };
    if pos > 0 {
        let start = text[..pos - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1);
        if path_of(&text[start..pos - 1]) >= this {
            return Err(unsorted());
        }
    }
    let next = next_line(text, pos);
    if next < text.len() && path_of(&text[next..line_end(text, next)]) <= this {
        return Err(unsorted());
    }
    Ok(())
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

/// Where the lines of `text` whose path starts with `prefix` lie
/// (contiguous, since a manifest is sorted by path).
fn scoped_bounds(text: &[u8], prefix: &[u8]) -> (usize, usize) {
    if prefix.is_empty() {
        return (0, text.len());
    }
    let mut pos = 0;
    while pos < text.len() && !text[pos..].starts_with(prefix) {
        pos = next_line(text, pos);
    }
    let start = pos;
    while pos < text.len() && text[pos..].starts_with(prefix) {
        pos = next_line(text, pos);
    }
    (start, pos)
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
        let (s, e) = scoped_bounds(t, b"b/");
        assert_eq!(&t[s..e], format!("b/c\0{h}x\nb/d\0{h}\n").as_bytes());
        let (s, e) = scoped_bounds(t, b"q/");
        assert_eq!(s, e);
    }

    fn changes(old: &str, new: &str) -> Result<Vec<String>, HgError> {
        let mut out = Vec::new();
        diff(old.as_bytes(), new.as_bytes(), &mut out)?;
        Ok(out
            .into_iter()
            .map(|c| match c {
                Change::Remove(p) => format!("-{}", String::from_utf8_lossy(p)),
                Change::Set(l) => format!("+{}", String::from_utf8_lossy(path_of(l))),
            })
            .collect())
    }

    #[test]
    fn manifest_diffs() {
        let h = "0".repeat(40);
        let g = "1".repeat(40);
        let m = |lines: &[(&str, &str)]| -> String {
            lines.iter().map(|(p, n)| format!("{p}\0{n}\n")).collect()
        };
        let old = m(&[("a", &h), ("ab", &h), ("b/c", &h), ("d", &h)]);
        assert!(changes(&old, &old).unwrap().is_empty());
        assert_eq!(changes("", &old).unwrap(), ["+a", "+ab", "+b/c", "+d"]);
        assert_eq!(changes(&old, "").unwrap(), ["-a", "-ab", "-b/c", "-d"]);
        let new = m(&[("a", &h), ("b/c", &g), ("b/e", &h), ("d", &h), ("e", &h)]);
        assert_eq!(changes(&old, &new).unwrap(), ["-ab", "+b/c", "+b/e", "+e"]);
        let new = m(&[("a", &h), ("a0", &h), ("ab", &h), ("b/c", &h), ("d", &g)]);
        assert_eq!(changes(&old, &new).unwrap(), ["+a0", "+d"]);
        // A line that is a prefix of the next one's path.
        let new = m(&[("a", &g), ("ab", &h), ("b/c", &h), ("d", &h)]);
        assert_eq!(changes(&old, &new).unwrap(), ["+a"]);
        // Out of order: refused.
        let bad = m(&[("a", &h), ("d", &h), ("c", &h)]);
        assert!(changes("", &bad).is_err());
        let bad = m(&[("a", &h), ("ab", &h), ("b/c", &h), ("a1", &g)]);
        assert!(changes(&old, &bad).is_err());
    }
}
