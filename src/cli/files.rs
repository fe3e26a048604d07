//! `plumb ls`, `plumb cat` and `plumb diff`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

use anyhow::{anyhow, bail};
use plumb::query::{self, Change};
use plumb::rev;
use plumb::store::Store;
use plumb_core::chunks::CHUNK_SIZE;
use plumb_core::quote::quote;
use plumb_core::{EntryValue, TreeId};

use super::json::{self, Outcome};
use super::output::{color_stdout, ignore_broken_pipe, label};
use super::{UsageError, Within, exit};

/// Resolves `REV[:PATH]` to the snapshot's root tree and the path.
fn resolve_target(store: &Store, target: &OsString) -> anyhow::Result<(TreeId, Vec<u8>)> {
    let (rev_bytes, path) = rev::split_path(target.as_bytes());
    let rev = std::str::from_utf8(rev_bytes).map_err(|_| {
        anyhow!(
            "revision {:?} is not UTF-8",
            String::from_utf8_lossy(rev_bytes)
        )
    })?;
    let resolved = rev::resolve(store, rev)?;
    let snapshot = store.snapshot(&resolved.id)?;
    Ok((snapshot.tree, path.unwrap_or_default().to_vec()))
}

/// A path as a person reads it ([`plumb_core::quote`]).
fn shown(p: &[u8]) -> String {
    quote(p).into_owned()
}

fn entry_id(v: &EntryValue) -> String {
    match v {
        EntryValue::File(id) | EntryValue::Executable(id) | EntryValue::Symlink(id) => {
            id.to_string()
        }
        EntryValue::Tree(id) => id.to_string(),
        EntryValue::Submodule(rev) => rev.clone(),
    }
}

pub fn ls(
    store: &Store,
    target: &OsString,
    recursive: bool,
    nul: bool,
    json: bool,
) -> anyhow::Result<u8> {
    let (root, path) = resolve_target(store, target)?;
    let dir = match query::lookup(store, root, &path)? {
        Some(EntryValue::Tree(id)) => store.tree(&id)?,
        Some(_) => bail!("{} is not a directory", shown(&path)),
        None => bail!("{}: no such path in the snapshot", shown(&path)),
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut items = Vec::new();
    let end = if nul { b'\0' } else { b'\n' };
    let mut write_failed = None;
    query::walk(store, &dir, b"", recursive, &mut |p, v| {
        if recursive && matches!(v, EntryValue::Tree(_)) {
            return Ok(());
        }
        if json {
            items.push(serde_json::json!({
                "path": json::bytes(p),
                "kind": v.kind_name(),
                "id": entry_id(v),
            }));
        } else if write_failed.is_none()
            && let Err(e) = (if nul {
                out.write_all(p)
            } else {
                out.write_all(quote(p).as_bytes())
            })
            .and_then(|()| out.write_all(&[end]))
        {
            write_failed = Some(e);
        }
        Ok(())
    })?;
    if json {
        drop(out);
        json::print(Outcome::Ok, serde_json::json!({ "entries": items }))?;
        return Ok(exit::OK);
    }
    if let Some(e) = write_failed {
        ignore_broken_pipe(Err(e))?;
    }
    ignore_broken_pipe(out.flush())?;
    Ok(exit::OK)
}

pub fn cat(store: &Store, target: &OsString) -> anyhow::Result<u8> {
    let (root, path) = resolve_target(store, target)?;
    if path.is_empty() {
        bail!("cat needs a file: REV:PATH");
    }
    let blob = match query::lookup(store, root, &path)? {
        Some(v @ (EntryValue::File(_) | EntryValue::Executable(_) | EntryValue::Symlink(_))) => {
            v.blob().expect("file kinds hold blobs")
        }
        Some(EntryValue::Tree(_)) => bail!("{} is a directory (use `plumb ls`)", shown(&path)),
        Some(EntryValue::Submodule(rev)) => {
            bail!("{} is a submodule pinned at {rev}", shown(&path))
        }
        None => bail!("{}: no such path in the snapshot", shown(&path)),
    };
    // Read and written a chunk at a time: memory stays bounded whatever
    // the size (a damaged chunk ends the output with an error).
    let mut data = store.blob_reader(&blob)?;
    let mut out = io::stdout().lock();
    ignore_broken_pipe(io::copy(&mut data, &mut out).and_then(|_| out.flush()))?;
    Ok(exit::OK)
}

fn under(path: &[u8], filters: &[Vec<u8>]) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            path == f.as_slice() || (path.starts_with(f) && path.get(f.len()) == Some(&b'/'))
        })
}

fn status(c: &Change) -> &'static str {
    match (&c.old, &c.new) {
        (None, _) => "added",
        (_, None) => "deleted",
        (Some(a), Some(b)) if a.kind_byte() != b.kind_byte() => "type-changed",
        _ => "modified",
    }
}

fn side_json(v: &Option<EntryValue>) -> serde_json::Value {
    v.as_ref().map_or(
        serde_json::Value::Null,
        |v| serde_json::json!({"kind": v.kind_name(), "id": entry_id(v)}),
    )
}

/// The bytes a diff shows for one side: file content, link target, or
/// a submodule's pinned revision; `None` for content too large to diff
/// (over [`CHUNK_SIZE`]: a blob kept in chunks), which a diff treats as
/// binary, as git does past its `core.bigFileThreshold`.
fn side_text(store: &Store, v: &Option<EntryValue>) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(Some(match v {
        None | Some(EntryValue::Tree(_)) => Vec::new(),
        Some(EntryValue::Submodule(rev)) => format!("Subproject {rev}\n").into_bytes(),
        Some(v) => {
            let blob = v.blob().expect("file kinds hold blobs");
            if store.blob_size(&blob)?.is_some_and(|n| n > CHUNK_SIZE) {
                return Ok(None);
            }
            store.blob(&blob)?.into_data()
        }
    }))
}

fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(8000)].contains(&0) || std::str::from_utf8(data).is_err()
}

pub fn diff(
    store: &Store,
    old: &str,
    new: &str,
    stat: bool,
    json: bool,
    paths: &[OsString],
) -> anyhow::Result<u8> {
    let (a, b) = (
        rev::split_path(old.as_bytes()),
        rev::split_path(new.as_bytes()),
    );
    if let Some(path) = a.1.or(b.1) {
        return Err(UsageError(format!(
            "diff compares whole snapshots, not REV:PATH; use: plumb diff {} {} -- {}",
            String::from_utf8_lossy(a.0),
            String::from_utf8_lossy(b.0),
            String::from_utf8_lossy(path)
        ))
        .into());
    }
    let a = rev::resolve(store, old).within(|| format!("old revision {old}"))?;
    let b = rev::resolve(store, new).within(|| format!("new revision {new}"))?;
    let ta = store.snapshot(&a.id)?.tree;
    let tb = store.snapshot(&b.id)?.tree;
    let filters: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| {
            let parts = query::components(p.as_bytes())?;
            Ok(parts.join(&b'/'))
        })
        .collect::<anyhow::Result<_>>()?;
    let changes: Vec<Change> = query::diff_trees(store, Some(ta), Some(tb))?
        .into_iter()
        .filter(|c| under(&c.path, &filters))
        .collect();
    if json {
        let list: Vec<_> = changes
            .iter()
            .map(|c| {
                serde_json::json!({
                    "path": json::bytes(&c.path),
                    "status": status(c),
                    "old": side_json(&c.old),
                    "new": side_json(&c.new),
                })
            })
            .collect();
        json::print(
            Outcome::Ok,
            serde_json::json!({
                "old": a.id.to_string(),
                "new": b.id.to_string(),
                "changes": list,
            }),
        )?;
        return Ok(exit::OK);
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    let r = if stat {
        write_stat(store, &changes, &mut out)
    } else {
        write_patch(store, &changes, &mut out, color_stdout())
    };
    match r {
        Err(e) => match e.downcast::<io::Error>() {
            Ok(io) => ignore_broken_pipe(Err(io))?,
            Err(other) => return Err(other),
        },
        Ok(()) => ignore_broken_pipe(out.flush())?,
    }
    Ok(exit::OK)
}

fn line_counts(store: &Store, c: &Change) -> anyhow::Result<Option<(usize, usize)>> {
    let (Some(x), Some(y)) = (side_text(store, &c.old)?, side_text(store, &c.new)?) else {
        return Ok(None);
    };
    if is_binary(&x) || is_binary(&y) {
        return Ok(None);
    }
    let (x, y) = (String::from_utf8_lossy(&x), String::from_utf8_lossy(&y));
    let d = similar::TextDiff::from_lines(x.as_ref(), y.as_ref());
    let (mut add, mut del) = (0, 0);
    for op in d.ops() {
        for change in d.iter_changes(op) {
            match change.tag() {
                similar::ChangeTag::Insert => add += 1,
                similar::ChangeTag::Delete => del += 1,
                similar::ChangeTag::Equal => {}
            }
        }
    }
    Ok(Some((add, del)))
}

fn write_stat(store: &Store, changes: &[Change], out: &mut impl Write) -> anyhow::Result<()> {
    let width = changes
        .iter()
        .map(|c| shown(&c.path).len())
        .max()
        .unwrap_or(0);
    let (mut adds, mut dels) = (0, 0);
    for c in changes {
        let name = shown(&c.path);
        match line_counts(store, c)? {
            Some((a, d)) => {
                adds += a;
                dels += d;
                let bar = format!("{}{}", "+".repeat(a.min(40)), "-".repeat(d.min(40)));
                writeln!(out, " {name:width$} | {:>5} {bar}", a + d)?;
            }
            None => writeln!(out, " {name:width$} |   Bin")?,
        }
    }
    writeln!(
        out,
        " {} file{} changed, {adds} insertion{}(+), {dels} deletion{}(-)",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" },
        if adds == 1 { "" } else { "s" },
        if dels == 1 { "" } else { "s" },
    )?;
    Ok(())
}

fn mode(v: &EntryValue) -> &'static str {
    match v {
        EntryValue::File(_) => "100644",
        EntryValue::Executable(_) => "100755",
        EntryValue::Symlink(_) => "120000",
        EntryValue::Tree(_) => "040000",
        EntryValue::Submodule(_) => "160000",
    }
}

fn write_patch(
    store: &Store,
    changes: &[Change],
    out: &mut impl Write,
    color: bool,
) -> anyhow::Result<()> {
    let paint = |code: &str, s: &str| paint(color, code, s);
    for c in changes {
        let (a, b) = (label("a", &c.path), label("b", &c.path));
        writeln!(out, "{}", paint("1", &format!("diff --plumb {a} {b}")))?;
        match (&c.old, &c.new) {
            (None, Some(n)) => writeln!(out, "new file mode {}", mode(n))?,
            (Some(o), None) => writeln!(out, "deleted file mode {}", mode(o))?,
            (Some(o), Some(n)) if mode(o) != mode(n) => {
                writeln!(out, "old mode {}\nnew mode {}", mode(o), mode(n))?;
            }
            _ => {}
        }
        if c.old.as_ref().and_then(EntryValue::blob) == c.new.as_ref().and_then(EntryValue::blob)
            && c.old.as_ref().is_some_and(|v| v.blob().is_some())
        {
            continue;
        }
        let (x, y) = (side_text(store, &c.old)?, side_text(store, &c.new)?);
        if x.is_some() && x == y {
            continue;
        }
        let a = if c.old.is_some() {
            a
        } else {
            "/dev/null".into()
        };
        let b = if c.new.is_some() {
            b
        } else {
            "/dev/null".into()
        };
        match (x, y) {
            (Some(x), Some(y)) => write_text_diff(out, &a, &b, &x, &y, color)?,
            _ => writeln!(out, "Binary files {a} and {b} differ")?,
        }
    }
    Ok(())
}

fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

/// Writes a unified diff of `x` → `y` under the labels `a` and `b`, or a
/// one-line note when either side is binary.
pub fn write_text_diff(
    out: &mut impl Write,
    a: &str,
    b: &str,
    x: &[u8],
    y: &[u8],
    color: bool,
) -> io::Result<()> {
    if is_binary(x) || is_binary(y) {
        return writeln!(out, "Binary files {a} and {b} differ");
    }
    let (x, y) = (String::from_utf8_lossy(x), String::from_utf8_lossy(y));
    let d = similar::TextDiff::from_lines(x.as_ref(), y.as_ref());
    let text = d.unified_diff().context_radius(3).header(a, b).to_string();
    for line in text.lines() {
        let painted = match line.as_bytes().first() {
            _ if line.starts_with("---") || line.starts_with("+++") => paint(color, "1", line),
            Some(b'+') => paint(color, "32", line),
            Some(b'-') => paint(color, "31", line),
            Some(b'@') => paint(color, "36", line),
            _ => line.to_owned(),
        };
        writeln!(out, "{painted}")?;
    }
    Ok(())
}
