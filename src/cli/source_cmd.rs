//! `plumb source add|list|remove`.

use super::output::outln;

use anyhow::bail;
use clap::Subcommand;
use clap::builder::PossibleValuesParser;

use plumb::reconcile::TargetStore;
use plumb::sources::{self, SOURCES};
use plumb::store::Store;

use super::json::{self, Outcome};
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
        #[arg(long, value_parser = PossibleValuesParser::new(SOURCES.map(|k| k.name)))]
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
        /// Remove the targets that follow it too (what they applied stays where it is).
        #[arg(long)]
        with_targets: bool,
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
            let def = sources::define(name, location, vcs.as_deref(), refs, path.as_deref())?;
            let kind = def.vcs.kind();
            store.add_source(&def)?;
            outln!("added source {} ({} {})", def.name, kind.name, def.location);
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
                            "vcs": s.vcs.kind().name,
                            "location": s.location,
                            "refs": s.refs,
                            "path": s.path,
                            "snapshots": head.map_or(0, |h| h.seq),
                            "latest": head.map(|h| h.id.to_string()),
                        })
                    })
                    .collect();
                json::print(Outcome::Ok, serde_json::json!({ "sources": list }))?;
            } else {
                for s in sources {
                    let count = store.head(&s.name)?.map_or(0, |h| h.seq);
                    let path = s.path.map(|p| format!(" --path {p}")).unwrap_or_default();
                    outln!(
                        "{}\t{}\t{}{}\t{} snapshots",
                        s.name,
                        s.vcs.kind().name,
                        s.location,
                        path,
                        count
                    );
                }
            }
        }
        SourceCommand::Remove { name, with_targets } => {
            let def = store.source(name)?;
            let followers: Vec<String> = store
                .targets()?
                .into_iter()
                .filter(|t| t.source == *name)
                .map(|t| t.name)
                .collect();
            if !followers.is_empty() && !with_targets {
                bail!(
                    "source {name} is followed by target{} {}; remove {} first, or pass --with-targets",
                    if followers.len() == 1 { "" } else { "s" },
                    followers.join(", "),
                    if followers.len() == 1 { "it" } else { "them" },
                );
            }
            for target in &followers {
                store.remove_target(target)?;
                outln!("removed target {target}");
            }
            store.remove_source(name)?;
            // A remote source's copy goes with it.
            if let Some(dir) = store.path() {
                let cache = def.vcs.kind().cache_dir(dir, &def.name);
                if cache.is_dir() {
                    std::fs::remove_dir_all(&cache)
                        .within(|| format!("removing {}", cache.display()))?;
                }
            }
            outln!("removed source {name} (run `plumb gc` to free its objects)");
        }
    }
    Ok(exit::OK)
}
