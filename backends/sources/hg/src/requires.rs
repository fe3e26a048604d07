//! Repository requirements: which formats a repository uses, and whether
//! this reader understands them.

use crate::store_path::Encoding;

/// Requirements this reader implements.
pub const SUPPORTED: &[&str] = &[
    "revlogv1",
    "store",
    "fncache",
    "dotencode",
    "generaldelta",
    "sparserevlog",
    "revlog-compression-zstd",
    "exp-compression-zstd",
    "exp-compression-none",
    "revlog-compression-none",
    "share-safe",
    "shared",
    "relshared",
    "bookmarksinstore",
];

/// Requirements that do not change how history is stored, so a reader can
/// ignore them.
pub const HARMLESS: &[&str] = &[
    // An on-disk cache of node → revision; the index is read directly.
    "persistent-nodemap",
    // Formats of the working directory's state, which is never read.
    "dirstate-v2",
    "exp-rc-dirstate-v2",
    "exp-dirstate-v2",
    "dirstate-tracked-key-v1",
    // A sparse checkout: the working directory holds a subset of files;
    // the store still has everything.
    "exp-sparse",
];

/// The requirements of one repository, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    /// Every requirement, from `.hg/requires` and (with `share-safe`)
    /// `.hg/store/requires`, in file order.
    pub all: Vec<String>,
}

impl Requirements {
    /// Parses the two files' contents (the store file only counts with
    /// `share-safe`) and checks them: the first requirement that is neither
    /// [`SUPPORTED`] nor [`HARMLESS`] is returned as the error.
    pub fn check(requires: &[u8], store_requires: Option<&[u8]>) -> Result<Self, String> {
        fn add(all: &mut Vec<String>, bytes: &[u8]) {
            for line in bytes.split(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(line).trim().to_owned();
                if !line.is_empty() && !all.contains(&line) {
                    all.push(line);
                }
            }
        }
        let mut all: Vec<String> = Vec::new();
        add(&mut all, requires);
        if all.iter().any(|r| r == "share-safe")
            && let Some(s) = store_requires
        {
            add(&mut all, s);
        }
        if let Some(bad) = all
            .iter()
            .find(|r| !SUPPORTED.contains(&r.as_str()) && !HARMLESS.contains(&r.as_str()))
        {
            return Err(bad.clone());
        }
        Ok(Self { all })
    }

    /// Whether `name` is required.
    pub fn has(&self, name: &str) -> bool {
        self.all.iter().any(|r| r == name)
    }

    /// How file names are encoded in the store.
    pub fn encoding(&self) -> Encoding {
        if !self.has("store") {
            Encoding::Plain
        } else if !self.has("fncache") {
            Encoding::Store
        } else {
            Encoding::Fncache {
                dotencode: self.has("dotencode"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_unknown() {
        let r = Requirements::check(
            b"share-safe\n",
            Some(b"dotencode\nfncache\ngeneraldelta\nrevlog-compression-zstd\nrevlogv1\nsparserevlog\nstore\n"),
        )
        .unwrap();
        assert_eq!(r.encoding(), Encoding::Fncache { dotencode: true });
        assert_eq!(
            Requirements::check(b"revlogv1\nstore\ntreemanifest\n", None),
            Err("treemanifest".to_owned())
        );
        assert_eq!(
            Requirements::check(b"share-safe\n", Some(b"lfs\n")),
            Err("lfs".to_owned())
        );
        // Without share-safe the store file is not consulted.
        assert!(Requirements::check(b"revlogv1\n", Some(b"lfs\n")).is_ok());
    }
}
