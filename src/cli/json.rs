//! What `--json` prints: one JSON document per command, an object whose
//! `outcome` says how the command ended, whether it succeeded, found
//! changes, was refused or failed (the forms are in `spec/json.md`).

use serde_json::{Map, Value};

use plumb::reconcile::ReconcileError;

use super::output::print_json;

/// How a command ended, as `outcome` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done (queries, a finished apply, rollback).
    Ok,
    /// A plan with changes to make.
    Changes,
    /// A plan with conflicts: apply would refuse it.
    Conflict,
    /// Nothing to do (plan), or no drift (drift).
    InSync,
    /// Drift found.
    Drifted,
    /// Drift asked of a target plumb never applied to.
    NeverApplied,
    /// Stopped before changing anything, because going on was unsafe.
    Refused,
    /// An apply that made some changes and not others.
    Failed,
    /// Any other error.
    Error,
}

impl Outcome {
    /// The name `outcome` holds.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Changes => "changes",
            Outcome::Conflict => "conflict",
            Outcome::InSync => "in-sync",
            Outcome::Drifted => "drifted",
            Outcome::NeverApplied => "never-applied",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
        }
    }
}

/// Prints `fields` (an object) with `outcome` added, as the one document.
pub fn print(outcome: Outcome, fields: Value) -> anyhow::Result<()> {
    print_json(&document(outcome, fields))
}

fn document(outcome: Outcome, fields: Value) -> Value {
    let mut map = match fields {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other)]),
    };
    map.insert("outcome".into(), outcome.name().into());
    Value::Object(map)
}

/// A byte string (a path, a name, a message) that round-trips exactly: a
/// JSON string when it is UTF-8, else `{"b64": "…"}`, as the plugin
/// protocol sends it.
pub fn bytes(b: &[u8]) -> Value {
    plumb_target_exec::protocol::bytes_value(b)
}

/// An error that ends a command with more to say under `--json` than its
/// text: its outcome, and fields for the document (an apply that failed
/// half-way, a plan refused for conflicts).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Ended {
    outcome: Outcome,
    error: anyhow::Error,
    fields: Value,
}

impl Ended {
    /// `error`, ending the command with `outcome` and the document `fields`.
    pub fn new(outcome: Outcome, error: impl Into<anyhow::Error>, fields: Value) -> Self {
        Self {
            outcome,
            error: error.into(),
            fields,
        }
    }
}

/// A refusal the command line itself makes: going on would do something
/// other than what was asked (an apply of another snapshot than a pinned
/// target's).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// The outcome an error ends a command with: the one it carries
/// ([`Ended`]), else `refused` for a refusal anywhere in its chain, else
/// `error`.
pub fn outcome_of(e: &anyhow::Error) -> Outcome {
    if let Some(ended) = e.chain().find_map(|c| c.downcast_ref::<Ended>()) {
        return ended.outcome;
    }
    let refused = e.chain().any(|c| {
        c.is::<Refusal>()
            || c.downcast_ref::<ReconcileError>()
                .is_some_and(ReconcileError::is_refusal)
    });
    if refused {
        Outcome::Refused
    } else {
        Outcome::Error
    }
}

/// The document for an error: `{"outcome": …, "error": TEXT}` with the
/// fields an [`Ended`] carries.
pub fn error_document(e: &anyhow::Error) -> Value {
    let fields = e
        .chain()
        .find_map(|c| c.downcast_ref::<Ended>())
        .map_or(Value::Null, |ended| ended.fields.clone());
    let mut doc = document(outcome_of(e), fields);
    doc["error"] = e.to_string().into();
    doc
}
