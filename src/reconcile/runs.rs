//! The audit log: one record per run of apply, drift, rollback or unpin.
//! How they are kept in the store is [`records`](super::records).

use plumb_core::{ObjectId, SnapshotId};
use serde::{Deserialize, Serialize};

use super::hooks::HookRun;

/// Which command a run was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunKind {
    /// `plumb apply`.
    Apply,
    /// `plumb drift`.
    Drift,
    /// `plumb rollback`.
    Rollback,
    /// `plumb unpin`.
    Unpin,
}

impl RunKind {
    /// The lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            RunKind::Apply => "apply",
            RunKind::Drift => "drift",
            RunKind::Rollback => "rollback",
            RunKind::Unpin => "unpin",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Done; nothing left to do (apply), or in sync (drift).
    Ok,
    /// Drift found.
    Drifted,
    /// Refused before changing anything (conflicts).
    Refused,
    /// Failed; the error says why.
    Failed,
}

impl Outcome {
    /// The lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Drifted => "drifted",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// Counts of what a run did or found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Paths created.
    pub create: u64,
    /// Paths updated.
    pub update: u64,
    /// Paths deleted.
    pub delete: u64,
    /// Paths already right.
    pub keep: u64,
    /// Conflicts.
    pub conflict: u64,
    /// Drifted paths (drift runs).
    pub drifted: u64,
    /// Changes that failed.
    pub failed: u64,
}

/// One entry of a target's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its position in the target's log: 1 for the first run.
    pub seq: u64,
    /// Which command.
    pub kind: RunKind,
    /// When it started: milliseconds since the Unix epoch.
    pub started_ms: i64,
    /// How long it took.
    pub duration_ms: u64,
    /// Who ran it (the login name, else the uid).
    pub user: String,
    /// On which host.
    pub host: String,
    /// The snapshot it applied or compared against.
    pub snapshot: Option<[u8; 32]>,
    /// What it did or found.
    pub counts: Counts,
    /// How it ended.
    pub outcome: Outcome,
    /// The error, when it failed or was refused.
    pub error: Option<String>,
    /// The hooks it ran, in order, with their output.
    pub hooks: Vec<HookRun>,
}

/// A run record as version 1 of its envelope held it, before hooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecordV1 {
    /// See [`RunRecord::seq`].
    pub seq: u64,
    /// See [`RunRecord::kind`].
    pub kind: RunKind,
    /// See [`RunRecord::started_ms`].
    pub started_ms: i64,
    /// See [`RunRecord::duration_ms`].
    pub duration_ms: u64,
    /// See [`RunRecord::user`].
    pub user: String,
    /// See [`RunRecord::host`].
    pub host: String,
    /// See [`RunRecord::snapshot`].
    pub snapshot: Option<[u8; 32]>,
    /// See [`RunRecord::counts`].
    pub counts: Counts,
    /// See [`RunRecord::outcome`].
    pub outcome: Outcome,
    /// See [`RunRecord::error`].
    pub error: Option<String>,
}

impl From<RunRecordV1> for RunRecord {
    fn from(v1: RunRecordV1) -> RunRecord {
        let RunRecordV1 {
            seq,
            kind,
            started_ms,
            duration_ms,
            user,
            host,
            snapshot,
            counts,
            outcome,
            error,
        } = v1;
        RunRecord {
            seq,
            kind,
            started_ms,
            duration_ms,
            user,
            host,
            snapshot,
            counts,
            outcome,
            error,
            hooks: Vec::new(),
        }
    }
}

impl RunRecord {
    /// The snapshot, typed.
    pub fn snapshot_id(&self) -> Option<SnapshotId> {
        self.snapshot
            .map(|bytes| SnapshotId::new(ObjectId::from_bytes(bytes)))
    }
}
