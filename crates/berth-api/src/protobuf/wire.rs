//! The protobuf wire format: a reader (varints, fixed 32/64-bit values and length-delimited
//! fields; rejects groups and truncated input; never panics) and writer helpers (tags, varints,
//! length-delimited fields whose length is patched in once known). Knows nothing about message
//! types.

use crate::ApiError;

/// The wire type of a field, from the low 3 bits of its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    /// 0: a varint.
    Varint,
    /// 1: 8 little-endian bytes.
    Fixed64,
    /// 2: a varint length then that many bytes.
    Len,
    /// 5: 4 little-endian bytes.
    Fixed32,
}

/// A cursor over one message's bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn truncated() -> ApiError {
    ApiError::bad_request("protobuf body is truncated")
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Reads a base-128 varint (at most 10 bytes).
    pub(crate) fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or_else(truncated)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ApiError::bad_request(
            "protobuf varint is longer than 10 bytes",
        ))
    }

    /// Reads the next tag, or `None` at the end of the message.
    pub(crate) fn tag(&mut self) -> Result<Option<(u32, WireType)>, ApiError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let t = self.varint()?;
        let num = t >> 3;
        if num == 0 || num > u64::from(u32::MAX >> 3) {
            return Err(ApiError::bad_request(format!(
                "protobuf field number {num} is invalid"
            )));
        }
        let wt = match t & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            5 => WireType::Fixed32,
            w => {
                return Err(ApiError::bad_request(format!(
                    "protobuf wire type {w} (group or invalid) is not supported"
                )));
            }
        };
        Ok(Some((num as u32, wt)))
    }

    /// Reads `n` raw bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8], ApiError> {
        let end = self.pos.checked_add(n).ok_or_else(truncated)?;
        let s = self.buf.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// Reads a length-delimited field's bytes.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], ApiError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| truncated())?;
        self.take(n)
    }

    /// True when the whole message has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Skips one value of wire type `wt`.
    pub(crate) fn skip(&mut self, wt: WireType) -> Result<(), ApiError> {
        match wt {
            WireType::Varint => self.varint().map(|_| ()),
            WireType::Fixed64 => self.take(8).map(|_| ()),
            WireType::Len => self.bytes().map(|_| ()),
            WireType::Fixed32 => self.take(4).map(|_| ()),
        }
    }
}

/// Appends `v` as a base-128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The number of bytes of `v` as a varint.
pub(crate) fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends the tag of field `num` with wire type `wt`.
pub(crate) fn put_tag(out: &mut Vec<u8>, num: u32, wt: WireType) {
    let t = match wt {
        WireType::Varint => 0,
        WireType::Fixed64 => 1,
        WireType::Len => 2,
        WireType::Fixed32 => 5,
    };
    put_varint(out, (u64::from(num) << 3) | t);
}

/// Appends field `num` as a varint.
pub(crate) fn put_varint_field(out: &mut Vec<u8>, num: u32, v: u64) {
    put_tag(out, num, WireType::Varint);
    put_varint(out, v);
}

/// Appends field `num` as length-delimited bytes.
pub(crate) fn put_bytes(out: &mut Vec<u8>, num: u32, b: &[u8]) {
    put_tag(out, num, WireType::Len);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// An open length-delimited field: its content is being appended and its length is written by
/// [`Open::close`].
pub(crate) struct Open {
    /// Where the field's tag starts (to drop an empty field).
    pub(crate) tag_at: usize,
    /// Where the one-byte length placeholder is.
    len_at: usize,
}

/// Starts length-delimited field `num`; append its content, then [`Open::close`] it.
pub(crate) fn open(out: &mut Vec<u8>, num: u32) -> Open {
    let tag_at = out.len();
    put_tag(out, num, WireType::Len);
    let len_at = out.len();
    out.push(0);
    Open { tag_at, len_at }
}

impl Open {
    /// Writes the length of the content appended since [`open`], moving the content when the
    /// length needs more than the one byte reserved.
    pub(crate) fn close(self, out: &mut Vec<u8>) {
        let content = self.len_at + 1;
        let len = out.len() - content;
        let n = varint_len(len as u64);
        if n > 1 {
            let end = out.len();
            out.resize(end + n - 1, 0);
            out.copy_within(content..end, content + n - 1);
        }
        let mut v = len as u64;
        for i in 0..n {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            out[self.len_at + i] = if i + 1 < n { b | 0x80 } else { b };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            assert_eq!(Reader::new(&out).varint().expect("varint"), v);
        }
    }

    #[test]
    fn open_fields_get_their_length_patched_in() {
        for len in [0usize, 1, 127, 128, 20_000] {
            let mut out = vec![0xaa];
            let o = open(&mut out, 2);
            out.extend(std::iter::repeat_n(7u8, len));
            o.close(&mut out);
            let mut r = Reader::new(&out[1..]);
            assert_eq!(r.tag().expect("tag"), Some((2, WireType::Len)));
            assert_eq!(r.bytes().expect("bytes"), vec![7u8; len].as_slice());
            assert!(r.is_empty());
        }
    }
}
