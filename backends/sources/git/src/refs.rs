//! Which commits to start from: `HEAD`, named refs and ref globs.

use gix::ObjectId;
use gix::bstr::{BStr, ByteSlice};
use gix::objs::Kind as GitKind;

use crate::convert::kind_name;

/// A commit to ingest the history of, and the ref that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    /// The ref's full name (`refs/heads/main`, `HEAD` when detached).
    pub name: String,
    /// The commit it peels to.
    pub commit: ObjectId,
    /// The annotated tag object it points at, if it points at one (the
    /// outermost, for a tag of a tag).
    pub tag: Option<ObjectId>,
}

/// The starting points, and warnings about refs that were passed over.
#[derive(Debug, Default)]
pub(crate) struct Tips {
    pub tips: Vec<Tip>,
    pub warnings: Vec<String>,
}

/// Why the refs name no starting point.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    /// `HEAD` names a branch with no commits yet.
    #[error("no commits: HEAD points to {0}, which does not exist yet")]
    Unborn(String),
    /// A ref given does not exist.
    #[error("ref {0:?} does not exist")]
    NotFound(String),
    /// A ref given leads to something other than a commit.
    #[error("ref {name:?} points to a {kind}, not a commit")]
    NotCommit {
        /// The ref.
        name: String,
        /// What it leads to (`tree`, `blob`).
        kind: &'static str,
    },
    /// A ref could not be read.
    #[error("cannot read ref {name:?}: {reason}")]
    Read {
        /// The ref.
        name: String,
        /// gix's explanation.
        reason: String,
    },
}

/// Whether a ref given by the user is a glob pattern.
pub(crate) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Resolves the user's refs (`HEAD` when there are none) to commits, in the
/// order given; a glob's matches in name order. A ref reached twice is
/// listed once.
pub(crate) fn resolve(repo: &gix::Repository, wanted: &[String]) -> Result<Tips, RefError> {
    let mut out = Tips::default();
    if wanted.is_empty() {
        let head = repo.head().map_err(|e| RefError::Read {
            name: "HEAD".to_owned(),
            reason: e.to_string(),
        })?;
        if let gix::head::Kind::Unborn(branch) = &head.kind {
            return Err(RefError::Unborn(branch.to_string()));
        }
        let name = head
            .referent_name()
            .map_or_else(|| "HEAD".to_owned(), |n| n.as_bstr().to_string());
        let mut reference = repo.find_reference("HEAD").map_err(|e| RefError::Read {
            name: "HEAD".to_owned(),
            reason: e.to_string(),
        })?;
        let (commit, tag) = peel(repo, &mut reference, &name)?;
        push(&mut out.tips, Tip { name, commit, tag });
        return Ok(out);
    }
    for pattern in wanted {
        if is_glob(pattern) {
            glob(repo, pattern, &mut out)?;
            continue;
        }
        let mut reference = repo
            .try_find_reference(pattern.as_str())
            .map_err(|e| RefError::Read {
                name: pattern.clone(),
                reason: e.to_string(),
            })?
            .ok_or_else(|| RefError::NotFound(pattern.clone()))?;
        let name = reference.name().as_bstr().to_string();
        let (commit, tag) = peel(repo, &mut reference, pattern)?;
        push(&mut out.tips, Tip { name, commit, tag });
    }
    Ok(out)
}

fn push(tips: &mut Vec<Tip>, tip: Tip) {
    if !tips.iter().any(|t| t.name == tip.name) {
        tips.push(tip);
    }
}

/// Adds the commits of every ref matching `pattern`. A pattern that does
/// not start with `refs/` is tried below `refs/`, `refs/heads/`,
/// `refs/tags/` and `refs/remotes/`, like a short ref name. `*` matches any
/// characters, `/` included. Refs that do not lead to a commit (a tag of a
/// tree) are passed over with a warning.
fn glob(repo: &gix::Repository, pattern: &str, out: &mut Tips) -> Result<(), RefError> {
    let read = |e: gix::Error| RefError::Read {
        name: pattern.to_owned(),
        reason: e.to_string(),
    };
    let candidates: Vec<String> = if pattern.starts_with("refs/") {
        vec![pattern.to_owned()]
    } else {
        ["refs/", "refs/heads/", "refs/tags/", "refs/remotes/"]
            .iter()
            .map(|p| format!("{p}{pattern}"))
            .collect()
    };
    let platform = repo.references().map_err(read)?;
    let mut matched = Vec::new();
    for reference in platform.all().map_err(read)? {
        let reference = reference.map_err(read)?;
        let name: &BStr = reference.name().as_bstr();
        if candidates.iter().any(|c| {
            gix::glob::wildmatch(
                c.as_bytes().as_bstr(),
                name,
                gix::glob::wildmatch::Mode::empty(),
            )
        }) {
            matched.push(reference);
        }
    }
    matched.sort_by(|a, b| a.name().as_bstr().cmp(b.name().as_bstr()));
    if matched.is_empty() {
        out.warnings
            .push(format!("ref pattern {pattern:?} matches no ref"));
    }
    for mut reference in matched {
        let name = reference.name().as_bstr().to_string();
        match peel(repo, &mut reference, &name) {
            Ok((commit, tag)) => push(&mut out.tips, Tip { name, commit, tag }),
            Err(RefError::NotCommit { name, kind }) => out.warnings.push(format!(
                "ref {name:?} (matched by {pattern:?}) points to a {kind}, not a commit; skipped"
            )),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Follows symbolic refs and annotated tags down to a commit; returns it,
/// and the first tag object met, if any.
fn peel(
    repo: &gix::Repository,
    reference: &mut gix::Reference<'_>,
    shown: &str,
) -> Result<(ObjectId, Option<ObjectId>), RefError> {
    let read = |reason: String| RefError::Read {
        name: shown.to_owned(),
        reason,
    };
    let mut id = reference
        .follow_to_object()
        .map_err(|e| read(e.to_string()))?
        .detach();
    let mut first_tag = None;
    // Tags of tags are allowed, but not endlessly.
    for _ in 0..64 {
        let obj = repo
            .try_find_object(id)
            .map_err(|e| read(e.to_string()))?
            .ok_or_else(|| read(format!("object {} is missing from the repository", id)))?;
        match obj.kind {
            GitKind::Commit => return Ok((id, first_tag)),
            GitKind::Tag => {
                first_tag.get_or_insert(id);
                let tag = gix::objs::TagRefIter::from_bytes(&obj.data, repo.object_hash());
                id = tag
                    .target_id()
                    .map_err(|e| read(format!("tag {id} is malformed: {e}")))?;
            }
            other => {
                return Err(RefError::NotCommit {
                    name: shown.to_owned(),
                    kind: kind_name(other),
                });
            }
        }
    }
    Err(read("too many nested tags".to_owned()))
}
