//! What the medium counts per node: frames and bytes by class, receptions, drops.

/// Kind of a frame by its first byte after the Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameClass {
    /// 0x11 clear hello.
    Hello = 0,
    /// 0x12–0x14 handshake.
    Handshake = 1,
    /// 0x15 session unicast (data or control).
    Unicast = 2,
    /// 0x16 group-key broadcast (control).
    Broadcast = 3,
    /// Anything else (counted, not expected).
    Other = 4,
}

/// Number of `FrameClass` values.
pub const FRAME_CLASSES: usize = 5;

impl FrameClass {
    /// Classifies a frame (bytes after the Ethernet header).
    pub fn of(frame: &[u8]) -> FrameClass {
        match frame.first() {
            Some(0x11) => FrameClass::Hello,
            Some(0x12..=0x14) => FrameClass::Handshake,
            Some(0x15) => FrameClass::Unicast,
            Some(0x16) => FrameClass::Broadcast,
            _ => FrameClass::Other,
        }
    }

    /// Whether every frame of this class is routing/link control.
    pub fn is_control(self) -> bool {
        matches!(
            self,
            FrameClass::Hello | FrameClass::Handshake | FrameClass::Broadcast
        )
    }
}

/// Per-node traffic counters kept by the medium (bytes include the 14-byte Ethernet header).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeCounters {
    /// Frames sent, indexed by `FrameClass as usize`.
    pub sent_frames: [u64; FRAME_CLASSES],
    /// Bytes sent, indexed by `FrameClass as usize`.
    pub sent_bytes: [u64; FRAME_CLASSES],
    /// Frames that reached this node over the air.
    pub rx_frames: u64,
    /// Bytes that reached this node over the air.
    pub rx_bytes: u64,
    /// Frames to this node (or broadcasts in its range) lost on the link.
    pub rx_lost: u64,
    /// Frames dropped because this node's transmit backlog exceeded `max_backlog`.
    pub tx_queue_drops: u64,
    /// Unicasts sent to a MAC with no live link from this node.
    pub tx_unreachable: u64,
}

impl NodeCounters {
    /// Bytes of frames whose class is always control.
    pub fn control_bytes(&self) -> u64 {
        [
            FrameClass::Hello,
            FrameClass::Handshake,
            FrameClass::Broadcast,
        ]
        .iter()
        .map(|c| self.sent_bytes[*c as usize])
        .sum()
    }

    /// All bytes sent.
    pub fn total_sent_bytes(&self) -> u64 {
        self.sent_bytes.iter().sum()
    }

    /// All frames sent.
    pub fn total_sent_frames(&self) -> u64 {
        self.sent_frames.iter().sum()
    }
}
