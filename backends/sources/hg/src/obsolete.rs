//! Which changesets are hidden: obsolescence markers and phases.
//!
//! A changeset is *obsolete* when it is mutable (draft or secret phase) and
//! some marker names it as a predecessor (rewritten or pruned). Changesets
//! in the archived or internal phases are hidden as well. Of those, the
//! ones that are ancestors of a visible mutable changeset, or of a
//! bookmark, stay visible; the rest are hidden.

use std::collections::HashSet;

use crate::revlog::parse_node;

/// Phases at or above this number are hidden (archived 32, internal 96).
pub const HIDDEN_PHASE: u32 = 32;

/// The predecessor nodes named by the markers of an `obsstore` file
/// (format version 0 or 1). Nodes of 32 bytes (a SHA-256 flag) are read
/// and ignored, as no changeset here has such a node.
pub fn predecessors(bytes: &[u8]) -> Result<HashSet<[u8; 20]>, String> {
    let mut out = HashSet::new();
    let Some((&version, mut rest)) = bytes.split_first() else {
        return Ok(out);
    };
    let take = |rest: &mut &[u8], n: usize| -> Result<Vec<u8>, String> {
        if rest.len() < n {
            return Err("truncated marker".to_owned());
        }
        let (a, b) = rest.split_at(n);
        *rest = b;
        Ok(a.to_vec())
    };
    match version {
        0 => {
            while !rest.is_empty() {
                // successors count, metadata size, flags, predecessor.
                let head = take(&mut rest, 1 + 4 + 1 + 20)?;
                let succ = usize::from(head[0]);
                let meta = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                let mut prec = [0u8; 20];
                prec.copy_from_slice(&head[6..26]);
                out.insert(prec);
                take(&mut rest, succ * 20)?;
                take(&mut rest, meta)?;
            }
        }
        1 => {
            while !rest.is_empty() {
                let size_bytes = take(&mut rest, 4)?;
                let size = u32::from_be_bytes([
                    size_bytes[0],
                    size_bytes[1],
                    size_bytes[2],
                    size_bytes[3],
                ]) as usize;
                let body = take(
                    &mut rest,
                    size.checked_sub(4)
                        .ok_or_else(|| "bad marker size".to_owned())?,
                )?;
                // date (8), timezone (2), flags (2), successors, parents,
                // metadata counts (1 each), then the predecessor.
                if body.len() < 15 {
                    return Err("truncated marker".to_owned());
                }
                let flags = u16::from_be_bytes([body[10], body[11]]);
                let node_len = if flags & 2 != 0 { 32 } else { 20 };
                let prec = body
                    .get(15..15 + node_len)
                    .ok_or_else(|| "truncated marker".to_owned())?;
                if node_len == 20 {
                    let mut n = [0u8; 20];
                    n.copy_from_slice(prec);
                    out.insert(n);
                }
            }
        }
        v => return Err(format!("obsolescence marker format {v} is not supported")),
    }
    Ok(out)
}

/// The phase roots of a `phaseroots` file: `(phase, node)` per line.
pub fn phase_roots(bytes: &[u8]) -> Vec<(u32, [u8; 20])> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let sp = line.iter().position(|b| *b == b' ')?;
            let phase = std::str::from_utf8(&line[..sp]).ok()?.parse().ok()?;
            Some((phase, parse_node(line[sp + 1..].trim_ascii())?))
        })
        .collect()
}

/// Computes the hidden revisions. `parents[r]` are the parents of `r`
/// (revision numbers, `-1` for none); `phase_roots` and `obsolete` are
/// revisions; `pinned` revisions (bookmarks) and their ancestors stay
/// visible.
pub fn hidden(
    parents: &[(i32, i32)],
    phase_roots: &[(u32, usize)],
    obsolete: &HashSet<usize>,
    pinned: &[usize],
) -> Vec<bool> {
    let n = parents.len();
    let mut phase = vec![0u32; n];
    for &(p, r) in phase_roots {
        if r < n {
            phase[r] = phase[r].max(p);
        }
    }
    for r in 0..n {
        let (p1, p2) = parents[r];
        for p in [p1, p2] {
            if let Ok(p) = usize::try_from(p) {
                phase[r] = phase[r].max(phase[p]);
            }
        }
    }
    let mut hidden: Vec<bool> = (0..n)
        .map(|r| phase[r] > 0 && (obsolete.contains(&r) || phase[r] >= HIDDEN_PHASE))
        .collect();
    if !hidden.iter().any(|h| *h) {
        return hidden;
    }
    // Reveal ancestors of visible mutable revisions and of pinned ones.
    let mut reveal = vec![false; n];
    for r in 0..n {
        if phase[r] > 0 && !hidden[r] {
            reveal[r] = true;
        }
    }
    for &r in pinned {
        if r < n {
            reveal[r] = true;
        }
    }
    for r in (0..n).rev() {
        if reveal[r] {
            hidden[r] = false;
            let (p1, p2) = parents[r];
            for p in [p1, p2] {
                if let Ok(p) = usize::try_from(p) {
                    reveal[p] = true;
                }
            }
        }
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_obsolete_drafts_only() {
        // 0 <- 1 <- 2, and 1 <- 3 (3 replaced 2). Drafts from 1 on.
        let parents = [(-1, -1), (0, -1), (1, -1), (1, -1)];
        let obs: HashSet<usize> = [2].into();
        assert_eq!(
            hidden(&parents, &[(1, 1)], &obs, &[]),
            [false, false, true, false]
        );
        // Public: never hidden.
        assert_eq!(hidden(&parents, &[], &obs, &[]), [false; 4]);
        // A visible child reveals its obsolete parent.
        let obs: HashSet<usize> = [1, 2].into();
        assert_eq!(
            hidden(&parents, &[(1, 1)], &obs, &[]),
            [false, false, true, false]
        );
        // Pinned by a bookmark.
        let obs: HashSet<usize> = [2].into();
        assert_eq!(hidden(&parents, &[(1, 1)], &obs, &[2]), [false; 4]);
        // Archived phase.
        assert_eq!(
            hidden(&parents, &[(32, 3)], &HashSet::new(), &[]),
            [false, false, false, true]
        );
    }

    #[test]
    fn marker_formats() {
        let mut v1 = vec![1u8];
        let mut m = Vec::new();
        m.extend_from_slice(&0f64.to_be_bytes());
        m.extend_from_slice(&0i16.to_be_bytes());
        m.extend_from_slice(&0u16.to_be_bytes());
        m.extend_from_slice(&[1, 0, 0]);
        m.extend_from_slice(&[7u8; 20]);
        m.extend_from_slice(&[8u8; 20]);
        v1.extend_from_slice(&((m.len() + 4) as u32).to_be_bytes());
        v1.extend_from_slice(&m);
        assert_eq!(predecessors(&v1).unwrap(), [[7u8; 20]].into());
        assert!(predecessors(&v1[..30]).is_err());
        assert!(predecessors(&[]).unwrap().is_empty());
        assert!(predecessors(&[9]).is_err());
    }
}
