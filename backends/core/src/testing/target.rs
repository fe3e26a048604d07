//! Short ways to drive a [`Target`] in tests: make paths, apply changes
//! recording what `done` reported, observe one path.

use crate::target::{Change, Content, ObserveRequest, Observed, Target, TargetError, TargetPath};

/// A target path from bytes.
///
/// # Panics
///
/// When `bytes` is not a valid path.
pub fn path(bytes: &[u8]) -> TargetPath {
    TargetPath::new(bytes.to_vec())
        .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(bytes)))
}

/// A request to observe `path` (see [`path`]).
pub fn request(path: &[u8], digest: bool, list: bool) -> ObserveRequest {
    ObserveRequest {
        path: self::path(path),
        digest,
        list,
    }
}

/// What `done` reported for each change, as text; `None` where it reported
/// nothing.
pub type Outcomes = Vec<Option<Result<(), String>>>;

/// Applies `changes`; returns the outcome `done` reported for each and
/// `apply`'s own result.
///
/// # Panics
///
/// When `done` is called twice for one change, or with an index out of
/// range: the contract allows neither.
pub fn apply(
    target: &mut dyn Target,
    content: &dyn Content,
    changes: &[Change],
) -> (Outcomes, Result<(), TargetError>) {
    let mut outcomes: Outcomes = vec![None; changes.len()];
    let result = target.apply(changes, content, &mut |i, r| {
        let slot = outcomes
            .get_mut(i)
            .unwrap_or_else(|| panic!("change {i} of {} reported", changes.len()));
        assert!(slot.is_none(), "change {i} reported twice");
        *slot = Some(r.map_err(|e| e.to_string()));
    });
    (outcomes, result)
}

/// Applies `changes` and requires every one to be confirmed.
///
/// # Panics
///
/// When the target fails, or a change fails or is not reported.
pub fn apply_ok(target: &mut dyn Target, content: &dyn Content, changes: &[Change]) {
    let (outcomes, result) = apply(target, content, changes);
    if let Err(e) = result {
        panic!("{}: apply failed: {e}", target.describe());
    }
    for (i, o) in outcomes.iter().enumerate() {
        assert_eq!(o, &Some(Ok(())), "change {i}: {:?}", changes[i]);
    }
}

/// Observes one path; the target as a whole must work, and answer once.
pub fn try_observe_one(
    target: &mut dyn Target,
    request: ObserveRequest,
) -> Result<Observed, TargetError> {
    let mut got = target
        .observe(std::slice::from_ref(&request))
        .unwrap_or_else(|e| panic!("{}: observe failed: {e}", target.describe()));
    assert_eq!(got.len(), 1, "one answer to one request");
    got.remove(0)
}

/// Observes one path, which must be observable.
pub fn observe_one(target: &mut dyn Target, request: ObserveRequest) -> Observed {
    let path = request.path.clone();
    try_observe_one(target, request).unwrap_or_else(|e| panic!("{path}: {e}"))
}
