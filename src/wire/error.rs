//! Why a frame or message was rejected, or why an emit did not fit.

/// Every reason the wire layer rejects input or refuses to build output.
///
/// The node counts drops by [`Error::as_str`] (or [`Error::index`] into a fixed array), so
/// each variant is one stable, countable reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended inside a header, field or message body.
    #[error("truncated input")]
    Truncated,
    /// A reader was expected to be exhausted but bytes were left.
    #[error("trailing bytes")]
    TrailingBytes,
    /// The version nibble of a frame is not [`super::VERSION`].
    #[error("bad protocol version {0}")]
    BadVersion(u8),
    /// The type nibble of a frame is not a known frame type (carries the whole first byte).
    #[error("unknown frame type {0:#04x}")]
    UnknownFrameType(u8),
    /// A frame's length is impossible for its type (e.g. unicast not exactly
    /// `UNICAST_FRAME_LEN`, encrypted frame shorter than header + tag, anything longer
    /// than `MAX_FRAME_LEN`), or an emit was asked to build such a frame.
    #[error("bad frame length {0}")]
    BadFrameLength(usize),
    /// A session index breaks the rules of its frame type (zero sender index, non-zero
    /// receiver index in a HandshakeInit, zero receiver index elsewhere).
    #[error("bad session index")]
    BadIndex,
    /// A message type byte is not a known message type.
    #[error("unknown message type {0:#04x}")]
    UnknownMessageType(u8),
    /// A message body length is wrong for its type (fixed-size body of the wrong size, IHU
    /// not a multiple of the entry size, Data shorter than its header), or too long to encode.
    #[error("bad length {len} for message type {msg_type:#04x}")]
    BadMessageLength {
        /// The message type byte.
        msg_type: u8,
        /// The body length found or requested.
        len: usize,
    },
    /// A byte after a Pad message is not zero.
    #[error("non-zero padding")]
    NonZeroPadding,
    /// The caller's buffer is too small for what was to be emitted; nothing was written.
    #[error("no space in output buffer")]
    NoSpace,
}

impl Error {
    /// Number of distinct reasons: the length of a counter array indexed by [`Error::index`].
    pub const COUNT: usize = 10;

    /// Stable snake_case names, in [`Error::index`] order.
    pub const NAMES: [&'static str; Self::COUNT] = [
        "truncated",
        "trailing_bytes",
        "bad_version",
        "unknown_frame_type",
        "bad_frame_length",
        "bad_index",
        "unknown_message_type",
        "bad_message_length",
        "non_zero_padding",
        "no_space",
    ];

    /// Dense index of this reason, `< Error::COUNT`, stable across releases of one version.
    pub const fn index(&self) -> usize {
        match self {
            Error::Truncated => 0,
            Error::TrailingBytes => 1,
            Error::BadVersion(_) => 2,
            Error::UnknownFrameType(_) => 3,
            Error::BadFrameLength(_) => 4,
            Error::BadIndex => 5,
            Error::UnknownMessageType(_) => 6,
            Error::BadMessageLength { .. } => 7,
            Error::NonZeroPadding => 8,
            Error::NoSpace => 9,
        }
    }

    /// Stable name of this reason without its payload, for drop counters and logs.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::TrailingBytes => "trailing_bytes",
            Error::BadVersion(_) => "bad_version",
            Error::UnknownFrameType(_) => "unknown_frame_type",
            Error::BadFrameLength(_) => "bad_frame_length",
            Error::BadIndex => "bad_index",
            Error::UnknownMessageType(_) => "unknown_message_type",
            Error::BadMessageLength { .. } => "bad_message_length",
            Error::NonZeroPadding => "non_zero_padding",
            Error::NoSpace => "no_space",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indexed() {
        let all = [
            Error::Truncated,
            Error::TrailingBytes,
            Error::BadVersion(2),
            Error::UnknownFrameType(0x1f),
            Error::BadFrameLength(7),
            Error::BadIndex,
            Error::UnknownMessageType(0x42),
            Error::BadMessageLength {
                msg_type: 1,
                len: 3,
            },
            Error::NonZeroPadding,
            Error::NoSpace,
        ];
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(e.as_str(), Error::NAMES[i]);
        }
        let mut names = Error::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Error::COUNT);
        assert_eq!(Error::BadVersion(3).to_string(), "bad protocol version 3");
    }
}
