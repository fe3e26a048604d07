//! The delete guard: an apply that would delete every path plumb owns on
//! a target, or more than the target's share of them, or that works
//! towards an empty tree and deletes anything, is refused unless
//! `--allow-mass-delete` is given. An emptied source directory, a renamed
//! subdirectory or a wrong revision all look exactly like that, and on a
//! pruning target they would delete the target's files.

use std::fmt;

use super::desired::DesiredTree;
use super::plan::Plan;
use super::state::Inventory;

/// The share of owned paths (percent) one apply may delete when the target
/// sets none.
pub const DEFAULT_MAX_DELETE: u8 = 50;

/// Up to this many owned paths, only deleting all of them trips the guard:
/// a share of a handful says little.
pub const FEW: u64 = 5;

/// Why the guard trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// The desired tree is empty.
    EmptyTree,
    /// Every owned path would go.
    All,
    /// More than the target's share would go.
    Share,
}

impl Trip {
    /// Its name in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Trip::EmptyTree => "empty-tree",
            Trip::All => "all",
            Trip::Share => "share",
        }
    }
}

/// A plan the guard refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassDelete {
    /// Why.
    pub trip: Trip,
    /// Paths the plan deletes.
    pub delete: u64,
    /// Paths plumb owns on the target.
    pub owned: u64,
    /// The target's share, in percent.
    pub max_delete: u8,
}

impl fmt::Display for MassDelete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.trip {
            Trip::EmptyTree => "the snapshot's tree is empty".to_string(),
            Trip::All => "that is every path it owns".to_string(),
            Trip::Share => format!("more than the target's limit of {}%", self.max_delete),
        };
        write!(
            f,
            "apply would delete {} of the {} paths plumb owns here ({why}); \
             nothing applied (--allow-mass-delete allows it)",
            self.delete, self.owned
        )
    }
}

/// Whether the guard refuses `plan`, made from `desired` and `inventory`,
/// on a target whose share is `max_delete` percent.
pub fn check(
    plan: &Plan,
    desired: &DesiredTree,
    inventory: &Inventory,
    max_delete: u8,
) -> Option<MassDelete> {
    let delete = plan.tally().delete;
    if delete == 0 {
        return None;
    }
    let owned = inventory.entries.values().filter(|h| h.owned).count() as u64;
    let trip = if desired.entries.is_empty() {
        Trip::EmptyTree
    } else if delete >= owned {
        Trip::All
    } else if owned > FEW && delete * 100 > u64::from(max_delete) * owned {
        Trip::Share
    } else {
        return None;
    };
    Some(MassDelete {
        trip,
        delete,
        owned,
        max_delete,
    })
}
