//! A neighbour's link session comes up or ends: the link layer reports it, routing is told,
//! and (in a darknet) our group key rotates away from whoever left.

use super::link_layer::{SessionUp, Swept, Trigger};
use super::{Event, Node};
use crate::time::Instant;

impl Node {
    /// Tell routing and the caller that the link to `up`'s neighbour is authenticated.
    pub(super) fn session_up(&mut self, now: Instant, up: SessionUp) {
        let SessionUp { iface, mac, node } = up;
        self.control
            .neighbor_authenticated(now, &mut self.link, (iface, mac), node);
        self.shared
            .push_event(Event::SessionUp { iface, mac, node });
        self.drain_routing(now);
    }

    /// The link timer: handshake timeouts, rekeys, expired sessions, forgotten idle links.
    pub(super) fn housekeep_links(&mut self, now: Instant) {
        let swept = self.link.sweep(now);
        self.forget_links(now, &swept);
        for (iface, mac) in swept.rekey {
            self.link
                .maybe_initiate(now, (iface, mac), Trigger::Rekey, &mut self.shared);
        }
    }

    /// Tell routing the neighbours in `swept.lost` lost their session, then forget the
    /// links `swept.forget`.
    pub(super) fn forget_links(&mut self, now: Instant, swept: &Swept) {
        for (iface, mac) in &swept.lost {
            if let Some(id) = self.link.find(*iface, *mac) {
                self.control
                    .neighbor_deauthenticated(now, &mut self.link, id);
            }
        }
        self.link
            .neighbours_left(now, swept.lost.len(), &mut self.shared);
        self.link.forget(&swept.forget);
    }
}
