//! Bounds-checked big-endian cursors: every read or write that does not fit is an error.

use super::Error;

/// A read cursor over untrusted bytes; no read can go past the end.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next `n` bytes, or `Truncated` (consuming nothing) if fewer remain.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(Error::Truncated)?;
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes as a fixed-size array reference.
    pub fn array<const N: usize>(&mut self) -> Result<&'a [u8; N], Error> {
        let (head, tail) = self.rest.split_first_chunk::<N>().ok_or(Error::Truncated)?;
        self.rest = tail;
        Ok(head)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, Error> {
        self.array::<1>().map(|b| b[0])
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> Result<u16, Error> {
        self.array().map(|b| u16::from_be_bytes(*b))
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, Error> {
        self.array().map(|b| u32::from_be_bytes(*b))
    }

    /// A big-endian u64.
    pub fn u64(&mut self) -> Result<u64, Error> {
        self.array().map(|b| u64::from_be_bytes(*b))
    }

    /// Everything not read yet; the reader is empty afterwards.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.rest)
    }

    /// `TrailingBytes` unless every byte has been read.
    pub fn expect_empty(&self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes)
        }
    }
}

/// A write cursor over a caller's buffer; a write that does not fit is `NoSpace`.
///
/// A failed write writes nothing, but earlier writes stay: callers that must not leave a
/// partial record check [`Writer::remaining`] first.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer positioned at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Claim the next `n` bytes for the caller to fill (zero-copy), or `NoSpace`.
    pub fn reserve(&mut self, n: usize) -> Result<&mut [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::NoSpace)?;
        let dst = self.buf.get_mut(self.pos..end).ok_or(Error::NoSpace)?;
        self.pos = end;
        Ok(dst)
    }

    /// Copy `bytes` in.
    pub fn bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.reserve(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Write `n` zero bytes.
    pub fn zeros(&mut self, n: usize) -> Result<(), Error> {
        self.reserve(n)?.fill(0);
        Ok(())
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> Result<(), Error> {
        self.bytes(&[v])
    }

    /// A big-endian u16.
    pub fn u16(&mut self, v: u16) -> Result<(), Error> {
        self.bytes(&v.to_be_bytes())
    }

    /// A big-endian u32.
    pub fn u32(&mut self, v: u32) -> Result<(), Error> {
        self.bytes(&v.to_be_bytes())
    }

    /// A big-endian u64.
    pub fn u64(&mut self, v: u64) -> Result<(), Error> {
        self.bytes(&v.to_be_bytes())
    }

    /// The unwritten tail of the buffer, without claiming it.
    pub fn unwritten_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.pos..).unwrap_or_default()
    }

    /// Give back the whole buffer and the number of bytes written.
    pub fn into_inner(self) -> (&'a mut [u8], usize) {
        (self.buf, self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reads_big_endian_and_rejects_over_reads() {
        let buf = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0405_0607));
        assert_eq!(r.u64(), Err(Error::Truncated));
        assert_eq!(r.remaining(), 7, "a failed read consumes nothing");
        assert_eq!(r.array::<2>(), Ok(&[8, 9]));
        assert_eq!(r.expect_empty(), Err(Error::TrailingBytes));
        assert_eq!(r.take(6), Err(Error::Truncated));
        assert_eq!(r.take(2), Ok(&[10, 11][..]));
        assert_eq!(r.rest(), &[12, 13, 14]);
        assert!(r.is_empty());
        assert_eq!(r.expect_empty(), Ok(()));
        assert_eq!(r.u8(), Err(Error::Truncated));
        assert_eq!(Reader::new(&buf).take(usize::MAX), Err(Error::Truncated));
    }

    #[test]
    fn writer_fills_exactly_then_refuses() {
        let mut buf = [0xAAu8; 14];
        let mut w = Writer::new(&mut buf);
        w.u8(1).unwrap();
        w.u16(0x0203).unwrap();
        w.u32(0x0405_0607).unwrap();
        assert_eq!(w.u64(9), Err(Error::NoSpace));
        assert_eq!(w.len(), 7, "a failed write writes nothing");
        w.zeros(2).unwrap();
        assert_eq!(w.reserve(usize::MAX), Err(Error::NoSpace));
        assert_eq!(w.unwritten_mut().len(), 5);
        w.bytes(&[5; 5]).unwrap();
        assert_eq!(w.remaining(), 0);
        assert_eq!(w.u8(0), Err(Error::NoSpace));
        let (_, n) = w.into_inner();
        assert_eq!(n, 14);
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 0, 0, 5, 5, 5, 5, 5]);
    }
}
