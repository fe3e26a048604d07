//! `plumb source add|list|remove`.

use std::path::Path;

use anyhow::bail;
use clap::Subcommand;

use plumb::store::{SourceDef, Store, Vcs};

use super::output::print_json;
use super::{Within, exit};

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Define a source: a directory, Git or Mercurial repository.
    Add {
        /// A name for it: letters, digits, '.', '_', '-'.
        name: String,
        /// A path (made absolute) or a URL.
        location: String,
        /// What the location is [default: detected].
        #[arg(long, value_parser = ["dir", "git", "hg"])]
        vcs: Option<String>,
        /// Refs to follow (branches, tags, globs); repeatable.
        #[arg(long = "ref", value_name = "REF")]
        refs: Vec<String>,
        /// Snapshot only this subdirectory.
        #[arg(long, value_name = "SUBDIR")]
        path: Option<String>,
    },
    /// List sources.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a source and its history from the index (objects go at `plumb gc`).
    Remove {
        /// The source.
        name: String,
    },
}

pub fn run(store: &Store, cmd: &SourceCommand) -> anyhow::Result<u8> {
    match cmd {
        SourceCommand::Add {
            name,
            location,
            vcs,
            refs,
            path,
        } => {
            // `hg::LOCATION` names a Mercurial repository, local or remote.
            let (location, vcs) = match location.strip_prefix("hg::") {
                Some(rest) if vcs.as_deref().is_none_or(|v| v == "hg") => {
                    (&rest.to_owned(), &Some("hg".to_owned()))
                }
                Some(_) => bail!("{location} names a Mercurial repository; --vcs must be hg"),
                None => (location, vcs),
            };
            // A URL, or an scp-like `user@host:path` that is not a local path.
            let is_url = location.contains("://")
                || (plumb_source_git::is_remote(location) && !Path::new(location).exists());
            let location = if is_url {
                location.clone()
            } else {
                let p = Path::new(location);
                let abs =
                    std::fs::canonicalize(p).within(|| format!("source location {location}"))?;
                abs.to_string_lossy().into_owned()
            };
            let vcs = match vcs {
                Some(v) => v.parse::<Vcs>().map_err(anyhow::Error::msg)?,
                None => detect(&location, is_url)?,
            };
            if vcs == Vcs::Dir && is_url {
                bail!("a dir source needs a local path, not a URL");
            }
            if vcs == Vcs::Dir && !refs.is_empty() {
                bail!("--ref does not apply to a dir source");
            }
            if let Some(p) = path {
                plumb::query::components(p.as_bytes())?;
            }
            if vcs == Vcs::Hg && is_url {
                plumb_source_hg::remote::check_url(&location).map_err(anyhow::Error::msg)?;
            }
            let def = SourceDef {
                name: name.clone(),
                vcs,
                location,
                refs: refs.clone(),
                path: path.clone(),
            };
            store.add_source(&def)?;
            println!(
                "added source {} ({} {})",
                def.name,
                def.vcs.name(),
                def.location
            );
        }
        SourceCommand::List { json } => {
            let sources = store.sources()?;
            if *json {
                let list: Vec<_> = sources
                    .iter()
                    .map(|s| {
                        let head = store.head(&s.name).ok().flatten();
                        serde_json::json!({
                            "name": s.name,
                            "vcs": s.vcs.name(),
                            "location": s.location,
                            "refs": s.refs,
                            "path": s.path,
                            "snapshots": head.map_or(0, |h| h.seq),
                            "latest": head.map(|h| h.id.to_string()),
                        })
                    })
                    .collect();
                print_json(&serde_json::Value::Array(list))?;
            } else {
                for s in sources {
                    let count = store.head(&s.name)?.map_or(0, |h| h.seq);
                    let path = s.path.map(|p| format!(" --path {p}")).unwrap_or_default();
                    println!(
                        "{}\t{}\t{}{}\t{} snapshots",
                        s.name,
                        s.vcs.name(),
                        s.location,
                        path,
                        count
                    );
                }
            }
        }
        SourceCommand::Remove { name } => {
            let def = store.source(name)?;
            store.remove_source(name)?;
            // A remote source's copy goes with it.
            if let Some(dir) = store.path() {
                let cache = plumb::ingest::cache_dir(dir, &def);
                if cache.is_dir() {
                    std::fs::remove_dir_all(&cache)
                        .within(|| format!("removing {}", cache.display()))?;
                }
            }
            println!("removed source {name} (run `plumb gc` to free its objects)");
        }
    }
    Ok(exit::OK)
}

fn detect(location: &str, is_url: bool) -> anyhow::Result<Vcs> {
    if is_url {
        let git_scheme = ["git://", "ssh://", "git+ssh://", "ssh+git://", "file://"]
            .iter()
            .any(|s| location.starts_with(s));
        if git_scheme || !location.contains("://") || location.ends_with(".git") {
            return Ok(Vcs::Git);
        }
        bail!("cannot tell what {location} is; pass --vcs git or --vcs hg");
    }
    let p = Path::new(location);
    if !p.is_dir() {
        bail!("{location} is not a directory");
    }
    // A work tree (a `.git` directory, or a `.git` file as in linked work
    // trees and submodules), or a bare repository or `.git` directory.
    let git_dir = |d: &Path| {
        d.join("HEAD").is_file() && d.join("objects").is_dir() && d.join("refs").is_dir()
    };
    if p.join(".git").exists() || git_dir(p) {
        Ok(Vcs::Git)
    } else if p.join(".hg").is_dir() {
        Ok(Vcs::Hg)
    } else {
        Ok(Vcs::Dir)
    }
}
