//! Binary deltas ("bdiff" patches): a sequence of hunks, each replacing a
//! range of the base text.
//!
//! A hunk is three big-endian 32-bit numbers — start, end, length — and
//! `length` bytes that replace `base[start..end]`. Hunks refer to offsets in
//! the base and must be in order and must not overlap.

use super::RevlogError;

/// One validated hunk.
#[derive(Debug, Clone, Copy)]
struct Hunk<'a> {
    start: usize,
    end: usize,
    data: &'a [u8],
}

fn hunks(base_len: usize, patch: &[u8]) -> Result<(Vec<Hunk<'_>>, usize), RevlogError> {
    let bad = |reason| RevlogError::Patch { reason };
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut last_end = 0usize;
    let mut len = base_len;
    while pos < patch.len() {
        let head = patch
            .get(pos..pos + 12)
            .ok_or(bad("truncated hunk header"))?;
        let num = |i: usize| {
            u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]) as usize
        };
        let (start, end, n) = (num(0), num(4), num(8));
        pos += 12;
        let data = patch
            .get(pos..pos.checked_add(n).ok_or(bad("hunk length overflows"))?)
            .ok_or(bad("hunk data runs past the end of the patch"))?;
        pos += n;
        if start > end || end > base_len {
            return Err(bad("hunk range lies outside the base text"));
        }
        if start < last_end {
            return Err(bad("hunks overlap or are out of order"));
        }
        last_end = end;
        len = len - (end - start) + n;
        out.push(Hunk { start, end, data });
    }
    Ok((out, len))
}

/// Applies `patch` to `base`. The result may not exceed `limit` bytes;
/// its length is computed (and checked) before anything is allocated.
pub fn apply(base: &[u8], patch: &[u8], limit: usize) -> Result<Vec<u8>, RevlogError> {
    let (hunks, len) = hunks(base.len(), patch)?;
    if len > limit {
        return Err(RevlogError::TooLarge { limit });
    }
    let mut out = Vec::with_capacity(len);
    let mut at = 0;
    for h in hunks {
        out.extend_from_slice(&base[at..h.start]);
        out.extend_from_slice(h.data);
        at = h.end;
    }
    out.extend_from_slice(&base[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hunk(start: u32, end: u32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&start.to_be_bytes());
        v.extend_from_slice(&end.to_be_bytes());
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn applies_in_order() {
        let base = b"one\ntwo\nthree\n";
        let mut p = hunk(0, 4, b"ONE\n");
        p.extend(hunk(8, 8, b"2.5\n"));
        p.extend(hunk(14, 14, b"four\n"));
        assert_eq!(
            apply(base, &p, 100).unwrap(),
            b"ONE\ntwo\n2.5\nthree\nfour\n"
        );
        assert_eq!(apply(base, b"", 100).unwrap(), base);
        assert!(apply(base, &p, 10).is_err());
        let mut back = hunk(8, 9, b"");
        back.extend(hunk(0, 1, b""));
        assert!(apply(base, &back, 100).is_err());
        assert!(apply(base, &hunk(3, 99, b""), 100).is_err());
        assert!(apply(base, &p[..13], 100).is_err());
    }
}
