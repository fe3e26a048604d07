//! Finding the target's own leftover temporary files beside given paths.
//!
//! A temporary file is the target's own when its name has the exact shape
//! of one ([`crate::temp`]), it names one of the paths asked about, and it
//! is a regular file or a symlink (the target never makes a temporary
//! directory). Each directory is listed once.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;

use plumb_core::target::TargetPath;
use rustix::fs::{AtFlags, FileType, StatxFlags};
use rustix::io::Errno;

use crate::temp::{head, head_of};
use crate::walk::{Denied, Root, Walker, parent_bytes, path_order, reopen};

/// The leftovers found in one directory: the index of the path each is
/// for, and its name.
pub(crate) type Found = Vec<(usize, Vec<u8>)>;

/// The leftovers of one directory, with a handle on it; or, when it could
/// not be reached or listed, the index of its first path and the error.
pub(crate) type Listed<'d> = Result<(BorrowedFd<'d>, Found), (usize, Errno)>;

/// Calls `each` with every directory holding some of `paths` and the
/// leftovers found there for them (possibly none), or, for a directory
/// that cannot be reached or listed, the index of its first path and the
/// error. Nothing of ours can be beyond a missing directory
/// or a symlink, so those are skipped.
pub(crate) fn scan(root: &Root, paths: &[TargetPath], each: &mut dyn FnMut(Listed<'_>)) {
    let mut order: Vec<usize> = (0..paths.len()).collect();
    order.sort_unstable_by(|&a, &b| path_order(&paths[a], &paths[b]));
    let mut walker = Walker::new(root);
    for group in order.chunk_by(|&a, &b| parent_bytes(&paths[a]) == parent_bytes(&paths[b])) {
        let first = group[0];
        let dir = match walker.parent(&paths[first]) {
            Ok((dir, _)) => dir,
            Err(Denied::Missing { .. } | Denied::Blocked { .. }) => continue,
            Err(Denied::Failed { errno, .. }) => {
                each(Err((first, errno)));
                continue;
            }
        };
        let heads: HashMap<Vec<u8>, usize> = group
            .iter()
            .map(|&i| (head(paths[i].file_name()), i))
            .collect();
        each(
            list(dir, &heads)
                .map(|found| (dir, found))
                .map_err(|e| (first, e)),
        );
    }
}

/// The entries of `dir` that are temporaries of a name whose head is in
/// `heads`.
fn list(dir: BorrowedFd<'_>, heads: &HashMap<Vec<u8>, usize>) -> Result<Found, Errno> {
    let mut found = Vec::new();
    for entry in rustix::fs::Dir::new(reopen(dir)?)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        let Some(&i) = head_of(name).and_then(|h| heads.get(h)) else {
            continue;
        };
        let kind = match entry.file_type() {
            FileType::Unknown => {
                match rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE) {
                    Ok(st) => FileType::from_raw_mode(u32::from(st.stx_mode)),
                    Err(Errno::NOENT) => continue,
                    Err(e) => return Err(e),
                }
            }
            kind => kind,
        };
        if matches!(kind, FileType::RegularFile | FileType::Symlink) {
            found.push((i, name.to_vec()));
        }
    }
    found.sort_unstable();
    Ok(found)
}
