//! The messages of the plugin protocol, version 1 (`spec/plugin-protocol.md`),
//! and their encoding. Pure: no I/O, no processes.
//!
//! [`Request`]s are what plumb writes; [`encode`](Request::encode) gives the
//! line. [`decode_message`] turns one line the plugin wrote into a
//! [`Message`], checking everything the spec requires of it (types, paths,
//! names, digests, sizes), and never panics, whatever the input.

use plumb_core::Name;
use plumb_core::ResolvedAttrs;
use plumb_core::attrs::MODE_BITS;
use plumb_core::target::TargetPath;
use serde_json::{Map, Value};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u64 = 1;

/// The longest line either side may write, without its line feed.
pub const MAX_LINE: usize = 1 << 20;

/// The size of the chunks plumb writes raw content in.
pub const CHUNK: usize = 64 << 10;

/// The longest plugin name.
pub const MAX_NAME: usize = 64;

/// The longest change token.
pub const MAX_TOKEN: usize = 1024;

/// Why a line is not a valid message from a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The line is longer than [`MAX_LINE`].
    #[error("line longer than the {max}-byte limit ({len} bytes read)")]
    TooLong {
        /// Its length (or a lower bound when the reader gave up).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A line feed in the middle of the line.
    #[error("line feed at byte {at} inside a message")]
    EmbeddedNewline {
        /// Where.
        at: usize,
    },
    /// The line is not valid UTF-8 JSON.
    #[error("not JSON: {reason}")]
    NotJson {
        /// The parser's complaint.
        reason: String,
    },
    /// The JSON is not an object.
    #[error("message is a JSON {found}, not an object")]
    NotObject {
        /// What it is instead.
        found: &'static str,
    },
    /// The object has no string member `type`.
    #[error("message has no string \"type\"")]
    MissingType,
    /// `type` names no message a plugin may send.
    #[error("unknown message type {found:?}")]
    UnknownType {
        /// The type given (truncated to 64 characters).
        found: String,
    },
    /// A required member is absent.
    #[error("{msg_type} message lacks required member {field:?}")]
    MissingField {
        /// The message type.
        msg_type: &'static str,
        /// The member.
        field: &'static str,
    },
    /// A member has the wrong JSON type or an invalid value.
    #[error("{msg_type} message: member {field:?}: {reason}")]
    BadField {
        /// The message type.
        msg_type: &'static str,
        /// The member.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// What a plugin found at a path, as it said it in an `observed` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// `missing`.
    Missing,
    /// `file`.
    File {
        /// `size`.
        size: u64,
        /// `executable` (false when absent).
        executable: bool,
        /// `sha256`, decoded from hex.
        sha256: Option<[u8; 32]>,
        /// `token`.
        token: Option<String>,
        /// `mode`, `uid`, `gid`, those sent.
        attrs: ResolvedAttrs,
    },
    /// `symlink`.
    Symlink {
        /// `target`, raw bytes.
        target: Vec<u8>,
    },
    /// `dir`.
    Dir {
        /// `children`, in the plugin's order, without duplicates.
        children: Option<Vec<Name>>,
        /// `mode`, `uid`, `gid`, those sent.
        attrs: ResolvedAttrs,
    },
    /// `other`.
    Other {
        /// `what`.
        what: String,
    },
    /// `blocked`.
    Blocked {
        /// `at`: a proper ancestor of the observed path.
        at: TargetPath,
        /// `what`.
        what: String,
    },
}

/// A message a plugin writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The answer to plumb's `hello`.
    Hello {
        /// The chosen protocol version.
        protocol: u64,
        /// The plugin's name.
        name: String,
        /// Its capabilities, as given (unknown ones included).
        capabilities: Vec<String>,
    },
    /// The answer for one path of an `observe`.
    Observed {
        /// The path.
        path: TargetPath,
        /// What is there.
        observation: Observation,
    },
    /// The answer to `read`; `size` raw bytes follow the line.
    Content {
        /// The path.
        path: TargetPath,
        /// How many raw bytes follow.
        size: u64,
    },
    /// Success: of a change (with its path) or of a `recover` (without).
    Ok {
        /// The change's path.
        path: Option<TargetPath>,
    },
    /// A failure for one path, or of the whole plugin when `path` is absent.
    Error {
        /// The path.
        path: Option<TargetPath>,
        /// What went wrong.
        message: String,
    },
}

impl Message {
    /// The message's `type`, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::Observed { .. } => "observed",
            Message::Content { .. } => "content",
            Message::Ok { .. } => "ok",
            Message::Error { .. } => "error",
        }
    }
}

/// One path of an `observe` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObserveItem {
    /// The path.
    pub path: TargetPath,
    /// Whether to compute the SHA-256 of a file.
    pub digest: bool,
    /// Whether to list a directory.
    pub list: bool,
}

/// A change in an `apply` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOp {
    /// `write`; `size` raw bytes follow the line.
    Write {
        /// How many raw bytes follow.
        size: u64,
        /// Whether the file is executable.
        executable: bool,
        /// `mode`, `uid`, `gid` to set (sent only when set, and only to a
        /// plugin with the `attrs` capability).
        attrs: ResolvedAttrs,
    },
    /// `symlink`.
    Symlink {
        /// The link's target.
        target: Vec<u8>,
    },
    /// `mkdir`, with attributes as for `write`.
    MakeDir {
        /// `mode`, `uid`, `gid` to set.
        attrs: ResolvedAttrs,
    },
    /// `remove`.
    Remove,
    /// `rmdir`.
    RemoveDir,
}

/// A message plumb writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The handshake.
    Hello {
        /// The versions plumb speaks.
        protocols: Vec<u64>,
        /// What plumb is (`plumb 0.1.0`).
        client: String,
    },
    /// A batch of paths to look at.
    Observe {
        /// The paths.
        requests: Vec<ObserveItem>,
    },
    /// The bytes of a file.
    Read {
        /// The path.
        path: TargetPath,
    },
    /// One change.
    Apply {
        /// The path.
        path: TargetPath,
        /// The change.
        op: ApplyOp,
    },
    /// Clean up after unconfirmed changes.
    Recover {
        /// Their paths.
        paths: Vec<TargetPath>,
    },
    /// The end of the session.
    Bye,
}

impl Request {
    /// The request's line, with its line feed. It may be longer than
    /// [`MAX_LINE`]; the caller checks.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = Map::new();
        let mut set = |k: &str, v: Value| {
            m.insert(k.to_owned(), v);
        };
        match self {
            Request::Hello { protocols, client } => {
                set("type", "hello".into());
                set("protocols", protocols.clone().into());
                set("client", client.as_str().into());
            }
            Request::Observe { requests } => {
                set("type", "observe".into());
                let items = requests
                    .iter()
                    .map(|r| {
                        let mut i = Map::new();
                        i.insert("path".into(), bytes_value(r.path.as_bytes()));
                        i.insert("digest".into(), r.digest.into());
                        i.insert("list".into(), r.list.into());
                        Value::Object(i)
                    })
                    .collect::<Vec<_>>();
                set("requests", Value::Array(items));
            }
            Request::Read { path } => {
                set("type", "read".into());
                set("path", bytes_value(path.as_bytes()));
            }
            Request::Apply { path, op } => {
                set("type", "apply".into());
                let name = match op {
                    ApplyOp::Write {
                        size,
                        executable,
                        attrs,
                    } => {
                        set("size", (*size).into());
                        set("executable", (*executable).into());
                        set_attrs(&mut set, attrs);
                        "write"
                    }
                    ApplyOp::Symlink { target } => {
                        set("target", bytes_value(target));
                        "symlink"
                    }
                    ApplyOp::MakeDir { attrs } => {
                        set_attrs(&mut set, attrs);
                        "mkdir"
                    }
                    ApplyOp::Remove => "remove",
                    ApplyOp::RemoveDir => "rmdir",
                };
                set("op", name.into());
                set("path", bytes_value(path.as_bytes()));
            }
            Request::Recover { paths } => {
                set("type", "recover".into());
                let paths = paths.iter().map(|p| bytes_value(p.as_bytes())).collect();
                set("paths", Value::Array(paths));
            }
            Request::Bye => set("type", "bye".into()),
        }
        let mut line = Value::Object(m).to_string().into_bytes();
        line.push(b'\n');
        line
    }
}

/// A byte string as the protocol sends it: a JSON string when UTF-8, else
/// `{"b64": …}`.
pub fn bytes_value(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => {
            let mut m = Map::new();
            m.insert("b64".into(), Value::String(base64::encode(bytes)));
            Value::Object(m)
        }
    }
}

/// Decodes one line a plugin wrote (with or without its final line feed).
pub fn decode_message(line: &[u8]) -> Result<Message, ProtocolError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    if line.len() > MAX_LINE {
        return Err(ProtocolError::TooLong {
            len: line.len(),
            max: MAX_LINE,
        });
    }
    if let Some(at) = line.iter().position(|b| *b == b'\n') {
        return Err(ProtocolError::EmbeddedNewline { at });
    }
    let value: Value = serde_json::from_slice(line).map_err(|e| ProtocolError::NotJson {
        reason: e.to_string(),
    })?;
    let Value::Object(obj) = value else {
        return Err(ProtocolError::NotObject {
            found: json_type(&value),
        });
    };
    let Some(Value::String(ty)) = obj.get("type") else {
        return Err(ProtocolError::MissingType);
    };
    let f = Fields {
        obj: &obj,
        msg_type: "",
    };
    match ty.as_str() {
        "hello" => f.with("hello").hello(),
        "observed" => f.with("observed").observed(),
        "content" => {
            let f = f.with("content");
            Ok(Message::Content {
                path: f.path("path")?,
                size: f.u64("size")?,
            })
        }
        "ok" => {
            let f = f.with("ok");
            Ok(Message::Ok {
                path: f.opt_path("path")?,
            })
        }
        "error" => {
            let f = f.with("error");
            Ok(Message::Error {
                path: f.opt_path("path")?,
                message: f.string("message")?,
            })
        }
        other => Err(ProtocolError::UnknownType {
            found: other.chars().take(64).collect(),
        }),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Typed access to a message's members, with errors naming them.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    msg_type: &'static str,
}

impl<'a> Fields<'a> {
    fn with(self, msg_type: &'static str) -> Self {
        Self { msg_type, ..self }
    }

    fn bad(&self, field: &'static str, reason: impl Into<String>) -> ProtocolError {
        ProtocolError::BadField {
            msg_type: self.msg_type,
            field,
            reason: reason.into(),
        }
    }

    fn get(&self, field: &'static str) -> Result<&'a Value, ProtocolError> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Err(ProtocolError::MissingField {
                msg_type: self.msg_type,
                field,
            }),
            Some(v) => Ok(v),
        }
    }

    fn opt(&self, field: &'static str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    fn wrong(&self, field: &'static str, want: &str, v: &Value) -> ProtocolError {
        self.bad(field, format!("expected {want}, got a {}", json_type(v)))
    }

    fn string(&self, field: &'static str) -> Result<String, ProtocolError> {
        match self.get(field)? {
            Value::String(s) => Ok(s.clone()),
            v => Err(self.wrong(field, "a string", v)),
        }
    }

    fn opt_string(&self, field: &'static str) -> Result<Option<String>, ProtocolError> {
        match self.opt(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong(field, "a string", v)),
        }
    }

    fn u64(&self, field: &'static str) -> Result<u64, ProtocolError> {
        let v = self.get(field)?;
        match v {
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| self.bad(field, format!("{n} is not an integer from 0 to 2^64-1"))),
            v => Err(self.wrong(field, "an integer", v)),
        }
    }

    /// An optional integer no larger than `max`.
    fn opt_u32(&self, field: &'static str, max: u32) -> Result<Option<u32>, ProtocolError> {
        if self.opt(field).is_none() {
            return Ok(None);
        }
        let n = self.u64(field)?;
        u32::try_from(n)
            .ok()
            .filter(|n| *n <= max)
            .map(Some)
            .ok_or_else(|| self.bad(field, format!("{n} is larger than {max}")))
    }

    /// The optional members `mode`, `uid` and `gid` of a file or directory.
    fn attrs(&self) -> Result<ResolvedAttrs, ProtocolError> {
        Ok(ResolvedAttrs {
            mode: self.opt_u32("mode", MODE_BITS)?,
            uid: self.opt_u32("uid", u32::MAX)?,
            gid: self.opt_u32("gid", u32::MAX)?,
        })
    }

    fn opt_bool(&self, field: &'static str) -> Result<Option<bool>, ProtocolError> {
        match self.opt(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(field, "a boolean", v)),
        }
    }

    fn bytes_of(&self, field: &'static str, v: &Value) -> Result<Vec<u8>, ProtocolError> {
        match v {
            Value::String(s) => Ok(s.as_bytes().to_vec()),
            Value::Object(m) => match m.get("b64") {
                Some(Value::String(b)) => base64::decode(b)
                    .map_err(|reason| self.bad(field, format!("bad base64: {reason}"))),
                _ => Err(self.bad(field, "object without a string \"b64\"")),
            },
            v => Err(self.wrong(field, "a string or {\"b64\": …}", v)),
        }
    }

    fn bytes(&self, field: &'static str) -> Result<Vec<u8>, ProtocolError> {
        let v = self.get(field)?;
        self.bytes_of(field, v)
    }

    fn path_of(&self, field: &'static str, v: &Value) -> Result<TargetPath, ProtocolError> {
        let bytes = self.bytes_of(field, v)?;
        TargetPath::new(bytes).map_err(|e| self.bad(field, format!("invalid path: {e}")))
    }

    fn path(&self, field: &'static str) -> Result<TargetPath, ProtocolError> {
        let v = self.get(field)?;
        self.path_of(field, v)
    }

    fn opt_path(&self, field: &'static str) -> Result<Option<TargetPath>, ProtocolError> {
        self.opt(field).map(|v| self.path_of(field, v)).transpose()
    }

    fn hello(&self) -> Result<Message, ProtocolError> {
        let protocol = self.u64("protocol")?;
        let name = self.string("name")?;
        if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(self.bad(
                "name",
                format!("must be 1 to {MAX_NAME} bytes without control characters"),
            ));
        }
        let capabilities = match self.get("capabilities")? {
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    v => Err(self.wrong("capabilities", "an array of strings", v)),
                })
                .collect::<Result<Vec<_>, _>>()?,
            v => return Err(self.wrong("capabilities", "an array", v)),
        };
        Ok(Message::Hello {
            protocol,
            name,
            capabilities,
        })
    }

    fn observed(&self) -> Result<Message, ProtocolError> {
        let path = self.path("path")?;
        let kind = self.string("kind")?;
        let observation = match kind.as_str() {
            "missing" => Observation::Missing,
            "file" => {
                let sha256 = match self.opt_string("sha256")? {
                    None => None,
                    Some(hex) => Some(
                        parse_sha256(&hex)
                            .ok_or_else(|| self.bad("sha256", "not 64 lower-case hex digits"))?,
                    ),
                };
                let token = self.opt_string("token")?;
                if token.as_ref().is_some_and(|t| t.len() > MAX_TOKEN) {
                    return Err(self.bad("token", format!("longer than {MAX_TOKEN} bytes")));
                }
                Observation::File {
                    size: self.u64("size")?,
                    executable: self.opt_bool("executable")?.unwrap_or(false),
                    sha256,
                    token,
                    attrs: self.attrs()?,
                }
            }
            "symlink" => Observation::Symlink {
                target: self.bytes("target")?,
            },
            "dir" => {
                let children = match self.opt("children") {
                    None => None,
                    Some(Value::Array(items)) => {
                        let mut names = Vec::with_capacity(items.len());
                        for v in items {
                            let bytes = self.bytes_of("children", v)?;
                            let name = Name::new(bytes)
                                .map_err(|e| self.bad("children", format!("invalid name: {e}")))?;
                            names.push(name);
                        }
                        let mut sorted: Vec<&Name> = names.iter().collect();
                        sorted.sort();
                        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                            return Err(
                                self.bad("children", format!("name {:?} listed twice", w[0]))
                            );
                        }
                        Some(names)
                    }
                    Some(v) => return Err(self.wrong("children", "an array", v)),
                };
                Observation::Dir {
                    children,
                    attrs: self.attrs()?,
                }
            }
            "other" => Observation::Other {
                what: self.string("what")?,
            },
            "blocked" => {
                let at = self.path("at")?;
                if at == path || !path.starts_with(&at) {
                    return Err(self.bad("at", format!("{at} is not above {path}")));
                }
                Observation::Blocked {
                    at,
                    what: self.string("what")?,
                }
            }
            other => {
                return Err(self.bad(
                    "kind",
                    format!(
                        "unknown kind {:?}",
                        other.chars().take(64).collect::<String>()
                    ),
                ));
            }
        };
        Ok(Message::Observed { path, observation })
    }
}

/// Sets the members `mode`, `uid` and `gid` that `attrs` has.
fn set_attrs(set: &mut impl FnMut(&str, Value), attrs: &ResolvedAttrs) {
    for (name, value) in [("mode", attrs.mode), ("uid", attrs.uid), ("gid", attrs.gid)] {
        if let Some(v) = value {
            set(name, v.into());
        }
    }
}

/// Parses 64 lower-case hex digits.
pub fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Standard base64 (RFC 4648 §4) with padding; the decoder is strict.
pub mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Encodes `bytes`.
    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// Decodes `text`: whole groups of four, `=` padding only at the end,
    /// no other characters, and unused bits zero.
    pub fn decode(text: &str) -> Result<Vec<u8>, &'static str> {
        let t = text.as_bytes();
        if !t.len().is_multiple_of(4) {
            return Err("length is not a multiple of 4");
        }
        let value = |c: u8| -> Option<u32> {
            match c {
                b'A'..=b'Z' => Some(u32::from(c - b'A')),
                b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
                b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
                b'+' => Some(62),
                b'/' => Some(63),
                _ => None,
            }
        };
        let mut out = Vec::with_capacity(t.len() / 4 * 3);
        let groups = t.len() / 4;
        for (g, quad) in t.chunks_exact(4).enumerate() {
            let pad = quad.iter().rev().take_while(|c| **c == b'=').count();
            if pad > 2 || (pad > 0 && g + 1 != groups) {
                return Err("misplaced padding");
            }
            let mut n = 0u32;
            for c in &quad[..4 - pad] {
                n = n << 6 | value(*c).ok_or("character outside the base64 alphabet")?;
            }
            n <<= 6 * pad as u32;
            let b = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            let keep = 3 - pad;
            if b[keep..].iter().any(|x| *x != 0) {
                return Err("non-zero unused bits");
            }
            out.extend_from_slice(&b[..keep]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TargetPath {
        TargetPath::new(s.as_bytes().to_vec()).expect("valid path")
    }

    #[test]
    fn base64_round_trips_and_is_strict() {
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64::encode(&bytes);
            assert_eq!(base64::decode(&text), Ok(bytes));
        }
        assert_eq!(base64::encode(b"latin1\xff"), "bGF0aW4x/w==");
        assert_eq!(base64::encode(b"\xff"), "/w==");
        for bad in ["/w=", "/x==", "=w==", "/w==AAAA", "/w=A", "/w*=", "A==="] {
            assert!(base64::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decodes_every_message_type() {
        let hello = br#"{"type":"hello","protocol":1,"name":"sqlite","capabilities":["dir","x"]}"#;
        assert_eq!(
            decode_message(hello),
            Ok(Message::Hello {
                protocol: 1,
                name: "sqlite".into(),
                capabilities: vec!["dir".into(), "x".into()]
            })
        );
        let sha = "ab".repeat(32);
        let file = format!(
            r#"{{"type":"observed","path":"a/b","kind":"file","size":3,"sha256":"{sha}","token":"g1","extra":1}}"#
        );
        assert_eq!(
            decode_message(file.as_bytes()),
            Ok(Message::Observed {
                path: p("a/b"),
                observation: Observation::File {
                    size: 3,
                    executable: false,
                    sha256: Some([0xab; 32]),
                    token: Some("g1".into()),
                    attrs: ResolvedAttrs::default(),
                }
            })
        );
        let with_attrs =
            br#"{"type":"observed","path":"d","kind":"dir","mode":448,"uid":0,"gid":4294967295}"#;
        assert_eq!(
            decode_message(with_attrs),
            Ok(Message::Observed {
                path: p("d"),
                observation: Observation::Dir {
                    children: None,
                    attrs: ResolvedAttrs {
                        mode: Some(0o700),
                        uid: Some(0),
                        gid: Some(u32::MAX),
                    },
                }
            })
        );
        for bad in [
            &br#"{"type":"observed","path":"d","kind":"dir","mode":4096}"#[..],
            br#"{"type":"observed","path":"d","kind":"dir","uid":4294967296}"#,
            br#"{"type":"observed","path":"d","kind":"file","size":1,"gid":"0"}"#,
        ] {
            assert!(
                decode_message(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let dir = br#"{"type":"observed","path":{"b64":"/w=="},"kind":"dir","children":["x",{"b64":"/w=="}]}"#;
        assert_eq!(
            decode_message(dir),
            Ok(Message::Observed {
                path: TargetPath::new(vec![0xff]).expect("valid"),
                observation: Observation::Dir {
                    children: Some(vec![
                        Name::new(b"x".to_vec()).expect("valid"),
                        Name::new(vec![0xff]).expect("valid")
                    ]),
                    attrs: ResolvedAttrs::default(),
                }
            })
        );
        let blocked =
            br#"{"type":"observed","path":"a/b/c","kind":"blocked","at":"a","what":"symlink"}"#;
        assert!(matches!(
            decode_message(blocked),
            Ok(Message::Observed {
                observation: Observation::Blocked { .. },
                ..
            })
        ));
        assert_eq!(
            decode_message(b"{\"type\":\"content\",\"path\":\"f\",\"size\":5}\n"),
            Ok(Message::Content {
                path: p("f"),
                size: 5
            })
        );
        assert_eq!(
            decode_message(br#"{"type":"ok"}"#),
            Ok(Message::Ok { path: None })
        );
        assert_eq!(
            decode_message(br#"{"type":"error","path":"f","message":"no"}"#),
            Ok(Message::Error {
                path: Some(p("f")),
                message: "no".into()
            })
        );
    }

    #[test]
    fn rejects_what_the_spec_rejects() {
        let cases: &[(&[u8], &str)] = &[
            (b"garbage", "not JSON"),
            (b"[1]", "JSON array"),
            (b"{}", "no string \"type\""),
            (
                br#"{"type":"surprise"}"#,
                "unknown message type \"surprise\"",
            ),
            (
                br#"{"type":"observe","requests":[]}"#,
                "unknown message type",
            ),
            (
                br#"{"type":"content","path":"f"}"#,
                "lacks required member \"size\"",
            ),
            (
                br#"{"type":"content","path":"f","size":-1}"#,
                "not an integer",
            ),
            (
                br#"{"type":"content","path":"f","size":1.5}"#,
                "not an integer",
            ),
            (
                br#"{"type":"content","path":"/f","size":1}"#,
                "invalid path",
            ),
            (
                br#"{"type":"content","path":"a/../b","size":1}"#,
                "invalid path",
            ),
            (
                br#"{"type":"content","path":{"b64":"!"},"size":1}"#,
                "bad base64",
            ),
            (
                br#"{"type":"observed","path":"f","kind":"file","size":1,"sha256":"AB"}"#,
                "hex",
            ),
            (
                br#"{"type":"observed","path":"f","kind":"dir","children":["a","a"]}"#,
                "twice",
            ),
            (
                br#"{"type":"observed","path":"f","kind":"dir","children":["a/b"]}"#,
                "invalid name",
            ),
            (
                br#"{"type":"observed","path":"f","kind":"blocked","at":"g","what":"file"}"#,
                "not above",
            ),
            (
                br#"{"type":"observed","path":"f","kind":"weird"}"#,
                "unknown kind",
            ),
            (
                br#"{"type":"hello","protocol":1,"name":"","capabilities":[]}"#,
                "name",
            ),
            (br#"{"type":"error","message":"\ud800"}"#, "not JSON"),
            (b"{\"type\":\"ok\"}\n{\"type\":\"ok\"}", "line feed"),
        ];
        for (line, want) in cases {
            let err = decode_message(line).expect_err(&String::from_utf8_lossy(line));
            assert!(
                err.to_string().contains(want),
                "{}: {err} lacks {want:?}",
                String::from_utf8_lossy(line)
            );
        }
        let long = vec![b' '; MAX_LINE + 1];
        assert!(matches!(
            decode_message(&long),
            Err(ProtocolError::TooLong { .. })
        ));
    }

    #[test]
    fn requests_encode_as_the_spec_shows() {
        let line = Request::Apply {
            path: TargetPath::new(b"etc/\xff".to_vec()).expect("valid"),
            op: ApplyOp::Write {
                size: 12,
                executable: true,
                attrs: ResolvedAttrs::default(),
            },
        }
        .encode();
        assert_eq!(line.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&line).expect("JSON");
        assert_eq!(
            v,
            serde_json::json!({"type":"apply","op":"write","path":{"b64":"ZXRjL/8="},"size":12,"executable":true})
        );
        let mkdir = Request::Apply {
            path: TargetPath::new(b"keys".to_vec()).expect("valid"),
            op: ApplyOp::MakeDir {
                attrs: ResolvedAttrs {
                    mode: Some(0o700),
                    uid: None,
                    gid: Some(0),
                },
            },
        }
        .encode();
        assert_eq!(
            serde_json::from_slice::<Value>(&mkdir).expect("JSON"),
            serde_json::json!({"type":"apply","op":"mkdir","path":"keys","mode":448,"gid":0})
        );
        let hello = Request::Hello {
            protocols: vec![1],
            client: "plumb".into(),
        }
        .encode();
        assert_eq!(
            serde_json::from_slice::<Value>(&hello).expect("JSON"),
            serde_json::json!({"type":"hello","protocols":[1],"client":"plumb"})
        );
    }
}
