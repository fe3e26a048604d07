//! Where a tracked file's revlog lives in the store: the path encodings of
//! the `store`, `fncache` and `dotencode` layouts.
//!
//! Written from the layouts' documented rules:
//!
//! 1. **Directory names**: every directory component ending in `.hg`, `.i`
//!    or `.d` gets `.hg` appended, so no directory looks like a revlog.
//!    (All layouts.)
//! 2. **Filename encoding** (`store` and later): `A`–`Z` become `_` and the
//!    lower-case letter, `_` becomes `__`, and bytes below 32, from 126
//!    (`~`) up, and the Windows-reserved `\ : * ? " < > |` become `~xx`
//!    (two lower-case hex digits).
//! 3. **Auxiliary encoding** (`fncache`): in each component, a name that is
//!    a reserved Windows device (`aux`, `con`, `prn`, `nul`, `com1`–`com9`,
//!    `lpt1`–`lpt9`, alone or before a `.`) has its third byte written as
//!    `~xx`; with `dotencode`, a leading `.` or space is written `~2e` or
//!    `~20` instead (and the device check is skipped); a trailing `.` or
//!    space is written `~2e`/`~20`.
//! 4. **Hashing** (`fncache`): if the result is longer than 120 bytes, the
//!    file is stored under `dh/` instead: the first 8 bytes of each
//!    directory component (after a lower-case-only variant of step 2 and
//!    step 3; a trailing `.` or space becomes `_`), as many as fit in 68
//!    bytes, then as much of the file's own encoded name as fits in 120
//!    bytes overall, then the hex SHA-1 of the whole step-1 path
//!    (`data/….i`), then the name's extension.

use sha1::{Digest, Sha1};

use crate::revlog::hex;

/// How file names are encoded in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No `store` requirement: only directory names are encoded (step 1).
    Plain,
    /// `store` without `fncache`: steps 1 and 2.
    Store,
    /// `fncache`: steps 1 to 4, with or without `dotencode`.
    Fncache {
        /// Whether a leading `.` or space is encoded.
        dotencode: bool,
    },
}

const MAX_STORE_PATH: usize = 120;
const DIR_PREFIX_LEN: usize = 8;
const MAX_SHORT_DIRS_LEN: usize = 8 * (DIR_PREFIX_LEN + 1) - 4;

/// The store-relative path of `name` (for example `data/a/b.txt.i`),
/// encoded for `encoding`.
pub fn encode(name: &[u8], encoding: Encoding) -> Vec<u8> {
    let dir_encoded = encode_dirs(name);
    match encoding {
        Encoding::Plain => dir_encoded,
        Encoding::Store => encode_fname(&dir_encoded, false),
        Encoding::Fncache { dotencode } => {
            let full = encode_fname(&dir_encoded, false);
            let res = join(aux_encode(split(&full), dotencode));
            if res.len() > MAX_STORE_PATH {
                hash_encode(&dir_encoded, dotencode)
            } else {
                res
            }
        }
    }
}

/// Step 1: `.hg`, `.i` and `.d` directories get `.hg` appended.
fn encode_dirs(path: &[u8]) -> Vec<u8> {
    let parts = split(path);
    let last = parts.len() - 1;
    let mut out = Vec::with_capacity(path.len() + 8);
    for (i, p) in parts.iter().enumerate() {
        out.extend_from_slice(p);
        if i < last {
            if p.ends_with(b".hg") || p.ends_with(b".i") || p.ends_with(b".d") {
                out.extend_from_slice(b".hg");
            }
            out.push(b'/');
        }
    }
    out
}

fn is_reserved(b: u8) -> bool {
    !(32..126).contains(&b) || b"\\:*?\"<>|".contains(&b)
}

fn push_escaped(out: &mut Vec<u8>, b: u8) {
    out.push(b'~');
    out.extend_from_slice(hex(&[b]).as_bytes());
}

/// Step 2; with `lower_only`, capitals become plain lower case and `_`
/// stays (the variant used inside hashed paths).
fn encode_fname(path: &[u8], lower_only: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 8);
    for &b in path {
        match b {
            b'A'..=b'Z' if lower_only => out.push(b.to_ascii_lowercase()),
            b'A'..=b'Z' => {
                out.push(b'_');
                out.push(b.to_ascii_lowercase());
            }
            b'_' if !lower_only => out.extend_from_slice(b"__"),
            b'/' => out.push(b),
            b if is_reserved(b) => push_escaped(&mut out, b),
            b => out.push(b),
        }
    }
    out
}

fn split(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|b| *b == b'/').map(<[u8]>::to_vec).collect()
}

fn join(parts: Vec<Vec<u8>>) -> Vec<u8> {
    parts.join(&b'/')
}

/// Step 3, component by component.
fn aux_encode(mut parts: Vec<Vec<u8>>, dotencode: bool) -> Vec<Vec<u8>> {
    for n in &mut parts {
        if n.is_empty() {
            continue;
        }
        if dotencode && (n[0] == b'.' || n[0] == b' ') {
            let mut e = Vec::with_capacity(n.len() + 2);
            push_escaped(&mut e, n[0]);
            e.extend_from_slice(&n[1..]);
            *n = e;
        } else {
            let stem = n.iter().position(|b| *b == b'.').unwrap_or(n.len());
            let device3 = stem == 3 && [&b"aux"[..], b"con", b"prn", b"nul"].contains(&&n[..3]);
            let device4 = stem == 4
                && (b'1'..=b'9').contains(&n[3])
                && [&b"com"[..], b"lpt"].contains(&&n[..3]);
            if device3 || device4 {
                let mut e = n[..2].to_vec();
                push_escaped(&mut e, n[2]);
                e.extend_from_slice(&n[3..]);
                *n = e;
            }
        }
        if let Some(&last) = n.last()
            && (last == b'.' || last == b' ')
        {
            n.pop();
            push_escaped(n, last);
        }
    }
    parts
}

/// The extension of a file name as Python's `os.path.splitext` sees it:
/// from the last `.`, unless only dots precede it.
fn extension(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|b| *b == b'.') {
        Some(dot) if name[..dot].iter().any(|b| *b != b'.') => &name[dot..],
        _ => b"",
    }
}

/// Step 4, from the step-1 path `path` (which starts with `data/` or
/// `meta/`).
fn hash_encode(path: &[u8], dotencode: bool) -> Vec<u8> {
    let digest = hex(&Sha1::digest(path));
    let rest = path.get(5..).unwrap_or_default();
    let parts = aux_encode(split(&encode_fname(rest, true)), dotencode);
    let empty = Vec::new();
    let (basename, dirs) = parts.split_last().unwrap_or((&empty, &[]));
    let ext = extension(basename);
    let mut short: Vec<u8> = Vec::new();
    for p in dirs {
        let mut d = p[..p.len().min(DIR_PREFIX_LEN)].to_vec();
        if let Some(last) = d.last_mut()
            && (*last == b'.' || *last == b' ')
        {
            *last = b'_';
        }
        let t = if short.is_empty() {
            d.len()
        } else {
            short.len() + 1 + d.len()
        };
        if !short.is_empty() && t > MAX_SHORT_DIRS_LEN {
            break;
        }
        if !short.is_empty() {
            short.push(b'/');
        }
        short.extend_from_slice(&d);
    }
    if !short.is_empty() {
        short.push(b'/');
    }
    let make = |filler: &[u8]| {
        let mut r = b"dh/".to_vec();
        r.extend_from_slice(&short);
        r.extend_from_slice(filler);
        r.extend_from_slice(digest.as_bytes());
        r.extend_from_slice(ext);
        r
    };
    let res = make(b"");
    let space_left = MAX_STORE_PATH.saturating_sub(res.len());
    if space_left > 0 {
        make(&basename[..basename.len().min(space_left)])
    } else {
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fnc(p: &str) -> String {
        String::from_utf8(encode(p.as_bytes(), Encoding::Fncache { dotencode: true })).unwrap()
    }

    #[test]
    fn simple_rules() {
        assert_eq!(fnc("data/a.txt.i"), "data/a.txt.i");
        assert_eq!(fnc("data/ABC_d.i"), "data/_a_b_c__d.i");
        assert_eq!(
            fnc("data/x.i/y.d/z.hg/w.i"),
            "data/x.i.hg/y.d.hg/z.hg.hg/w.i"
        );
        assert_eq!(fnc("data/.hidden.i"), "data/~2ehidden.i");
        assert_eq!(fnc("data/ sp.i"), "data/~20sp.i");
        assert_eq!(fnc("data/aux.i"), "data/au~78.i");
        assert_eq!(fnc("data/com1.txt.i"), "data/co~6d1.txt.i");
        assert_eq!(fnc("data/com0.i"), "data/com0.i");
        assert_eq!(fnc("data/dir./f.i"), "data/dir~2e/f.i");
        assert_eq!(fnc("data/a~b:c.i"), "data/a~7eb~3ac.i");
        assert_eq!(
            String::from_utf8(encode(b"data/.x.i", Encoding::Fncache { dotencode: false }))
                .unwrap(),
            "data/.x.i"
        );
        assert_eq!(
            String::from_utf8(encode(b"data/AUX.i", Encoding::Store)).unwrap(),
            "data/_a_u_x.i"
        );
        assert_eq!(extension(b"..i"), b"");
        assert_eq!(extension(b"a.b.i"), b".i");
    }

    #[test]
    fn long_paths_are_hashed() {
        let long = format!("data/{}/{}.txt.i", "d".repeat(50), "f".repeat(80));
        let e = fnc(&long);
        assert!(e.starts_with("dh/dddddddd/fff"), "{e}");
        assert!(e.ends_with(".i"));
        assert_eq!(e.len(), 120);
    }
}
