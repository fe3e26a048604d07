//! Revision chunks: one header byte says how the rest is compressed.

use std::borrow::Cow;
use std::io::Read;

use super::RevlogError;

/// Decompresses one stored chunk, producing at most `limit` bytes.
///
/// | first byte | meaning |
/// |---|---|
/// | none (empty chunk) | empty text |
/// | `\0` | stored as is, the `\0` included |
/// | `u` | stored as is after the `u` |
/// | `x` | a zlib stream (the `x` is its first header byte) |
/// | `(` | a zstd frame (the `(` is the first byte of its magic number) |
///
/// Anything else is [`RevlogError::Compression`]; output past `limit` is
/// [`RevlogError::TooLarge`], so a hostile chunk cannot exhaust memory.
pub fn decompress(chunk: &[u8], limit: usize) -> Result<Cow<'_, [u8]>, RevlogError> {
    let Some(&first) = chunk.first() else {
        return Ok(Cow::Borrowed(chunk));
    };
    let out = match first {
        b'\0' => Cow::Borrowed(chunk),
        b'u' => Cow::Borrowed(&chunk[1..]),
        b'x' => Cow::Owned(read_limited(
            flate2::read::ZlibDecoder::new(chunk),
            limit,
            "zlib",
        )?),
        b'(' => {
            // Frames written by Mercurial record their size: one bulk call
            // into a reused context, instead of a new context per chunk.
            if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(chunk) {
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                if size > limit {
                    return Err(RevlogError::TooLarge { limit });
                }
                return bulk_zstd(chunk, size).map(Cow::Owned);
            }
            let decoder = zstd::stream::read::Decoder::with_buffer(chunk).map_err(|e| {
                RevlogError::Decompress {
                    what: "zstd",
                    reason: e.to_string(),
                }
            })?;
            Cow::Owned(read_limited(decoder, limit, "zstd")?)
        }
        other => return Err(RevlogError::Compression(other)),
    };
    if out.len() > limit {
        return Err(RevlogError::TooLarge { limit });
    }
    Ok(out)
}

thread_local! {
    static ZSTD: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses one zstd frame whose recorded size is `size` (already
/// checked against the limit) with this thread's reused context.
fn bulk_zstd(chunk: &[u8], size: usize) -> Result<Vec<u8>, RevlogError> {
    let fail = |reason: String| RevlogError::Decompress {
        what: "zstd",
        reason,
    };
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        let d = match &mut *slot {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new().map_err(|e| fail(e.to_string()))?),
        };
        let out = d.decompress(chunk, size).map_err(|e| fail(e.to_string()))?;
        if out.len() != size {
            return Err(fail(format!(
                "frame holds {} bytes, its header says {size}",
                out.len()
            )));
        }
        Ok(out)
    })
}

fn read_limited(
    reader: impl Read,
    limit: usize,
    what: &'static str,
) -> Result<Vec<u8>, RevlogError> {
    let mut out = Vec::new();
    reader
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| RevlogError::Decompress {
            what,
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(RevlogError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_header() {
        assert_eq!(&*decompress(b"", 10).unwrap(), b"");
        assert_eq!(&*decompress(b"\0abc", 10).unwrap(), b"\0abc");
        assert_eq!(&*decompress(b"uabc", 10).unwrap(), b"abc");
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"hello hello hello").unwrap();
        let z = z.finish().unwrap();
        assert_eq!(z[0], b'x');
        assert_eq!(&*decompress(&z, 100).unwrap(), b"hello hello hello");
        assert!(matches!(
            decompress(&z, 5),
            Err(RevlogError::TooLarge { .. })
        ));
        let zs = zstd::bulk::compress(b"zstd zstd zstd", 3).unwrap();
        assert_eq!(zs[0], b'(');
        assert_eq!(&*decompress(&zs, 100).unwrap(), b"zstd zstd zstd");
        assert!(matches!(
            decompress(b"q", 10),
            Err(RevlogError::Compression(b'q'))
        ));
        assert!(decompress(b"x\x01\x02", 10).is_err());
        assert!(decompress(b"(\x01\x02", 10).is_err());
    }
}
