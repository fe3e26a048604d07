//! A repository on disk: requirements, store, revlogs, visibility and names.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use crate::changeset::{Changeset, parse_manifest_line};
use crate::error::HgError;
use crate::obsolete;
use crate::requires::Requirements;
use crate::revlog::{NULL_NODE, ReadError, Revlog, parse_node};
use crate::store_path::{self, Encoding};

/// How many filelogs are kept open at once before the set is cleared.
const MAX_OPEN_FILELOGS: usize = 4096;

/// An open repository.
pub struct Repo {
    /// The `.hg` directory.
    hg: PathBuf,
    /// The store directory.
    store: PathBuf,
    requirements: Requirements,
    encoding: Encoding,
    changelog: Revlog,
    manifest: Revlog,
    /// Per revision: hidden (obsolete or archived) or not.
    hidden: Vec<bool>,
    filelogs: RefCell<HashMap<Vec<u8>, Rc<Revlog>>>,
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, HgError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HgError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl Repo {
    /// Opens the repository whose working directory (or `.hg` directory)
    /// is `root`, checking its requirements.
    pub fn open(root: &Path) -> Result<Self, HgError> {
        let hg = if root.file_name() == Some(OsStr::new(".hg")) && root.join("store").is_dir() {
            root.to_path_buf()
        } else {
            root.join(".hg")
        };
        if !hg.is_dir() {
            return Err(HgError::NotARepository);
        }
        let requires = read_optional(&hg.join("requires"))?.unwrap_or_default();
        let shared_hg = match read_optional(&hg.join("sharedpath"))? {
            Some(p) => {
                let p = PathBuf::from(OsStr::from_bytes(p.trim_ascii_end()));
                if p.is_absolute() { p } else { hg.join(p) }
            }
            None => hg.clone(),
        };
        let store_requires = read_optional(&shared_hg.join("store").join("requires"))?;
        let requirements = Requirements::check(&requires, store_requires.as_deref())
            .map_err(HgError::Requirement)?;
        if !requirements.has("revlogv1") {
            return Err(HgError::Requirement(
                "(none: version 0 revlogs, without `revlogv1`)".to_owned(),
            ));
        }
        if (requirements.has("shared") || requirements.has("relshared")) && shared_hg == hg {
            return Err(HgError::Corrupt(
                "a shared repository without .hg/sharedpath".to_owned(),
            ));
        }
        let encoding = requirements.encoding();
        let store = if requirements.has("store") {
            shared_hg.join("store")
        } else {
            shared_hg.clone()
        };
        let changelog = Revlog::open(&store.join("00changelog.i"), None)?;
        let manifest = Revlog::open(&store.join("00manifest.i"), None)?;
        let mut repo = Self {
            hg,
            store,
            requirements,
            encoding,
            changelog,
            manifest,
            hidden: Vec::new(),
            filelogs: RefCell::new(HashMap::new()),
        };
        repo.hidden = repo.compute_hidden()?;
        Ok(repo)
    }

    /// The changelog.
    pub fn changelog(&self) -> &Revlog {
        &self.changelog
    }

    /// Whether revision `rev` is hidden.
    pub fn is_hidden(&self, rev: usize) -> bool {
        self.hidden.get(rev).copied().unwrap_or(true)
    }

    /// The parents of `rev` as revision numbers (`-1` for none).
    pub fn parents(&self, rev: usize) -> (i32, i32) {
        self.changelog.entry(rev).map_or((-1, -1), |e| (e.p1, e.p2))
    }

    fn compute_hidden(&self) -> Result<Vec<bool>, HgError> {
        let Some(obsstore) = read_optional(&self.store.join("obsstore"))? else {
            // Archived and internal phases hide without markers too.
            return self.hidden_with(&HashSet::new());
        };
        let preds = obsolete::predecessors(&obsstore).map_err(|e| {
            HgError::Corrupt(format!("{}: {e}", self.store.join("obsstore").display()))
        })?;
        let obsolete: HashSet<usize> = preds.iter().filter_map(|n| self.changelog.rev(n)).collect();
        self.hidden_with(&obsolete)
    }

    fn hidden_with(&self, obsolete: &HashSet<usize>) -> Result<Vec<bool>, HgError> {
        let parents: Vec<(i32, i32)> = self
            .changelog
            .entries()
            .iter()
            .map(|e| (e.p1, e.p2))
            .collect();
        let roots: Vec<(u32, usize)> = read_optional(&self.store.join("phaseroots"))?
            .map(|b| obsolete::phase_roots(&b))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(p, node)| Some((p, self.changelog.rev(&node)?)))
            .collect();
        if obsolete.is_empty() && roots.iter().all(|(p, _)| *p < obsolete::HIDDEN_PHASE) {
            return Ok(vec![false; parents.len()]);
        }
        let pinned: Vec<usize> = self
            .bookmarks()?
            .values()
            .filter_map(|n| self.changelog.rev(n))
            .collect();
        Ok(obsolete::hidden(&parents, &roots, obsolete, &pinned))
    }

    /// Reads and parses changeset `rev`.
    pub fn changeset(&self, rev: usize) -> Result<Changeset, HgError> {
        changeset(&self.changelog, rev)
    }

    /// The text of the manifest `node`.
    pub fn manifest_text(&self, node: &[u8; 20]) -> Result<Vec<u8>, HgError> {
        manifest_text(&self.manifest, node).map(Arc::unwrap_or_clone)
    }

    /// The changelog and manifest opened anew, to be read on another
    /// thread (each revlog keeps its own last text).
    pub fn history(&self) -> Result<History, HgError> {
        Ok(History {
            changelog: Revlog::open(&self.store.join("00changelog.i"), None)?,
            manifest: Revlog::open(&self.store.join("00manifest.i"), None)?,
        })
    }

    /// The filelog of the tracked file `path`.
    /// The path is checked first: it never reaches the file system unless
    /// every component is a valid name.
    pub fn filelog(&self, path: &[u8]) -> Result<Rc<Revlog>, HgError> {
        if let Some(r) = self.filelogs.borrow().get(path) {
            return Ok(Rc::clone(r));
        }
        crate::convert::check_path(path)?;
        let name = |ext: &[u8]| {
            let mut n = b"data/".to_vec();
            n.extend_from_slice(path);
            n.extend_from_slice(ext);
            self.store
                .join(OsStr::from_bytes(&store_path::encode(&n, self.encoding)))
        };
        let index = name(b".i");
        if !index.exists() {
            return Err(HgError::Corrupt(format!(
                "the filelog of {:?} ({}) is missing",
                String::from_utf8_lossy(path),
                index.display()
            )));
        }
        let log = Rc::new(Revlog::open(&index, Some(name(b".d")))?);
        let mut logs = self.filelogs.borrow_mut();
        if logs.len() >= MAX_OPEN_FILELOGS {
            logs.clear();
        }
        logs.insert(path.to_vec(), Rc::clone(&log));
        Ok(log)
    }

    /// The raw text (metadata included) of revision `node` of `path`,
    /// refused before it is rebuilt when the index says it is over `limit`
    /// bytes.
    pub fn file_text(&self, path: &[u8], node: &[u8; 20], limit: u64) -> Result<Vec<u8>, HgError> {
        let log = self.filelog(path)?;
        let rev = log.rev(node).ok_or_else(|| {
            HgError::Corrupt(format!(
                "revision {} of {:?} is missing from {}",
                crate::revlog::hex(node),
                String::from_utf8_lossy(path),
                log.path().display()
            ))
        })?;
        let size = log.entry(rev).map_or(0, |e| u64::from(e.raw_len));
        if size > limit {
            return Err(HgError::TooLarge {
                path: String::from_utf8_lossy(path).into_owned(),
                node: crate::revlog::hex(node),
                size,
                limit,
            });
        }
        Ok(log.text(rev)?)
    }

    /// Bookmarks: name → node, from `.hg/bookmarks` (or the store's, with
    /// `bookmarksinstore`).
    pub fn bookmarks(&self) -> Result<HashMap<Vec<u8>, [u8; 20]>, HgError> {
        let path = if self.requirements.has("bookmarksinstore") {
            self.store.join("bookmarks")
        } else {
            self.hg.join("bookmarks")
        };
        Ok(parse_node_names(&read_optional(&path)?.unwrap_or_default())
            .into_iter()
            .collect())
    }

    /// The visible heads (revisions without visible children), ascending.
    pub fn heads(&self) -> Vec<usize> {
        let n = self.changelog.len();
        let mut has_child = vec![false; n];
        for r in 0..n {
            if self.is_hidden(r) {
                continue;
            }
            let (p1, p2) = self.parents(r);
            for p in [p1, p2] {
                if let Ok(p) = usize::try_from(p) {
                    has_child[p] = true;
                }
            }
        }
        (0..n)
            .filter(|r| !self.is_hidden(*r) && !has_child[*r])
            .collect()
    }

    /// Tags: `.hgtags` as of every visible head (the tip-most last, so it
    /// wins), then `.hg/localtags`. A tag pointing at the null node is
    /// deleted.
    pub fn tags(&self) -> Result<HashMap<Vec<u8>, [u8; 20]>, HgError> {
        let mut tags = HashMap::new();
        let mut seen_nodes = HashSet::new();
        for head in self.heads() {
            let cs = self.changeset(head)?;
            let manifest = self.manifest_text(&cs.manifest)?;
            let Some(node) = manifest_lookup(&manifest, b".hgtags") else {
                continue;
            };
            if !seen_nodes.insert(node) {
                continue;
            }
            let text = self.file_text(b".hgtags", &node, plumb_core::chunks::MAX_OBJECT_SIZE)?;
            let (_, content) = crate::changeset::split_file_text(&text);
            for (name, node) in parse_node_names(content) {
                tags.insert(name, node);
            }
        }
        if let Some(local) = read_optional(&self.hg.join("localtags"))? {
            for (name, node) in parse_node_names(&local) {
                tags.insert(name, node);
            }
        }
        tags.retain(|_, n| *n != NULL_NODE);
        Ok(tags)
    }

    /// The tip-most open head of the named branch `name` (or, if all its
    /// heads are closed, the tip-most closed one); `None` if no visible
    /// changeset is on it.
    pub fn branch_tip(&self, name: &[u8]) -> Result<Option<usize>, HgError> {
        let n = self.changelog.len();
        let mut child_on_branch = vec![false; n];
        let mut closed_head = None;
        for r in (0..n).rev() {
            if self.is_hidden(r) {
                continue;
            }
            let cs = self.changeset(r)?;
            if cs.branch() != name {
                continue;
            }
            let (p1, p2) = self.parents(r);
            for p in [p1, p2] {
                if let Ok(p) = usize::try_from(p) {
                    child_on_branch[p] = true;
                }
            }
            if child_on_branch[r] {
                continue;
            }
            if !cs.closes_branch() {
                return Ok(Some(r));
            }
            closed_head.get_or_insert(r);
        }
        Ok(closed_head)
    }
}

/// The changelog and manifest of a repository, on their own.
pub struct History {
    changelog: Revlog,
    manifest: Revlog,
}

impl History {
    /// Changeset `rev` and the text of its manifest.
    pub fn read(&self, rev: usize) -> Result<(Changeset, Arc<Vec<u8>>), HgError> {
        let cs = changeset(&self.changelog, rev)?;
        let manifest = manifest_text(&self.manifest, &cs.manifest)?;
        Ok((cs, manifest))
    }
}

fn changeset(changelog: &Revlog, rev: usize) -> Result<Changeset, HgError> {
    let text = changelog.text(rev)?;
    Changeset::parse(&text).map_err(|reason| {
        HgError::Read(ReadError::Corrupt {
            path: changelog.path().to_path_buf(),
            rev: Some(rev),
            reason,
        })
    })
}

fn manifest_text(manifest: &Revlog, node: &[u8; 20]) -> Result<Arc<Vec<u8>>, HgError> {
    if *node == NULL_NODE {
        return Ok(Arc::default());
    }
    let rev = manifest.rev(node).ok_or_else(|| {
        HgError::Corrupt(format!(
            "manifest {} is missing from {}",
            crate::revlog::hex(node),
            manifest.path().display()
        ))
    })?;
    Ok(manifest.shared_text(rev)?)
}

/// The node of `path` in a manifest text, if present.
pub fn manifest_lookup(manifest: &[u8], path: &[u8]) -> Option<[u8; 20]> {
    manifest
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(path) && l.get(path.len()) == Some(&0))
        .find_map(|l| parse_manifest_line(l).ok().map(|m| m.node))
}

/// Lines of `<40 hex> <name>`; other lines are skipped.
fn parse_node_names(bytes: &[u8]) -> Vec<(Vec<u8>, [u8; 20])> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let node = parse_node(line.get(..40)?)?;
            let name = line.get(41..)?.trim_ascii();
            (line.get(40) == Some(&b' ') && !name.is_empty()).then(|| (name.to_vec(), node))
        })
        .collect()
}
