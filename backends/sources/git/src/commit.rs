//! Reading a commit's raw bytes: headers in order, people, message, and
//! the payload a signature covers.

use plumb_core::Person;

/// Commit headers that carry a signature over the rest of the commit.
pub const SIGNATURE_HEADERS: [&[u8]; 2] = [b"gpgsig", b"gpgsig-sha256"];

/// One commit, split into its parts. Ids are still hex text.
#[derive(Debug)]
pub struct RawCommit<'a> {
    /// The `tree` header (hex).
    pub tree: &'a [u8],
    /// The `parent` headers that follow `tree` (hex), in order.
    pub parents: Vec<&'a [u8]>,
    /// The first `author` header's value.
    pub author: Option<&'a [u8]>,
    /// The first `committer` header's value.
    pub committer: Option<&'a [u8]>,
    /// Every other header, in order: name and value with continuation
    /// lines unfolded (joined by `\n`, their leading space removed).
    pub extra: Vec<(&'a [u8], Vec<u8>)>,
    /// Everything after the blank line that ends the headers.
    pub message: &'a [u8],
    /// The commit without its signature headers, if it has any.
    pub signed_payload: Option<Vec<u8>>,
}

/// Why bytes are not a commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub &'static str);

/// Splits a commit object's content into its parts.
///
/// Mirrors how Git itself reads a commit: the first header must be `tree`,
/// the `parent` headers directly after it are the parents, and the first
/// `author` and `committer` headers name the people. Any other header —
/// including a second `author` or a stray `parent` further down — is kept
/// as an extra header, so nothing is lost.
pub fn parse(data: &[u8]) -> Result<RawCommit<'_>, ParseError> {
    let mut commit = RawCommit {
        tree: &[],
        parents: Vec::new(),
        author: None,
        committer: None,
        extra: Vec::new(),
        message: &[],
        signed_payload: None,
    };
    let mut signature_spans: Vec<(usize, usize)> = Vec::new();
    let mut pos = 0;
    let mut index = 0usize;
    let mut in_parents = false;
    loop {
        if pos >= data.len() {
            // Headers ran to the end without a blank line: no message.
            break;
        }
        if data[pos] == b'\n' {
            commit.message = &data[pos + 1..];
            break;
        }
        let start = pos;
        let first_end = line_end(data, pos);
        let line = &data[pos..first_end];
        let (name, first_value) = match line.iter().position(|&b| b == b' ') {
            Some(sp) => (&line[..sp], &line[sp + 1..]),
            None => (line, &line[line.len()..]),
        };
        // Continuation lines start with a space.
        let mut end = first_end;
        let mut value: Option<Vec<u8>> = None;
        while end < data.len() && data.get(end + 1) == Some(&b' ') {
            let next_end = line_end(data, end + 1);
            let v = value.get_or_insert_with(|| first_value.to_vec());
            v.push(b'\n');
            v.extend_from_slice(&data[end + 2..next_end]);
            end = next_end;
        }
        // `end` is at the newline (or the end of the data).
        pos = (end + 1).min(data.len());
        let field_end = pos;

        let folded = value.is_some();
        match name {
            b"tree" if index == 0 && !folded => {
                commit.tree = first_value;
                in_parents = true;
            }
            b"parent" if in_parents && !folded => commit.parents.push(first_value),
            b"author" if commit.author.is_none() && !folded && index > 0 => {
                in_parents = false;
                commit.author = Some(first_value);
            }
            b"committer" if commit.committer.is_none() && !folded && index > 0 => {
                in_parents = false;
                commit.committer = Some(first_value);
            }
            _ => {
                if index == 0 {
                    return Err(ParseError("the first header is not `tree`"));
                }
                in_parents = false;
                if SIGNATURE_HEADERS.contains(&name) {
                    signature_spans.push((start, field_end));
                }
                commit
                    .extra
                    .push((name, value.unwrap_or_else(|| first_value.to_vec())));
            }
        }
        index += 1;
    }
    if index == 0 {
        return Err(ParseError("it has no headers"));
    }
    if !signature_spans.is_empty() {
        let mut payload = Vec::with_capacity(data.len());
        let mut at = 0;
        for (s, e) in signature_spans {
            payload.extend_from_slice(&data[at..s]);
            at = e;
        }
        payload.extend_from_slice(&data[at..]);
        commit.signed_payload = Some(payload);
    }
    Ok(commit)
}

/// The index of the newline ending the line that starts at `pos`, or the
/// end of the data.
fn line_end(data: &[u8], pos: usize) -> usize {
    data[pos..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(data.len(), |i| pos + i)
}

/// Reads a Git identity, `Name <email> 1700000000 +0100`.
///
/// Returns the person and whether writing it back in Git's format gives
/// the same bytes; when it does not (a malformed date, a `-0000` zone,
/// unusual spacing) the caller keeps the raw line as well.
pub fn person(line: &[u8]) -> (Person, bool) {
    let mut p = Person::default();
    let Some(lt) = line.iter().position(|&b| b == b'<') else {
        p.name = line.to_vec();
        return (p, false);
    };
    p.name = line[..lt].trim_ascii_end().to_vec();
    let Some(gt) = line[lt + 1..]
        .iter()
        .position(|&b| b == b'>')
        .map(|i| lt + 1 + i)
    else {
        p.email = line[lt + 1..].to_vec();
        return (p, false);
    };
    p.email = line[lt + 1..gt].to_vec();
    let mut exact = true;
    let rest = &line[gt + 1..];
    let mut parts = rest.trim_ascii_start().split(|&b| b == b' ');
    match parts.next().and_then(parse_time) {
        Some(t) => p.time = t,
        None => exact = false,
    }
    let tz_text = parts.next();
    match tz_text.and_then(parse_tz) {
        Some(tz) => p.tz_minutes = tz,
        None => exact = false,
    }
    if parts.next().is_some() {
        exact = false;
    }
    if exact {
        exact = format_person(&p) == line;
    }
    (p, exact)
}

/// Git's way of writing a person back.
fn format_person(p: &Person) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.name.len() + p.email.len() + 24);
    out.extend_from_slice(&p.name);
    out.extend_from_slice(b" <");
    out.extend_from_slice(&p.email);
    out.extend_from_slice(b"> ");
    out.extend_from_slice(p.time.to_string().as_bytes());
    let sign = if p.tz_minutes < 0 { '-' } else { '+' };
    let m = p.tz_minutes.unsigned_abs();
    out.extend_from_slice(format!(" {sign}{:02}{:02}", m / 60, m % 60).as_bytes());
    out
}

fn parse_time(s: &[u8]) -> Option<i64> {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn parse_tz(s: &[u8]) -> Option<i32> {
    let (sign, digits) = match s.split_first()? {
        (b'+', d) => (1, d),
        (b'-', d) => (-1, d),
        _ => return None,
    };
    if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |i: usize| i32::from(digits[i] - b'0');
    let hours = n(0) * 10 + n(1);
    let minutes = n(2) * 10 + n(3);
    if minutes >= 60 {
        return None;
    }
    Some(sign * (hours * 60 + minutes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SIG: &[u8] = b"-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----";

    #[test]
    fn plain_commit() {
        let data = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
parent 1111111111111111111111111111111111111111\n\
parent 2222222222222222222222222222222222222222\n\
author A U Thor <a@example.org> 1700000000 +0100\n\
committer C O Mitter <c@example.org> 1700000060 -0530\n\
encoding ISO-8859-1\n\
\n\
Subject\n\nBody\n";
        let c = parse(data).unwrap();
        assert_eq!(c.tree, b"4b825dc642cb6eb9a060e54bf8d69288fbee4904");
        assert_eq!(c.parents.len(), 2);
        assert_eq!(c.extra, vec![(&b"encoding"[..], b"ISO-8859-1".to_vec())]);
        assert_eq!(c.message, b"Subject\n\nBody\n");
        assert!(c.signed_payload.is_none());
        let (a, exact) = person(c.author.unwrap());
        assert!(exact);
        assert_eq!(a.name, b"A U Thor");
        assert_eq!(a.email, b"a@example.org");
        assert_eq!((a.time, a.tz_minutes), (1_700_000_000, 60));
        let (c2, exact) = person(c.committer.unwrap());
        assert!(exact);
        assert_eq!(c2.tz_minutes, -330);
    }

    #[test]
    fn signed_commit() {
        let mut data = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
author A <a@x> 1 +0000\n\
committer A <a@x> 1 +0000\n\
gpgsig "
            .to_vec();
        data.extend_from_slice(
            &SIG.split(|&b| b == b'\n')
                .collect::<Vec<_>>()
                .join(&b"\n "[..]),
        );
        data.extend_from_slice(b"\n\nmsg\n");
        let c = parse(&data).unwrap();
        assert_eq!(c.extra.len(), 1);
        assert_eq!(c.extra[0].0, b"gpgsig");
        assert_eq!(c.extra[0].1, SIG);
        assert_eq!(
            c.signed_payload.unwrap(),
            b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
author A <a@x> 1 +0000\n\
committer A <a@x> 1 +0000\n\
\n\
msg\n"
        );
    }

    #[test]
    fn inexact_people() {
        assert!(!person(b"A <a@x> 1 -0000").1);
        assert_eq!(person(b"A <a@x> 1 -0000").0.tz_minutes, 0);
        assert!(!person(b"A <a@x>").1);
        assert!(!person(b"A <a@x> 1 +0099").1);
        assert!(!person(b"A  <a@x> 1 +0000").1);
        assert!(!person(b"no email").1);
        assert!(person(b" <> 0 +0000").1);
        assert!(person(b"A <a@x> -5 -1200").1);
    }

    #[test]
    fn malformed() {
        assert!(parse(b"").is_err());
        assert!(parse(b"author A <a@x> 1 +0000\n\nmsg").is_err());
        let c = parse(b"tree abc").unwrap();
        assert_eq!(c.message, b"");
        assert!(c.author.is_none());
    }
}
