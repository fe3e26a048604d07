//! File attributes: permission bits, owner and group.
//!
//! A tree entry may carry [`Attrs`] (recorded by a directory source, or
//! declared in an attributes file, see [`crate::attributes`]); an owner or
//! group is named by number or by name. A target resolves names into
//! numbers before it applies them ([`ResolvedAttrs`]), and reports what it
//! finds in the same numeric form.

use std::fmt;

/// The permission bits an attribute may set: `rwx` for owner, group and
/// others, plus set-user-id, set-group-id and sticky.
pub const MODE_BITS: u32 = 0o7777;

/// An owner or group: a number, or a name the target resolves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// A numeric id (uid or gid).
    Id(u32),
    /// A user or group name, resolved where the attributes are applied.
    Name(String),
}

impl Owner {
    /// Reads `text` as a number when it is all digits, else as a name;
    /// `None` when it is neither (see [`check_name`]).
    pub fn parse(text: &str) -> Option<Owner> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().ok().map(Owner::Id);
        }
        check_name(text).ok().map(|()| Owner::Name(text.to_owned()))
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Id(n) => write!(f, "{n}"),
            Owner::Name(s) => f.write_str(s),
        }
    }
}

/// Whether `name` can name a user or group: non-empty, not all digits (a
/// number is an id), and free of whitespace, control characters, `:` and
/// `=`. Returns why not.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("an owner or group name is empty");
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err("an owner or group name is all digits");
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ':' || c == '=')
    {
        return Err("an owner or group name holds whitespace, a control character, ':' or '='");
    }
    Ok(())
}

/// The attributes of one tree entry; every field is optional, and an entry
/// with none set carries no attributes at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attrs {
    /// Permission bits (within [`MODE_BITS`]).
    pub mode: Option<u32>,
    /// The owner.
    pub owner: Option<Owner>,
    /// The group.
    pub group: Option<Owner>,
}

impl Attrs {
    /// Whether no attribute is set.
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.owner.is_none() && self.group.is_none()
    }

    /// `self` with every attribute `over` sets replaced by its value.
    pub fn overlay(&self, over: &Attrs) -> Attrs {
        Attrs {
            mode: over.mode.or(self.mode),
            owner: over.owner.clone().or_else(|| self.owner.clone()),
            group: over.group.clone().or_else(|| self.group.clone()),
        }
    }

    /// Checks what the types alone do not: the mode's range and the names.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.mode.is_some_and(|m| m & !MODE_BITS != 0) {
            return Err("a mode has bits beyond 7777");
        }
        for o in [&self.owner, &self.group].into_iter().flatten() {
            if let Owner::Name(n) = o {
                check_name(n)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Attrs {
    /// `mode 0600 owner root group 0`, the attributes set, in that order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(m) = self.mode {
            write!(f, "mode {m:04o}")?;
            sep = " ";
        }
        if let Some(o) = &self.owner {
            write!(f, "{sep}owner {o}")?;
            sep = " ";
        }
        if let Some(g) = &self.group {
            write!(f, "{sep}group {g}")?;
        }
        Ok(())
    }
}

/// Attributes with owner and group as numbers: what a target applies and
/// what it observes. A field that is `None` is left as the target finds it
/// (when applying) or was not looked at (when observing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ResolvedAttrs {
    /// Permission bits (within [`MODE_BITS`]).
    pub mode: Option<u32>,
    /// The owner's uid.
    pub uid: Option<u32>,
    /// The group's gid.
    pub gid: Option<u32>,
}

impl ResolvedAttrs {
    /// Whether no attribute is set.
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.uid.is_none() && self.gid.is_none()
    }

    /// The attributes `self` sets whose value `found` does not have, each
    /// as (attribute name, value wanted, value found), values as text
    /// (`mode` in four octal digits). An attribute `found` does not report
    /// is not compared.
    pub fn differences(&self, found: &ResolvedAttrs) -> Vec<AttrChange> {
        let mut out = Vec::new();
        if let (Some(want), Some(got)) = (self.mode, found.mode)
            && want != got & MODE_BITS
        {
            out.push(AttrChange {
                attribute: "mode",
                expected: format!("{want:04o}"),
                found: format!("{:04o}", got & MODE_BITS),
            });
        }
        for (attribute, want, got) in [
            ("owner", self.uid, found.uid),
            ("group", self.gid, found.gid),
        ] {
            if let (Some(want), Some(got)) = (want, got)
                && want != got
            {
                out.push(AttrChange {
                    attribute,
                    expected: want.to_string(),
                    found: got.to_string(),
                });
            }
        }
        out
    }
}

/// One attribute that differs from what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrChange {
    /// `mode`, `owner` or `group`.
    pub attribute: &'static str,
    /// The value plumb applied or wants (mode in octal, ids in decimal).
    pub expected: String,
    /// The value found.
    pub found: String,
}

impl fmt::Display for AttrChange {
    /// `mode 0644 -> 0600`: what it should be (what plumb applied), then
    /// what it is: drift's view of a change made behind plumb's back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.attribute, self.expected, self.found)
    }
}
