//! Names as people read them: a path or name that could fake output when
//! printed raw (a newline, an escape sequence, a byte that is not UTF-8)
//! is shown quoted, with C-style escapes, as Git's `core.quotePath` does.
//!
//! A name is printed as it is unless it holds a control character (C0,
//! DEL or C1), a character that reorders text (the Unicode bidirectional
//! controls), a byte that is not part of valid UTF-8, or starts with a
//! double quote. Then it is printed in double quotes, with `\a \b \t \n
//! \v \f \r \" \\` for those characters and `\ooo` (three octal digits)
//! for every other byte escaped. Other non-ASCII text is kept as it is.
//!
//! ```
//! use plumb_core::quote::quote;
//!
//! assert_eq!(quote(b"etc/app.conf"), "etc/app.conf");
//! assert_eq!(quote(b"a\nb"), r#""a\nb""#);
//! assert_eq!(quote(b"\x1b[2Jx"), r#""\033[2Jx""#);
//! assert_eq!(quote(b"caf\xe9"), r#""caf\351""#);
//! assert_eq!(quote("café".as_bytes()), "café");
//! ```

use std::borrow::Cow;
use std::fmt;

/// Whether a character must be escaped: a control character, or one that
/// changes the direction of the text after it.
fn hostile(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `bytes` as a person should read it: unchanged when harmless, else
/// quoted with escapes (see the [module](self) documentation).
pub fn quote(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.starts_with('"') && !s.chars().any(hostile) => Cow::Borrowed(s),
        _ => Cow::Owned(quoted(bytes)),
    }
}

fn quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\u{b}' => out.push_str("\\v"),
                '\u{c}' => out.push_str("\\f"),
                '\r' => out.push_str("\\r"),
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if hostile(c) => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\{b:03o}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out.push('"');
    out
}

/// Displays a byte string with [`quote`].
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(pub &'a [u8]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&quote(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn harmless_names_are_unchanged() {
        for name in [
            "a",
            "etc/nginx/nginx.conf",
            "with space",
            "日本語",
            "a\"b",
            "a\\b",
        ] {
            assert_eq!(quote(name.as_bytes()), name);
        }
    }

    #[test]
    fn hostile_names_are_quoted_and_escaped() {
        let cases: [(&[u8], &str); 7] = [
            (
                b"evil\n+ create   /etc/shadow",
                r#""evil\n+ create   /etc/shadow""#,
            ),
            (b"\x1b]0;title\x07", r#""\033]0;title\a""#),
            (b"tab\there\\", r#""tab\there\\""#),
            (b"\"quoted\"", r#""\"quoted\"""#),
            (b"latin\xe9\xff", r#""latin\351\377""#),
            (
                "rtl\u{202e}txt.exe".as_bytes(),
                r#""rtl\342\200\256txt.exe""#,
            ),
            ("c1\u{85}".as_bytes(), r#""c1\302\205""#),
        ];
        for (raw, want) in cases {
            assert_eq!(quote(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn quoted_text_holds_no_control_character() {
        for b in 0..=255u8 {
            let raw = [b'x', b, b'y'];
            let q = quote(&raw);
            assert!(!q.chars().any(|c| c.is_control()), "{raw:?} → {q}");
        }
    }
}
