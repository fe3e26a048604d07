//! Blob content in memory, as a target gets it from the store.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::target::{Change, Content, TargetError};
use crate::{Blob, BlobId, ResolvedAttrs};

/// A [`Content`] over a map: blobs by id, as the store would hand them
/// out. Safe to share between threads, as the contract asks.
#[derive(Debug, Default)]
pub struct MemoryContent(Mutex<HashMap<BlobId, Vec<u8>>>);

impl MemoryContent {
    /// An empty one.
    pub fn new() -> Self {
        Self::default()
    }

    fn blobs(&self) -> MutexGuard<'_, HashMap<BlobId, Vec<u8>>> {
        // A panic while holding the lock is a failed test already.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `bytes`; returns their id.
    pub fn put(&self, bytes: &[u8]) -> BlobId {
        let id = Blob::id_of(bytes);
        self.blobs().insert(id, bytes.to_vec());
        id
    }

    /// Adds `bytes` and returns a change writing them at `path`.
    ///
    /// # Panics
    ///
    /// When `path` is not a valid [`TargetPath`](crate::target::TargetPath).
    pub fn write(&self, path: &[u8], bytes: &[u8], executable: bool) -> Change {
        Change::WriteFile {
            path: super::target::path(path),
            blob: self.put(bytes),
            size: bytes.len() as u64,
            executable,
            attrs: ResolvedAttrs::default(),
        }
    }

    /// Like [`write`](Self::write), with attributes.
    ///
    /// # Panics
    ///
    /// When `path` is not a valid [`TargetPath`](crate::target::TargetPath).
    pub fn write_with(
        &self,
        path: &[u8],
        bytes: &[u8],
        executable: bool,
        attrs: ResolvedAttrs,
    ) -> Change {
        let mut change = self.write(path, bytes, executable);
        if let Change::WriteFile { attrs: a, .. } = &mut change {
            *a = attrs;
        }
        change
    }
}

impl Content for MemoryContent {
    fn get(&self, blob: &BlobId) -> Result<Vec<u8>, TargetError> {
        self.blobs()
            .get(blob)
            .cloned()
            .ok_or_else(|| TargetError::Content(format!("{blob}: not in the store").into()))
    }
}
