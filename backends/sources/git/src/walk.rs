//! Which commits are new, and in what order to record them.

use std::collections::{HashMap, HashSet};

use gix::ObjectId;
use gix::objs::Kind as GitKind;
use plumb_core::source::IngestSink;

use crate::commit;
use crate::error::GitError;
use crate::revision;

/// A commit that could not be walked, and the commit that led to it.
#[derive(Debug)]
pub(crate) struct WalkError {
    pub source: GitError,
    pub child: Option<ObjectId>,
}

impl From<WalkError> for GitError {
    fn from(e: WalkError) -> Self {
        match (e.source, e.child) {
            (source @ GitError::Sink(_), _) | (source, None) => source,
            (source, Some(child)) => GitError::ParentOf {
                child: child.to_hex().to_string(),
                source: Box::new(source),
            },
        }
    }
}

/// Bytes of commit content the walk keeps for recording, so most commits
/// are read from Git once; past this, commits are read again when
/// recorded. Memory stays bounded whatever the history's length.
const KEPT_COMMIT_BYTES: usize = 64 << 20;

/// A commit to record, and its content if the walk kept it.
pub(crate) type Planned = (ObjectId, Option<Vec<u8>>);

/// The commits reachable from `tips` that the sink does not know yet,
/// parents before children. Known commits end the walk: their ancestors
/// are known too, as every ingest records parents first. A `fresh` sink
/// (no snapshots yet) is not asked.
///
/// The order is a depth-first post-order from the tips in the order given,
/// visiting parents first parent first: deterministic for given refs.
/// Memory holds the new commits' ids and parent ids, not their content.
pub(crate) fn plan(
    repo: &gix::Repository,
    sink: &dyn IngestSink,
    tips: &[ObjectId],
    shallow: &HashSet<ObjectId>,
    fresh: bool,
) -> Result<Vec<Planned>, WalkError> {
    let at = |child: Option<ObjectId>| move |source: GitError| WalkError { source, child };
    // New commit → its parents that are in the repository.
    let mut graph: HashMap<ObjectId, Vec<ObjectId>> = HashMap::new();
    let mut known: HashSet<ObjectId> = HashSet::new();
    let mut kept: HashMap<ObjectId, Vec<u8>> = HashMap::new();
    let mut kept_bytes = 0usize;
    let mut stack: Vec<(ObjectId, Option<ObjectId>)> =
        tips.iter().rev().map(|&t| (t, None)).collect();
    while let Some((id, child)) = stack.pop() {
        if graph.contains_key(&id) || known.contains(&id) {
            continue;
        }
        if !fresh
            && sink
                .snapshot_for(&revision(&id))
                .map_err(|e| at(child)(e.into()))?
                .is_some()
        {
            known.insert(id);
            continue;
        }
        let (parents, data) = parents(repo, id).map_err(at(child))?;
        if kept_bytes + data.len() <= KEPT_COMMIT_BYTES {
            kept_bytes += data.len();
            kept.insert(id, data);
        }
        let mut present = Vec::with_capacity(parents.len());
        for p in parents {
            if shallow.contains(&id) && !repo.has_object(p) {
                continue;
            }
            present.push(p);
        }
        for &p in present.iter().rev() {
            stack.push((p, Some(id)));
        }
        graph.insert(id, present);
    }

    let mut order = Vec::with_capacity(graph.len());
    let mut entered: HashSet<ObjectId> = HashSet::with_capacity(graph.len());
    for &tip in tips {
        if !graph.contains_key(&tip) || !entered.insert(tip) {
            continue;
        }
        let mut stack: Vec<(ObjectId, usize)> = vec![(tip, 0)];
        while let Some((id, next)) = stack.last_mut() {
            let parents = graph.get(id).map_or(&[][..], Vec::as_slice);
            if let Some(&p) = parents.get(*next) {
                *next += 1;
                if graph.contains_key(&p) && entered.insert(p) {
                    stack.push((p, 0));
                }
            } else {
                order.push((*id, kept.remove(id)));
                stack.pop();
            }
        }
    }
    Ok(order)
}

/// The parent ids a commit lists, and its content.
fn parents(repo: &gix::Repository, id: ObjectId) -> Result<(Vec<ObjectId>, Vec<u8>), GitError> {
    let obj = read_commit(repo, id)?;
    let parsed = commit::parse(&obj.data).map_err(|e| malformed(id, e.to_string()))?;
    let parents = parsed
        .parents
        .iter()
        .map(|hex| parse_id(id, hex))
        .collect::<Result<_, _>>()?;
    Ok((parents, obj.detach().data))
}

/// Reads the commit `id`.
pub(crate) fn read_commit(
    repo: &gix::Repository,
    id: ObjectId,
) -> Result<gix::Object<'_>, GitError> {
    let hex = || id.to_hex().to_string();
    let obj = repo
        .try_find_object(id)
        .map_err(|e| GitError::Read {
            what: "commit",
            id: hex(),
            reason: e.to_string(),
        })?
        .ok_or_else(|| GitError::Missing {
            what: "commit",
            id: hex(),
        })?;
    if obj.kind != GitKind::Commit {
        return Err(GitError::WrongKind {
            id: hex(),
            expected: "commit",
            actual: obj.kind.to_string(),
        });
    }
    Ok(obj)
}

/// Parses an id written in commit `id` as hex.
pub(crate) fn parse_id(id: ObjectId, hex: &[u8]) -> Result<ObjectId, GitError> {
    let parsed = ObjectId::from_hex(hex).map_err(|e| {
        malformed(
            id,
            format!("bad object id {:?}: {e}", String::from_utf8_lossy(hex)),
        )
    })?;
    if parsed.kind() != id.kind() {
        return Err(malformed(
            id,
            format!(
                "object id {:?} is not a {} id",
                String::from_utf8_lossy(hex),
                id.kind()
            ),
        ));
    }
    Ok(parsed)
}

pub(crate) fn malformed(id: ObjectId, reason: String) -> GitError {
    GitError::Malformed {
        what: "commit",
        id: id.to_hex().to_string(),
        reason,
    }
}
