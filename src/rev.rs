//! Revision syntax: naming a snapshot.
//!
//! ```text
//! REV  := NAME@SEL | ID-PREFIX
//! SEL  := latest | ~N | {RFC 3339 time} | native revision or a prefix of it
//! ```
//!
//! A native revision may be given with or without its scheme
//! (`app@git:sha1:1a2b…` or `app@1a2b`); a prefix must be unique and at
//! least 4 characters long. A ref the source recorded (a branch, tag or
//! bookmark) names its snapshot: `app@refs/tags/v1.0`, or short, `app@v1.0`;
//! an exact native revision wins over a ref, a ref over a prefix. `{time}` names the snapshot with the latest
//! committer time at or before it. An id prefix (`blake3:` optional, at
//! least 4 hex digits) names a snapshot of any source.

use jiff::Timestamp;
use plumb_core::SnapshotId;

use crate::store::{LogEntry, Store, StoreError};

/// The shortest prefix accepted for ids and native revisions.
pub const MIN_PREFIX: usize = 4;

/// A parsed revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rev {
    /// `NAME@SEL`.
    Source {
        /// The source name.
        name: String,
        /// The selector.
        sel: Selector,
    },
    /// A snapshot id prefix.
    Id(String),
}

/// What follows `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `latest`.
    Latest,
    /// `~N`: N snapshots before the latest.
    Back(u64),
    /// `{time}`: current at that time.
    AsOf(Timestamp),
    /// A native revision, or a prefix of one.
    Native(String),
}

/// Why a revision names no single snapshot.
#[derive(Debug, thiserror::Error)]
pub enum RevError {
    /// The text is not revision syntax.
    #[error("bad revision {input:?}: {reason}")]
    Syntax {
        /// What was given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// The source has no snapshots.
    #[error("source {name:?} has no snapshots yet (run `plumb ingest {name}`)")]
    Empty {
        /// The source.
        name: String,
    },
    /// Nothing matches.
    #[error("no snapshot matches {input:?}")]
    NotFound {
        /// What was given.
        input: String,
    },
    /// More than one snapshot matches.
    #[error("{input:?} is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        /// What was given.
        input: String,
        /// Some of the matches.
        candidates: Vec<String>,
    },
    /// `~N` reaches past the first snapshot.
    #[error("{input:?} reaches before the first snapshot (the log holds {len})")]
    TooFar {
        /// What was given.
        input: String,
        /// How many snapshots the log holds.
        len: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A resolved revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The snapshot.
    pub id: SnapshotId,
    /// The source and log position it was found through, if by name.
    pub source: Option<(String, LogEntry)>,
}

/// Splits `REV:PATH` into the revision and the path (if any).
pub fn split_path(input: &[u8]) -> (&[u8], Option<&[u8]>) {
    let after_at = match input.iter().position(|&b| b == b'@') {
        Some(at) => {
            let sel = &input[at + 1..];
            let skip = if sel.first() == Some(&b'{') {
                sel.iter()
                    .position(|&b| b == b'}')
                    .map_or(sel.len(), |i| i + 1)
            } else {
                crate::sources::revision_schemes()
                    .find(|s| sel.starts_with(s.as_bytes()))
                    .map_or(0, |s| s.len())
            };
            at + 1 + skip
        }
        None if input.starts_with(b"blake3:") => "blake3:".len(),
        None => 0,
    };
    match input[after_at..].iter().position(|&b| b == b':') {
        Some(i) => (&input[..after_at + i], Some(&input[after_at + i + 1..])),
        None => (input, None),
    }
}

impl std::str::FromStr for Rev {
    type Err = RevError;
    fn from_str(input: &str) -> Result<Self, RevError> {
        let syntax = |reason: &str| RevError::Syntax {
            input: input.into(),
            reason: reason.into(),
        };
        let Some((name, sel)) = input.split_once('@') else {
            let hex = input.strip_prefix("blake3:").unwrap_or(input);
            if hex.len() < MIN_PREFIX || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(syntax(
                    "expected NAME@SELECTOR or a snapshot id prefix of at least 4 hex digits",
                ));
            }
            return Ok(Rev::Id(hex.to_ascii_lowercase()));
        };
        if name.is_empty() {
            return Err(syntax("missing source name before '@'"));
        }
        let sel = match sel {
            "" => return Err(syntax("missing selector after '@'")),
            "latest" => Selector::Latest,
            s if s.starts_with('~') => {
                let n = s[1..]
                    .parse::<u64>()
                    .map_err(|_| syntax("expected a number after '~'"))?;
                Selector::Back(n)
            }
            s if s.starts_with('{') => {
                let inner = s
                    .strip_prefix('{')
                    .and_then(|s| s.strip_suffix('}'))
                    .ok_or_else(|| syntax("unclosed '{'"))?;
                let t = inner.parse::<Timestamp>().map_err(|e| RevError::Syntax {
                    input: input.into(),
                    reason: format!("expected an RFC 3339 time such as 2026-03-01T12:00:00Z: {e}"),
                })?;
                Selector::AsOf(t)
            }
            s => Selector::Native(s.to_owned()),
        };
        Ok(Rev::Source {
            name: name.to_owned(),
            sel,
        })
    }
}

impl Rev {
    /// Finds the snapshot this revision names.
    pub fn resolve(&self, store: &Store, input: &str) -> Result<Resolved, RevError> {
        match self {
            Rev::Id(hex) => {
                let found = store.snapshots_with_prefix(hex, 5)?;
                match found.as_slice() {
                    [] => Err(RevError::NotFound {
                        input: input.into(),
                    }),
                    [(id, _)] => Ok(Resolved {
                        id: *id,
                        source: None,
                    }),
                    many => Err(RevError::Ambiguous {
                        input: input.into(),
                        candidates: many.iter().map(|(id, _)| id.to_string()).collect(),
                    }),
                }
            }
            Rev::Source { name, sel } => {
                let def = store.source(name)?;
                let head = store
                    .head(name)?
                    .ok_or_else(|| RevError::Empty { name: name.clone() })?;
                let entry = match sel {
                    Selector::Latest => head,
                    Selector::Back(n) => head
                        .seq
                        .checked_sub(*n)
                        .filter(|&s| s >= 1)
                        .map(|s| store.log_at(name, s))
                        .transpose()?
                        .flatten()
                        .ok_or_else(|| RevError::TooFar {
                            input: input.into(),
                            len: head.seq,
                        })?,
                    Selector::AsOf(t) => {
                        store
                            .as_of(name, t.as_second())?
                            .ok_or_else(|| RevError::NotFound {
                                input: input.into(),
                            })?
                    }
                    Selector::Native(native) => {
                        resolve_native(store, name, def.vcs.kind().revision_schemes, native, input)?
                    }
                };
                Ok(Resolved {
                    id: entry.id,
                    source: Some((name.clone(), entry)),
                })
            }
        }
    }
}

fn resolve_native(
    store: &Store,
    name: &str,
    schemes: &[&str],
    native: &str,
    input: &str,
) -> Result<LogEntry, RevError> {
    let mut candidates: Vec<String> = std::iter::once(native.to_owned())
        .chain(schemes.iter().map(|s| format!("{s}{native}")))
        .collect();
    candidates.dedup();
    for full in &candidates {
        if let Some(e) = store.revision(name, full)? {
            return Ok(e);
        }
    }
    // A named ref: full, or short as Git spells it.
    for refname in [
        native.to_owned(),
        format!("refs/heads/{native}"),
        format!("refs/tags/{native}"),
        format!("refs/remotes/{native}"),
    ] {
        if let Some(id) = store.source_ref(name, &refname)? {
            let seq = store
                .sources_of(&id)?
                .into_iter()
                .find(|(s, _)| s == name)
                .map(|(_, seq)| seq)
                .ok_or_else(|| RevError::NotFound {
                    input: input.into(),
                })?;
            return Ok(LogEntry { seq, id });
        }
    }
    let bare = schemes
        .iter()
        .find_map(|s| native.strip_prefix(s))
        .unwrap_or(native);
    if bare.len() < MIN_PREFIX {
        return Err(RevError::NotFound {
            input: input.into(),
        });
    }
    let mut matches = Vec::new();
    for prefix in &candidates {
        for (rev, e) in store.revisions_with_prefix(name, prefix, 6)? {
            if !matches.iter().any(|(r, _): &(String, LogEntry)| *r == rev) {
                matches.push((rev, e));
            }
        }
    }
    match matches.len() {
        0 => Err(RevError::NotFound {
            input: input.into(),
        }),
        1 => Ok(matches[0].1),
        _ => Err(RevError::Ambiguous {
            input: input.into(),
            candidates: matches.into_iter().take(5).map(|(r, _)| r).collect(),
        }),
    }
}

/// Parses and resolves in one step.
pub fn resolve(store: &Store, input: &str) -> Result<Resolved, RevError> {
    input.parse::<Rev>()?.resolve(store, input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            "app@latest".parse::<Rev>().unwrap(),
            Rev::Source {
                name: "app".into(),
                sel: Selector::Latest
            }
        );
        assert!(matches!(
            "app@~3".parse::<Rev>().unwrap(),
            Rev::Source {
                sel: Selector::Back(3),
                ..
            }
        ));
        assert!(matches!(
            "app@{2026-03-01T12:00:00Z}".parse::<Rev>().unwrap(),
            Rev::Source {
                sel: Selector::AsOf(_),
                ..
            }
        ));
        assert_eq!(
            "blake3:ABCD".parse::<Rev>().unwrap(),
            Rev::Id("abcd".into())
        );
        for bad in ["abc", "@x", "app@", "app@~x", "app@{nope}", "app@{2026"] {
            assert!(bad.parse::<Rev>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn splits_paths() {
        assert_eq!(
            split_path(b"app@latest:etc/a"),
            (&b"app@latest"[..], Some(&b"etc/a"[..]))
        );
        assert_eq!(
            split_path(b"app@git:sha1:abcd:x"),
            (&b"app@git:sha1:abcd"[..], Some(&b"x"[..]))
        );
        assert_eq!(
            split_path(b"app@{2026-03-01T12:00:00Z}:x:y"),
            (&b"app@{2026-03-01T12:00:00Z}"[..], Some(&b"x:y"[..]))
        );
        assert_eq!(
            split_path(b"blake3:abcd:p"),
            (&b"blake3:abcd"[..], Some(&b"p"[..]))
        );
        assert_eq!(split_path(b"abcd"), (&b"abcd"[..], None));
        assert_eq!(split_path(b"app@dir:3"), (&b"app@dir:3"[..], None));
    }
}
