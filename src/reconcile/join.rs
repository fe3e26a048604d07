//! Walking the desired tree and the inventory together, in path order:
//! both are sorted by the raw path bytes, so one merge pass pairs them up
//! without a lookup per path.

use std::cmp::Ordering;
use std::collections::btree_map;
use std::iter::Peekable;

use plumb_core::target::TargetPath;

use super::desired::Desired;
use super::state::Held;

/// One path of the union: what the snapshot wants there, and what the
/// inventory records there (at least one of the two).
pub struct Joined<'a> {
    /// The path's raw bytes.
    pub path: &'a [u8],
    /// The desired entry, with its validated path.
    pub desired: Option<(&'a TargetPath, &'a Desired)>,
    /// The inventory's record.
    pub held: Option<&'a Held>,
}

/// The union of `desired` and `inventory`, in path order.
pub struct Join<'a> {
    desired: Peekable<btree_map::Iter<'a, TargetPath, Desired>>,
    held: Peekable<btree_map::Iter<'a, Vec<u8>, Held>>,
}

/// Joins the desired tree's entries with the inventory's.
pub fn join<'a>(
    desired: &'a std::collections::BTreeMap<TargetPath, Desired>,
    inventory: &'a std::collections::BTreeMap<Vec<u8>, Held>,
) -> Join<'a> {
    Join {
        desired: desired.iter().peekable(),
        held: inventory.iter().peekable(),
    }
}

impl<'a> Iterator for Join<'a> {
    type Item = Joined<'a>;

    fn next(&mut self) -> Option<Joined<'a>> {
        let order = match (self.desired.peek(), self.held.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((d, _)), Some((h, _))) => d.as_bytes().cmp(h.as_slice()),
        };
        let desired = (order != Ordering::Greater)
            .then(|| self.desired.next())
            .flatten();
        let held = (order != Ordering::Less)
            .then(|| self.held.next())
            .flatten();
        let path = match (&desired, &held) {
            (Some((p, _)), _) => p.as_bytes(),
            (None, Some((k, _))) => k.as_slice(),
            (None, None) => return None,
        };
        Some(Joined {
            path,
            desired,
            held: held.map(|(_, h)| h),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::reconcile::state::Applied;

    #[test]
    fn pairs_every_path_once_in_order() {
        let p = |s: &str| TargetPath::new(s.as_bytes().to_vec()).expect("valid");
        let held = Held {
            state: Applied::Dir,
            owned: true,
            pending: false,
            attrs: Default::default(),
        };
        let desired: BTreeMap<TargetPath, Desired> = [
            (p("a"), Desired::Dir),
            (p("a/x"), Desired::Dir),
            (p("c"), Desired::Dir),
        ]
        .into_iter()
        .collect();
        let inventory: BTreeMap<Vec<u8>, Held> =
            [b"a".to_vec(), b"a.d".to_vec(), b"c".to_vec(), b"d".to_vec()]
                .into_iter()
                .map(|k| (k, held.clone()))
                .collect();
        let got: Vec<(String, bool, bool)> = join(&desired, &inventory)
            .map(|j| {
                (
                    String::from_utf8_lossy(j.path).into_owned(),
                    j.desired.is_some(),
                    j.held.is_some(),
                )
            })
            .collect();
        let want = [
            ("a", true, true),
            ("a.d", false, true),
            ("a/x", true, false),
            ("c", true, true),
            ("d", false, true),
        ];
        assert_eq!(got, want.map(|(p, d, h)| (p.to_string(), d, h)).to_vec());
    }
}
