//! What a package needs besides the binary: shell completions and man
//! pages, both made from the command-line definition so they never fall
//! behind it.

use std::fs;
use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use super::exit;
use super::output::{ignore_broken_pipe, outln};
use super::{Cli, Within};

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: Shell) -> anyhow::Result<u8> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "plumb", &mut script);
    let mut out = std::io::stdout().lock();
    let written = out.write_all(&script).and_then(|()| out.flush());
    ignore_broken_pipe(written)?;
    Ok(exit::OK)
}

/// Writes one man page per command into `dir` (created if missing):
/// `plumb.1`, `plumb-target.1`, `plumb-target-add.1`, …; hidden commands
/// and `help` get none.
pub fn man_pages(dir: &Path) -> anyhow::Result<u8> {
    fs::create_dir_all(dir).within(|| dir.display().to_string())?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut written = 0;
    write_pages(&cmd, dir, &mut written)?;
    outln!("wrote {written} man pages to {}", dir.display());
    Ok(exit::OK)
}

/// Renders `cmd` as page `NAME.1` (its display name, `plumb-target-add`
/// once the command is built), then each visible subcommand.
fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut usize) -> anyhow::Result<()> {
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let mut text = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut text)
        .within(|| format!("the man page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    fs::write(&path, text).within(|| path.display().to_string())?;
    *written += 1;
    // clap's generated `help` subcommands get no page of their own.
    let visible = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help");
    for sub in visible {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}
