//! A commit's snapshot: its parents' snapshots, people, message and
//! extra fields (see the crate docs, "Snapshots").

use gix::ObjectId;
use plumb_core::source::IngestSink;
use plumb_core::{Person, Snapshot, TreeId};

use crate::error::GitError;
use crate::{
    RAW_AUTHOR_FIELD, RAW_COMMITTER_FIELD, SHALLOW_PARENT_FIELD, SIGNED_PAYLOAD_FIELD, commit,
    revision, walk,
};

/// A commit whose tree is converted, ready to become a snapshot once its
/// parents are recorded.
pub(crate) struct CommitJob {
    pub id: ObjectId,
    /// The commit's content.
    pub data: Vec<u8>,
    /// Its converted tree (or the scoped subtree, or an empty one).
    pub tree: TreeId,
    /// Parents a shallow clone cut off.
    pub absent_parents: Vec<ObjectId>,
}

/// The snapshot of `job`, its parents looked up in `sink`.
pub(crate) fn build(job: &CommitJob, sink: &dyn IngestSink) -> Result<Snapshot, GitError> {
    let id = job.id;
    let raw = commit::parse(&job.data).map_err(|e| walk::malformed(id, e.to_string()))?;
    let mut extra: Vec<(String, Vec<u8>)> = Vec::with_capacity(raw.extra.len() + 1);
    for (name, value) in &raw.extra {
        let name = std::str::from_utf8(name)
            .ok()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                walk::malformed(
                    id,
                    format!(
                        "header name {:?} is not UTF-8 text",
                        String::from_utf8_lossy(name)
                    ),
                )
            })?;
        extra.push((name.to_owned(), value.clone()));
    }
    let mut people = [Person::default(), Person::default()];
    for (i, (line, field)) in [
        (raw.author, RAW_AUTHOR_FIELD),
        (raw.committer, RAW_COMMITTER_FIELD),
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(line) = line {
            let (person, exact) = commit::person(line);
            if !exact {
                extra.push((field.to_owned(), line.to_vec()));
            }
            people[i] = person;
        }
    }
    let [author, committer] = people;

    let mut parents = Vec::with_capacity(raw.parents.len());
    for hex in &raw.parents {
        let parent = walk::parse_id(id, hex)?;
        if job.absent_parents.contains(&parent) {
            extra.push((
                SHALLOW_PARENT_FIELD.to_owned(),
                parent.to_hex().to_string().into_bytes(),
            ));
            continue;
        }
        let snap = sink.snapshot_for(&revision(&parent))?.ok_or_else(|| {
            walk::malformed(
                id,
                format!("its parent {} has not been recorded", parent.to_hex()),
            )
        })?;
        parents.push(snap);
    }
    if let Some(payload) = raw.signed_payload {
        extra.push((SIGNED_PAYLOAD_FIELD.to_owned(), payload));
    }
    Ok(Snapshot {
        tree: job.tree,
        parents,
        revision: revision(&id),
        author,
        committer,
        message: raw.message.to_vec(),
        extra,
    })
}
