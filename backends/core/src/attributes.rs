//! The attributes file, `.plumbattributes`: patterns that give paths
//! permission bits, an owner and a group, versioned with the source.
//!
//! ```text
//! # comment
//! *.key            mode=0600
//! /bin/**          mode=0755 owner=root group=0
//! ssl/private/     mode=0700 owner=root group=ssl-cert
//! ```
//!
//! One rule a line: a pattern, then one or more `NAME=VALUE` attributes
//! (`mode` in octal, `owner` and `group` by name or by number), separated
//! by spaces or tabs. Blank lines and lines starting with `#` are ignored.
//! Patterns follow `.gitignore`: a pattern without a `/` (a trailing one
//! aside) matches a name at any depth; one with a `/` is anchored at the
//! directory holding the file (a leading `/` only anchors); a trailing `/`
//! matches directories only; `*` matches any run of bytes but `/`, `?` one
//! byte but `/`, `[a-z]` and `[!a-z]` one byte of (not of) a set, `**` as a
//! whole component any number of components, and `\` escapes the byte after
//! it. A pattern matches the path itself, not what lies below it (`dir/**`
//! does that). Every rule that matches applies, attribute by attribute, and
//! a later rule overrides an earlier one (`spec/reconcile.md`, Attributes).

use crate::attrs::{Attrs, Owner};

/// The file name of an attributes file.
pub const FILE_NAME: &[u8] = b".plumbattributes";

/// Why an attributes file cannot be read: the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct AttributesError {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// One line of an attributes file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// The pattern's components (one when it is not anchored).
    components: Vec<Vec<u8>>,
    /// Whether the pattern had a `/` and so matches the whole path.
    anchored: bool,
    /// Whether it matches directories only.
    dir_only: bool,
    /// What it sets.
    attrs: Attrs,
}

/// A parsed attributes file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributesFile {
    rules: Vec<Rule>,
}

impl AttributesFile {
    /// Parses the file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, AttributesError> {
        let mut rules = Vec::new();
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let fail = |reason: String| AttributesError {
                line: i + 1,
                reason,
            };
            let mut words = split_words(line).into_iter();
            let Some(pattern) = words.next() else {
                continue;
            };
            if pattern.first() == Some(&b'#') {
                continue;
            }
            let mut attrs = Attrs::default();
            let mut any = false;
            for word in words {
                let word = std::str::from_utf8(&word)
                    .map_err(|_| fail("an attribute is not UTF-8".into()))?;
                set_attr(&mut attrs, word).map_err(fail)?;
                any = true;
            }
            if !any {
                return Err(fail(format!(
                    "pattern {:?} sets no attribute (mode=, owner= or group=)",
                    String::from_utf8_lossy(&pattern)
                )));
            }
            rules.push(Rule::new(&pattern, attrs).map_err(|r| fail(r.into()))?);
        }
        Ok(Self { rules })
    }

    /// Whether the file has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The attributes the file gives `path` (relative to the directory
    /// holding the file, `/`-separated), a directory when `is_dir`.
    pub fn attrs_for(&self, path: &[u8], is_dir: bool) -> Attrs {
        let mut out = Attrs::default();
        for rule in &self.rules {
            if rule.matches(path, is_dir) {
                out = out.overlay(&rule.attrs);
            }
        }
        out
    }
}

/// Splits a line at unescaped spaces and tabs, keeping escapes (a `\`
/// before a space becomes part of the word, unescaped later by the glob).
fn split_words(line: &[u8]) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'\\' if i + 1 < line.len() => {
                cur.extend_from_slice(&line[i..i + 2]);
                i += 2;
                continue;
            }
            b' ' | b'\t' => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            b => cur.push(b),
        }
        i += 1;
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Sets one `NAME=VALUE` attribute.
fn set_attr(attrs: &mut Attrs, word: &str) -> Result<(), String> {
    let Some((key, value)) = word.split_once('=') else {
        return Err(format!(
            "{word:?} is not NAME=VALUE (mode=, owner= or group=)"
        ));
    };
    match key {
        "mode" => {
            let ok =
                (3..=4).contains(&value.len()) && value.bytes().all(|b| (b'0'..=b'7').contains(&b));
            let mode = u32::from_str_radix(value, 8)
                .ok()
                .filter(|_| ok)
                .ok_or_else(|| {
                    format!("mode {value:?} is not three or four octal digits (0640, 755)")
                })?;
            attrs.mode = Some(mode);
        }
        "owner" | "group" => {
            let who = Owner::parse(value)
                .ok_or_else(|| format!("{key} {value:?} is not a name or a number"))?;
            if key == "owner" {
                attrs.owner = Some(who);
            } else {
                attrs.group = Some(who);
            }
        }
        _ => return Err(format!("unknown attribute {key:?} (mode, owner or group)")),
    }
    Ok(())
}

impl Rule {
    fn new(pattern: &[u8], attrs: Attrs) -> Result<Self, &'static str> {
        let (pattern, dir_only) = match pattern.strip_suffix(b"/") {
            Some(p) => (p, true),
            None => (pattern, false),
        };
        let anchored = pattern.contains(&b'/');
        let pattern = pattern.strip_prefix(b"/").unwrap_or(pattern);
        if pattern.is_empty() {
            return Err("an empty pattern");
        }
        let components: Vec<Vec<u8>> = pattern.split(|b| *b == b'/').map(<[u8]>::to_vec).collect();
        if components.iter().any(Vec::is_empty) {
            return Err("a pattern with an empty component (`//`)");
        }
        Ok(Self {
            components,
            anchored,
            dir_only,
            attrs,
        })
    }

    fn matches(&self, path: &[u8], is_dir: bool) -> bool {
        if self.dir_only && !is_dir {
            return false;
        }
        if !self.anchored {
            let name = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
            return self.components.len() == 1 && glob(&self.components[0], name);
        }
        let parts: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
        components_match(&self.components, &parts)
    }
}

/// Whether pattern components match path components, `**` matching any
/// number of them (dynamic programming: no exponential backtracking).
fn components_match(pattern: &[Vec<u8>], path: &[&[u8]]) -> bool {
    // ok[j]: the pattern so far matches the first j path components.
    let mut ok = vec![false; path.len() + 1];
    ok[0] = true;
    for p in pattern {
        let mut next = vec![false; path.len() + 1];
        if p.as_slice() == b"**" {
            let mut reach = false;
            for j in 0..=path.len() {
                reach |= ok[j];
                next[j] = reach;
            }
        } else {
            for j in 0..path.len() {
                if ok[j] && glob(p, path[j]) {
                    next[j + 1] = true;
                }
            }
        }
        ok = next;
    }
    ok[path.len()]
}

/// One pattern token of a component.
enum Token<'a> {
    /// Any run of bytes.
    Star,
    /// Any one byte.
    Any,
    /// One byte of a set (or not of it, when negated).
    Class { set: &'a [u8], negated: bool },
    /// This byte.
    Byte(u8),
}

/// Splits a component pattern into tokens.
fn tokens(pattern: &[u8]) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'*' => {
                if !matches!(out.last(), Some(Token::Star)) {
                    out.push(Token::Star);
                }
            }
            b'?' => out.push(Token::Any),
            b'\\' if i + 1 < pattern.len() => {
                i += 1;
                out.push(Token::Byte(pattern[i]));
            }
            b'[' => {
                let negated = matches!(pattern.get(i + 1), Some(b'!' | b'^'));
                let start = i + 1 + usize::from(negated);
                // A `]` right after the opening is a member, not the end.
                let end = pattern
                    .get(start + 1..)
                    .and_then(|rest| rest.iter().position(|b| *b == b']'))
                    .map(|p| start + 1 + p);
                match end {
                    Some(end) => {
                        out.push(Token::Class {
                            set: &pattern[start..end],
                            negated,
                        });
                        i = end;
                    }
                    None => out.push(Token::Byte(b'[')),
                }
            }
            b => out.push(Token::Byte(b)),
        }
        i += 1;
    }
    out
}

fn in_class(set: &[u8], b: u8) -> bool {
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == b'-' {
            if (set[i]..=set[i + 2]).contains(&b) {
                return true;
            }
            i += 3;
        } else {
            if set[i] == b {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// Whether a component pattern matches a name (`*` and `?` never match
/// `/`, which a name cannot hold anyway).
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let toks = tokens(pattern);
    let one = |t: &Token<'_>, b: u8| match t {
        Token::Star => false,
        Token::Any => b != b'/',
        Token::Class { set, negated } => in_class(set, b) != *negated,
        Token::Byte(x) => *x == b,
    };
    // Greedy with one backtrack point: linear in practice, O(n·m) at worst.
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if t < toks.len() && matches!(toks[t], Token::Star) {
            star = Some((t, n));
            t += 1;
        } else if t < toks.len() && one(&toks[t], name[n]) {
            t += 1;
            n += 1;
        } else if let Some((st, sn)) = star {
            if name[sn] == b'/' {
                return false;
            }
            star = Some((st, sn + 1));
            t = st + 1;
            n = sn + 1;
        } else {
            return false;
        }
    }
    toks[t..].iter().all(|t| matches!(t, Token::Star))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> AttributesFile {
        AttributesFile::parse(text.as_bytes()).expect("parses")
    }

    #[test]
    fn later_rules_override_attribute_by_attribute() {
        let f = file("# keys\n*.key mode=0600 owner=root\nssl/*.key group=ssl-cert mode=0640\n");
        let a = f.attrs_for(b"ssl/site.key", false);
        assert_eq!(a.mode, Some(0o640));
        assert_eq!(a.owner, Some(Owner::Name("root".into())));
        assert_eq!(a.group, Some(Owner::Name("ssl-cert".into())));
        let b = f.attrs_for(b"deep/x/site.key", false);
        assert_eq!(b.mode, Some(0o600));
        assert_eq!(b.group, None);
        assert!(f.attrs_for(b"site.crt", false).is_empty());
    }

    #[test]
    fn patterns_follow_gitignore() {
        let f = file("/top mode=0700\nd/ mode=0750\na/**/z owner=7\n[!x]?.c group=5\n");
        assert_eq!(f.attrs_for(b"top", false).mode, Some(0o700));
        assert!(f.attrs_for(b"sub/top", false).is_empty(), "anchored");
        assert_eq!(f.attrs_for(b"x/d", true).mode, Some(0o750));
        assert!(f.attrs_for(b"x/d", false).is_empty(), "directories only");
        for p in [&b"a/z"[..], b"a/b/z", b"a/b/c/z"] {
            assert_eq!(f.attrs_for(p, false).owner, Some(Owner::Id(7)), "{p:?}");
        }
        assert!(f.attrs_for(b"b/a/z", false).owner.is_none());
        assert_eq!(f.attrs_for(b"q/ab.c", false).group, Some(Owner::Id(5)));
        assert!(f.attrs_for(b"xb.c", false).group.is_none());
    }

    #[test]
    fn bad_lines_name_their_line() {
        for (text, line) in [
            ("a mode=0600\nb\n", 2),
            ("a mode=999\n", 1),
            ("\n\na colour=red\n", 3),
            ("a owner=\n", 1),
            ("a owner=a:b\n", 1),
            ("a mode=06000\n", 1),
            ("// mode=0600\n", 1),
        ] {
            let e = AttributesFile::parse(text.as_bytes()).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn component() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(
                prop_oneof![b'a'..=b'e', Just(b'.'), Just(b'-'), Just(0xc3u8)],
                1..6,
            )
        }

        fn escape(c: &[u8]) -> Vec<u8> {
            c.iter().flat_map(|b| [b'\\', *b]).collect()
        }

        proptest! {
            /// An escaped path matches itself and nothing else; a path with
            /// any components replaced by `*` (or a run by `**`) still matches.
            #[test]
            fn literal_and_wildcard_patterns(
                path in proptest::collection::vec(component(), 1..5),
                other in proptest::collection::vec(component(), 1..5),
                stars in proptest::collection::vec(any::<bool>(), 5),
            ) {
                let raw = path.join(&b'/');
                let mut lit = b"/".to_vec();
                lit.extend(path.iter().map(|c| escape(c)).collect::<Vec<_>>().join(&b'/'));
                let rule = Rule::new(&lit, Attrs { mode: Some(0o600), ..Attrs::default() }).expect("valid");
                prop_assert!(rule.matches(&raw, false));
                prop_assert_eq!(rule.matches(&other.join(&b'/'), false), other == path);
                let wild: Vec<Vec<u8>> = path.iter().zip(&stars).map(|(c, s)| if *s { b"*".to_vec() } else { escape(c) }).collect();
                let mut pat = b"/".to_vec();
                pat.extend(wild.join(&b'/'));
                let rule = Rule::new(&pat, Attrs::default()).expect("valid");
                prop_assert!(rule.matches(&raw, false));
                let deep = Rule::new(&[b"**/".to_vec(), escape(path.last().expect("one"))].concat(), Attrs::default()).expect("valid");
                prop_assert!(deep.matches(&raw, false));
            }

            /// Parsing never panics, and whatever parses answers every path.
            #[test]
            fn parsing_arbitrary_bytes_never_panics(
                text in proptest::collection::vec(any::<u8>(), 0..200),
                path in proptest::collection::vec(component(), 1..4),
            ) {
                if let Ok(f) = AttributesFile::parse(&text) {
                    let _ = f.attrs_for(&path.join(&b'/'), false);
                }
            }
        }
    }
}
