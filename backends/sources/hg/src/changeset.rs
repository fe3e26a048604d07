//! Changelog entries and file revision metadata.

use crate::revlog::parse_node;

/// One parsed changelog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changeset {
    /// The manifest's node.
    pub manifest: [u8; 20],
    /// The committer, as recorded (conventionally `Name <email>`).
    pub user: Vec<u8>,
    /// Seconds since the epoch (any fraction dropped).
    pub time: i64,
    /// The timezone offset in seconds **west** of UTC, as hg records it.
    pub tz_west: i64,
    /// The extra fields, in stored (sorted) order, unescaped.
    pub extra: Vec<(Vec<u8>, Vec<u8>)>,
    /// The files the changeset touched.
    pub files: Vec<Vec<u8>>,
    /// The description.
    pub description: Vec<u8>,
}

impl Changeset {
    /// The named branch (`default` when none is recorded).
    pub fn branch(&self) -> &[u8] {
        self.extra
            .iter()
            .find(|(k, _)| k == b"branch")
            .map_or(b"default", |(_, v)| v.as_slice())
    }

    /// Whether the changeset closes its branch head.
    pub fn closes_branch(&self) -> bool {
        self.extra.iter().any(|(k, _)| k == b"close")
    }

    /// Parses a changelog text: manifest node, user, date line (time,
    /// offset, optional escaped extra), files, an empty line, description.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let (header, description) = match find(text, b"\n\n") {
            Some(i) => (&text[..i], &text[i + 2..]),
            None => (text, &b""[..]),
        };
        let mut lines = header.split(|b| *b == b'\n');
        let manifest_hex = lines.next().unwrap_or_default();
        let manifest = parse_node(manifest_hex)
            .ok_or_else(|| "the manifest node is not 40 hex digits".to_owned())?;
        let user = lines
            .next()
            .ok_or_else(|| "no user line".to_owned())?
            .to_vec();
        let date = lines.next().ok_or_else(|| "no date line".to_owned())?;
        let mut fields = date.splitn(3, |b| *b == b' ');
        let time = fields
            .next()
            .and_then(parse_time)
            .ok_or_else(|| format!("bad date {:?}", String::from_utf8_lossy(date)))?;
        let tz_west = fields
            .next()
            .and_then(|t| std::str::from_utf8(t).ok()?.parse::<i64>().ok())
            .ok_or_else(|| format!("bad timezone in {:?}", String::from_utf8_lossy(date)))?;
        let extra = match fields.next() {
            Some(raw) => parse_extra(raw),
            None => Vec::new(),
        };
        let files = lines
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        Ok(Self {
            manifest,
            user,
            time,
            tz_west,
            extra,
            files,
            description: description.to_vec(),
        })
    }
}

fn parse_time(t: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(t).ok()?;
    let int = s.split('.').next()?;
    int.parse::<i64>().ok()
}

/// The first position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Extra fields: `\0`-separated `key:value` items, each escaped.
fn parse_extra(raw: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw.split(|b| *b == 0)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let item = unescape(item);
            match item.iter().position(|b| *b == b':') {
                Some(i) => (item[..i].to_vec(), item[i + 1..].to_vec()),
                None => (item, Vec::new()),
            }
        })
        .collect()
}

/// Undoes the backslash escaping of extra values (`\\`, `\n`, `\r`, `\t`,
/// `\0` and other octal escapes, `\xHH`, …). An unknown escape is kept as
/// written.
pub fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' || i + 1 == s.len() {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let c = s[i + 1];
        i += 2;
        match c {
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'\n' => {}
            b'x' if i + 2 <= s.len()
                && s[i].is_ascii_hexdigit()
                && s[i + 1].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&s[i..i + 2]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && i < s.len() && (b'0'..=b'7').contains(&s[i]) {
                    v = v * 8 + u32::from(s[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    out
}

/// `key: value` pairs, in order.
pub type Metadata = Vec<(Vec<u8>, Vec<u8>)>;

/// Splits a file revision's text into its metadata (`\1\n` … `\1\n`, as
/// `key: value` lines) and its content. Text that does not start with
/// `\1\n` has no metadata.
pub fn split_file_text(text: &[u8]) -> (Metadata, &[u8]) {
    let Some(rest) = text.strip_prefix(b"\x01\n") else {
        return (Vec::new(), text);
    };
    let Some(end) = find(rest, b"\x01\n") else {
        return (Vec::new(), text);
    };
    let meta = rest[..end]
        .split(|b| *b == b'\n')
        .filter_map(|l| {
            let i = find(l, b": ")?;
            Some((l[..i].to_vec(), l[i + 2..].to_vec()))
        })
        .collect();
    (meta, &rest[end + 2..])
}

/// One manifest line: path, file node, flags.
pub struct ManifestLine<'a> {
    /// The file's path.
    pub path: &'a [u8],
    /// Its filelog node.
    pub node: [u8; 20],
    /// Its flags: empty, `x` (executable) or `l` (symlink).
    pub flags: &'a [u8],
}

/// Parses one manifest line (without its newline): `path\0<40 hex><flags>`.
pub fn parse_manifest_line(line: &[u8]) -> Result<ManifestLine<'_>, String> {
    let nul = line.iter().position(|b| *b == 0).ok_or_else(|| {
        format!(
            "manifest line without NUL: {:?}",
            String::from_utf8_lossy(line)
        )
    })?;
    let rest = &line[nul + 1..];
    let node = rest.get(..40).and_then(parse_node).ok_or_else(|| {
        format!(
            "bad node in manifest line for {:?}",
            String::from_utf8_lossy(&line[..nul])
        )
    })?;
    Ok(ManifestLine {
        path: &line[..nul],
        node,
        flags: &rest[40..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changeset_text() {
        let text = b"0123456789abcdef0123456789abcdef01234567\nAlice <a@example.com>\n1700000000 -3600 branch:stable\0close:1\0weird:a\\nb\\\\c\\0d\na.txt\nsub/b.txt\n\nfix things\n\nmore";
        let c = Changeset::parse(text).unwrap();
        assert_eq!(c.user, b"Alice <a@example.com>");
        assert_eq!((c.time, c.tz_west), (1_700_000_000, -3600));
        assert_eq!(c.branch(), b"stable");
        assert!(c.closes_branch());
        assert_eq!(c.extra[2], (b"weird".to_vec(), b"a\nb\\c\0d".to_vec()));
        assert_eq!(c.files, [b"a.txt".to_vec(), b"sub/b.txt".to_vec()]);
        assert_eq!(c.description, b"fix things\n\nmore");
        let bare =
            Changeset::parse(b"0000000000000000000000000000000000000000\nu\n0 0\n\n").unwrap();
        assert_eq!(bare.branch(), b"default");
        assert!(bare.files.is_empty() && bare.description.is_empty());
    }

    #[test]
    fn file_metadata() {
        let (meta, content) = split_file_text(b"\x01\ncopy: a\ncopyrev: 00\n\x01\nbody");
        assert_eq!(meta[0], (b"copy".to_vec(), b"a".to_vec()));
        assert_eq!(content, b"body");
        let (meta, content) = split_file_text(b"\x01\n\x01\n\x01\nraw");
        assert!(meta.is_empty());
        assert_eq!(content, b"\x01\nraw");
        assert_eq!(split_file_text(b"plain").1, b"plain");
    }
}
