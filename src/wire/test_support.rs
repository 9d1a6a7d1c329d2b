//! Proptest strategies shared by the wire tests: owned messages to build and compare.

use proptest::prelude::*;

use super::{
    GroupKeyRepr, HelloRepr, IhuEntry, MacAddr, Message, MessageWriter, NodeId, OgmRepr,
    OnionHeader, SeqnoRequestRepr, ANNOUNCE_LEN, BUILD_RECORDS_LEN, CELL_REGION_LEN, ONION_KEY_LEN,
};
use crate::wire::Error;

/// An owned message, so strategies can generate what `Message` borrows.
#[derive(Debug, Clone, PartialEq)]
pub enum Owned {
    Hello(HelloRepr),
    Ihu(Vec<IhuEntry>),
    Ogm(OgmRepr),
    Announce(Box<[u8; ANNOUNCE_LEN]>),
    AnnounceRequest(NodeId),
    SeqnoRequest(SeqnoRequestRepr),
    GroupKey(GroupKeyRepr),
    Probe(u32),
    ProbeAck(u32),
    GroupKeyRequest,
    Data(NodeId, u8, Vec<u8>),
    OnionKey(Box<[u8; ONION_KEY_LEN]>),
    Build(OnionHeader, Box<[u8; BUILD_RECORDS_LEN]>),
    Cell(OnionHeader, u8, Box<[u8; CELL_REGION_LEN]>),
}

impl Owned {
    /// Append with the type-specific `push_*` call.
    pub fn push(&self, w: &mut MessageWriter<'_>) -> Result<(), Error> {
        match self {
            Owned::Hello(h) => w.push_hello(h),
            Owned::Ihu(e) => w.push_ihu(e),
            Owned::Ogm(o) => w.push_ogm(o),
            Owned::Announce(a) => w.push_announce(a),
            Owned::AnnounceRequest(n) => w.push_announce_request(n),
            Owned::SeqnoRequest(s) => w.push_seqno_request(s),
            Owned::GroupKey(g) => w.push_group_key(g),
            Owned::Probe(p) => w.push_probe(*p),
            Owned::ProbeAck(p) => w.push_probe_ack(*p),
            Owned::GroupKeyRequest => w.push_group_key_request(),
            Owned::Data(d, t, p) => w.push_data(*d, *t, p),
            Owned::OnionKey(k) => w.push_onion_key(k),
            Owned::Build(h, r) => w.push_build(h, r),
            Owned::Cell(h, f, r) => w.push_cell(h, *f, |out| {
                out.copy_from_slice(&r[..]);
                Ok(())
            }),
        }
    }

    /// The owned copy of a parsed message.
    pub fn from_message(m: &Message<'_>) -> Self {
        match *m {
            Message::Hello(h) => Owned::Hello(h),
            Message::Ihu(it) => Owned::Ihu(it.collect()),
            Message::Ogm(o) => Owned::Ogm(o),
            Message::Announce(a) => Owned::Announce(Box::new(*a)),
            Message::AnnounceRequest(n) => Owned::AnnounceRequest(n),
            Message::SeqnoRequest(s) => Owned::SeqnoRequest(s),
            Message::GroupKey(g) => Owned::GroupKey(g),
            Message::Probe(p) => Owned::Probe(p),
            Message::ProbeAck(p) => Owned::ProbeAck(p),
            Message::GroupKeyRequest => Owned::GroupKeyRequest,
            Message::Data { dst, ttl, packet } => Owned::Data(dst, ttl, packet.to_vec()),
            Message::OnionKey(k) => Owned::OnionKey(Box::new(*k)),
            Message::Build { header, records } => Owned::Build(header, Box::new(*records)),
            Message::Cell {
                header,
                flags,
                region,
            } => Owned::Cell(header, flags, Box::new(*region)),
        }
    }
}

pub fn node_id() -> impl Strategy<Value = NodeId> {
    any::<[u8; 16]>().prop_map(NodeId)
}

pub fn hello() -> impl Strategy<Value = HelloRepr> {
    (any::<u16>(), any::<u16>()).prop_map(|(seq, interval_10ms)| HelloRepr { seq, interval_10ms })
}

fn ihu_entry() -> impl Strategy<Value = IhuEntry> {
    (any::<[u8; 6]>(), any::<u16>()).prop_map(|(m, q)| IhuEntry {
        mac: MacAddr(m),
        rx_quality: q,
    })
}

fn ogm() -> impl Strategy<Value = OgmRepr> {
    (
        node_id(),
        any::<(u32, u32, u16, u8, u8)>(),
        any::<[u8; 16]>(),
    )
        .prop_map(
            |(node, (epoch, seqno, metric, ttl, flags), chain)| OgmRepr {
                node,
                epoch,
                seqno,
                metric,
                ttl,
                flags,
                chain,
            },
        )
}

fn bytes<const N: usize>() -> impl Strategy<Value = Box<[u8; N]>> {
    proptest::collection::vec(any::<u8>(), N).prop_map(|v| {
        let mut a = Box::new([0u8; N]);
        a.copy_from_slice(&v);
        a
    })
}

fn announce() -> impl Strategy<Value = Box<[u8; ANNOUNCE_LEN]>> {
    bytes::<ANNOUNCE_LEN>()
}

fn onion_header() -> impl Strategy<Value = OnionHeader> {
    (node_id(), any::<u8>(), any::<u32>()).prop_map(|(dst, ttl, link)| OnionHeader {
        dst,
        ttl,
        link,
    })
}

/// A Cell (it fills a whole unicast plaintext, so it goes alone).
pub fn cell() -> impl Strategy<Value = Owned> {
    (onion_header(), any::<u8>(), bytes::<CELL_REGION_LEN>())
        .prop_map(|(h, f, r)| Owned::Cell(h, f, r))
}

/// Any message, with bodies small enough that several fit in one unicast plaintext.
pub fn owned() -> impl Strategy<Value = Owned> {
    prop_oneof![
        hello().prop_map(Owned::Hello),
        proptest::collection::vec(ihu_entry(), 0..20).prop_map(Owned::Ihu),
        ogm().prop_map(Owned::Ogm),
        announce().prop_map(Owned::Announce),
        node_id().prop_map(Owned::AnnounceRequest),
        (node_id(), any::<(u32, u32, u8)>()).prop_map(|(node, (epoch, seqno, hop_limit))| {
            Owned::SeqnoRequest(SeqnoRequestRepr {
                node,
                epoch,
                seqno,
                hop_limit,
            })
        }),
        (any::<u32>(), any::<[u8; 32]>())
            .prop_map(|(key_id, key)| Owned::GroupKey(GroupKeyRepr { key_id, key })),
        any::<u32>().prop_map(Owned::Probe),
        any::<u32>().prop_map(Owned::ProbeAck),
        Just(Owned::GroupKeyRequest),
        (
            node_id(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(d, t, p)| Owned::Data(d, t, p)),
        bytes::<ONION_KEY_LEN>().prop_map(Owned::OnionKey),
        (onion_header(), bytes::<BUILD_RECORDS_LEN>()).prop_map(|(h, r)| Owned::Build(h, r)),
    ]
}
