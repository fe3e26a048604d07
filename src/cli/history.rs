//! `plumb log` and `plumb show`.

use std::io::Write;

use plumb::sources::Annotation;
use plumb::store::Store;
use plumb_core::source::NamedRef;
use plumb_core::{Snapshot, SnapshotId};

use super::json::{self, Outcome};
use super::output::{ignore_broken_pipe, person, person_json, rfc3339, short};
use super::{Within, exit};

fn snapshot_json(id: &SnapshotId, s: &Snapshot) -> serde_json::Value {
    serde_json::json!({
        "id": id.to_string(),
        "revision": s.revision,
        "tree": s.tree.to_string(),
        "parents": s.parents.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "author": person_json(&s.author),
        "committer": person_json(&s.committer),
        "time": rfc3339(&s.committer),
        "message": json::bytes(&s.message),
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
        json::print(
            Outcome::Ok,
            serde_json::json!({ "source": name, "snapshots": items }),
        )?;
    }
    Ok(exit::OK)
}

/// A named ref that points at a snapshot, with its annotation read.
struct RefAt {
    source: String,
    named: NamedRef,
    /// The annotation as a Git tag, when the source's kind records them so.
    tag: Option<plumb_source_git::Tag>,
}

/// The named refs of `sources` that point at `id`, annotations read.
fn refs_at(
    store: &Store,
    id: &SnapshotId,
    sources: &[(String, u64)],
) -> anyhow::Result<Vec<RefAt>> {
    let mut out = Vec::new();
    for (name, _) in sources {
        let annotation = store.source(name)?.vcs.kind().annotation;
        for named in store.source_refs(name)? {
            if named.snapshot != *id {
                continue;
            }
            let tag = match named.annotation {
                Some(a) if annotation == Annotation::GitTag => {
                    let raw = store.blob(&a)?;
                    Some(plumb_source_git::parse_tag(raw.data()).within(|| {
                        format!("the annotation of ref {} of source {name}", named.name)
                    })?)
                }
                _ => None,
            };
            out.push(RefAt {
                source: name.clone(),
                named,
                tag,
            });
        }
    }
    Ok(out)
}

fn ref_json(r: &RefAt) -> serde_json::Value {
    let mut v = serde_json::json!({
        "source": r.source,
        "name": r.named.name,
        "annotation": r.named.annotation.map(|a| a.to_string()),
    });
    if let Some(t) = &r.tag {
        v["tag"] = serde_json::json!({
            "object": t.object,
            "type": t.kind,
            "name": json::bytes(&t.name),
            "tagger": t.tagger.as_ref().map(person_json),
            "message": json::bytes(&t.message),
            "signature": t.signature.as_deref().map(json::bytes),
            "signed_payload": t.signed_payload.as_deref().map(json::bytes),
        });
    }
    v
}

fn ref_text(r: &RefAt) -> String {
    let Some(t) = &r.tag else {
        return format!("ref       {}\n", r.named.name);
    };
    let by = t
        .tagger
        .as_ref()
        .map(|p| format!(" by {} {}", person(p), rfc3339(p)))
        .unwrap_or_default();
    let signed = if t.signature.is_some() {
        ", signed"
    } else {
        ""
    };
    let message = String::from_utf8_lossy(&t.message);
    let subject = message.lines().next().unwrap_or_default();
    format!("ref       {} (tag{by}{signed}): {subject}\n", r.named.name)
}

pub fn show(store: &Store, rev: &str, json: bool) -> anyhow::Result<u8> {
    let resolved = plumb::rev::resolve(store, rev)?;
    let s = store.snapshot(&resolved.id)?;
    let sources = store.sources_of(&resolved.id)?;
    let refs = refs_at(store, &resolved.id, &sources)?;
    if json {
        let mut v = snapshot_json(&resolved.id, &s);
        v["sources"] = sources
            .iter()
            .map(|(n, seq)| serde_json::json!({"name": n, "seq": seq}))
            .collect::<Vec<_>>()
            .into();
        v["refs"] = refs.iter().map(ref_json).collect::<Vec<_>>().into();
        v["extra"] = s
            .extra
            .iter()
            .map(|(k, val)| serde_json::json!({"name": k, "value": json::bytes(val)}))
            .collect::<Vec<_>>()
            .into();
        json::print(Outcome::Ok, v)?;
        return Ok(exit::OK);
    }
    let mut text = String::new();
    text.push_str(&format!("snapshot  {}\n", resolved.id));
    for (n, seq) in &sources {
        text.push_str(&format!("source    {n} #{seq}\n"));
    }
    text.push_str(&format!("revision  {}\n", s.revision));
    for r in &refs {
        text.push_str(&ref_text(r));
    }
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
