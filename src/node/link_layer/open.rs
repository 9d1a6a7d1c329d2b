//! Frames from neighbours, authenticated and decrypted in the buffer they arrived in: the
//! session or group key a frame names, the replay window, and what an unknown one sets off
//! (a handshake, a request for the neighbour's group key).

use super::budget::Trigger;
use super::group_keys;
use super::{LinkLayer, SessionUp};
use crate::crypto::OpenError;
use crate::link::LinkId;
use crate::node::index::Which;
use crate::node::{DropReason, IfaceId, Shared, Stats};
use crate::time::{Duration, Instant};
use crate::wire::{split_encrypted_mut, MacAddr};

/// An encrypted frame opened in place.
pub(in crate::node) struct Opened<'f> {
    /// The link it came over.
    pub(in crate::node) id: LinkId,
    /// Its plaintext: the messages.
    pub(in crate::node) plain: &'f [u8],
    /// The neighbour whose session this frame confirmed (it is up from now on).
    pub(in crate::node) up: Option<SessionUp>,
}

impl LinkLayer {
    /// A unicast frame from `src` on `iface` under session index `idx` with frame counter
    /// `counter`, opened in place. A frame for a session we do not hold makes us start a
    /// handshake, unless a working session with that MAC says it is a replay or a spoof.
    pub(in crate::node) fn open_unicast<'f>(
        &mut self,
        now: Instant,
        (iface, src): (IfaceId, MacAddr),
        (idx, counter): (u32, u64),
        frame: &'f mut [u8],
        shared: &mut Shared,
    ) -> Option<Opened<'f>> {
        let found = self.links.by_index(idx);
        let Some((slot, which)) = found.filter(|(s, _)| {
            self.links
                .get(*s)
                .is_some_and(|l| l.iface == iface && l.mac == src)
        }) else {
            shared.stats.drop(DropReason::UnknownSession);
            // The sender believes in a session we lost (we restarted): make a new one. Not
            // if we hold a working session with that MAC: then the frame is a replay or a
            // spoof, and answering it would let anyone force handshakes on our links.
            let has_session = self
                .links
                .by_mac(iface, src)
                .is_some_and(|l| l.current.as_ref().is_some_and(|c| c.confirmed));
            if !has_session {
                self.maybe_initiate(now, (iface, src), Trigger::Unauthenticated, shared);
            }
            return None;
        };
        let id = self.links.id(slot)?;
        let link = self.links.get_mut(slot)?;
        let sess = match which {
            Which::Current => link.current.as_mut(),
            Which::Previous => link.previous.as_mut(),
        }?;
        let result = open_in_frame(frame, |aad, body, tag| {
            sess.session.recv.open_in_place(counter, aad, body, tag)
        });
        let plain = count_open(result, &mut shared.stats)?;
        let up = match which {
            Which::Current => self.confirm_session(slot),
            Which::Previous => None,
        };
        Some(Opened { id, plain, up })
    }

    /// A broadcast frame from `src` on `iface` under its group key `key_id` with frame
    /// counter `counter`, opened in place. A neighbour we hold no session with gets a
    /// handshake; one whose key we miss is asked for it.
    pub(in crate::node) fn open_broadcast<'f>(
        &mut self,
        now: Instant,
        (iface, src): (IfaceId, MacAddr),
        (key_id, counter): (u32, u64),
        frame: &'f mut [u8],
        shared: &mut Shared,
    ) -> Option<Opened<'f>> {
        let Some(id) = self.find(iface, src) else {
            shared.stats.drop(DropReason::UnknownGroupKey);
            self.maybe_initiate(now, (iface, src), Trigger::Unauthenticated, shared);
            return None;
        };
        let slot = id.slot();
        let has_key = self
            .links
            .get_mut(slot)
            .is_some_and(|l| group_keys::receiver_for(l, key_id).is_some());
        if !has_key {
            shared.stats.drop(DropReason::UnknownGroupKey);
            self.request_group_key(now, slot, shared);
            return None;
        }
        let group = self
            .links
            .get_mut(slot)
            .and_then(|l| group_keys::receiver_for(l, key_id));
        let result = match group {
            Some(g) => open_in_frame(frame, |aad, body, tag| {
                g.open_in_place(counter, aad, body, tag)
            }),
            None => Err(OpenError::Decrypt.into()),
        };
        let plain = count_open(result, &mut shared.stats)?;
        Some(Opened {
            id,
            plain,
            up: None,
        })
    }

    /// Ask a session peer for its group key (we missed it, or it rotated), at most once a second.
    fn request_group_key(&mut self, now: Instant, slot: usize, shared: &mut Shared) {
        let Some(link) = self.links.get_mut(slot) else {
            return;
        };
        if link.current.is_none() {
            let (iface, mac) = (link.iface, link.mac);
            self.maybe_initiate(now, (iface, mac), Trigger::Unauthenticated, shared);
            return;
        }
        let recent = link
            .last_group_request
            .is_some_and(|t| now.saturating_since(t) < Duration::from_secs(1));
        if recent {
            return;
        }
        link.last_group_request = Some(now);
        self.queue_unicast_slot(slot, true, &mut shared.stats, |w| {
            w.push_group_key_request()
        });
    }
}

/// The plaintext of an opened frame, or `None` with the failure counted.
fn count_open<'f>(result: Result<&'f [u8], OpenFailure>, stats: &mut Stats) -> Option<&'f [u8]> {
    match result {
        Ok(plain) => Some(plain),
        Err(OpenFailure::Open(OpenError::Replay(_))) => {
            stats.drop(DropReason::Replay);
            None
        }
        Err(OpenFailure::Open(_)) => {
            stats.drop(DropReason::DecryptFailed);
            None
        }
        Err(OpenFailure::Wire) => {
            stats.drop(DropReason::MalformedFrame);
            None
        }
    }
}

/// Why a received encrypted frame could not be opened.
enum OpenFailure {
    Wire,
    Open(OpenError),
}

impl From<OpenError> for OpenFailure {
    fn from(e: OpenError) -> Self {
        OpenFailure::Open(e)
    }
}

/// Open the encrypted frame `frame` in place with `open` (given header, body, tag);
/// returns the plaintext.
fn open_in_frame(
    frame: &mut [u8],
    open: impl FnOnce(&[u8], &mut [u8], &[u8; 16]) -> Result<(), OpenError>,
) -> Result<&[u8], OpenFailure> {
    let parts = split_encrypted_mut(frame).map_err(|_| OpenFailure::Wire)?;
    open(&parts.header[..], parts.body, parts.tag)?;
    Ok(parts.body)
}
