//! Unsigned LEB128, the only integer encoding in canonical objects.
//!
//! Seven bits a byte, least significant group first, the high bit set on
//! every byte but the last. The decoder rejects overlong forms (a final
//! `0x00` byte after the first) and values past `u64::MAX`, so each number has
//! exactly one encoding.

/// Why a LEB128 number could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Leb128Error {
    /// The input ended inside the number.
    #[error("truncated LEB128 number")]
    Truncated,
    /// The number carries a redundant trailing zero group.
    #[error("overlong LEB128 number")]
    Overlong,
    /// The number does not fit in 64 bits.
    #[error("LEB128 number exceeds 64 bits")]
    Overflow,
}

/// Appends the encoding of `value` to `out`.
pub fn write(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The encoding of `value` in a small fixed buffer, and its length.
pub fn encode(value: u64) -> ([u8; 10], usize) {
    let mut buf = [0u8; 10];
    let mut v = value;
    let mut n = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf[n] = byte;
            return (buf, n + 1);
        }
        buf[n] = byte | 0x80;
        n += 1;
    }
}

/// Reads one number from the front of `input`; returns it and the bytes used.
pub fn read(input: &[u8]) -> Result<(u64, usize), Leb128Error> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate() {
        let group = u64::from(byte & 0x7f);
        if i == 9 && byte > 0x01 {
            // The tenth byte may hold only the top bit of a u64.
            return Err(Leb128Error::Overflow);
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(Leb128Error::Overlong);
            }
            return Ok((value, i + 1));
        }
    }
    Err(Leb128Error::Truncated)
}

/// Maps a signed number onto an unsigned one, small magnitudes first
/// (0, -1, 1, -2, …), so that it can be written as LEB128.
pub const fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub const fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let mut v = Vec::new();
        write(&mut v, 0);
        write(&mut v, 127);
        write(&mut v, 128);
        write(&mut v, 300);
        assert_eq!(v, [0x00, 0x7f, 0x80, 0x01, 0xac, 0x02]);
        let mut max = Vec::new();
        write(&mut max, u64::MAX);
        assert_eq!(max.len(), 10);
        assert_eq!(read(&max), Ok((u64::MAX, 10)));
    }

    #[test]
    fn rejects_non_canonical() {
        assert_eq!(read(&[0x80, 0x00]), Err(Leb128Error::Overlong));
        assert_eq!(read(&[0xff, 0x80, 0x00]), Err(Leb128Error::Overlong));
        assert_eq!(read(&[0x80]), Err(Leb128Error::Truncated));
        assert_eq!(read(&[]), Err(Leb128Error::Truncated));
        let mut too_big = [0xffu8; 10];
        too_big[9] = 0x02;
        assert_eq!(read(&too_big), Err(Leb128Error::Overflow));
        assert_eq!(read(&[0xff; 11]), Err(Leb128Error::Overflow));
    }

    proptest! {
        #[test]
        fn round_trip(n: u64) {
            let mut v = Vec::new();
            write(&mut v, n);
            let (buf, len) = encode(n);
            prop_assert_eq!(&buf[..len], &v[..]);
            prop_assert_eq!(read(&v), Ok((n, v.len())));
        }

        #[test]
        fn zigzag_round_trip(n: i64) {
            prop_assert_eq!(unzigzag(zigzag(n)), n);
        }
    }
}
