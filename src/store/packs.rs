//! Pack files: append-only files holding packed objects back to back, so
//! that objects take their compressed size on disk and the index stays
//! small. The objects table then holds a 17-byte pointer per object.
//!
//! A pack is `packs/pack-<n>.plumbpack`: the 8-byte magic `PLUMBPK1`, then
//! records `id (32 bytes) ‖ length (u32 BE) ‖ packed bytes`. Records are
//! self-describing so that a pack can be checked or salvaged on its own.
//!
//! # Crash safety
//!
//! Bytes are appended (buffered), and [`Packs::sync`] writes them out and
//! syncs the file before any index batch that points at them is committed;
//! so the index never points at bytes a crash could lose. A crash after an
//! append but before that commit leaves unreferenced bytes at a pack's end:
//! harmless, skipped by the next writer (which starts a new pack) and
//! reclaimed by `gc`.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use plumb_core::ObjectId;

use super::StoreError;

const MAGIC: &[u8; 8] = b"PLUMBPK1";
/// A pack is closed and a new one begun past this size.
const MAX_PACK: u64 = 1 << 30;
/// Appends are buffered up to this many bytes before a write.
const BUFFER: usize = 1 << 20;

/// The bytes before each record's packed bytes: the object id (32) and
/// the length (u32 BE).
pub const RECORD_HEADER: u64 = 32 + 4;

/// Where an object's packed bytes lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The pack number.
    pub pack: u32,
    /// Offset of the packed bytes in the pack file.
    pub offset: u64,
    /// Their length.
    pub len: u32,
}

/// How far [`Packs::scan`] read a pack file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    /// The offset after the last whole record (0: not a pack file).
    pub end: u64,
    /// The file's size: bytes from `end` to it were not read.
    pub size: u64,
}

/// The objects-table value that points into a pack.
pub const POINTER: u8 = 0x02;
/// The objects-table value that points at a large blob's chunk list in a
/// pack (the same layout as [`POINTER`]; see `spec/store.md`).
pub const CHUNKED_POINTER: u8 = 0x04;

impl Location {
    /// The objects-table value: `0x02 ‖ pack (u32 BE) ‖ offset (u64 BE) ‖ len (u32 BE)`.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_as(POINTER)
    }

    /// The objects-table value with the pointer flag `flag` ([`POINTER`]
    /// or [`CHUNKED_POINTER`]).
    pub fn encode_as(&self, flag: u8) -> Vec<u8> {
        let mut v = Vec::with_capacity(17);
        v.push(flag);
        v.extend_from_slice(&self.pack.to_be_bytes());
        v.extend_from_slice(&self.offset.to_be_bytes());
        v.extend_from_slice(&self.len.to_be_bytes());
        v
    }

    /// The bytes its whole record takes in the pack, header included.
    pub fn record_len(&self) -> u64 {
        RECORD_HEADER + u64::from(self.len)
    }

    /// Parses an objects-table value that starts with [`POINTER`] or
    /// [`CHUNKED_POINTER`].
    pub fn decode(v: &[u8]) -> Option<Self> {
        if v.len() != 17 || !matches!(v[0], POINTER | CHUNKED_POINTER) {
            return None;
        }
        Some(Self {
            pack: u32::from_be_bytes(v[1..5].try_into().ok()?),
            offset: u64::from_be_bytes(v[5..13].try_into().ok()?),
            len: u32::from_be_bytes(v[13..17].try_into().ok()?),
        })
    }
}

struct Writer {
    number: u32,
    file: File,
    /// Bytes appended but not yet written to the file.
    buf: Vec<u8>,
    /// File length: bytes written to the file so far.
    written: u64,
    /// Whether the file has writes not yet synced.
    unsynced: bool,
}

/// The pack files of one store.
pub struct Packs {
    dir: PathBuf,
    read_only: bool,
    writer: Mutex<Option<Writer>>,
    files: Mutex<HashMap<u32, Arc<File>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section leaves its state consistent before anything
    // that can panic, so a poisoned lock still guards valid data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pack file's name: `pack-NNNNNNNN.plumbpack`.
pub fn pack_name(number: u32) -> String {
    format!("pack-{number:08}.plumbpack")
}

fn parse_pack_name(name: &str) -> Option<u32> {
    name.strip_prefix("pack-")?
        .strip_suffix(".plumbpack")?
        .parse()
        .ok()
}

/// The packs a process writes to, one per store directory for the life of
/// the process: its writers, one turn after another, append to one pack
/// rather than starting a pack each (an agent records many small batches).
static WRITING: OnceLock<Mutex<HashMap<PathBuf, Arc<Packs>>>> = OnceLock::new();

/// The packs under `dir`, writable, shared by this process's writers.
/// Call it holding the writer turn: a pack that a `gc` of another process
/// rewrote and removed since (after checkpointing the journal) is
/// forgotten, and the next append starts a new one.
pub fn for_writing(dir: PathBuf) -> Result<Arc<Packs>, StoreError> {
    let mut writing = lock(WRITING.get_or_init(Default::default));
    if let Some(packs) = writing.get(&dir) {
        packs.forget_removed_writer();
        return Ok(Arc::clone(packs));
    }
    let packs = Arc::new(Packs::open(dir.clone(), false)?);
    writing.insert(dir, Arc::clone(&packs));
    Ok(packs)
}

impl Packs {
    /// The packs under `dir` (created when writable).
    pub fn open(dir: PathBuf, read_only: bool) -> Result<Self, StoreError> {
        if !read_only {
            fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(Self {
            dir,
            read_only,
            writer: Mutex::new(None),
            files: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, number: u32) -> PathBuf {
        self.dir.join(pack_name(number))
    }

    fn io(&self, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.to_path_buf();
        move |source| {
            if plumb_core::engine::is_disk_full(&source) {
                StoreError::Engine(super::EngineError::NoSpace)
            } else {
                StoreError::Io { path, source }
            }
        }
    }

    /// Forgets the pack this process appends to when its file is no longer
    /// the one at its path (a `gc` of another process rewrote and removed
    /// it), so that the next append starts a new pack. Call it holding the
    /// writer turn, which `gc` holds too.
    fn forget_removed_writer(&self) {
        use std::os::unix::fs::MetadataExt;
        let mut writer = lock(&self.writer);
        let gone = writer.as_ref().is_some_and(|w| {
            let at_path = fs::metadata(self.path(w.number));
            let ours = w.file.metadata();
            match (at_path, ours) {
                (Ok(a), Ok(o)) => (a.dev(), a.ino()) != (o.dev(), o.ino()),
                _ => true,
            }
        });
        if gone {
            *writer = None;
        }
    }

    /// The numbers of the pack files present, ascending.
    pub fn list(&self) -> Result<Vec<u32>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(self.io(&self.dir))?;
            if let Some(n) = entry.file_name().to_str().and_then(parse_pack_name) {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Starts a new pack after every existing one. A writer never appends
    /// to an older pack, whose tail may hold bytes a crash left behind.
    /// Each writing process makes its own (`create_new`), so two never
    /// append to one file.
    fn start(&self) -> Result<Writer, StoreError> {
        let mut number = self.list()?.last().map_or(1, |n| n + 1);
        let (path, mut file) = loop {
            let path = self.path(number);
            match OpenOptions::new()
                .read(true)
                .append(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => number += 1,
                Err(e) => return Err(self.io(&path)(e)),
            }
        };
        file.write_all(MAGIC).map_err(self.io(&path))?;
        file.sync_all().map_err(self.io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(self.io(&self.dir))?;
        Ok(Writer {
            number,
            file,
            buf: Vec::with_capacity(BUFFER),
            written: MAGIC.len() as u64,
            unsynced: false,
        })
    }

    fn write_out(&self, w: &mut Writer) -> Result<(), StoreError> {
        if !w.buf.is_empty() {
            let path = self.path(w.number);
            w.file.write_all(&w.buf).map_err(self.io(&path))?;
            w.written += w.buf.len() as u64;
            w.buf.clear();
            w.unsynced = true;
        }
        Ok(())
    }

    /// Appends an object's packed bytes; returns where they lie. Not
    /// durable until [`sync`](Self::sync).
    pub fn append(&self, id: &ObjectId, packed: &[u8]) -> Result<Location, StoreError> {
        if self.read_only {
            return Err(StoreError::Engine(super::EngineError::ReadOnly));
        }
        let len = u32::try_from(packed.len())
            .map_err(|_| StoreError::Invalid(format!("object {id} is over 4 GiB packed")))?;
        let mut guard = lock(&self.writer);
        if guard
            .as_ref()
            .is_some_and(|w| w.written + w.buf.len() as u64 > MAX_PACK)
        {
            let mut old = guard.take().expect("checked above");
            self.write_out(&mut old)?;
            old.file
                .sync_data()
                .map_err(self.io(&self.path(old.number)))?;
        }
        if guard.is_none() {
            *guard = Some(self.start()?);
        }
        let w = guard.as_mut().expect("set above");
        let offset = w.written + w.buf.len() as u64 + RECORD_HEADER;
        w.buf.extend_from_slice(id.as_bytes());
        w.buf.extend_from_slice(&len.to_be_bytes());
        w.buf.extend_from_slice(packed);
        if w.buf.len() >= BUFFER {
            self.write_out(w)?;
        }
        Ok(Location {
            pack: w.number,
            offset,
            len,
        })
    }

    /// Writes out and syncs everything appended so far.
    pub fn sync(&self) -> Result<(), StoreError> {
        let mut guard = lock(&self.writer);
        if let Some(w) = guard.as_mut() {
            self.write_out(w)?;
            if w.unsynced {
                w.file.sync_data().map_err(self.io(&self.path(w.number)))?;
                w.unsynced = false;
            }
        }
        Ok(())
    }

    /// Writes out (unsynced) everything appended so far, so that it
    /// outlives this process, if not the machine.
    pub fn flush(&self) -> Result<(), StoreError> {
        let mut guard = lock(&self.writer);
        if let Some(w) = guard.as_mut() {
            self.write_out(w)?;
        }
        Ok(())
    }

    /// Reads pack `number` from its start, calling `visit` with each
    /// record's id, location and packed bytes (unverified), in order. Stops
    /// at the file's end or at the first record whose header or length
    /// does not fit in it; returns how far it read and the file's size.
    pub fn scan(
        &self,
        number: u32,
        mut visit: impl FnMut(ObjectId, Location, Vec<u8>) -> Result<(), StoreError>,
    ) -> Result<Scanned, StoreError> {
        let path = self.path(number);
        let file = File::open(&path).map_err(self.io(&path))?;
        let size = file.metadata().map_err(self.io(&path))?.len();
        let mut reader = io::BufReader::with_capacity(BUFFER, file);
        let mut magic = [0u8; 8];
        if size < MAGIC.len() as u64
            || io::Read::read_exact(&mut reader, &mut magic).is_err()
            || &magic != MAGIC
        {
            return Ok(Scanned { end: 0, size });
        }
        let mut at = MAGIC.len() as u64;
        loop {
            if at + RECORD_HEADER > size {
                return Ok(Scanned { end: at, size });
            }
            let mut header = [0u8; RECORD_HEADER as usize];
            io::Read::read_exact(&mut reader, &mut header).map_err(self.io(&path))?;
            let mut id = [0u8; 32];
            id.copy_from_slice(&header[..32]);
            let mut len = [0u8; 4];
            len.copy_from_slice(&header[32..]);
            let len = u32::from_be_bytes(len);
            if at + RECORD_HEADER + u64::from(len) > size {
                return Ok(Scanned { end: at, size });
            }
            let mut packed = vec![0u8; len as usize];
            io::Read::read_exact(&mut reader, &mut packed).map_err(self.io(&path))?;
            let loc = Location {
                pack: number,
                offset: at + RECORD_HEADER,
                len,
            };
            visit(ObjectId::from_bytes(id), loc, packed)?;
            at += RECORD_HEADER + u64::from(len);
        }
    }

    /// The number of the pack being written, if any.
    pub fn current(&self) -> Option<u32> {
        lock(&self.writer).as_ref().map(|w| w.number)
    }

    /// Reads the packed bytes at `loc` (of object `id`, for messages).
    pub fn read(&self, id: &ObjectId, loc: Location) -> Result<Vec<u8>, StoreError> {
        self.read_head(id, loc, loc.len)
    }

    /// Reads at most the first `max` packed bytes at `loc` (a header).
    pub fn read_head(&self, id: &ObjectId, loc: Location, max: u32) -> Result<Vec<u8>, StoreError> {
        {
            // Reading back what this process appended: write it out first.
            let mut guard = lock(&self.writer);
            if let Some(w) = guard.as_mut()
                && w.number == loc.pack
                && loc.offset + u64::from(loc.len) > w.written
            {
                self.write_out(w)?;
            }
        }
        let file = self.file(loc.pack).map_err(|e| match e {
            StoreError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                StoreError::Corrupt {
                    id: *id,
                    reason: format!("its pack {} is missing", pack_name(loc.pack)),
                }
            }
            other => other,
        })?;
        let mut out = vec![0u8; loc.len.min(max) as usize];
        file.read_exact_at(&mut out, loc.offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                StoreError::Corrupt {
                    id: *id,
                    reason: format!(
                        "{} ends before offset {} + {}",
                        pack_name(loc.pack),
                        loc.offset,
                        loc.len
                    ),
                }
            } else {
                self.io(&self.path(loc.pack))(e)
            }
        })?;
        Ok(out)
    }

    fn file(&self, number: u32) -> Result<Arc<File>, StoreError> {
        let mut files = lock(&self.files);
        if let Some(f) = files.get(&number) {
            return Ok(f.clone());
        }
        let path = self.path(number);
        let f = Arc::new(File::open(&path).map_err(self.io(&path))?);
        files.insert(number, f.clone());
        Ok(f)
    }

    /// Closes the pack files opened for reading, so the next read opens
    /// them again (another process may have replaced one).
    pub fn forget_files(&self) {
        lock(&self.files).clear();
    }

    /// The size of a pack file.
    pub fn size(&self, number: u32) -> Result<u64, StoreError> {
        let path = self.path(number);
        Ok(fs::metadata(&path).map_err(self.io(&path))?.len())
    }

    /// Deletes a pack file no index entry points into any more.
    pub fn remove(&self, number: u32) -> Result<(), StoreError> {
        lock(&self.files).remove(&number);
        let path = self.path(number);
        fs::remove_file(&path).map_err(self.io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(self.io(&self.dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_and_pointer_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let packs = Packs::open(d.path().join("packs"), false).unwrap();
        let id = ObjectId::of_encoding(b"x");
        let a = packs.append(&id, b"hello").unwrap();
        let b = packs.append(&id, b"world!").unwrap();
        assert_eq!(packs.read(&id, a).unwrap(), b"hello");
        packs.sync().unwrap();
        assert_eq!(packs.read(&id, b).unwrap(), b"world!");
        assert_eq!(Location::decode(&b.encode()), Some(b));
        assert_eq!(packs.list().unwrap(), vec![1]);
        // A new writer never appends to an old pack.
        let again = Packs::open(d.path().join("packs"), false).unwrap();
        let c = again.append(&id, b"more").unwrap();
        assert_eq!(c.pack, 2);
        let bad = Location { len: 100, ..b };
        assert!(matches!(
            packs.read(&id, bad),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
