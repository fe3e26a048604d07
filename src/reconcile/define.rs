//! Checking a target definition before it is recorded (`plumb target
//! add` and `plumb target set`): what can be known wrong before anything
//! is applied.
//!
//! - `--path` is a relative path without `..`;
//! - the root (a directory target's) is not a file, does not equal, hold
//!   or lie inside another target's root, and does not equal, hold or lie
//!   inside the store's directory: an apply there (with `--adopt`) would
//!   replace the store's own files, or another target's.
//!
//! Roots are compared as the file system resolves them (symbolic links
//! in the existing part followed), so two spellings of one directory
//! overlap.

use std::path::{Path, PathBuf};

use super::ReconcileError;
use super::state::TargetDef;

/// Checks `def` against the other targets (`others`; `def`'s own entry,
/// by name, is skipped) and the store's directory (`None` for a store in
/// memory).
pub fn check(
    def: &TargetDef,
    others: &[TargetDef],
    store_dir: Option<&Path>,
) -> Result<(), ReconcileError> {
    if let Some(path) = &def.path {
        crate::query::components(path.as_bytes())
            .map_err(|_| invalid(format!("--path {path:?} may not contain '..'")))?;
        if path.starts_with('/') {
            return Err(invalid(format!(
                "--path {path:?} must be relative to the snapshot's root"
            )));
        }
    }
    let Some(root) = def.location.root() else {
        return Ok(());
    };
    match std::fs::metadata(root) {
        Ok(m) if !m.is_dir() => {
            return Err(invalid(format!(
                "target root {} is not a directory",
                root.display()
            )));
        }
        _ => {}
    }
    let resolved = resolve(root);
    if let Some(store) = store_dir {
        let store = resolve(store);
        if let Some(how) = overlap(&resolved, &store) {
            return Err(invalid(format!(
                "target root {} {how} the store's directory {}; an apply there could replace the store",
                root.display(),
                store.display()
            )));
        }
    }
    for other in others.iter().filter(|o| o.name != def.name) {
        let Some(theirs) = other.location.root() else {
            continue;
        };
        if let Some(how) = overlap(&resolved, &resolve(theirs)) {
            return Err(invalid(format!(
                "target root {} {how} the root of target {} ({}); two targets never share files",
                root.display(),
                other.name,
                theirs.display()
            )));
        }
    }
    Ok(())
}

fn invalid(text: String) -> ReconcileError {
    ReconcileError::Invalid(text)
}

/// How `a` and `b` overlap, if they do, as words between them.
fn overlap(a: &Path, b: &Path) -> Option<&'static str> {
    if a == b {
        Some("is")
    } else if a.starts_with(b) {
        Some("lies inside")
    } else if b.starts_with(a) {
        Some("holds")
    } else {
        None
    }
}

/// `path` with its longest existing ancestor resolved by the file system
/// (links followed) and the rest appended as it is.
fn resolve(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |acc, name| acc.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    fn def(name: &str, location: &str, path: Option<&str>) -> TargetDef {
        TargetDef {
            name: name.into(),
            location: location.parse().unwrap(),
            source: "app".into(),
            path: path.map(Into::into),
            sel: None,
            prune: false,
            pin: None,
            max_delete: None,
            workdir: None,
            hooks: Default::default(),
        }
    }

    #[test]
    fn overlapping_roots_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let at = |rel: &str| format!("dir:{}", dir.path().join(rel).display());
        let store = dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        let others = [
            def("www", &at("top/www"), None),
            def("p", "exec:plugin", None),
        ];
        let ok = |d: &TargetDef| check(d, &others, Some(&store));
        ok(&def("etc", &at("etc"), None)).unwrap();
        ok(&def("wwwx", &at("top/wwwx"), None)).unwrap();
        // Its own entry does not count.
        ok(&def("www", &at("top/www"), None)).unwrap();
        for (rel, words) in [
            ("top/www", "is the root of target www"),
            ("top/www/sub", "lies inside the root of target www"),
            ("top", "holds the root of target www"),
            ("store", "is the store's directory"),
            ("store/x", "lies inside the store's directory"),
            ("", "holds the store's directory"),
        ] {
            let err = ok(&def("new", &at(rel), None)).unwrap_err().to_string();
            assert!(err.contains(words), "{rel}: {err}");
        }
        // Through a link to the other root.
        std::fs::create_dir_all(dir.path().join("top/www")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("top/www"), dir.path().join("link")).unwrap();
        let err = ok(&def("new", &at("link/a"), None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lies inside the root of target www"), "{err}");
    }

    #[test]
    fn a_file_root_and_bad_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = check(
            &def("t", &format!("dir:{}", file.display()), None),
            &[],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("is not a directory"), "{err}");
        for bad in ["../etc", "a/../../b", "/etc"] {
            let err = check(&def("t", "exec:plugin", Some(bad)), &[], None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("--path {bad:?}")), "{err}");
        }
        check(&def("t", "exec:plugin", Some("etc/nginx")), &[], None).unwrap();
    }
}
