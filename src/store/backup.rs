//! Online backup: a consistent, verified copy of a store, made while other
//! processes keep using it, and incremental where the destination already
//! holds a backup (`spec/store.md`, "Backup").
//!
//! The point in time is fixed under the writer turn, briefly: the index
//! file is copied (no writer has it open while the turn is held) and every
//! pack file is opened and its length taken. The turn is then released and
//! the packs are copied from the open files, which `gc` may unlink but not
//! change (packs are append-only, and a pack a writer finished is never
//! written again). Copied bytes are compared with the source's, the copied
//! index is checked by the engine and every pointer in it is checked
//! against the copied packs, and only then is the copy put in place.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plumb_core::ObjectId;
use plumb_core::engine::{KeyRange, Table};

use super::{FORMAT_FILE, Holder, PACKS_DIR, Store, StoreError, Wait, packing, packs};

/// The file that marks a directory as a backup, and records what its packs
/// were copied from.
pub const MANIFEST: &str = "plumb-backup";
const MANIFEST_LINE: &str = "plumb backup v1";
/// The suffix of files a backup writes before putting them in place.
const TEMP: &str = ".plumb-tmp";
/// Bytes compared at a time when checking a copy against its source.
const CHUNK: usize = 4 << 20;
/// Bytes copied before they are handed to the comparison.
const SEGMENT: u64 = 64 << 20;

/// Why a backup failed. Nothing of it was put in place: the destination
/// holds the previous backup, or is not a store.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading the source store failed, or it could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The destination cannot receive a backup.
    #[error("cannot back up into {}: {reason}", path.display())]
    Destination {
        /// The destination.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// A copied file differs from its source.
    #[error("{}: the copy differs from {} at byte {offset}", copy.display(), source_path.display())]
    Differs {
        /// The copy.
        copy: PathBuf,
        /// What it was copied from.
        source_path: PathBuf,
        /// The first offset (rounded down to a chunk) that differs.
        offset: u64,
    },
    /// The copied index does not match the copied packs.
    #[error("the copied index is inconsistent: {count} problem(s), the first: {first}")]
    Inconsistent {
        /// How many pointers or objects failed.
        count: u64,
        /// The first, in words.
        first: String,
    },
}

/// An I/O error on `path` (the store's error, as every file error is).
fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::Store(StoreError::Io { path, source })
}

/// What a backup checks beyond the copied bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verify {
    /// Every copied byte against the source, the index by the engine's own
    /// check, and every object pointer against the copied packs (its
    /// record's id and length). The default.
    #[default]
    Pointers,
    /// That, and every object read back from the copy, unpacked and
    /// hashed (`--verify-all`).
    Objects,
}

impl Verify {
    /// Its name in reports (`pointers`, `objects`).
    pub const fn name(self) -> &'static str {
        match self {
            Verify::Pointers => "pointers",
            Verify::Objects => "objects",
        }
    }
}

/// A source's newest snapshot as the backup holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The source's name.
    pub name: String,
    /// Its newest log position in the backup (0: nothing ingested).
    pub seq: u64,
}

/// What a backup did.
#[derive(Debug, Default)]
pub struct BackupReport {
    /// Packs copied whole.
    pub packs_copied: u64,
    /// Packs the destination held in part, whose new tail was copied.
    pub packs_extended: u64,
    /// Packs the destination held whole already.
    pub packs_reused: u64,
    /// Packs the destination held that the source no longer has.
    pub packs_removed: u64,
    /// Pack bytes copied (whole packs and tails).
    pub bytes_copied: u64,
    /// Pack bytes the destination held already.
    pub bytes_reused: u64,
    /// Bytes of the index copied.
    pub index_bytes: u64,
    /// Objects whose pointers (and, with [`Verify::Objects`], bytes) were
    /// checked.
    pub objects: u64,
    /// What was checked.
    pub verify: Verify,
    /// How long the writer turn was held to fix the point in time.
    pub turn_held: Duration,
    /// Each source's newest snapshot at that point.
    pub heads: Vec<Head>,
}

/// A source pack at the point in time: open, with its length then.
struct SourcePack {
    number: u32,
    file: File,
    len: u64,
    identity: Identity,
}

/// What tells one pack file from another that took its number later: its
/// inode and change time. A pack is never written once its writer is done,
/// so a pack the manifest lists with the same identity holds the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    ctime: i64,
    ctime_nsec: i64,
}

impl Identity {
    fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
        }
    }
}

/// The destination's manifest: the packs a completed backup copied, each
/// with its length and its source's identity.
#[derive(Debug, Default)]
struct Manifest {
    packs: BTreeMap<u32, (u64, Identity)>,
}

impl Manifest {
    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next() != Some(MANIFEST_LINE) {
            return None;
        }
        let mut packs = BTreeMap::new();
        for line in lines {
            let f: Vec<&str> = line.split(' ').collect();
            if let ["pack", n, len, dev, ino, ctime, nsec] = f.as_slice() {
                let identity = Identity {
                    dev: dev.parse().ok()?,
                    ino: ino.parse().ok()?,
                    ctime: ctime.parse().ok()?,
                    ctime_nsec: nsec.parse().ok()?,
                };
                packs.insert(n.parse().ok()?, (len.parse().ok()?, identity));
            }
        }
        Some(Self { packs })
    }

    fn render(&self, source: &Path) -> String {
        let mut out = format!("{MANIFEST_LINE}\nsource = {}\n", source.display());
        for (n, (len, id)) in &self.packs {
            out.push_str(&format!(
                "pack {n} {len} {} {} {} {}\n",
                id.dev, id.ino, id.ctime, id.ctime_nsec
            ));
        }
        out
    }
}

/// How the destination stands before the backup.
enum Destination {
    /// Absent or empty: a first backup.
    Fresh,
    /// A backup (complete, or one a kill interrupted), with its manifest.
    Backup(Manifest),
}

fn examine(dest: &Path, source: &Path) -> Result<Destination, BackupError> {
    let refuse = |reason: &str| BackupError::Destination {
        path: dest.to_path_buf(),
        reason: reason.to_owned(),
    };
    let meta = match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Destination::Fresh),
        Err(e) => return Err(io_at(dest)(e)),
        Ok(m) => m,
    };
    if !meta.is_dir() {
        return Err(refuse("it is not a directory"));
    }
    let (src, dst) = (
        fs::canonicalize(source).map_err(io_at(source))?,
        fs::canonicalize(dest).map_err(io_at(dest))?,
    );
    if dst.starts_with(&src) || src.starts_with(&dst) {
        return Err(refuse("it is the store itself, or inside it, or holds it"));
    }
    match fs::read_to_string(dest.join(MANIFEST)) {
        Ok(text) => Manifest::parse(&text)
            .map(Destination::Backup)
            .ok_or_else(|| refuse(&format!("its {MANIFEST} file is not one plumb wrote"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::read_dir(dest).map_err(io_at(dest))?.next().is_none() {
                Ok(Destination::Fresh)
            } else if dest.join(FORMAT_FILE).exists() {
                Err(refuse(
                    "it holds a store that is not a backup (no plumb-backup file); refusing to overwrite it",
                ))
            } else {
                Err(refuse("it is neither empty nor a backup"))
            }
        }
        Err(e) => Err(io_at(&dest.join(MANIFEST))(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

/// Writes `text` to `path` atomically: a temporary file, synced, renamed.
fn write_atomically(path: &Path, text: &str) -> Result<(), BackupError> {
    let tmp = temp_path(path);
    let mut f = File::create(&tmp).map_err(io_at(&tmp))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io_at(&tmp))?;
    fs::rename(&tmp, path).map_err(io_at(path))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(TEMP);
    path.with_file_name(name)
}

/// Removes what an interrupted backup left in `dir`.
fn remove_temporaries(dir: &Path) -> Result<(), BackupError> {
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other.map_err(io_at(dir))?,
    };
    for entry in entries {
        let entry = entry.map_err(io_at(dir))?;
        if entry.file_name().to_string_lossy().ends_with(TEMP) {
            fs::remove_file(entry.path()).map_err(io_at(&entry.path()))?;
        }
    }
    Ok(())
}

/// The point in time: the copied index, and every pack open.
struct Point {
    packs: Vec<SourcePack>,
    index_bytes: u64,
    turn_held: Duration,
}

/// Under the writer turn: copies the index file to `index_copy` and opens
/// every pack. No writer has the index open while the turn is held, and
/// every pack is complete.
fn fix_point(
    source: &Path,
    file: &str,
    index_copy: &Path,
    wait: Wait,
    waiting: &dyn Fn(&Holder),
) -> Result<Point, BackupError> {
    let turn = Store::take_turn(source, wait, waiting)?;
    let started = Instant::now();
    let index = source.join(file);
    let index_bytes = fs::copy(&index, index_copy).map_err(io_at(&index))?;
    let dir = source.join(PACKS_DIR);
    let mut packs = Vec::new();
    for number in packs::Packs::open(dir.clone(), true)?.list()? {
        let path = dir.join(packs::pack_name(number));
        let file = File::open(&path).map_err(io_at(&path))?;
        let meta = file.metadata().map_err(io_at(&path))?;
        packs.push(SourcePack {
            number,
            len: meta.len(),
            identity: Identity::of(&meta),
            file,
        });
    }
    let turn_held = started.elapsed();
    drop(turn);
    Ok(Point {
        packs,
        index_bytes,
        turn_held,
    })
}

/// Copies `len` bytes of `from` at `offset` to `to` (at the same
/// offset), and compares them with the source's: segment by segment, each
/// compared on a second thread while the next is copied.
fn copy_range(
    from: &File,
    from_path: &Path,
    to: &mut File,
    to_path: &Path,
    offset: u64,
    len: u64,
) -> Result<(), BackupError> {
    let mut src = from.try_clone().map_err(io_at(from_path))?;
    src.seek(SeekFrom::Start(offset))
        .map_err(io_at(from_path))?;
    to.seek(SeekFrom::Start(offset)).map_err(io_at(to_path))?;
    let reader = to.try_clone().map_err(io_at(to_path))?;
    std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel::<(u64, u64)>(2);
        let checker = scope.spawn(move || {
            for (at, n) in receive {
                compare(from, from_path, &reader, to_path, at, n)?;
            }
            Ok::<(), BackupError>(())
        });
        let mut at = offset;
        let copied: Result<(), BackupError> = (|| {
            while at < offset + len {
                let n = SEGMENT.min(offset + len - at);
                let copied = io::copy(&mut (&mut src).take(n), to).map_err(io_at(to_path))?;
                if copied != n {
                    return Err(io_at(from_path)(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("ended {} bytes early", n - copied),
                    )));
                }
                if send.send((at, n)).is_err() {
                    break; // the checker stopped: its error says why
                }
                at += n;
            }
            Ok(())
        })();
        drop(send);
        let checked = checker
            .join()
            .unwrap_or_else(|_| Err(io_at(to_path)(io::Error::other("the comparison failed"))));
        copied.and(checked)
    })
}

/// Compares `len` bytes at `offset` of two files.
fn compare(
    a: &File,
    a_path: &Path,
    b: &File,
    b_path: &Path,
    offset: u64,
    len: u64,
) -> Result<(), BackupError> {
    let mut x = vec![0u8; CHUNK];
    let mut y = vec![0u8; CHUNK];
    let mut at = offset;
    while at < offset + len {
        let n = (CHUNK as u64).min(offset + len - at) as usize;
        a.read_exact_at(&mut x[..n], at).map_err(io_at(a_path))?;
        b.read_exact_at(&mut y[..n], at).map_err(io_at(b_path))?;
        if x[..n] != y[..n] {
            return Err(BackupError::Differs {
                copy: b_path.to_path_buf(),
                source_path: a_path.to_path_buf(),
                offset: at,
            });
        }
        at += n as u64;
    }
    Ok(())
}

/// How one pack reaches the destination.
enum Plan {
    /// The destination holds it whole.
    Reuse,
    /// The destination holds its first `have` bytes: copy the rest in place.
    Extend { have: u64 },
    /// Copy it whole, to a temporary file put in place at the end.
    Copy,
}

fn plan(pack: &SourcePack, manifest: &Manifest, dest_packs: &Path) -> Plan {
    let Some(&(have, identity)) = manifest.packs.get(&pack.number) else {
        return Plan::Copy;
    };
    let on_disk = fs::metadata(dest_packs.join(packs::pack_name(pack.number))).map(|m| m.len());
    if identity != pack.identity || have > pack.len || on_disk.ok() != Some(have) {
        Plan::Copy
    } else if have == pack.len {
        Plan::Reuse
    } else {
        Plan::Extend { have }
    }
}

/// Makes a consistent, verified copy of the store at `source` in `dest`
/// (`spec/store.md`, "Backup"). The writer turn is taken, as `wait`
/// allows, only to fix the point in time.
pub fn backup(
    source: &Path,
    dest: &Path,
    verify: Verify,
    wait: Wait,
    waiting: &dyn Fn(&Holder),
) -> Result<BackupReport, BackupError> {
    let kind = Store::engine_kind(source)?;
    if !kind.shared {
        return Err(BackupError::Destination {
            path: dest.to_path_buf(),
            reason: format!(
                "the {} engine admits one process at a time, so a store on it is copied while no plumb runs (cp -a)",
                kind.name
            ),
        });
    }
    let opener = Store::opener(source, kind)?;
    let source_abs = fs::canonicalize(source).map_err(io_at(source))?;
    let manifest = match examine(dest, source)? {
        Destination::Fresh => {
            fs::create_dir_all(dest).map_err(io_at(dest))?;
            // The manifest comes first: a directory with it and without a
            // format file is a backup a kill interrupted, clearly no store.
            write_atomically(
                &dest.join(MANIFEST),
                &Manifest::default().render(&source_abs),
            )?;
            sync_dir(dest)?;
            Manifest::default()
        }
        Destination::Backup(m) => m,
    };
    let dest_packs = dest.join(PACKS_DIR);
    fs::create_dir_all(&dest_packs).map_err(io_at(&dest_packs))?;
    remove_temporaries(dest)?;
    remove_temporaries(&dest_packs)?;

    let index_final = dest.join(kind.file);
    let index_copy = temp_path(&index_final);
    let point = fix_point(source, kind.file, &index_copy, wait, waiting)?;
    let mut report = BackupReport {
        index_bytes: point.index_bytes,
        turn_held: point.turn_held,
        verify,
        ..BackupReport::default()
    };

    // Packs, from the files opened at the point in time.
    let mut staged: BTreeMap<u32, PathBuf> = BTreeMap::new();
    let mut replaced = false;
    let mut new_manifest = Manifest::default();
    for pack in &point.packs {
        let from_path = source.join(PACKS_DIR).join(packs::pack_name(pack.number));
        let path = dest_packs.join(packs::pack_name(pack.number));
        let target = match plan(pack, &manifest, &dest_packs) {
            Plan::Reuse => {
                report.packs_reused += 1;
                report.bytes_reused += pack.len;
                path
            }
            Plan::Extend { have } => {
                let mut to = OpenOptions::new()
                    .write(true)
                    .read(true)
                    .open(&path)
                    .map_err(io_at(&path))?;
                copy_range(
                    &pack.file,
                    &from_path,
                    &mut to,
                    &path,
                    have,
                    pack.len - have,
                )?;
                to.sync_data().map_err(io_at(&path))?;
                report.packs_extended += 1;
                report.bytes_reused += have;
                report.bytes_copied += pack.len - have;
                path
            }
            Plan::Copy => {
                replaced |= path.exists();
                let tmp = temp_path(&path);
                let mut to = OpenOptions::new()
                    .write(true)
                    .read(true)
                    .create(true)
                    .truncate(true)
                    .open(&tmp)
                    .map_err(io_at(&tmp))?;
                copy_range(&pack.file, &from_path, &mut to, &tmp, 0, pack.len)?;
                to.sync_data().map_err(io_at(&tmp))?;
                report.packs_copied += 1;
                report.bytes_copied += pack.len;
                tmp
            }
        };
        staged.insert(pack.number, target);
        new_manifest
            .packs
            .insert(pack.number, (pack.len, pack.identity));
    }
    sync_dir(&dest_packs)?;

    // The copied index: the engine's own check, then every pointer.
    {
        let mut engine = (opener.open)(&index_copy).map_err(StoreError::from)?;
        engine.check_integrity().map_err(StoreError::from)?;
        report.objects = check_pointers(engine.as_ref(), &staged, verify)?;
        let store = Store::with_engine(engine);
        for def in store.sources()? {
            let seq = store.head(&def.name)?.map_or(0, |h| h.seq);
            report.heads.push(Head {
                name: def.name,
                seq,
            });
        }
    }
    File::open(&index_copy)
        .and_then(|f| f.sync_all())
        .map_err(io_at(&index_copy))?;

    // Into place. New packs first (the previous index does not point into
    // them), then the index. A pack that takes the place of a different
    // one the previous backup holds would break that backup: the format
    // file goes first, so that until the end the directory is no store.
    let format = dest.join(FORMAT_FILE);
    if replaced && format.exists() {
        fs::remove_file(&format).map_err(io_at(&format))?;
        sync_dir(dest)?;
    }
    for (number, path) in &staged {
        let final_path = dest_packs.join(packs::pack_name(*number));
        if *path != final_path {
            fs::rename(path, &final_path).map_err(io_at(&final_path))?;
        }
    }
    sync_dir(&dest_packs)?;
    fs::rename(&index_copy, &index_final).map_err(io_at(&index_final))?;
    sync_dir(dest)?;
    if !format.exists() {
        let text = fs::read_to_string(source.join(FORMAT_FILE))
            .map_err(io_at(&source.join(FORMAT_FILE)))?;
        write_atomically(&format, &text)?;
    }
    write_atomically(&dest.join(MANIFEST), &new_manifest.render(&source_abs))?;
    sync_dir(dest)?;

    // Packs the source no longer has (collected by `gc`).
    let keep: BTreeSet<u32> = staged.keys().copied().collect();
    for number in packs::Packs::open(dest_packs.clone(), true)?.list()? {
        if !keep.contains(&number) {
            let path = dest_packs.join(packs::pack_name(number));
            fs::remove_file(&path).map_err(io_at(&path))?;
            report.packs_removed += 1;
        }
    }
    Ok(report)
}

/// Checks every pointer of the copied index against the copied packs: the
/// pack is there, the record lies within it and its header names the
/// object and its length; with [`Verify::Objects`], the object's bytes
/// unpack and hash to its id. Returns the number of objects.
fn check_pointers(
    engine: &dyn plumb_core::engine::Engine,
    staged: &BTreeMap<u32, PathBuf>,
    verify: Verify,
) -> Result<u64, BackupError> {
    let mut files: BTreeMap<u32, (File, u64)> = BTreeMap::new();
    for (n, path) in staged {
        let f = File::open(path).map_err(io_at(path))?;
        let len = f.metadata().map_err(io_at(path))?.len();
        files.insert(*n, (f, len));
    }
    let mut objects = 0u64;
    let mut problems = 0u64;
    let mut first = None;
    let mut failure = None;
    let mut header = [0u8; packs::RECORD_HEADER as usize];
    engine
        .scan(Table::Objects, KeyRange::all(), false, &mut |key, value| {
            objects += 1;
            let Ok(id_bytes) = <[u8; 32]>::try_from(key) else {
                problems += 1;
                first.get_or_insert_with(|| "an objects key is not 32 bytes".to_owned());
                return Ok(true);
            };
            let id = ObjectId::from_bytes(id_bytes);
            let problem = match check_one(&id, value, &files, &mut header, verify) {
                Ok(problem) => problem,
                Err(e) => {
                    failure = Some(e);
                    return Ok(false);
                }
            };
            if let Some(p) = problem {
                problems += 1;
                first.get_or_insert(p);
            }
            Ok(true)
        })
        .map_err(StoreError::from)?;
    if let Some(e) = failure {
        return Err(e);
    }
    match first {
        Some(first) => Err(BackupError::Inconsistent {
            count: problems,
            first,
        }),
        None => Ok(objects),
    }
}

/// One object's check: `Ok(Some(problem))` when the copy is wrong about it.
fn check_one(
    id: &ObjectId,
    value: &[u8],
    files: &BTreeMap<u32, (File, u64)>,
    header: &mut [u8; packs::RECORD_HEADER as usize],
    verify: Verify,
) -> Result<Option<String>, BackupError> {
    if value.first() != Some(&packs::POINTER) {
        // Kept inline in the index.
        return Ok(match verify {
            Verify::Objects => packing::unpack(id, value).err().map(|e| e.to_string()),
            Verify::Pointers => None,
        });
    }
    let Some(loc) = packs::Location::decode(value) else {
        return Ok(Some(format!("object {id}: malformed pack pointer")));
    };
    let Some((file, len)) = files.get(&loc.pack) else {
        return Ok(Some(format!(
            "object {id}: its pack {} is not in the copy",
            packs::pack_name(loc.pack)
        )));
    };
    let Some(start) = loc.offset.checked_sub(packs::RECORD_HEADER) else {
        return Ok(Some(format!(
            "object {id}: offset {} is in the pack's header",
            loc.offset
        )));
    };
    if loc.offset + u64::from(loc.len) > *len || start < 8 {
        return Ok(Some(format!(
            "object {id}: {} + {} lies outside {} ({len} bytes)",
            loc.offset,
            loc.len,
            packs::pack_name(loc.pack)
        )));
    }
    let read = |buf: &mut [u8], at: u64| {
        file.read_exact_at(buf, at)
            .map_err(io_at(Path::new(&packs::pack_name(loc.pack))))
    };
    read(header, start)?;
    if header[..32] != *id.as_bytes() || header[32..] != loc.len.to_be_bytes() {
        return Ok(Some(format!(
            "object {id}: the record at {} of {} is another's",
            start,
            packs::pack_name(loc.pack)
        )));
    }
    if verify == Verify::Objects {
        let mut packed = vec![0u8; loc.len as usize];
        read(&mut packed, loc.offset)?;
        if let Err(e) = packing::unpack(id, &packed) {
            return Ok(Some(e.to_string()));
        }
    }
    Ok(None)
}
