//! The daemon's mesh interfaces over time: the 1 s check (down, back up, gone), SIGHUP's
//! interface changes, and the IPv4 claim on the TUN device.

use std::io;
use std::net::IpAddr;

use super::{iface_id, Daemon, Iface};
use crate::daemon::config::Config;
use crate::daemon::sys::{self, PacketSocket};
use crate::node::MAX_IFACES;

impl Daemon {
    /// Interfaces that went down are closed; ones that came (back) up are opened; the IPv4
    /// claim is applied to the TUN device when it changes.
    pub(super) fn check_links(&mut self) {
        for i in 0..self.ifaces.len() {
            self.check_link(i);
        }
        self.apply_ipv4();
    }

    fn check_link(&mut self, i: usize) {
        let Some(iface) = self.ifaces.get(i) else {
            return;
        };
        let state = self.netlink.link(&iface.name);
        let usable = matches!(&state, Ok(Some(l)) if l.up);
        match (
            usable,
            iface.sock.is_some(),
            self.cfg.interfaces.contains(&iface.name),
        ) {
            (false, true, _) | (true, true, false) => {
                let why = if usable {
                    "removed from the config"
                } else {
                    "down or gone"
                };
                self.close_iface(i, why);
            }
            (true, false, true) => self.open_iface(i),
            _ => {}
        }
    }

    fn open_iface(&mut self, i: usize) {
        let Some(iface) = self.ifaces.get_mut(i) else {
            return;
        };
        match PacketSocket::open(&iface.name) {
            Ok(sock) => {
                let mac = sock.mac();
                match sys::register(sock) {
                    Ok(fd) => {
                        iface.sock = Some(fd);
                        iface.mac = Some(mac);
                        self.node.add_interface(self.clock.now(), iface_id(i), mac);
                        tracing::warn!("{} is up again ({mac})", iface.name);
                    }
                    Err(e) => tracing::warn!("{}: cannot register: {e}", iface.name),
                }
            }
            Err(e) => tracing::debug!("{}: not yet usable: {e}", iface.name),
        }
    }

    fn close_iface(&mut self, i: usize, why: &str) {
        let Some(iface) = self.ifaces.get_mut(i) else {
            return;
        };
        if iface.sock.take().is_some() {
            self.counters.interface_down += 1;
            iface.tx.clear();
            self.node.remove_interface(self.clock.now(), iface_id(i));
            tracing::warn!(
                "{}: {why}; will use it again when it comes back",
                iface.name
            );
        }
    }

    pub(super) fn interface_failed(&mut self, i: usize, e: &io::Error) {
        let name = self
            .ifaces
            .get(i)
            .map(|f| f.name.clone())
            .unwrap_or_default();
        tracing::debug!("{name}: {e}");
        if matches!(
            e.raw_os_error(),
            Some(libc::ENETDOWN | libc::ENXIO | libc::ENODEV)
        ) {
            self.close_iface(i, "went down");
        }
    }

    fn apply_ipv4(&mut self) {
        let want = self.node.overlay_ipv4();
        if want == self.ipv4 {
            return;
        }
        let len = self
            .node
            .address_book()
            .claims()
            .map_or(32, |c| c.pool().prefix_len());
        if let Some(old) = self.ipv4.take() {
            let _ = self
                .netlink
                .del_address(self.tun_index, IpAddr::V4(old), len);
        }
        if let Some(new) = want {
            match self
                .netlink
                .add_address(self.tun_index, IpAddr::V4(new), len)
            {
                Ok(()) => {
                    tracing::info!("IPv4 address {new}/{len} on {}", self.cfg.tun);
                    self.ipv4 = Some(new);
                }
                Err(e) => tracing::warn!("cannot set IPv4 {new} on {}: {e}", self.cfg.tun),
            }
        } else {
            tracing::info!("IPv4 claim lost (address conflict); choosing another");
        }
    }

    /// SIGHUP: re-read the config; interfaces are added and removed live, and anonymous mode
    /// and its direct exceptions switched; other changes need a restart (logged).
    pub(super) fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            tracing::warn!("SIGHUP: no config file to reload");
            return;
        };
        let new = match Config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("SIGHUP: keeping the running config: {e}");
                return;
            }
        };
        let direct = match new.direct_iids() {
            Ok(d) => d,
            Err((key, why)) => {
                tracing::error!("SIGHUP: keeping the running config: {key}: {why}");
                return;
            }
        };
        let mut fixed = new.clone();
        fixed.interfaces = self.cfg.interfaces.clone();
        fixed.anonymous = self.cfg.anonymous;
        fixed.direct = self.cfg.direct.clone();
        if fixed != self.cfg {
            tracing::warn!(
                "SIGHUP: only `interfaces`, `anonymous` and `direct` apply live; restart for the rest"
            );
        }
        self.apply_anonymity(&new, direct);
        for name in &new.interfaces {
            if !self.ifaces.iter().any(|f| &f.name == name) && self.ifaces.len() < MAX_IFACES {
                self.ifaces.push(Iface::new(name, None));
            }
        }
        self.cfg.interfaces = new.interfaces;
        tracing::info!("SIGHUP: interfaces now {}", self.cfg.interfaces.join(", "));
        self.check_links();
    }

    /// Switch anonymous mode and its exceptions to `new`'s, with the TUN MTU that goes with it.
    fn apply_anonymity(&mut self, new: &Config, direct: Vec<crate::overlay::Iid>) {
        if new.anonymous == self.cfg.anonymous && new.direct == self.cfg.direct {
            return;
        }
        let now = self.clock.now();
        self.node.set_anonymity(now, new.anonymous, direct);
        if new.anonymous != self.cfg.anonymous {
            let mtu = super::tun_mtu(new.anonymous);
            if let Err(e) = self.netlink.set_mtu(self.tun_index, mtu) {
                tracing::warn!("SIGHUP: cannot set {}'s MTU to {mtu}: {e}", self.cfg.tun);
            }
        }
        self.cfg.anonymous = new.anonymous;
        self.cfg.direct = new.direct.clone();
        tracing::info!(
            "SIGHUP: anonymous mode {}, {} direct exception(s)",
            if new.anonymous { "on" } else { "off" },
            new.direct.len()
        );
    }
}
