//! Coalescing on the TUN's write side (GRO), the mirror of `offload::split`: the packets
//! the node delivers in one wake-up are collected, and consecutive TCP segments of one flow
//! become one super-packet behind a `virtio_net_hdr` (GSO_TCPV4/TCPV6, `gso_size` the
//! segments' payload size, NEEDS_CSUM), so the kernel's stack handles one big segment
//! instead of dozens. Everything else is written unchanged behind an all-zero header.
//!
//! The rules are those of the kernel's `tcp_gro_receive` (and wireguard-go's `tcpGRO`):
//! only ACK or ACK|PSH segments with data, IPv4 without options or fragments, IPv6 without
//! extension headers; every header field equal except lengths, checksums, the sequence
//! number (which must continue the previous segment) and the IPv4 id (which must count
//! up); all segments as long as the first except a shorter last one; PSH only on the last;
//! each segment's checksums verified (the kernel trusts a NEEDS_CSUM packet's data). So
//! cutting a super-packet back (`offload::split`) gives exactly the segments it was made
//! of. Only the latest write of a flow can grow, and any other packet between the same two
//! hosts closes their flows: nothing is reordered within a flow.
//!
//! Sans-IO and allocation-free after `new`: packets are delivered straight into an arena,
//! and a super-packet is handed out as slices of it (the first packet whole, then the
//! others' payloads) for one `writev`.

use super::offload::{
    fold, pseudo_header_sum, put16, put_csum, read2, read4, sum16, F_NEEDS_CSUM, GSO_TCPV4,
    GSO_TCPV6, IPPROTO_TCP, TCP_CSUM_OFFSET, TCP_PSH, VNET_HDR_LEN,
};

/// Most packets held at once: a flush drains at most this many before writing.
pub const MAX_PACKETS: usize = 64;
/// Most segments in one super-packet (also bounds the slices of one write).
pub const MAX_SEGMENTS: usize = 64;
/// Flows that can grow at once; a new one beyond closes the oldest.
const MAX_FLOWS: usize = 8;
/// Longest super-packet: an IPv4 total length (and, for IPv6, kept within the kernel's
/// 64 KiB GSO limit too).
const MAX_LEN: usize = 0xffff;
const TCP_ACK: u8 = 0x10;
/// `packets[i].next` of the last segment of a write.
const NONE: usize = usize::MAX;

/// One write for the TUN: a `virtio_net_hdr` and the slices that follow it.
#[derive(Debug)]
pub struct Coalesced<'a> {
    /// The header to write first: all zero for a packet passed through.
    pub vnet_hdr: [u8; VNET_HDR_LEN],
    /// The bytes after the header, in order (one slice for a packet passed through).
    pub parts: &'a [&'a [u8]],
    /// How many delivered packets this write holds.
    pub segments: usize,
}

/// The coalescer: fill with [`Gro::slot`] and [`Gro::push`], empty with [`Gro::drain`].
pub struct Gro {
    arena: Box<[u8]>,
    slot_len: usize,
    used: usize,
    packets: Vec<Packet>,
    writes: Vec<Write>,
    flows: [Option<Flow>; MAX_FLOWS],
    /// The flow slot a new flow takes when all are in use.
    evict: usize,
}

/// A delivered packet in the arena.
#[derive(Clone, Copy)]
struct Packet {
    start: usize,
    len: usize,
    /// The next segment of the same write, or `NONE`.
    next: usize,
}

/// One future write: a packet, or a super-packet being built.
#[derive(Clone, Copy)]
struct Write {
    first: usize,
    last: usize,
    segments: usize,
    /// Length of the IP packet it makes.
    len: usize,
    /// Set while TCP segments may still join.
    tcp: Option<Item>,
}

/// What a growing super-packet needs to know to take the next segment.
#[derive(Clone, Copy)]
struct Item {
    v6: bool,
    /// Where the TCP header starts.
    l4: usize,
    /// Where the data starts (IP and TCP headers).
    data: usize,
    /// The first segment's payload length: no later one may be longer.
    gso_size: usize,
    next_seq: u32,
    next_id: u16,
    /// A shorter or PSH segment came: nothing may follow.
    ended: bool,
    /// The first segment's checksums were verified (done when a second one comes).
    checked: bool,
    psh: bool,
}

/// The two hosts of an IP packet.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Pair {
    v6: bool,
    /// Source then destination (IPv4: the first 8 bytes).
    addrs: [u8; 32],
}

/// A TCP flow: two hosts and two ports.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    pair: Pair,
    ports: [u8; 4],
}

/// A flow whose latest write may still grow.
#[derive(Clone, Copy)]
struct Flow {
    key: FlowKey,
    write: usize,
}

/// A TCP segment that may be coalesced.
#[derive(Clone, Copy)]
struct Segment {
    v6: bool,
    l4: usize,
    data: usize,
    payload: usize,
    seq: u32,
    id: u16,
    psh: bool,
}

/// What a delivered packet is, as far as coalescing goes.
enum Kind {
    /// Not an IP packet this understands: passed through, touching no flow.
    Opaque,
    /// IP between two hosts but no TCP segment with ports (another protocol, a fragment,
    /// a length that disagrees): passed through, and closes those hosts' flows.
    Other(Pair),
    /// A TCP segment of a flow, with what coalescing needs if it may be coalesced.
    Tcp(FlowKey, Option<Segment>),
}

/// Whether a segment joined a super-packet.
enum Join {
    Joined,
    /// It does not continue the flow's write: it starts its own.
    No,
    /// Its checksums do not verify: it goes out alone, for the kernel to drop.
    Bad,
}

impl Gro {
    /// A coalescer whose [`slot`](Gro::slot)s are `slot_len` bytes (the longest packet the
    /// node delivers).
    pub fn new(slot_len: usize) -> Gro {
        Gro {
            arena: vec![0u8; MAX_PACKETS * slot_len].into_boxed_slice(),
            slot_len,
            used: 0,
            packets: Vec::with_capacity(MAX_PACKETS),
            writes: Vec::with_capacity(MAX_PACKETS),
            flows: [None; MAX_FLOWS],
            evict: 0,
        }
    }

    /// Where the next packet goes, or `None` when full: [`drain`](Gro::drain) first.
    pub fn slot(&mut self) -> Option<&mut [u8]> {
        if self.packets.len() >= MAX_PACKETS {
            return None;
        }
        let end = self.used.checked_add(self.slot_len)?;
        self.arena.get_mut(self.used..end)
    }

    /// Takes the packet of `len` bytes just written at the start of [`slot`](Gro::slot).
    pub fn push(&mut self, len: usize) {
        let start = self.used;
        let Some(packet) = self.arena.get(start..start.saturating_add(len)) else {
            return;
        };
        let kind = classify(packet);
        let index = self.packets.len();
        self.packets.push(Packet {
            start,
            len,
            next: NONE,
        });
        self.used += len;
        match kind {
            Kind::Opaque => self.add_write(index, None),
            Kind::Other(pair) => {
                self.close_pair(pair);
                self.add_write(index, None);
            }
            Kind::Tcp(key, segment) => self.push_tcp(index, key, segment),
        }
    }

    /// Hands every write to `out` in the order of its first packet, then empties.
    pub fn drain(&mut self, out: &mut dyn FnMut(&Coalesced<'_>)) {
        for i in 0..self.writes.len() {
            let Some(w) = self.writes.get(i).copied() else {
                continue;
            };
            let vnet_hdr = match w.tcp {
                Some(item) if w.segments > 1 => self.seal(&w, &item),
                _ => [0; VNET_HDR_LEN],
            };
            let mut parts: [&[u8]; MAX_SEGMENTS] = [&[]; MAX_SEGMENTS];
            let n = self.parts(&w, &mut parts);
            out(&Coalesced {
                vnet_hdr,
                parts: parts.get(..n).unwrap_or_default(),
                segments: w.segments,
            });
        }
        self.packets.clear();
        self.writes.clear();
        self.flows = [None; MAX_FLOWS];
        self.used = 0;
    }

    fn push_tcp(&mut self, index: usize, key: FlowKey, segment: Option<Segment>) {
        let slot = self
            .flows
            .iter()
            .position(|f| f.is_some_and(|f| f.key == key));
        let open = slot.and_then(|s| self.flows.get(s).copied().flatten());
        if let (Some(seg), Some(flow)) = (segment, open) {
            match self.join(flow.write, index, &seg) {
                Join::Joined => return,
                Join::No => {}
                Join::Bad => {
                    self.close(slot);
                    self.add_write(index, None);
                    return;
                }
            }
        }
        let Some(seg) = segment else {
            self.close(slot);
            self.add_write(index, None);
            return;
        };
        self.add_write(index, Some(Item::first(&seg)));
        let flow = Flow {
            key,
            write: self.writes.len() - 1,
        };
        let s = slot.unwrap_or_else(|| self.free_flow());
        if let Some(f) = self.flows.get_mut(s) {
            *f = Some(flow);
        }
    }

    /// A free flow slot, or the next one round-robin (its write just stops growing).
    fn free_flow(&mut self) -> usize {
        if let Some(s) = self.flows.iter().position(Option::is_none) {
            return s;
        }
        let s = self.evict;
        self.evict = (self.evict + 1) % MAX_FLOWS;
        s
    }

    fn close(&mut self, slot: Option<usize>) {
        if let Some(f) = slot.and_then(|s| self.flows.get_mut(s)) {
            *f = None;
        }
    }

    fn close_pair(&mut self, pair: Pair) {
        for f in &mut self.flows {
            if f.is_some_and(|f| f.key.pair == pair) {
                *f = None;
            }
        }
    }

    fn add_write(&mut self, index: usize, tcp: Option<Item>) {
        let len = self.packets.get(index).map_or(0, |p| p.len);
        self.writes.push(Write {
            first: index,
            last: index,
            segments: 1,
            len,
            tcp,
        });
    }

    /// Appends packet `index` to write `w` if it continues it.
    fn join(&mut self, w: usize, index: usize, seg: &Segment) -> Join {
        let Some(write) = self.writes.get(w).copied() else {
            return Join::No;
        };
        let Some(mut item) = write.tcp else {
            return Join::No;
        };
        let first = self.bytes(write.first);
        let new = self.bytes(index);
        if !fits(&write, &item, seg) || !same_headers(first, new, &item) {
            return Join::No;
        }
        if !item.checked {
            item.checked = true;
            if !checksums_ok(first, item.v6, item.l4) {
                item.ended = true;
                self.set_item(w, item);
                return Join::No;
            }
        }
        if !checksums_ok(new, seg.v6, seg.l4) {
            self.set_item(w, item);
            return Join::Bad;
        }
        item.next_seq = item.next_seq.wrapping_add(seg.payload as u32);
        item.next_id = item.next_id.wrapping_add(1);
        item.psh = seg.psh;
        item.ended = seg.psh || seg.payload < item.gso_size;
        if let Some(p) = self.packets.get_mut(write.last) {
            p.next = index;
        }
        if let Some(wr) = self.writes.get_mut(w) {
            wr.last = index;
            wr.segments += 1;
            wr.len += seg.payload;
            wr.tcp = Some(item);
        }
        Join::Joined
    }

    fn set_item(&mut self, w: usize, item: Item) {
        if let Some(wr) = self.writes.get_mut(w) {
            wr.tcp = Some(item);
        }
    }

    fn bytes(&self, index: usize) -> &[u8] {
        self.packets
            .get(index)
            .and_then(|p| self.arena.get(p.start..p.start + p.len))
            .unwrap_or_default()
    }

    /// Turns the first packet of a multi-segment write into the super-packet's headers
    /// and returns its `virtio_net_hdr`.
    fn seal(&mut self, w: &Write, item: &Item) -> [u8; VNET_HDR_LEN] {
        let Some(p) = self.packets.get(w.first).copied() else {
            return [0; VNET_HDR_LEN];
        };
        let Some(h) = self.arena.get_mut(p.start..p.start + item.data) else {
            return [0; VNET_HDR_LEN];
        };
        if item.v6 {
            put16(h, 4, (w.len - 40) as u16);
        } else {
            put16(h, 2, w.len as u16);
            put16(h, 10, 0);
            let sum = h.get(..item.l4).map_or(0, |b| sum16(b, 0));
            put_csum(h, 10, sum);
        }
        if item.psh {
            if let Some(flags) = h.get_mut(item.l4 + 13) {
                *flags |= TCP_PSH;
            }
        }
        // The kernel finishes the checksum from csum_start on: the field holds the
        // pseudo-header's sum, as its own TCP leaves it with CHECKSUM_PARTIAL.
        let pseudo = fold(pseudo_header_sum(h, item.v6, w.len - item.l4));
        put16(h, item.l4 + TCP_CSUM_OFFSET, pseudo);
        vnet_hdr(item)
    }

    /// Fills `parts` with the write's bytes: its first packet whole, then the payload of
    /// each later segment; returns how many.
    fn parts<'a>(&'a self, w: &Write, parts: &mut [&'a [u8]; MAX_SEGMENTS]) -> usize {
        let data = w.tcp.map_or(0, |item| item.data);
        let mut index = w.first;
        let mut n = 0;
        while let (Some(p), Some(slot)) = (self.packets.get(index), parts.get_mut(n)) {
            let from = if n == 0 { 0 } else { data };
            *slot = self
                .arena
                .get(p.start + from..p.start + p.len)
                .unwrap_or_default();
            n += 1;
            index = p.next;
        }
        n
    }
}

impl Item {
    fn first(seg: &Segment) -> Item {
        Item {
            v6: seg.v6,
            l4: seg.l4,
            data: seg.data,
            gso_size: seg.payload,
            next_seq: seg.seq.wrapping_add(seg.payload as u32),
            next_id: seg.id.wrapping_add(1),
            ended: seg.psh,
            checked: false,
            psh: seg.psh,
        }
    }
}

/// The `virtio_net_hdr` of a super-packet (host byte order, as the TUN expects).
fn vnet_hdr(item: &Item) -> [u8; VNET_HDR_LEN] {
    let mut h = [0u8; VNET_HDR_LEN];
    h[0] = F_NEEDS_CSUM;
    h[1] = if item.v6 { GSO_TCPV6 } else { GSO_TCPV4 };
    let fields = [item.data, item.gso_size, item.l4, TCP_CSUM_OFFSET];
    for (dst, v) in h[2..].chunks_exact_mut(2).zip(fields) {
        dst.copy_from_slice(&(v as u16).to_ne_bytes());
    }
    h
}

/// Whether `seg` continues the write in sequence, size and bounds.
fn fits(write: &Write, item: &Item, seg: &Segment) -> bool {
    !item.ended
        && seg.v6 == item.v6
        && seg.data == item.data
        && seg.seq == item.next_seq
        && (item.v6 || seg.id == item.next_id)
        && seg.payload <= item.gso_size
        && write.segments < MAX_SEGMENTS
        && write.len + seg.payload <= MAX_LEN
}

/// Whether two segments' headers agree in everything but the fields that differ between
/// consecutive segments (lengths, id, checksums, sequence number, PSH).
fn same_headers(a: &[u8], b: &[u8], item: &Item) -> bool {
    let ip: &[(usize, usize)] = if item.v6 {
        &[(0, 4), (6, 40)]
    } else {
        &[(0, 2), (6, 10), (12, 20)]
    };
    let l4 = item.l4;
    let tcp = [
        (l4, l4 + 4),
        (l4 + 8, l4 + 13),
        (l4 + 14, l4 + 16),
        (l4 + 18, item.data),
    ];
    ip.iter().chain(&tcp).all(
        |&(from, to)| matches!((a.get(from..to), b.get(from..to)), (Some(x), Some(y)) if x == y),
    )
}

/// Whether a segment's TCP checksum (and IPv4 header checksum) verify. A checksum field
/// of 0 that verifies is refused too: cut back, it would come out as the equivalent 0xffff,
/// and a super-packet must cut back into exactly its segments.
fn checksums_ok(p: &[u8], v6: bool, l4: usize) -> bool {
    let nonzero = |at: usize| read2(p, at).is_some_and(|f| f != [0, 0]);
    let ip_ok = v6 || (nonzero(10) && p.get(..l4).is_some_and(|h| fold(sum16(h, 0)) == 0xffff));
    let pseudo = pseudo_header_sum(p, v6, p.len().saturating_sub(l4));
    ip_ok
        && nonzero(l4 + TCP_CSUM_OFFSET)
        && p.get(l4..)
            .is_some_and(|t| fold(sum16(t, pseudo)) == 0xffff)
}

fn classify(p: &[u8]) -> Kind {
    match p.first().map(|b| b >> 4) {
        Some(4) => classify4(p),
        Some(6) => classify6(p),
        _ => Kind::Opaque,
    }
}

fn classify4(p: &[u8]) -> Kind {
    let Some(pair) = p.get(12..20).map(|a| Pair::new(false, a)) else {
        return Kind::Opaque;
    };
    let ihl = p.first().map_or(0, |b| usize::from(b & 0x0f) * 4);
    let fragment = read2(p, 6).is_some_and(|f| u16::from_be_bytes(f) & 0x3fff != 0);
    let total = read2(p, 2).map(|b| usize::from(u16::from_be_bytes(b)));
    if p.get(9) != Some(&IPPROTO_TCP) || fragment || ihl < 20 || total != Some(p.len()) {
        return Kind::Other(pair);
    }
    tcp(p, pair, ihl, ihl == 20)
}

fn classify6(p: &[u8]) -> Kind {
    let Some(pair) = p.get(8..40).map(|a| Pair::new(true, a)) else {
        return Kind::Opaque;
    };
    let payload = read2(p, 4).map(|b| usize::from(u16::from_be_bytes(b)));
    if p.get(6) != Some(&IPPROTO_TCP) || payload.map(|n| n + 40) != Some(p.len()) {
        return Kind::Other(pair);
    }
    tcp(p, pair, 40, true)
}

/// The TCP segment at `l4`; `plain_ip` when the IP header allows coalescing.
fn tcp(p: &[u8], pair: Pair, l4: usize, plain_ip: bool) -> Kind {
    let (Some(ports), Some(&offset), Some(&flags)) = (read4(p, l4), p.get(l4 + 12), p.get(l4 + 13))
    else {
        return Kind::Other(pair);
    };
    let data = l4 + usize::from(offset >> 4) * 4;
    if data < l4 + 20 || data > p.len() {
        return Kind::Other(pair);
    }
    let key = FlowKey { pair, ports };
    let candidate = plain_ip && flags & !TCP_PSH == TCP_ACK && data < p.len();
    let seq = read4(p, l4 + 4).map(u32::from_be_bytes);
    let id = read2(p, 4).map_or(0, u16::from_be_bytes);
    let segment = seq.filter(|_| candidate).map(|seq| Segment {
        v6: pair.v6,
        l4,
        data,
        payload: p.len() - data,
        seq,
        id,
        psh: flags & TCP_PSH != 0,
    });
    Kind::Tcp(key, segment)
}

impl Pair {
    fn new(v6: bool, a: &[u8]) -> Pair {
        let mut addrs = [0u8; 32];
        for (d, s) in addrs.iter_mut().zip(a) {
            *d = *s;
        }
        Pair { v6, addrs }
    }
}

#[cfg(test)]
#[path = "gro_tests.rs"]
mod tests;
