//! The protobuf wire-format reader: varints, fixed 32/64-bit values and length-delimited fields.
//! Rejects groups and truncated input; never panics. Knows nothing about message types.

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
