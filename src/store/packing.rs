//! How an object's canonical bytes are kept in the objects table: one flag
//! byte, then either the bytes as they are (`0x00`) or one zstd frame that
//! records its content size (`0x01`). See `spec/store.md`.

use std::cell::RefCell;

use plumb_core::ObjectId;

use super::StoreError;

const RAW: u8 = 0x00;
const ZSTD: u8 = 0x01;

/// zstd level: 1, not zstd's default 3. On configuration files of a few
/// KB the frame setup dominates, and level 1 costs a tenth less CPU over a
/// whole ingest for frames about 8% larger (spec/store.md).
const LEVEL: i32 = 1;

/// Trees are kept raw: they are mostly 32-byte hashes, which do not
/// compress, and at a few hundred bytes each zstd's per-call setup costs
/// more than the few name bytes it saves.
const TREE: u8 = 0x02;

/// Objects smaller than this are kept raw: zstd's frame overhead outweighs
/// any gain.
const MIN_COMPRESS: usize = 64;

/// The largest object this store will unpack (a guard against a corrupted
/// size field asking for an absurd allocation).
const MAX_OBJECT: u64 = 1 << 36;

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

thread_local! {
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Decompresses one frame of `size` bytes with this thread's reusable
/// context (creating one per object costs more than small objects take).
fn decompress(frame: &[u8], size: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        slot.as_mut().expect("just set").decompress(frame, size)
    })
}

/// Packs canonical bytes for storage.
pub(crate) fn pack(canonical: &[u8]) -> Vec<u8> {
    if canonical.len() >= MIN_COMPRESS
        && canonical.first() != Some(&TREE)
        && let Some(frame) = compress(canonical)
        && frame.len() + 1 < canonical.len()
    {
        let mut out = Vec::with_capacity(frame.len() + 1);
        out.push(ZSTD);
        out.extend_from_slice(&frame);
        return out;
    }
    let mut out = Vec::with_capacity(canonical.len() + 1);
    out.push(RAW);
    out.extend_from_slice(canonical);
    out
}

fn compress(data: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut c = zstd::bulk::Compressor::new(LEVEL).ok()?;
            c.include_contentsize(true).ok()?;
            c.include_checksum(false).ok()?;
            *slot = Some(c);
        }
        slot.as_mut()?.compress(data).ok()
    })
}

/// Unpacks stored bytes and checks that they hash to `id`.
pub(crate) fn unpack(id: &ObjectId, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { id: *id, reason };
    let (&flag, body) = stored
        .split_first()
        .ok_or_else(|| corrupt("empty record".into()))?;
    let canonical = match flag {
        RAW => body.to_vec(),
        ZSTD => {
            let size = zstd::zstd_safe::get_frame_content_size(body)
                .ok()
                .flatten()
                .filter(|&n| n <= MAX_OBJECT)
                .ok_or_else(|| corrupt("unreadable compressed frame header".into()))?;
            let size = usize::try_from(size)
                .map_err(|_| corrupt("object too large for this machine".into()))?;
            decompress(body, size).map_err(|e| corrupt(format!("decompression failed: {e}")))?
        }
        other => return Err(corrupt(format!("unknown packing flag {other:#04x}"))),
    };
    let actual = ObjectId::of_encoding(&canonical);
    if actual != *id {
        return Err(corrupt(format!("content hashes to {actual}")));
    }
    Ok(canonical)
}

/// Like [`unpacked_len`], from the first bytes of a record `total` bytes
/// long (a zstd frame header fits in 18).
pub(crate) fn unpacked_len_from_head(head: &[u8], total: u32) -> Option<u64> {
    match head.first()? {
        &RAW | &TREE => Some(u64::from(total).checked_sub(1)?),
        _ => unpacked_len(head),
    }
}

/// The length of the canonical bytes a stored record unpacks to, read from
/// its header alone (unverified: a hint for sizing, never for trust).
pub(crate) fn unpacked_len(stored: &[u8]) -> Option<u64> {
    let (&flag, body) = stored.split_first()?;
    match flag {
        RAW | TREE => Some(body.len() as u64),
        ZSTD => zstd::zstd_safe::get_frame_content_size(body).ok().flatten(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_detects_flips() {
        let data = b"key = value\n".repeat(100);
        let id = ObjectId::of_encoding(&data);
        let packed = pack(&data);
        assert_eq!(packed[0], ZSTD);
        assert_eq!(unpack(&id, &packed).unwrap(), data);
        for i in 0..packed.len() {
            let mut bad = packed.clone();
            bad[i] ^= 0x01;
            assert!(unpack(&id, &bad).is_err(), "flip at {i} went unnoticed");
        }
        let small = b"tiny";
        let packed = pack(small);
        assert_eq!(packed[0], RAW);
        assert_eq!(
            unpack(&ObjectId::of_encoding(small), &packed).unwrap(),
            small
        );
    }
}
