//! Remote repositories: fetched with the `hg` program into a local cache,
//! then read natively like any other.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::HgError;

/// The URL schemes fetched with `hg`.
pub const REMOTE_SCHEMES: [&str; 3] = ["http://", "https://", "ssh://"];

/// Whether `location` is a URL rather than a local path.
pub fn is_url(location: &str) -> bool {
    location.contains("://") || location.starts_with("ssh:")
}

/// Checks that `url` is one this source can fetch: `http://`, `https://`
/// or `ssh://`, with a host. The reason is one line.
pub fn check_url(url: &str) -> Result<(), String> {
    let Some(scheme) = REMOTE_SCHEMES.iter().find(|s| url.starts_with(**s)) else {
        return Err(format!(
            "{url} cannot be fetched: only {} URLs are; add a local repository by its path",
            REMOTE_SCHEMES.join(", ")
        ));
    };
    let rest = &url[scheme.len()..];
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{url} names no host"));
    }
    if url.chars().any(char::is_control) {
        return Err(format!("{url:?} contains control characters"));
    }
    Ok(())
}

/// `hg` for one non-interactive command: plain output, no prompts, no
/// input.
fn hg() -> Command {
    let mut c = Command::new("hg");
    c.env("HGPLAIN", "1")
        .args(["--noninteractive", "--config", "ui.interactive=false"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Runs `cmd` (an `hg` `what`), turning failures into one line naming
/// `url`.
fn run(mut cmd: Command, what: &str, url: &str) -> Result<(), HgError> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            HgError::Fetch(format!(
                "the `hg` program is needed to fetch {url} but is not on PATH (install Mercurial)"
            ))
        } else {
            HgError::Fetch(format!("cannot run `hg` to fetch {url}: {e}"))
        }
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_owned();
    Err(HgError::Fetch(format!(
        "`hg {what}` of {url} failed: {why}"
    )))
}

/// Brings the cache `cache` up to date with `url`: `hg clone --noupdate`
/// the first time (into a temporary directory renamed into place, so a
/// failed clone leaves nothing), `hg pull` after.
pub fn fetch(url: &str, cache: &Path) -> Result<(), HgError> {
    check_url(url).map_err(HgError::Fetch)?;
    if cache.join(".hg").is_dir() {
        let mut cmd = hg();
        cmd.arg("-R").arg(cache).args(["pull", "--quiet", url]);
        return run(cmd, "pull", url);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HgError::Io { path, source }
    };
    let parent = cache
        .parent()
        .ok_or_else(|| HgError::Fetch(format!("{} has no parent", cache.display())))?;
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let name = cache.file_name().unwrap_or(OsStr::new("repo"));
    let mut tmp_name = OsStr::new(".").to_os_string();
    tmp_name.push(name);
    tmp_name.push(format!(".clone-{}", std::process::id()));
    let tmp = parent.join(tmp_name);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    if cache.exists() {
        // Left by something else than a finished clone: start over.
        std::fs::remove_dir_all(cache).map_err(io(cache))?;
    }
    let mut cmd = hg();
    cmd.args(["clone", "--noupdate", "--quiet", url]).arg(&tmp);
    if let Err(e) = run(cmd, "clone", url) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, cache).map_err(io(cache))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://hg.example.com/repo").is_ok());
        assert!(check_url("ssh://user@host//srv/repo").is_ok());
        assert!(check_url("http://127.0.0.1:8000/").is_ok());
        assert!(check_url("file:///srv/repo").is_err());
        assert!(check_url("http:///nohost").is_err());
        assert!(check_url("-http://x").is_err());
        assert!(check_url("ftp://x/y").is_err());
        assert!(is_url("ssh:host") && is_url("file:///x") && !is_url("/srv/repo"));
    }
}
