//! Helpers shared by the integration tests: a content store over a map,
//! and short ways to observe and apply.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;

use plumb_core::target::{
    Change, Content, ObserveRequest, Observed, Target, TargetError, TargetPath,
};
use plumb_core::{Blob, BlobId};
use plumb_target_dir::DirTarget;

/// Blobs by id, as the store would hand them out.
#[derive(Default)]
pub struct Store(Mutex<HashMap<BlobId, Vec<u8>>>);

impl Store {
    /// Adds `bytes`; returns their id.
    pub fn put(&self, bytes: &[u8]) -> BlobId {
        let id = Blob::id_of(bytes);
        self.0
            .lock()
            .expect("not poisoned")
            .insert(id, bytes.to_vec());
        id
    }

    /// A change writing `bytes` at `path`.
    pub fn write(&self, path: &[u8], bytes: &[u8], executable: bool) -> Change {
        Change::WriteFile {
            path: p(path),
            blob: self.put(bytes),
            size: bytes.len() as u64,
            executable,
        }
    }
}

impl Content for Store {
    fn get(&self, blob: &BlobId) -> Result<Vec<u8>, TargetError> {
        self.0
            .lock()
            .expect("not poisoned")
            .get(blob)
            .cloned()
            .ok_or_else(|| TargetError::Content(format!("{blob}: not in the store").into()))
    }
}

/// A target path from bytes.
pub fn p(bytes: &[u8]) -> TargetPath {
    TargetPath::new(bytes.to_vec()).expect("a valid path")
}

/// Applies `changes`; returns each change's outcome as text, checking that
/// `done` was called exactly once per change.
pub fn apply(
    target: &mut DirTarget,
    store: &Store,
    changes: &[Change],
) -> Result<Vec<Result<(), String>>, TargetError> {
    let mut outcomes: Vec<Option<Result<(), String>>> = vec![None; changes.len()];
    target.apply(changes, store, &mut |i, r| {
        assert!(outcomes[i].is_none(), "change {i} confirmed twice");
        outcomes[i] = Some(r.map_err(|e| e.to_string()));
    })?;
    Ok(outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.unwrap_or_else(|| panic!("change {i} never reported")))
        .collect())
}

/// Applies `changes` and expects every one to succeed.
pub fn apply_ok(target: &mut DirTarget, store: &Store, changes: &[Change]) {
    for (i, r) in apply(target, store, changes)
        .expect("the target works")
        .into_iter()
        .enumerate()
    {
        if let Err(e) = r {
            panic!("change {i} ({:?}) failed: {e}", changes[i]);
        }
    }
}

/// Observes one path.
pub fn observe(
    target: &mut DirTarget,
    path: &[u8],
    digest: bool,
    list: bool,
) -> Result<Observed, TargetError> {
    let request = ObserveRequest {
        path: p(path),
        digest,
        list,
    };
    let mut out = target.observe(&[request]).expect("the target works");
    assert_eq!(out.len(), 1);
    out.remove(0)
}

/// Observes one path and expects success.
pub fn look(target: &mut DirTarget, path: &[u8]) -> Observed {
    observe(target, path, true, true).expect("observable")
}
