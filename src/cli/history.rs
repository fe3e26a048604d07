//! `plumb log` and `plumb show`.

use std::io::Write;

use plumb::store::Store;
use plumb_core::{Snapshot, SnapshotId};

use super::exit;
use super::output::{ignore_broken_pipe, person, person_json, print_json, rfc3339, short};

fn snapshot_json(id: &SnapshotId, s: &Snapshot) -> serde_json::Value {
    serde_json::json!({
        "id": id.to_string(),
        "revision": s.revision,
        "tree": s.tree.to_string(),
        "parents": s.parents.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "author": person_json(&s.author),
        "committer": person_json(&s.committer),
        "time": rfc3339(&s.committer),
        "message": String::from_utf8_lossy(&s.message),
    })
}

pub fn log(store: &Store, name: &str, max: Option<u64>, json: bool) -> anyhow::Result<u8> {
    store.source(name)?;
    let limit = max.unwrap_or(u64::MAX);
    let mut shown = 0u64;
    let mut items = Vec::new();
    let mut out = std::io::stdout().lock();
    let mut write_err = None;
    store.log(name, |e| {
        if shown >= limit {
            return Ok(false);
        }
        shown += 1;
        let s = store.snapshot(&e.id)?;
        if json {
            let mut v = snapshot_json(&e.id, &s);
            v["seq"] = e.seq.into();
            items.push(v);
        } else {
            let subject = String::from_utf8_lossy(&s.message);
            let subject = subject.lines().next().unwrap_or_default().to_owned();
            if let Err(err) = writeln!(
                out,
                "{} {} {} {}",
                short(&e.id),
                s.revision,
                rfc3339(&s.committer),
                subject
            ) {
                write_err = Some(err);
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    if let Some(e) = write_err {
        ignore_broken_pipe(Err(e))?;
    }
    if json {
        drop(out);
        print_json(&serde_json::Value::Array(items))?;
    }
    Ok(exit::OK)
}

pub fn show(store: &Store, rev: &str, json: bool) -> anyhow::Result<u8> {
    let resolved = plumb::rev::resolve(store, rev)?;
    let s = store.snapshot(&resolved.id)?;
    let sources = store.sources_of(&resolved.id)?;
    if json {
        let mut v = snapshot_json(&resolved.id, &s);
        v["sources"] = sources
            .iter()
            .map(|(n, seq)| serde_json::json!({"name": n, "seq": seq}))
            .collect::<Vec<_>>()
            .into();
        v["extra"] = s
            .extra
            .iter()
            .map(|(k, val)| serde_json::json!({"name": k, "value": String::from_utf8_lossy(val)}))
            .collect::<Vec<_>>()
            .into();
        print_json(&v)?;
        return Ok(exit::OK);
    }
    let mut text = String::new();
    text.push_str(&format!("snapshot  {}\n", resolved.id));
    for (n, seq) in &sources {
        text.push_str(&format!("source    {n} #{seq}\n"));
    }
    text.push_str(&format!("revision  {}\n", s.revision));
    text.push_str(&format!("tree      {}\n", s.tree));
    for p in &s.parents {
        text.push_str(&format!("parent    {p}\n"));
    }
    text.push_str(&format!(
        "author    {} {}\n",
        person(&s.author),
        rfc3339(&s.author)
    ));
    text.push_str(&format!(
        "committer {} {}\n",
        person(&s.committer),
        rfc3339(&s.committer)
    ));
    for (k, v) in &s.extra {
        let value = String::from_utf8_lossy(v);
        let first = value.lines().next().unwrap_or_default();
        let more = if value.lines().count() > 1 {
            " …"
        } else {
            ""
        };
        text.push_str(&format!("extra     {k}: {first}{more}\n"));
    }
    text.push('\n');
    for line in String::from_utf8_lossy(&s.message).lines() {
        text.push_str(&format!("    {line}\n"));
    }
    ignore_broken_pipe(std::io::stdout().lock().write_all(text.as_bytes()))?;
    Ok(exit::OK)
}
