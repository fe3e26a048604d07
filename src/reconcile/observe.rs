//! Looking at a target: stat first, hash only what the stat cache cannot
//! vouch for (or everything, when asked for an exact check).

use std::collections::{BTreeMap, HashMap};

use plumb_core::target::{Digest, DigestKind, ObserveRequest, Observed, Target, TargetPath};
use plumb_core::{BlobId, ObjectId};

use super::ReconcileError;
use super::state::{Applied, Held, Inventory};
use crate::store::Store;

/// What a target holds at each path looked at; a path that could not be
/// looked at carries the one-line reason.
pub type Observations = BTreeMap<TargetPath, Result<Observed, String>>;

/// Whether the stat data the target reports for a file equals the token
/// plumb recorded when it last confirmed the file: then the file still
/// holds what plumb recorded.
pub fn token_vouches(held: Option<&Held>, observed: &Observed) -> bool {
    match (held, observed) {
        (
            Some(Held {
                state: Applied::File {
                    token: Some(want), ..
                },
                pending: false,
                ..
            }),
            Observed::File {
                token: Some(got), ..
            },
        ) => want == got,
        _ => false,
    }
}

/// Observes `paths` (listing the directories in `list`). Files whose
/// tokens vouch for the inventory's record are not hashed unless `full`.
pub fn observe(
    target: &mut dyn Target,
    paths: Vec<(TargetPath, bool)>,
    inventory: &Inventory,
    full: bool,
) -> Result<Observations, ReconcileError> {
    let requests: Vec<ObserveRequest> = paths
        .into_iter()
        .map(|(path, list)| ObserveRequest {
            path,
            digest: full,
            list,
        })
        .collect();
    let mut out = collect(target, requests)?;
    if full {
        return Ok(out);
    }
    let again: Vec<ObserveRequest> = out
        .iter()
        .filter_map(|(path, seen)| match seen {
            Ok(o @ Observed::File { digest: None, .. })
                if !token_vouches(inventory.entries.get(path.as_bytes()), o) =>
            {
                Some(ObserveRequest {
                    path: path.clone(),
                    digest: true,
                    list: false,
                })
            }
            _ => None,
        })
        .collect();
    tracing::debug!(hashing = again.len(), "stat tokens checked");
    if !again.is_empty() {
        out.extend(collect(target, again)?);
    }
    Ok(out)
}

fn collect(
    target: &mut dyn Target,
    requests: Vec<ObserveRequest>,
) -> Result<Observations, ReconcileError> {
    let answers = target.observe(&requests)?;
    if answers.len() != requests.len() {
        return Err(ReconcileError::Invalid(format!(
            "{}: answered {} of {} observations",
            target.describe(),
            answers.len(),
            requests.len()
        )));
    }
    Ok(requests
        .into_iter()
        .zip(answers)
        .map(|(r, a)| (r.path, a.map_err(|e| e.to_string())))
        .collect())
}

/// Digests of blobs in the target's digest kind: the blob id itself, or a
/// SHA-256 of the content, remembered from the inventory or computed from
/// the store.
pub struct Digests<'a> {
    kind: DigestKind,
    store: &'a Store,
    sha256: HashMap<BlobId, [u8; 32]>,
}

impl<'a> Digests<'a> {
    /// Starts with what the inventory remembers.
    pub fn new(kind: DigestKind, store: &'a Store, inventory: &Inventory) -> Self {
        let mut sha256 = HashMap::new();
        let remembered = if kind == DigestKind::Sha256 {
            inventory.entries.values()
        } else {
            Default::default()
        };
        for held in remembered {
            if let Applied::File {
                blob,
                sha256: Some(d),
                ..
            } = &held.state
            {
                sha256.insert(BlobId::new(ObjectId::from_bytes(*blob)), *d);
            }
        }
        Self {
            kind,
            store,
            sha256,
        }
    }

    /// The target's digest kind.
    pub fn kind(&self) -> DigestKind {
        self.kind
    }

    /// The digest of `blob`'s content.
    pub fn of(&mut self, blob: &BlobId) -> Result<Digest, ReconcileError> {
        match self.kind {
            DigestKind::Blob => Ok(Digest::Blob(*blob)),
            DigestKind::Sha256 => {
                if let Some(d) = self.sha256.get(blob) {
                    return Ok(Digest::Sha256(*d));
                }
                use sha2::Digest as _;
                let data = self.store.blob(blob)?;
                let d: [u8; 32] = sha2::Sha256::digest(data.data()).into();
                self.sha256.insert(*blob, d);
                Ok(Digest::Sha256(d))
            }
        }
    }

    /// The SHA-256 to remember with a file, for targets that use it.
    pub fn sha256_for(&mut self, blob: &BlobId) -> Result<Option<[u8; 32]>, ReconcileError> {
        Ok(match self.of(blob)? {
            Digest::Sha256(d) => Some(d),
            Digest::Blob(_) => None,
        })
    }
}

/// The content digest of the file observed at a path: the target's own
/// digest when it computed one, else the inventory's record when the
/// token vouches for it.
pub fn content_digest(
    held: Option<&Held>,
    observed: &Observed,
    kind: DigestKind,
) -> Option<Digest> {
    if let Observed::File {
        digest: Some(d), ..
    } = observed
    {
        return Some(*d);
    }
    if !token_vouches(held, observed) {
        return None;
    }
    match held.map(|h| &h.state) {
        Some(Applied::File { blob, sha256, .. }) => match kind {
            DigestKind::Blob => Some(Digest::Blob(BlobId::new(ObjectId::from_bytes(*blob)))),
            DigestKind::Sha256 => sha256.map(Digest::Sha256),
        },
        _ => None,
    }
}

/// A word for what was observed.
pub fn kind_name(observed: &Observed) -> String {
    match observed {
        Observed::Missing => "nothing".into(),
        Observed::File {
            executable: false, ..
        } => "file".into(),
        Observed::File {
            executable: true, ..
        } => "executable".into(),
        Observed::Symlink { .. } => "symlink".into(),
        Observed::Dir { .. } => "directory".into(),
        Observed::Other { what } => what.clone(),
        Observed::Blocked { at, what } => format!("unreachable ({what} at {at})"),
    }
}
