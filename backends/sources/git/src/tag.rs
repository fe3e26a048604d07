//! Annotated tag objects, as a ref's annotation records them: the raw Git
//! tag object, read back here for display and, later, verification.

use gix::bstr::ByteSlice;
use plumb_core::Person;

use crate::commit;

/// What an annotated tag says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The id of the object it tags, in hex.
    pub object: String,
    /// That object's kind (`commit`, `tag`, …).
    pub kind: String,
    /// The tag's own name.
    pub name: Vec<u8>,
    /// The tagger, if the tag names one.
    pub tagger: Option<Person>,
    /// The message as written, without the signature.
    pub message: Vec<u8>,
    /// The signature block, if the tag is signed.
    pub signature: Option<Vec<u8>>,
    /// The bytes the signature covers: the tag object up to the signature.
    pub signed_payload: Option<Vec<u8>>,
}

/// Why bytes are not a tag object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Git tag object: {0}")]
pub struct TagError(String);

/// Reads a raw Git tag object (SHA-1 or SHA-256).
pub fn parse_tag(raw: &[u8]) -> Result<Tag, TagError> {
    // The `object` header's length says which hash the repository uses.
    let hash = match raw
        .strip_prefix(b"object ")
        .and_then(|rest| rest.find_byte(b'\n'))
    {
        Some(64) => gix::hash::Kind::Sha256,
        Some(40) => gix::hash::Kind::Sha1,
        _ => return Err(TagError("no object header".to_owned())),
    };
    let tag = gix::objs::TagRef::from_bytes(raw, hash).map_err(|e| TagError(e.to_string()))?;
    let signature = tag.signature.map(|s| s.to_vec());
    let signed_payload = match tag.signature {
        // The signature ends the object; what comes before is what it signs.
        Some(s) if raw.ends_with(s) => Some(raw[..raw.len() - s.len()].to_vec()),
        Some(_) => return Err(TagError("signature does not end the object".to_owned())),
        None => None,
    };
    // The message as written: everything between the headers and the
    // signature, final newline included.
    let signed = signed_payload.as_deref().unwrap_or(raw);
    let message = signed
        .find(b"\n\n")
        .map_or(&[][..], |at| &signed[at + 2..])
        .to_vec();
    Ok(Tag {
        object: tag.target.to_string(),
        kind: tag.target_kind.to_string(),
        name: tag.name.to_vec(),
        tagger: tag.tagger.map(|line| commit::person(line).0),
        message,
        signature,
        signed_payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBJECT: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn reads_plain_and_signed_tags() {
        let plain = format!(
            "object {OBJECT}\ntype commit\ntag v1\ntagger T <t@x> 1700000000 +0100\n\nrelease 1\n"
        );
        let t = parse_tag(plain.as_bytes()).unwrap();
        assert_eq!(t.object, OBJECT);
        assert_eq!(t.kind, "commit");
        assert_eq!(t.name, b"v1");
        let tagger = t.tagger.unwrap();
        assert_eq!(
            (tagger.name.as_slice(), tagger.time, tagger.tz_minutes),
            (&b"T"[..], 1_700_000_000, 60)
        );
        assert_eq!(t.message, b"release 1\n");
        assert_eq!(t.signature, None);

        let sig = "-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
        let signed = format!("{plain}{sig}");
        let t = parse_tag(signed.as_bytes()).unwrap();
        assert_eq!(t.signature.as_deref(), Some(sig.as_bytes()));
        assert_eq!(t.signed_payload.as_deref(), Some(plain.as_bytes()));
        assert_eq!(t.message, b"release 1\n");
    }

    #[test]
    fn rejects_what_is_not_a_tag() {
        for bad in [&b""[..], b"object 12\n", b"tree 0123\n\nx", &[0xff; 50]] {
            assert!(parse_tag(bad).is_err(), "{bad:?}");
        }
    }
}
