//! Attributes as this machine applies them: owner and group names looked
//! up in `/etc/passwd` and `/etc/group`, and a check that the running user
//! may make the change, both before anything is written.
//!
//! Names are read from those two files, not through the C library's name
//! service switch: the crate has no `unsafe` code to call `getpwnam_r`
//! with, and configuration management names local system users and groups,
//! which live there. A name known only to a directory service (LDAP, SSSD)
//! is refused as unknown; a number is applied as given.

use std::collections::HashMap;
use std::path::Path;

use plumb_core::attrs::MODE_BITS;
use plumb_core::{Attrs, Owner, ResolvedAttrs};

/// Why attributes cannot be applied here.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// A name the user or group database does not hold.
    #[error("unknown {what} {name:?} (not in {file})")]
    Unknown {
        /// `user` or `group`.
        what: &'static str,
        /// The name.
        name: String,
        /// Where it was looked for.
        file: &'static str,
    },
    /// The database could not be read.
    #[error("cannot read {file}: {source}")]
    Database {
        /// Which file.
        file: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The running user may not give files this owner or group.
    #[error(
        "cannot give files {what} {id}: running as uid {uid}, which may not (run as root, or change the declared {what})"
    )]
    NotPermitted {
        /// `owner` or `group`.
        what: &'static str,
        /// The id asked for.
        id: u32,
        /// The running user.
        uid: u32,
    },
    /// A mode beyond the permission bits.
    #[error("mode {mode:o} has bits beyond 7777")]
    Mode {
        /// The mode.
        mode: u32,
    },
}

/// Users and groups by name, read once, and who is running.
#[derive(Clone)]
pub(crate) struct Owners {
    users: Option<HashMap<String, u32>>,
    groups: Option<HashMap<String, u32>>,
    uid: u32,
    gids: Vec<u32>,
}

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";

impl Owners {
    /// Who is running; the databases are read when first needed.
    pub(crate) fn new() -> Self {
        let me = Credentials::of_process();
        Self {
            users: None,
            groups: None,
            uid: me.uid,
            gids: me.gids,
        }
    }

    /// Resolves `attrs` and checks the running user may apply them.
    pub(crate) fn resolve(&mut self, attrs: &Attrs) -> Result<ResolvedAttrs, OwnerError> {
        if let Some(mode) = attrs.mode
            && mode & !MODE_BITS != 0
        {
            return Err(OwnerError::Mode { mode });
        }
        let uid = match &attrs.owner {
            None => None,
            Some(Owner::Id(n)) => Some(*n),
            Some(Owner::Name(name)) => Some(lookup(&mut self.users, PASSWD, "user", name)?),
        };
        let gid = match &attrs.group {
            None => None,
            Some(Owner::Id(n)) => Some(*n),
            Some(Owner::Name(name)) => Some(lookup(&mut self.groups, GROUP, "group", name)?),
        };
        if self.uid != 0 {
            // Without privilege, chown(2) keeps the owner and may set
            // only a group the caller is in.
            if let Some(id) = uid.filter(|u| *u != self.uid) {
                return Err(OwnerError::NotPermitted {
                    what: "owner",
                    id,
                    uid: self.uid,
                });
            }
            if let Some(id) = gid.filter(|g| !self.gids.contains(g)) {
                return Err(OwnerError::NotPermitted {
                    what: "group",
                    id,
                    uid: self.uid,
                });
            }
        }
        Ok(ResolvedAttrs {
            mode: attrs.mode,
            uid,
            gid,
        })
    }
}

/// The running process's effective uid and its groups (effective gid and
/// supplementary groups).
pub(crate) struct Credentials {
    /// The effective uid.
    pub uid: u32,
    /// The effective gid, then the supplementary groups.
    pub gids: Vec<u32>,
}

impl Credentials {
    /// Read from `/proc/self/status` (the `Uid:`, `Gid:` and `Groups:`
    /// lines: Linux, which this target is for). When it cannot be read,
    /// nothing is known: no uid (every change of owner or group is then
    /// refused at plan time, never attempted).
    pub(crate) fn of_process() -> Self {
        if let Ok(status) = std::fs::read_to_string("/proc/self/status")
            && let Some(me) = Self::parse_status(&status)
        {
            return me;
        }
        Self {
            uid: u32::MAX,
            gids: Vec::new(),
        }
    }

    fn parse_status(status: &str) -> Option<Self> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|rest| {
                    rest.split_whitespace()
                        .filter_map(|n| n.parse::<u32>().ok())
                        .collect::<Vec<u32>>()
                })
        };
        // `Uid:` and `Gid:` list real, effective, saved and file-system ids.
        let uid = *field("Uid:")?.get(1)?;
        let mut gids = vec![*field("Gid:")?.get(1)?];
        gids.extend(field("Groups:").unwrap_or_default());
        Some(Self { uid, gids })
    }

    /// Whether the process runs as root.
    pub(crate) fn is_root() -> bool {
        Self::of_process().uid == 0
    }
}

fn lookup(
    table: &mut Option<HashMap<String, u32>>,
    file: &'static str,
    what: &'static str,
    name: &str,
) -> Result<u32, OwnerError> {
    if table.is_none() {
        let text = std::fs::read_to_string(Path::new(file))
            .map_err(|source| OwnerError::Database { file, source })?;
        *table = Some(parse_database(&text));
    }
    table
        .as_ref()
        .and_then(|t| t.get(name))
        .copied()
        .ok_or_else(|| OwnerError::Unknown {
            what,
            name: name.to_owned(),
            file,
        })
}

/// `name:x:ID:...` lines (the format `/etc/passwd` and `/etc/group`
/// share), the first line of a name winning as in the C library.
fn parse_database(text: &str) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(id) = id.parse::<u32>()
            && !name.is_empty()
            && !name.starts_with(['#', '+', '-'])
        {
            out.entry(name.to_owned()).or_insert(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_status_file() {
        let me = Credentials::parse_status(
            "Name:\tx\nUid:\t1000\t1001\t1000\t1000\nGid:\t50\t51\t50\t50\nGroups:\t4 24 27 \n",
        )
        .expect("parses");
        assert_eq!(me.uid, 1001);
        assert_eq!(me.gids, vec![51, 4, 24, 27]);
        let fd = std::fs::File::create(
            std::env::temp_dir().join(format!("plumb-cred-{}", std::process::id())),
        );
        if let Ok(f) = fd {
            use std::os::unix::fs::MetadataExt;
            let real = Credentials::of_process();
            assert_eq!(f.metadata().expect("stat").uid(), real.uid);
            let _ = std::fs::remove_file(
                std::env::temp_dir().join(format!("plumb-cred-{}", std::process::id())),
            );
        }
    }

    #[test]
    fn databases_parse_like_the_c_library() {
        let t = parse_database(
            "root:x:0:0:root:/root:/bin/sh\n#c:x:1:\n+nis::::\nbad\nwww:x:33:33::/:/x\nwww:x:99:\n",
        );
        assert_eq!(t.get("root"), Some(&0));
        assert_eq!(t.get("www"), Some(&33), "the first line wins");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn unknown_names_and_forbidden_owners_are_refused() {
        let mut o = Owners::new();
        let e = o
            .resolve(&Attrs {
                owner: Some(Owner::Name("no-such-user-plumb".into())),
                ..Attrs::default()
            })
            .expect_err("unknown");
        assert!(e.to_string().contains("unknown user"), "{e}");
        let me = Credentials::of_process().uid;
        let other = if me == 0 { 1 } else { 0 };
        let r = o.resolve(&Attrs {
            owner: Some(Owner::Id(other)),
            ..Attrs::default()
        });
        assert_eq!(r.is_ok(), me == 0, "{r:?}");
        let mine = o
            .resolve(&Attrs {
                mode: Some(0o640),
                owner: Some(Owner::Id(me)),
                group: None,
            })
            .expect("one's own files");
        assert_eq!(mine.uid, Some(me));
    }
}
