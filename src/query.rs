//! Queries over stored trees: look up a path, list, and compare.

use plumb_core::{EntryValue, Tree, TreeId};

use crate::store::{Store, StoreError};

/// Splits a slash-separated path into its non-empty components; `.`
/// components are dropped and `..` is refused (stored trees have neither).
pub fn components(path: &[u8]) -> Result<Vec<&[u8]>, StoreError> {
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(StoreError::Invalid(format!(
                    "path {:?} may not contain '..'",
                    String::from_utf8_lossy(path)
                )));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The entry at `path` below `root`; the empty path is the root itself.
pub fn lookup(store: &Store, root: TreeId, path: &[u8]) -> Result<Option<EntryValue>, StoreError> {
    let mut current = EntryValue::Tree(root);
    for name in components(path)? {
        let EntryValue::Tree(id) = current else {
            return Ok(None);
        };
        match store.tree(&id)?.get(name) {
            Some(e) => current = e.value.clone(),
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// A callback of [`walk`]: the entry's path and value.
pub type WalkVisit<'a> = dyn FnMut(&[u8], &EntryValue) -> Result<(), StoreError> + 'a;

/// Visits the entries below `tree` in path order (depth first, a
/// directory's entry before its contents when `recursive`). `prefix` is
/// prepended to every path, followed by `/` when non-empty.
pub fn walk(
    store: &Store,
    tree: &Tree,
    prefix: &[u8],
    recursive: bool,
    visit: &mut WalkVisit<'_>,
) -> Result<(), StoreError> {
    for e in tree.entries() {
        let path = join(prefix, e.name.as_bytes());
        visit(&path, &e.value)?;
        if recursive && let EntryValue::Tree(id) = &e.value {
            walk(store, &store.tree(id)?, &path, true, visit)?;
        }
    }
    Ok(())
}

/// `prefix/name`, or `name` when the prefix is empty.
pub fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
    if !prefix.is_empty() {
        p.extend_from_slice(prefix);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// One difference between two trees: a path whose non-tree entry was
/// added, removed, or changed (content, kind or mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path, relative to the compared roots.
    pub path: Vec<u8>,
    /// The entry before, if any.
    pub old: Option<EntryValue>,
    /// The entry after, if any.
    pub new: Option<EntryValue>,
}

/// The differences between two trees, in path order. Subtrees with equal
/// ids are skipped without being read, so the cost follows what changed.
pub fn diff_trees(
    store: &Store,
    old: Option<TreeId>,
    new: Option<TreeId>,
) -> Result<Vec<Change>, StoreError> {
    let mut out = Vec::new();
    diff_into(store, old, new, &[], &mut out)?;
    Ok(out)
}

fn diff_into(
    store: &Store,
    old: Option<TreeId>,
    new: Option<TreeId>,
    prefix: &[u8],
    out: &mut Vec<Change>,
) -> Result<(), StoreError> {
    if old == new {
        return Ok(());
    }
    let load = |id: Option<TreeId>| -> Result<Tree, StoreError> {
        id.map_or_else(|| Ok(Tree::default()), |id| store.tree(&id))
    };
    let (a, b) = (load(old)?, load(new)?);
    let (mut i, mut j) = (0, 0);
    let (ea, eb) = (a.entries(), b.entries());
    while i < ea.len() || j < eb.len() {
        let order = match (ea.get(i), eb.get(j)) {
            (Some(x), Some(y)) => x.name.cmp(&y.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, _) => std::cmp::Ordering::Greater,
        };
        let (x, y) = match order {
            std::cmp::Ordering::Less => {
                i += 1;
                (Some(&ea[i - 1]), None)
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                (None, Some(&eb[j - 1]))
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
                (Some(&ea[i - 1]), Some(&eb[j - 1]))
            }
        };
        let name = x.or(y).map(|e| e.name.as_bytes()).unwrap_or_default();
        let path = join(prefix, name);
        let xv = x.map(|e| &e.value);
        let yv = y.map(|e| &e.value);
        if xv == yv {
            continue;
        }
        let as_tree = |v: Option<&EntryValue>| match v {
            Some(EntryValue::Tree(id)) => Some(*id),
            _ => None,
        };
        let (xt, yt) = (as_tree(xv), as_tree(yv));
        // Non-tree sides are changes of their own; tree sides recurse.
        let x_leaf = xv.filter(|v| !matches!(v, EntryValue::Tree(_)));
        let y_leaf = yv.filter(|v| !matches!(v, EntryValue::Tree(_)));
        if x_leaf.is_some() || y_leaf.is_some() {
            out.push(Change {
                path: path.clone(),
                old: x_leaf.cloned(),
                new: y_leaf.cloned(),
            });
        }
        if xt.is_some() || yt.is_some() {
            diff_into(store, xt, yt, &path, out)?;
        }
    }
    Ok(())
}
