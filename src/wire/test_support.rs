//! Proptest strategies shared by the wire tests: owned messages to build and compare.

use proptest::prelude::*;

use super::{
    GroupKeyRepr, HelloRepr, IhuEntry, MacAddr, Message, MessageWriter, NodeId, OgmRepr,
    SeqnoRequestRepr, ANNOUNCE_LEN,
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

fn announce() -> impl Strategy<Value = Box<[u8; ANNOUNCE_LEN]>> {
    proptest::collection::vec(any::<u8>(), ANNOUNCE_LEN).prop_map(|v| {
        let mut a = Box::new([0u8; ANNOUNCE_LEN]);
        a.copy_from_slice(&v);
        a
    })
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
    ]
}
