//! The version-1 revlog index: 64-byte entries, optionally interleaved with
//! the revision data ("inline").

use super::RevlogError;

/// Size of one index entry.
pub const ENTRY_SIZE: usize = 64;

/// Feature flag: revision data is stored inline, after each entry.
pub const FLAG_INLINE: u16 = 1;
/// Feature flag: a delta's base is recorded per revision (generaldelta).
pub const FLAG_GENERALDELTA: u16 = 1 << 1;

/// The node id of "no revision".
pub const NULL_NODE: [u8; 20] = [0; 20];

/// One revision's index entry. Revision numbers are `i32` as on disk, with
/// `-1` meaning none; [`parse`] checks that every one of them refers to an
/// earlier revision (or, for `base`, the revision itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Offset of the revision's chunk in the data (as if the data were not
    /// interleaved with the index).
    pub offset: u64,
    /// Per-revision flags (censored, ellipsis, externally stored, …).
    pub flags: u16,
    /// Length of the stored chunk.
    pub compressed_len: u32,
    /// Length of the revision's full text.
    pub raw_len: u32,
    /// The delta base: the revision itself for a full text; with
    /// generaldelta the revision this one is a delta against, otherwise the
    /// first revision of the chain.
    pub base: i32,
    /// The linked revision (a changelog revision, for manifests and files).
    pub link: i32,
    /// First parent, `-1` for none.
    pub p1: i32,
    /// Second parent, `-1` for none.
    pub p2: i32,
    /// The node id (SHA-1; the other 12 bytes of the field are ignored).
    pub node: [u8; 20],
}

/// A parsed index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// Revision data follows each entry in the index file.
    pub inline: bool,
    /// Deltas name their base (generaldelta).
    pub generaldelta: bool,
    /// The entries, by revision number.
    pub entries: Vec<Entry>,
    /// For an inline index: where each revision's chunk starts in the file.
    pub inline_positions: Vec<u64>,
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an index file (`.i`). An empty file is an empty revlog. Only
/// version 1 is accepted, with the inline and generaldelta flags; anything
/// else is an error, as is a truncated entry, an inline chunk running past
/// the end, or a parent or base that is not an earlier revision.
pub fn parse(bytes: &[u8]) -> Result<Index, RevlogError> {
    let mut index = Index::default();
    if bytes.is_empty() {
        return Ok(index);
    }
    if bytes.len() < 4 {
        return Err(RevlogError::Truncated);
    }
    let header = be_u32(bytes, 0);
    let version = header & 0xffff;
    let flags = (header >> 16) as u16;
    if version != 1 {
        return Err(RevlogError::Version(version));
    }
    if flags & !(FLAG_INLINE | FLAG_GENERALDELTA) != 0 {
        return Err(RevlogError::HeaderFlags(flags));
    }
    index.inline = flags & FLAG_INLINE != 0;
    index.generaldelta = flags & FLAG_GENERALDELTA != 0;
    if !index.inline && !bytes.len().is_multiple_of(ENTRY_SIZE) {
        return Err(RevlogError::Truncated);
    }
    let mut pos = 0usize;
    while pos < bytes.len() {
        let e = bytes
            .get(pos..pos + ENTRY_SIZE)
            .ok_or(RevlogError::Truncated)?;
        let rev = index.entries.len();
        let rev_i32 = i32::try_from(rev).map_err(|_| RevlogError::TooManyRevisions)?;
        let offset_flags = u64::from_be_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
        let mut node = [0u8; 20];
        node.copy_from_slice(&e[32..52]);
        let entry = Entry {
            // The first entry's offset field holds the header instead.
            offset: if rev == 0 { 0 } else { offset_flags >> 16 },
            flags: (offset_flags & 0xffff) as u16,
            compressed_len: be_u32(e, 8),
            raw_len: be_u32(e, 12),
            base: be_i32(e, 16),
            link: be_i32(e, 20),
            p1: be_i32(e, 24),
            p2: be_i32(e, 28),
            node,
        };
        if entry.p1 < -1 || entry.p1 >= rev_i32 || entry.p2 < -1 || entry.p2 >= rev_i32 {
            return Err(RevlogError::BadEntry {
                rev,
                reason: "a parent is not an earlier revision",
            });
        }
        if entry.base < -1 || entry.base > rev_i32 {
            return Err(RevlogError::BadEntry {
                rev,
                reason: "the delta base is a later revision",
            });
        }
        pos += ENTRY_SIZE;
        if index.inline {
            index.inline_positions.push(pos as u64);
            pos = pos
                .checked_add(entry.compressed_len as usize)
                .filter(|end| *end <= bytes.len())
                .ok_or(RevlogError::Truncated)?;
        }
        index.entries.push(entry);
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(header: u32, comp: u32, raw: u32, base: i32, p1: i32) -> Vec<u8> {
        let mut e = vec![0u8; 64];
        e[0..4].copy_from_slice(&header.to_be_bytes());
        e[8..12].copy_from_slice(&comp.to_be_bytes());
        e[12..16].copy_from_slice(&raw.to_be_bytes());
        e[16..20].copy_from_slice(&base.to_be_bytes());
        e[24..28].copy_from_slice(&p1.to_be_bytes());
        e[28..32].copy_from_slice(&(-1i32).to_be_bytes());
        e
    }

    #[test]
    fn inline_and_split() {
        let mut inline = entry(0x0003_0001, 3, 2, 0, -1);
        inline.extend_from_slice(b"uab");
        let idx = parse(&inline).unwrap();
        assert!(idx.inline && idx.generaldelta);
        assert_eq!(idx.inline_positions, [64]);
        assert_eq!(idx.entries[0].raw_len, 2);

        let split = entry(0x0002_0001, 3, 2, 0, -1);
        let idx = parse(&split).unwrap();
        assert!(!idx.inline && idx.inline_positions.is_empty());

        assert!(parse(&[]).unwrap().entries.is_empty());
        assert!(matches!(parse(&inline[..66]), Err(RevlogError::Truncated)));
        assert!(matches!(
            parse(&entry(0x0000_0002, 0, 0, 0, -1)),
            Err(RevlogError::Version(2))
        ));
        assert!(matches!(
            parse(&entry(0x0004_0001, 0, 0, 0, -1)),
            Err(RevlogError::HeaderFlags(4))
        ));
        assert!(matches!(
            parse(&entry(0x0000_0001, 0, 0, 0, 0)),
            Err(RevlogError::BadEntry { .. })
        ));
    }
}
