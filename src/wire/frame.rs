//! Frames: the bytes after the Ethernet header (docs/protocol.md §1).
//!
//! Parsing borrows the input; building writes into the caller's buffer and returns the
//! frame length. Encrypted frames are built and sealed in place: write the header with
//! [`emit_encrypted_header`], the messages into [`plaintext_area_mut`], then seal the parts
//! returned by [`split_encrypted_mut`].

use super::codec::{Reader, Writer};
use super::{
    Error, HelloRepr, ENCRYPTED_HEADER_LEN, MAX_FRAME_LEN, TAG_LEN, UNICAST_FRAME_LEN, VERSION,
};

const TYPE_HELLO: u8 = VERSION << 4 | 0x1;
const TYPE_HANDSHAKE_INIT: u8 = VERSION << 4 | 0x2;
const TYPE_HANDSHAKE_RESP: u8 = VERSION << 4 | 0x3;
const TYPE_HANDSHAKE_FINISH: u8 = VERSION << 4 | 0x4;
const TYPE_UNICAST: u8 = VERSION << 4 | 0x5;
const TYPE_BROADCAST: u8 = VERSION << 4 | 0x6;

/// Smallest Ethernet payload; wired NICs pad shorter frames with bytes we must ignore.
pub const MIN_FRAME_LEN: usize = 46;
/// Length of the PSK tag that ends every clear frame (hello, handshake): docs/protocol.md §3.5.
pub const FRAME_TAG_LEN: usize = 16;
/// Length of a clear hello before its tag.
pub const CLEAR_HELLO_BODY_LEN: usize = 6;
/// Length of a clear hello frame (longer received frames carry link padding, ignored).
pub const HELLO_FRAME_LEN: usize = CLEAR_HELLO_BODY_LEN + FRAME_TAG_LEN;
/// Handshake header: type, sender idx, receiver idx, Noise message length.
pub const HANDSHAKE_HEADER_LEN: usize = 11;
/// Longest Noise message a handshake frame can carry (header and tag around it).
pub const MAX_NOISE_LEN: usize = MAX_FRAME_LEN - HANDSHAKE_HEADER_LEN - FRAME_TAG_LEN;
/// Shortest encrypted frame: header and tag around an empty ciphertext.
pub const MIN_ENCRYPTED_FRAME_LEN: usize = ENCRYPTED_HEADER_LEN + TAG_LEN;
/// Largest plaintext of a broadcast frame.
pub const MAX_BROADCAST_PLAINTEXT_LEN: usize = MAX_FRAME_LEN - MIN_ENCRYPTED_FRAME_LEN;
/// The lengths a broadcast frame is sent with (after the Ethernet header): senders pad the
/// plaintext to the first that fits, so an eavesdropper learns which of five size classes
/// a broadcast is in, not what it says. The smallest holds a Hello with Ihu for up to 3
/// neighbours, a ProbeAck or a SeqnoRequest — so a probe answer, which data traffic
/// triggers, looks like a hello; the next one OGM (or a hello with up to 5 neighbours);
/// then a hello with up to 11 neighbours or two OGMs; then an OGM with its announcement or
/// up to 4 OGMs. Every one is at least `MIN_FRAME_LEN`, so no NIC pads a broadcast (which
/// would move its tag). Five classes rather than one keep the hellos and OGMs of quiet and
/// of dense meshes within their idle budgets.
pub const BROADCAST_FRAME_LENS: [usize; 5] = [64, 80, 128, 256, MAX_FRAME_LEN];
const _: () = assert!(BROADCAST_FRAME_LENS[0] >= MIN_FRAME_LEN);

/// The plaintext length a broadcast carrying `len` bytes of messages is padded to: the
/// first size class that holds it (`len` itself past the largest, which no writer allows).
pub fn broadcast_plaintext_len(len: usize) -> usize {
    BROADCAST_FRAME_LENS
        .iter()
        .map(|frame| frame - MIN_ENCRYPTED_FRAME_LEN)
        .find(|&plaintext| plaintext >= len)
        .unwrap_or(len)
}
/// ChaCha20-Poly1305 nonce length.
pub const NONCE_LEN: usize = 12;

/// Which of the three handshake messages a handshake frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeKind {
    /// First message, initiator → responder (receiver idx is 0).
    Init,
    /// Second message, responder → initiator.
    Resp,
    /// Third message, initiator → responder.
    Finish,
}

impl HandshakeKind {
    /// The frame's first byte.
    pub const fn type_byte(self) -> u8 {
        match self {
            HandshakeKind::Init => TYPE_HANDSHAKE_INIT,
            HandshakeKind::Resp => TYPE_HANDSHAKE_RESP,
            HandshakeKind::Finish => TYPE_HANDSHAKE_FINISH,
        }
    }

    /// Whether `receiver_idx` is allowed: 0 exactly in an Init.
    const fn receiver_ok(self, receiver_idx: u32) -> bool {
        matches!(self, HandshakeKind::Init) == (receiver_idx == 0)
    }
}

/// Which key an encrypted frame is sealed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncryptedKind {
    /// Link session to one neighbour; always `UNICAST_FRAME_LEN` bytes.
    Unicast,
    /// The sender's group key; variable length.
    Broadcast,
}

impl EncryptedKind {
    /// The frame's first byte.
    pub const fn type_byte(self) -> u8 {
        match self {
            EncryptedKind::Unicast => TYPE_UNICAST,
            EncryptedKind::Broadcast => TYPE_BROADCAST,
        }
    }
}

/// The bytes a clear frame's PSK tag covers, and the tag (checked by the node, which holds
/// the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagParts<'a> {
    /// Everything before the tag.
    pub covered: &'a [u8],
    /// The tag.
    pub tag: &'a [u8; FRAME_TAG_LEN],
}

/// A parsed frame, borrowing the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A clear neighbour-discovery hello.
    Hello {
        /// Sequence number and interval.
        hello: HelloRepr,
        /// What the PSK tag covers, and the tag.
        tag: TagParts<'a>,
    },
    /// A clear handshake message.
    Handshake {
        /// Which handshake message.
        kind: HandshakeKind,
        /// Sender's session index (never 0).
        sender_idx: u32,
        /// Receiver's session index (0 exactly in an Init).
        receiver_idx: u32,
        /// The Noise message.
        noise: &'a [u8],
        /// What the PSK tag covers, and the tag.
        tag: TagParts<'a>,
    },
    /// A link-session encrypted frame.
    Unicast(EncryptedFrame<'a>),
    /// A group-key encrypted frame.
    Broadcast(EncryptedFrame<'a>),
}

impl<'a> Frame<'a> {
    /// Parse everything after the Ethernet header. Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_FRAME_LEN {
            return Err(Error::BadFrameLength(bytes.len()));
        }
        let mut r = Reader::new(bytes);
        let first = r.u8()?;
        if first >> 4 != VERSION {
            return Err(Error::BadVersion(first >> 4));
        }
        match first {
            TYPE_HELLO => {
                let _flags = r.u8()?;
                let seq = r.u16()?;
                let interval_10ms = r.u16()?;
                let tag = tag_parts(bytes, CLEAR_HELLO_BODY_LEN)?;
                let hello = HelloRepr { seq, interval_10ms };
                Ok(Frame::Hello { hello, tag })
            }
            TYPE_HANDSHAKE_INIT => parse_handshake(HandshakeKind::Init, bytes, r),
            TYPE_HANDSHAKE_RESP => parse_handshake(HandshakeKind::Resp, bytes, r),
            TYPE_HANDSHAKE_FINISH => parse_handshake(HandshakeKind::Finish, bytes, r),
            TYPE_UNICAST => {
                EncryptedFrame::parse(EncryptedKind::Unicast, bytes).map(Frame::Unicast)
            }
            TYPE_BROADCAST => {
                EncryptedFrame::parse(EncryptedKind::Broadcast, bytes).map(Frame::Broadcast)
            }
            _ => Err(Error::UnknownFrameType(first)),
        }
    }
}

fn parse_handshake<'a>(
    kind: HandshakeKind,
    bytes: &'a [u8],
    mut r: Reader<'a>,
) -> Result<Frame<'a>, Error> {
    let sender_idx = r.u32()?;
    let receiver_idx = r.u32()?;
    let noise_len = usize::from(r.u16()?);
    let noise = r.take(noise_len)?;
    // Bytes after the tag are link-layer padding: ignored.
    let tag = tag_parts(bytes, HANDSHAKE_HEADER_LEN + noise_len)?;
    if sender_idx == 0 || !kind.receiver_ok(receiver_idx) {
        return Err(Error::BadIndex);
    }
    Ok(Frame::Handshake {
        kind,
        sender_idx,
        receiver_idx,
        noise,
        tag,
    })
}

/// The first `covered` bytes of `bytes` and the tag right after them.
fn tag_parts(bytes: &[u8], covered: usize) -> Result<TagParts<'_>, Error> {
    let (covered, rest) = bytes.split_at_checked(covered).ok_or(Error::Truncated)?;
    let tag = rest
        .first_chunk::<FRAME_TAG_LEN>()
        .ok_or(Error::Truncated)?;
    Ok(TagParts { covered, tag })
}

/// Where the PSK tag of a clear frame of `len` bytes goes (its last `FRAME_TAG_LEN`
/// bytes), and the bytes it covers before it. `None` if `len` is too short or too long.
pub fn split_tag_mut(buf: &mut [u8], len: usize) -> Option<(&[u8], &mut [u8; FRAME_TAG_LEN])> {
    let frame = buf.get_mut(..len)?;
    let at = len.checked_sub(FRAME_TAG_LEN)?;
    let (covered, tag) = frame.split_at_mut(at);
    Some((covered, tag.try_into().ok()?))
}

/// An encrypted frame, split into its authenticated header, ciphertext and tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptedFrame<'a> {
    kind: EncryptedKind,
    header: &'a [u8; ENCRYPTED_HEADER_LEN],
    index_or_key_id: u32,
    counter: u64,
    ciphertext: &'a [u8],
    tag: &'a [u8; TAG_LEN],
}

impl<'a> EncryptedFrame<'a> {
    fn parse(kind: EncryptedKind, bytes: &'a [u8]) -> Result<Self, Error> {
        let bad_len = Error::BadFrameLength(bytes.len());
        if kind == EncryptedKind::Unicast && bytes.len() != UNICAST_FRAME_LEN {
            return Err(bad_len);
        }
        let (header, rest) = bytes.split_first_chunk().ok_or(bad_len)?;
        let (ciphertext, tag) = rest.split_last_chunk().ok_or(bad_len)?;
        let mut r = Reader::new(header);
        r.u8()?;
        let index_or_key_id = r.u32()?;
        let counter = r.u64()?;
        if kind == EncryptedKind::Unicast && index_or_key_id == 0 {
            return Err(Error::BadIndex);
        }
        Ok(EncryptedFrame {
            kind,
            header,
            index_or_key_id,
            counter,
            ciphertext,
            tag,
        })
    }

    /// Unicast or broadcast.
    pub fn kind(&self) -> EncryptedKind {
        self.kind
    }

    /// The header bytes: the associated data of the AEAD.
    pub fn header(&self) -> &'a [u8; ENCRYPTED_HEADER_LEN] {
        self.header
    }

    /// Receiver's session index (unicast) or the sender's group key id (broadcast).
    pub fn index_or_key_id(&self) -> u32 {
        self.index_or_key_id
    }

    /// The sender's per-key frame counter (the nonce).
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// The ciphertext without the tag.
    pub fn ciphertext(&self) -> &'a [u8] {
        self.ciphertext
    }

    /// The Poly1305 tag.
    pub fn tag(&self) -> &'a [u8; TAG_LEN] {
        self.tag
    }
}

/// The AEAD nonce for a frame counter: four zero bytes, then the counter little-endian.
pub fn nonce(counter: u64) -> [u8; NONCE_LEN] {
    let c = counter.to_le_bytes();
    [0, 0, 0, 0, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]
}

/// Build a clear hello frame with a zero tag (the node seals it: [`split_tag_mut`]);
/// returns `HELLO_FRAME_LEN`.
pub fn emit_hello(repr: &HelloRepr, buf: &mut [u8]) -> Result<usize, Error> {
    let mut w = Writer::new(buf.get_mut(..HELLO_FRAME_LEN).ok_or(Error::NoSpace)?);
    w.u8(TYPE_HELLO)?;
    w.u8(0)?;
    w.u16(repr.seq)?;
    w.u16(repr.interval_10ms)?;
    w.bytes(&[0; FRAME_TAG_LEN])?;
    Ok(HELLO_FRAME_LEN)
}

/// Where the Noise message goes in a handshake frame buffer: write it here, then call
/// [`emit_handshake_header`] with its length. Empty if `buf` cannot hold a header.
pub fn handshake_noise_mut(buf: &mut [u8]) -> &mut [u8] {
    // Room is left for the tag after the Noise message.
    let end = buf.len().min(MAX_FRAME_LEN).saturating_sub(FRAME_TAG_LEN);
    buf.get_mut(HANDSHAKE_HEADER_LEN..end).unwrap_or_default()
}

/// Write the header of a handshake frame whose `noise_len`-byte Noise message is already
/// in place (see [`handshake_noise_mut`]), and a zero tag after it (the node seals it:
/// [`split_tag_mut`]); returns the frame length.
pub fn emit_handshake_header(
    kind: HandshakeKind,
    sender_idx: u32,
    receiver_idx: u32,
    noise_len: usize,
    buf: &mut [u8],
) -> Result<usize, Error> {
    let len = check_handshake(kind, sender_idx, receiver_idx, noise_len, buf.len())?;
    let mut w = Writer::new(buf);
    w.u8(kind.type_byte())?;
    w.u32(sender_idx)?;
    w.u32(receiver_idx)?;
    w.u16(u16::try_from(noise_len).map_err(|_| Error::BadFrameLength(len))?)?;
    let (_, tag) = split_tag_mut(buf, len).ok_or(Error::NoSpace)?;
    *tag = [0; FRAME_TAG_LEN];
    Ok(len)
}

/// Build a whole handshake frame, copying `noise`; returns the frame length.
pub fn emit_handshake(
    kind: HandshakeKind,
    sender_idx: u32,
    receiver_idx: u32,
    noise: &[u8],
    buf: &mut [u8],
) -> Result<usize, Error> {
    check_handshake(kind, sender_idx, receiver_idx, noise.len(), buf.len())?;
    let dst = handshake_noise_mut(buf);
    dst.get_mut(..noise.len())
        .ok_or(Error::NoSpace)?
        .copy_from_slice(noise);
    emit_handshake_header(kind, sender_idx, receiver_idx, noise.len(), buf)
}

fn check_handshake(
    kind: HandshakeKind,
    sender_idx: u32,
    receiver_idx: u32,
    noise_len: usize,
    buf_len: usize,
) -> Result<usize, Error> {
    if sender_idx == 0 || !kind.receiver_ok(receiver_idx) {
        return Err(Error::BadIndex);
    }
    let len = (HANDSHAKE_HEADER_LEN + FRAME_TAG_LEN).saturating_add(noise_len);
    if noise_len > MAX_NOISE_LEN {
        return Err(Error::BadFrameLength(len));
    }
    if buf_len < len {
        return Err(Error::NoSpace);
    }
    Ok(len)
}

/// Write the header of an encrypted frame; returns `ENCRYPTED_HEADER_LEN`.
pub fn emit_encrypted_header(
    kind: EncryptedKind,
    index_or_key_id: u32,
    counter: u64,
    buf: &mut [u8],
) -> Result<usize, Error> {
    if kind == EncryptedKind::Unicast && index_or_key_id == 0 {
        return Err(Error::BadIndex);
    }
    let mut w = Writer::new(buf.get_mut(..ENCRYPTED_HEADER_LEN).ok_or(Error::NoSpace)?);
    w.u8(kind.type_byte())?;
    w.u32(index_or_key_id)?;
    w.u64(counter)?;
    Ok(ENCRYPTED_HEADER_LEN)
}

/// Length of an encrypted frame carrying `plaintext_len` bytes.
pub const fn encrypted_frame_len(plaintext_len: usize) -> usize {
    MIN_ENCRYPTED_FRAME_LEN.saturating_add(plaintext_len)
}

/// The plaintext area of an encrypted frame being built in `buf`: exactly
/// `UNICAST_PLAINTEXT_LEN` bytes for unicast, up to `MAX_BROADCAST_PLAINTEXT_LEN` (less if
/// `buf` is shorter) for broadcast.
pub fn plaintext_area_mut(kind: EncryptedKind, buf: &mut [u8]) -> Result<&mut [u8], Error> {
    let frame_len = match kind {
        EncryptedKind::Unicast => UNICAST_FRAME_LEN,
        EncryptedKind::Broadcast => buf.len().min(MAX_FRAME_LEN),
    };
    if buf.len() < frame_len {
        return Err(Error::NoSpace);
    }
    let end = frame_len.checked_sub(TAG_LEN).ok_or(Error::NoSpace)?;
    let area = buf
        .get_mut(ENCRYPTED_HEADER_LEN..end)
        .ok_or(Error::NoSpace)?;
    Ok(area)
}

/// The three parts of a whole encrypted frame buffer, for sealing or opening in place.
#[derive(Debug)]
pub struct EncryptedParts<'a> {
    /// The header: associated data.
    pub header: &'a [u8; ENCRYPTED_HEADER_LEN],
    /// Plaintext to seal, or ciphertext to open, in place.
    pub body: &'a mut [u8],
    /// Where the tag goes (seal) or is read from (open).
    pub tag: &'a mut [u8; TAG_LEN],
}

/// Split a whole encrypted frame (`frame` is exactly the frame, header to tag) into its
/// parts. Checks only the length (`MIN_ENCRYPTED_FRAME_LEN..=MAX_FRAME_LEN`).
pub fn split_encrypted_mut(frame: &mut [u8]) -> Result<EncryptedParts<'_>, Error> {
    let len = frame.len();
    if len > MAX_FRAME_LEN {
        return Err(Error::BadFrameLength(len));
    }
    let (header, rest) = frame
        .split_first_chunk_mut()
        .ok_or(Error::BadFrameLength(len))?;
    let (body, tag) = rest
        .split_last_chunk_mut()
        .ok_or(Error::BadFrameLength(len))?;
    Ok(EncryptedParts { header, body, tag })
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
