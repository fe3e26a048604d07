//! Revision syntax: naming a snapshot.
//!
//! ```text
//! REV  := BASE NAV*
//! BASE := NAME@SEL | ID-PREFIX
//! SEL  := latest | {RFC 3339 time or date} | a ref | native revision or a prefix of it
//!       | (empty, before NAV: latest)
//! NAV  := ~N | ~ | ^N | ^
//! ```
//!
//! A native revision may be given with or without its scheme
//! (`app@git:sha1:1a2b…` or `app@1a2b`); a prefix must be unique and at
//! least 4 characters long. A ref the source recorded (a branch, tag or
//! bookmark) names its snapshot: `app@refs/tags/v1.0`, or short, `app@v1.0`;
//! an exact native revision wins over a ref, a ref over a prefix. `{time}` names the snapshot with the latest
//! committer time at or before it; `{date}` (`{2026-06-01}`) means the
//! end of that day in UTC, so it names what was current as of that day.
//! An id prefix (`blake3:` optional, at least 4 hex digits) names a
//! snapshot of any source.
//!
//! Parents are followed as Git follows them: `~N` follows first parents N
//! times (`~` is `~1`), `^N` takes the Nth parent (`^` is `^1`, `^0` the
//! snapshot itself), and they chain: `app@main~2^2~1`. `app@~3` is three
//! first parents before the latest.

use jiff::Timestamp;
use plumb_core::SnapshotId;

use crate::store::{LogEntry, Store, StoreError};

/// The shortest prefix accepted for ids and native revisions.
pub const MIN_PREFIX: usize = 4;

/// A parsed revision: where to start, and the parents to follow from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rev {
    /// Where to start.
    pub base: Base,
    /// The parents to follow, in order.
    pub nav: Vec<Nav>,
}

/// Where a revision starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
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

/// What follows `@`, before any `~` or `^`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `latest`.
    Latest,
    /// `{time}`: current at that time.
    AsOf(Timestamp),
    /// A native revision, or a prefix of one.
    Native(String),
}

/// One step from a snapshot to a parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// `~N`: the first parent, N times.
    First(u64),
    /// `^N`: the Nth parent (`^0`: the snapshot itself).
    Parent(u64),
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
    /// `~N` or `^N` reaches past a snapshot without parents.
    #[error("{input:?} reaches before the first snapshot ({at} has no parent)")]
    TooFar {
        /// What was given.
        input: String,
        /// The snapshot without parents (a short id).
        at: String,
    },
    /// `^N` names a parent the snapshot does not have.
    #[error("{input:?}: snapshot {at} has {count} parent{}, so no parent {nth}", if *count == 1 { "" } else { "s" })]
    NoParent {
        /// What was given.
        input: String,
        /// The snapshot (a short id).
        at: String,
        /// How many parents it has.
        count: usize,
        /// The parent asked for.
        nth: u64,
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

/// Splits `SEL NAV*` where the navigation starts: at the first `~` or `^`
/// outside braces (refs and native revisions hold neither).
fn split_nav(sel: &str) -> (&str, &str) {
    let mut depth = 0usize;
    for (i, c) in sel.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '~' | '^' if depth == 0 => return (&sel[..i], &sel[i..]),
            _ => {}
        }
    }
    (sel, "")
}

/// Parses `(~N | ~ | ^N | ^)*`.
fn parse_nav(mut text: &str) -> Result<Vec<Nav>, String> {
    let mut nav = Vec::new();
    while let Some(op) = text.chars().next() {
        let rest = &text[1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n = if digits == 0 {
            1
        } else {
            rest[..digits]
                .parse::<u64>()
                .map_err(|_| format!("number after '{op}' too large"))?
        };
        nav.push(match op {
            '~' => Nav::First(n),
            '^' => Nav::Parent(n),
            _ => return Err(format!("expected '~' or '^' at {text:?}")),
        });
        text = &rest[digits..];
    }
    Ok(nav)
}

/// `{…}`: an RFC 3339 time, or a date meaning the end of that day in UTC.
fn parse_time(inner: &str) -> Result<Timestamp, String> {
    if let Ok(t) = inner.parse::<Timestamp>() {
        return Ok(t);
    }
    let end_of_day = inner
        .parse::<jiff::civil::Date>()
        .map_err(|e| e.to_string())
        .and_then(|d| {
            d.at(23, 59, 59, 0)
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| z.timestamp())
                .map_err(|e| e.to_string())
        });
    end_of_day.map_err(|_| {
        format!(
            "expected an RFC 3339 time such as 2026-03-01T12:00:00Z, or a date such as 2026-03-01, not {inner:?}"
        )
    })
}

impl std::str::FromStr for Rev {
    type Err = RevError;
    fn from_str(input: &str) -> Result<Self, RevError> {
        let syntax = |reason: &str| RevError::Syntax {
            input: input.into(),
            reason: reason.into(),
        };
        let Some((name, sel)) = input.split_once('@') else {
            let (hex, nav) = split_nav(input);
            let hex = hex.strip_prefix("blake3:").unwrap_or(hex);
            if hex.len() < MIN_PREFIX || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(syntax(
                    "expected NAME@SELECTOR or a snapshot id prefix of at least 4 hex digits",
                ));
            }
            return Ok(Rev {
                base: Base::Id(hex.to_ascii_lowercase()),
                nav: parse_nav(nav).map_err(|r| syntax(&r))?,
            });
        };
        if name.is_empty() {
            return Err(syntax("missing source name before '@'"));
        }
        let (sel, nav) = split_nav(sel);
        let nav = parse_nav(nav).map_err(|r| syntax(&r))?;
        let sel = match sel {
            "" if nav.is_empty() => return Err(syntax("missing selector after '@'")),
            "" | "latest" => Selector::Latest,
            s if s.starts_with('{') => {
                let inner = s
                    .strip_prefix('{')
                    .and_then(|s| s.strip_suffix('}'))
                    .ok_or_else(|| syntax("unclosed '{'"))?;
                Selector::AsOf(parse_time(inner).map_err(|r| syntax(&r))?)
            }
            s => Selector::Native(s.to_owned()),
        };
        Ok(Rev {
            base: Base::Source {
                name: name.to_owned(),
                sel,
            },
            nav,
        })
    }
}

impl Rev {
    /// Finds the snapshot this revision names.
    pub fn resolve(&self, store: &Store, input: &str) -> Result<Resolved, RevError> {
        let start = self.base.resolve(store, input)?;
        if self.nav.is_empty() {
            return Ok(start);
        }
        let id = follow(store, start.id, &self.nav, input)?;
        let source = match start.source {
            Some((name, _)) => store
                .sources_of(&id)?
                .into_iter()
                .find(|(s, _)| *s == name)
                .map(|(name, seq)| (name, LogEntry { seq, id })),
            None => None,
        };
        Ok(Resolved { id, source })
    }
}

/// Follows `nav` from `id`, as Git follows `~` and `^`.
fn follow(
    store: &Store,
    mut id: SnapshotId,
    nav: &[Nav],
    input: &str,
) -> Result<SnapshotId, RevError> {
    let parent = |id: SnapshotId, nth: u64| -> Result<SnapshotId, RevError> {
        let parents = store.snapshot(&id)?.parents;
        let at = || id.to_hex()[..12].to_owned();
        match usize::try_from(nth - 1).ok().and_then(|i| parents.get(i)) {
            Some(p) => Ok(*p),
            None if parents.is_empty() => Err(RevError::TooFar {
                input: input.into(),
                at: at(),
            }),
            None => Err(RevError::NoParent {
                input: input.into(),
                at: at(),
                count: parents.len(),
                nth,
            }),
        }
    };
    for step in nav {
        match *step {
            Nav::First(n) => {
                for _ in 0..n {
                    id = parent(id, 1)?;
                }
            }
            Nav::Parent(0) => {}
            Nav::Parent(n) => id = parent(id, n)?,
        }
    }
    Ok(id)
}

impl Base {
    /// Finds the snapshot this base names.
    fn resolve(&self, store: &Store, input: &str) -> Result<Resolved, RevError> {
        match self {
            Base::Id(hex) => {
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
            Base::Source { name, sel } => {
                let def = store.source(name)?;
                let head = store
                    .head(name)?
                    .ok_or_else(|| RevError::Empty { name: name.clone() })?;
                let entry = match sel {
                    Selector::Latest => head,
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
        let source = |sel: Selector, nav: Vec<Nav>| Rev {
            base: Base::Source {
                name: "app".into(),
                sel,
            },
            nav,
        };
        assert_eq!(
            "app@latest".parse::<Rev>().unwrap(),
            source(Selector::Latest, vec![])
        );
        assert_eq!(
            "app@~3".parse::<Rev>().unwrap(),
            source(Selector::Latest, vec![Nav::First(3)])
        );
        assert_eq!(
            "app@main~2^2~".parse::<Rev>().unwrap(),
            source(
                Selector::Native("main".into()),
                vec![Nav::First(2), Nav::Parent(2), Nav::First(1)]
            )
        );
        assert_eq!(
            "app@latest^".parse::<Rev>().unwrap(),
            source(Selector::Latest, vec![Nav::Parent(1)])
        );
        assert!(matches!(
            "app@{2026-03-01T12:00:00Z}".parse::<Rev>().unwrap().base,
            Base::Source {
                sel: Selector::AsOf(_),
                ..
            }
        ));
        // A date is the end of that day in UTC.
        let end: Timestamp = "2026-06-01T23:59:59Z".parse().unwrap();
        assert_eq!(
            "app@{2026-06-01}~1".parse::<Rev>().unwrap(),
            source(Selector::AsOf(end), vec![Nav::First(1)])
        );
        assert_eq!(
            "blake3:ABCD^2".parse::<Rev>().unwrap(),
            Rev {
                base: Base::Id("abcd".into()),
                nav: vec![Nav::Parent(2)]
            }
        );
        for bad in [
            "abc",
            "@x",
            "app@",
            "app@~x",
            "app@{nope}",
            "app@{2026",
            "abc~1",
            "app@~1x",
        ] {
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
