//! The daemon's event loop: one task that waits on the mesh sockets, the TUN device, the
//! node's next deadline, signals and control requests, and moves bytes between them and the
//! sans-IO node. Everything that touches the OS is in `sys`; interfaces over time are in
//! `links.rs`, control requests in `requests.rs`.

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::task::Poll;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant as TokioInstant, MissedTickBehavior};

mod deliver;
mod links;
mod requests;

use super::config::Config;
use super::control_server::{self, Job};
use super::gro::Gro;
use super::offload::{self, Split, VNET_HDR_LEN};
use super::ping::Pings;
use super::run::DaemonError;
use super::sys::{self, Netlink, PacketSocket, RecvBatch, SendBatch, SysError, Tun, BATCH};
use crate::node::{Event, IfaceId, Node, Transmit, MAX_IFACES};
use crate::routing::Event as RoutingEvent;
use crate::time::Instant;
use crate::wire::e2e::MAX_E2E_PACKET_LEN;
use crate::wire::{MacAddr, MAX_FRAME_LEN};

/// How often interfaces are checked (down, back up, gone) and the IPv4 claim re-applied.
const LINK_CHECK: Duration = Duration::from_secs(1);
/// Receive batches taken from one source before others get a turn.
const MAX_BATCHES_PER_WAKE: usize = 8;
/// Packets taken from the TUN device (segments of a super-segment each count) before
/// others get a turn: bounded so they fit the node's transmit queue until the next flush.
const MAX_TUN_PACKETS_PER_WAKE: usize = 64;
/// The environment switch that turns TUN offloads off (`VEIL_TUN_OFFLOAD=0`).
const OFFLOAD_ENV: &str = "VEIL_TUN_OFFLOAD";
/// The environment switch that turns coalesced TUN writes off (`VEIL_TUN_GRO=0`), offloads
/// staying on.
const GRO_ENV: &str = "VEIL_TUN_GRO";
/// The TUN MTU: an overlay packet must fit one fixed-size frame.
pub const TUN_MTU: u32 = MAX_E2E_PACKET_LEN as u32;
const _: () = assert!(TUN_MTU >= 1280, "IPv6 needs an MTU of at least 1280");

/// The daemon's own counters, next to the node's in `veil stats`.
#[derive(Debug, Default)]
struct IoCounters {
    relayed_in_place: u64,
    tx_busy: u64,
    tx_errors: u64,
    rx_errors: u64,
    rx_oversized: u64,
    tun_write_dropped: u64,
    tun_read_errors: u64,
    tun_gso_packets: u64,
    tun_gso_segments: u64,
    tun_gro_packets: u64,
    tun_gro_segments: u64,
    tun_malformed: u64,
    interface_down: u64,
    control_requests: u64,
}

/// One mesh interface the daemon has had; its index is its `IfaceId` (a slot stays when a
/// reload removes the interface from the config, so ids never move).
struct Iface {
    name: String,
    sock: Option<AsyncFd<PacketSocket>>,
    mac: Option<MacAddr>,
    tx: SendBatch,
}

impl Iface {
    /// An interface slot, open on `sock` if given.
    fn new(name: &str, sock: Option<AsyncFd<PacketSocket>>) -> Iface {
        let mac = sock.as_ref().map(|s| s.get_ref().mac());
        Iface {
            name: name.to_string(),
            sock,
            mac,
            tx: SendBatch::new(),
        }
    }
}

/// Maps the node's microsecond clock onto tokio's.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: TokioInstant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn new() -> Clock {
        Clock {
            start: TokioInstant::now(),
        }
    }

    /// The node's time now.
    pub fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn to_tokio(self, t: Instant) -> TokioInstant {
        self.start + Duration::from_micros(t.as_micros())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// What woke the loop.
enum Wake {
    Stop(&'static str),
    Reload,
    LinkCheck,
    Io,
    Timer,
    Job(Job),
    Connection(io::Result<tokio::net::UnixStream>),
}

/// The running daemon.
pub struct Daemon {
    cfg: Config,
    config_path: Option<PathBuf>,
    clock: Clock,
    node: Node,
    ifaces: Vec<Iface>,
    tun: AsyncFd<Tun>,
    tun_index: u32,
    netlink: Netlink,
    ipv4: Option<Ipv4Addr>,
    rx: RecvBatch,
    buf: Box<[u8; MAX_FRAME_LEN]>,
    /// What one TUN read lands in: a packet, or with offloads a header and a super-segment.
    tun_buf: Box<[u8]>,
    /// The segments cut from a super-segment, one at a time.
    seg_buf: Box<[u8; TUN_MTU as usize]>,
    /// Coalesces what is written to the TUN, when offloads are on and GRO is not off.
    gro: Option<Gro>,
    pings: Pings,
    counters: IoCounters,
}

/// The OS side opened before the node exists: sockets, TUN, netlink.
pub struct Opened {
    ifaces: Vec<Iface>,
    tun: AsyncFd<Tun>,
    tun_index: u32,
    netlink: Netlink,
    /// Writes to the TUN are coalesced (offloads on, `VEIL_TUN_GRO` not 0).
    gro: bool,
}

impl Opened {
    /// Open every interface and the TUN device; errors name what to fix.
    pub fn open(cfg: &Config) -> Result<Opened, DaemonError> {
        let mut netlink = Netlink::open()?;
        let mut ifaces = Vec::new();
        for name in cfg.interfaces.iter().take(MAX_IFACES) {
            let sock = PacketSocket::open(name)?;
            let fd = sys::register(sock).map_err(io_err("registering the packet socket"))?;
            ifaces.push(Iface::new(name, Some(fd)));
        }
        let want_offload = env_on(OFFLOAD_ENV);
        let tun = Tun::open(&cfg.tun, want_offload)?;
        let tun_name = tun.name().to_string();
        let gro = tun.offload() && env_on(GRO_ENV);
        match (tun.offload(), tun.offload_refused()) {
            (true, _) if gro => {
                tracing::info!("{tun_name}: TUN offloads on (TSO and checksum; coalesced writes)")
            }
            (true, _) => tracing::info!(
                "{tun_name}: TUN offloads on (TSO and checksum; writes not coalesced: {GRO_ENV}=0)"
            ),
            (false, Some(e)) => {
                tracing::info!(
                    "{tun_name}: TUN offloads refused by the kernel ({e}): plain packets"
                )
            }
            (false, None) => tracing::info!("{tun_name}: TUN offloads off ({OFFLOAD_ENV}=0)"),
        }
        let tun_index =
            netlink
                .link(&tun_name)?
                .map(|l| l.index)
                .ok_or(SysError::NoSuchInterface {
                    name: tun_name.clone(),
                })?;
        // Router solicitations and friends would only be dropped by the node; a sandbox that
        // makes /proc/sys read-only leaves the TUN accepting router advertisements: say so.
        if let Err(e) = sys::disable_ipv6_autoconf(&tun_name) {
            tracing::warn!("{e}: {tun_name} may accept IPv6 router advertisements");
        }
        netlink.set_mtu(tun_index, tun_mtu(cfg.anonymous))?;
        netlink.set_up(tun_index)?;
        let tun = sys::register(tun).map_err(io_err("registering the TUN device"))?;
        Ok(Opened {
            ifaces,
            tun,
            tun_index,
            netlink,
            gro,
        })
    }
}

/// The TUN device's MTU: a packet through a circuit must fit one cell (docs/protocol.md
/// §8.9), so anonymous mode lowers it to 1280 for every destination.
fn tun_mtu(anonymous: bool) -> u32 {
    match anonymous {
        true => crate::overlay::anon::ANON_MTU as u32,
        false => TUN_MTU,
    }
}

/// Whether the environment switch `name` is on (anything but "0", or unset).
fn env_on(name: &str) -> bool {
    std::env::var_os(name).is_none_or(|v| v != "0")
}

fn io_err(what: &'static str) -> impl Fn(io::Error) -> DaemonError {
    move |source| {
        DaemonError::Sys(SysError::Io {
            what: what.to_string(),
            source,
        })
    }
}

impl Daemon {
    /// Put the node on the opened interfaces and give the TUN device its overlay address.
    pub fn start(
        cfg: Config,
        config_path: Option<PathBuf>,
        clock: Clock,
        mut node: Node,
        opened: Opened,
    ) -> Result<Daemon, DaemonError> {
        let now = clock.now();
        for (i, iface) in opened.ifaces.iter().enumerate() {
            if let Some(mac) = iface.mac {
                node.add_interface(now, iface_id(i), mac);
            }
        }
        let mut netlink = opened.netlink;
        let prefix_len = 48;
        netlink.add_address(
            opened.tun_index,
            IpAddr::V6(node.overlay_ipv6()),
            prefix_len,
        )?;
        // Answers to anonymous senders go to their ephemeral addresses (docs/protocol.md §5.7).
        let anon = crate::overlay::anon::anon_prefix(&node.mesh_prefix());
        netlink.add_route(opened.tun_index, IpAddr::V6(anon.network()), prefix_len)?;
        let ident = u16::from_le_bytes([node.node_id().0[0], node.node_id().0[1]]);
        let tun_buf = vec![0u8; tun_read_len(opened.tun.get_ref())].into_boxed_slice();
        tracing::info!(
            node = %node.node_id(),
            ipv6 = %node.overlay_ipv6(),
            epoch = node.epoch(),
            "started on {}",
            cfg.interfaces.join(", ")
        );
        Ok(Daemon {
            cfg,
            config_path,
            clock,
            node,
            ifaces: opened.ifaces,
            tun: opened.tun,
            tun_index: opened.tun_index,
            netlink,
            ipv4: None,
            rx: RecvBatch::new(),
            buf: Box::new([0u8; MAX_FRAME_LEN]),
            tun_buf,
            seg_buf: Box::new([0u8; TUN_MTU as usize]),
            gro: opened.gro.then(|| Gro::new(MAX_FRAME_LEN)),
            pings: Pings::new(ident),
            counters: IoCounters::default(),
        })
    }

    /// Run until SIGTERM or SIGINT.
    pub async fn serve(&mut self, listener: UnixListener) -> Result<(), DaemonError> {
        let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Runtime)?;
        let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Runtime)?;
        let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Runtime)?;
        let (jobs_tx, mut jobs) = mpsc::channel::<Job>(16);
        let open = Arc::new(AtomicUsize::new(0));
        let mut link_check = tokio::time::interval(LINK_CHECK);
        link_check.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            self.flush();
            let deadline = self.deadline();
            let wake = tokio::select! {
                _ = term.recv() => Wake::Stop("SIGTERM"),
                _ = int.recv() => Wake::Stop("SIGINT"),
                _ = hup.recv() => Wake::Reload,
                _ = link_check.tick() => Wake::LinkCheck,
                _ = io_ready(&self.ifaces, &self.tun) => Wake::Io,
                _ = tokio::time::sleep_until(deadline) => Wake::Timer,
                Some(job) = jobs.recv() => Wake::Job(job),
                conn = listener.accept() => Wake::Connection(conn.map(|(s, _)| s)),
            };
            match wake {
                Wake::Stop(why) => {
                    tracing::info!("{why}: stopping");
                    return Ok(());
                }
                Wake::Reload => self.reload(),
                Wake::LinkCheck => self.check_links(),
                Wake::Io => self.drain_io(),
                Wake::Timer => self.on_timer(),
                Wake::Job((request, reply)) => self.handle_request(request, reply),
                Wake::Connection(Ok(stream)) => {
                    control_server::spawn_connection(stream, jobs_tx.clone(), open.clone())
                }
                Wake::Connection(Err(e)) => {
                    // Out of fds and the like: do not spin on a listener that stays ready.
                    tracing::warn!("control socket accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Remove what the daemon configured (closing the TUN device removes it with its
    /// addresses and routes).
    pub fn shutdown(self) {
        let mut netlink = self.netlink;
        let _ = netlink.del_address(self.tun_index, IpAddr::V6(self.node.overlay_ipv6()), 48);
        if let Some(v4) = self.ipv4 {
            let _ = netlink.del_address(self.tun_index, IpAddr::V4(v4), 0);
        }
        drop(self.tun);
    }

    fn deadline(&self) -> TokioInstant {
        let far = TokioInstant::now() + Duration::from_secs(3600);
        let node = self
            .node
            .poll_timeout()
            .map(|t| self.clock.to_tokio(t))
            .unwrap_or(far);
        let ping = self
            .pings
            .next_deadline()
            .map(TokioInstant::from_std)
            .unwrap_or(far);
        node.min(ping)
    }

    fn on_timer(&mut self) {
        let now = self.clock.now();
        self.node.handle_timeout(now);
        self.pings.expire(std::time::Instant::now());
    }

    /// Read what is waiting on every interface and the TUN device, a bounded amount each.
    fn drain_io(&mut self) {
        for i in 0..self.ifaces.len() {
            self.drain_iface(i);
        }
        self.drain_tun();
    }

    fn drain_iface(&mut self, i: usize) {
        for _ in 0..MAX_BATCHES_PER_WAKE {
            let Some(sock) = self.ifaces.get(i).and_then(|f| f.sock.as_ref()) else {
                return;
            };
            let rx = &mut self.rx;
            match sock.try_io(Interest::READABLE, |s| s.recv_batch(rx)) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.counters.rx_errors += 1;
                    self.interface_failed(i, &e);
                    return;
                }
            }
            self.counters.rx_oversized += self.rx.truncated() as u64;
            let now = self.clock.now();
            let mut relayed = [None; BATCH];
            for (slot, frame, src) in self.rx.iter_mut() {
                let out = self.node.handle_frame_mut(now, iface_id(i), src, frame);
                if let Some(r) = relayed.get_mut(slot) {
                    *r = out;
                }
            }
            self.send_relayed(&relayed);
            self.flush();
        }
    }

    fn drain_tun(&mut self) {
        let now = self.clock.now();
        let offload = self.tun.get_ref().offload();
        let mut packets = 0;
        while packets < MAX_TUN_PACKETS_PER_WAKE {
            let buf = &mut self.tun_buf[..];
            let len = match self.tun.try_io(Interest::READABLE, |t| t.read(buf)) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.counters.tun_read_errors += 1;
                    tracing::warn!("reading {}: {e}", self.cfg.tun);
                    break;
                }
            };
            let Some(read) = self.tun_buf.get_mut(..len) else {
                break;
            };
            packets += 1;
            if !offload {
                self.node.handle_ip_packet(now, read);
                continue;
            }
            let node = &mut self.node;
            match offload::split(read, &mut self.seg_buf[..], &mut |p| {
                node.handle_ip_packet(now, p)
            }) {
                Ok(Split::Plain) => {}
                Ok(Split::Segments(n)) => {
                    self.counters.tun_gso_packets += 1;
                    self.counters.tun_gso_segments += n as u64;
                    packets += n.saturating_sub(1);
                }
                Err(e) => {
                    self.counters.tun_malformed += 1;
                    tracing::debug!("dropped a malformed read from {}: {e:?}", self.cfg.tun);
                }
            }
        }
        self.flush();
    }

    /// Send the frames the node relayed in place from the receive batch's buffers (one
    /// sendmmsg per interface, no copy); what the kernel will not take now is dropped and
    /// counted, as in `send_pending`.
    fn send_relayed(&mut self, relayed: &[Option<Transmit>; BATCH]) {
        for (j, iface) in self.ifaces.iter_mut().enumerate() {
            let rx = &self.rx;
            let frames = || {
                relayed
                    .iter()
                    .enumerate()
                    .filter_map(|(slot, t)| t.map(|t| (slot, t)))
                    .filter(move |(_, t)| usize::from(t.iface.0) == j)
                    .filter_map(|(slot, t)| Some((t.dst, rx.frame(slot, t.len)?)))
            };
            let count = frames().count();
            if count == 0 {
                continue;
            }
            let sent = match iface
                .sock
                .as_ref()
                .map(|s| s.get_ref().send_frames(frames()))
            {
                Some(Ok(n)) => n,
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Some(Err(_)) => {
                    self.counters.tx_errors += 1;
                    0
                }
                None => 0,
            };
            self.counters.relayed_in_place += count as u64;
            self.counters.tx_busy += count.saturating_sub(sent) as u64;
        }
    }

    /// Hand the node's frames to the sockets, its packets to the TUN device (or to a waiting
    /// ping), and log its events.
    fn flush(&mut self) {
        while let Some(next) = self.node.next_transmit_iface() {
            let node = &mut self.node;
            let Some(iface) = self
                .ifaces
                .get_mut(usize::from(next.0))
                .filter(|f| f.sock.is_some())
            else {
                // Its interface is gone: the frame is discarded.
                let _ = node.poll_transmit(&mut self.buf[..]);
                continue;
            };
            if iface.tx.is_full() {
                send_pending(iface, &mut self.counters);
            }
            // Written straight into the send batch: no copy between node and socket.
            let _ = iface
                .tx
                .fill(|buf| node.poll_transmit(buf).map(|t| (t.dst, t.len)));
        }
        for iface in &mut self.ifaces {
            send_pending(iface, &mut self.counters);
        }
        self.deliver();
        while let Some(event) = self.node.poll_event() {
            self.log_event(event);
        }
    }

    fn log_event(&self, event: Event) {
        let name = |i: IfaceId| {
            self.ifaces
                .get(usize::from(i.0))
                .map_or("?", |f| f.name.as_str())
        };
        match event {
            Event::SessionUp { iface, mac, node } => {
                tracing::debug!("link session with {node} ({mac} on {})", name(iface))
            }
            Event::Routing(RoutingEvent::NeighborUp { iface, mac, node }) => {
                tracing::info!("neighbour up: {node} ({mac} on {})", name(iface))
            }
            Event::Routing(RoutingEvent::NeighborDown {
                iface,
                mac,
                node,
                reason,
            }) => {
                let who = node.map_or_else(|| "unauthenticated".to_string(), |n| n.to_string());
                tracing::info!(
                    "neighbour down: {who} ({mac} on {}): {reason:?}",
                    name(iface)
                )
            }
            Event::Routing(RoutingEvent::RouteChanged {
                node,
                next_hop,
                metric,
            }) => match next_hop {
                Some((iface, mac)) => tracing::info!(
                    "route to {node}: via {mac} on {}, metric {metric}",
                    name(iface)
                ),
                None => tracing::info!("route to {node}: unreachable"),
            },
        }
    }
}

/// How much one read from `tun` can bring: one packet of the MTU, or with offloads a
/// header and a super-segment of up to the kernel's GSO limit of 64 KiB
/// (`GSO_LEGACY_MAX_SIZE`; a longer one would be truncated, and dropped as malformed).
fn tun_read_len(tun: &Tun) -> usize {
    if tun.offload() {
        VNET_HDR_LEN + (1 << 16)
    } else {
        MAX_FRAME_LEN
    }
}

fn iface_id(i: usize) -> IfaceId {
    IfaceId(u8::try_from(i).unwrap_or(u8::MAX))
}

/// Send an interface's queued frames; what the kernel will not take now is dropped and
/// counted (a full socket buffer means the radio is saturated: queueing more only adds delay).
fn send_pending(iface: &mut Iface, counters: &mut IoCounters) {
    if iface.tx.is_empty() {
        return;
    }
    if let Some(sock) = &iface.sock {
        // Sent frames leave the batch; a refused one is dropped by send_batch itself.
        if let Err(e) = sock.get_ref().send_batch(&mut iface.tx) {
            if e.kind() != io::ErrorKind::WouldBlock {
                counters.tx_errors += 1;
            }
        }
    }
    counters.tx_busy += iface.tx.len() as u64;
    iface.tx.clear();
}

/// Resolves when any open interface socket or the TUN device is readable.
async fn io_ready(ifaces: &[Iface], tun: &AsyncFd<Tun>) {
    poll_fn(|cx| {
        for fd in ifaces.iter().filter_map(|f| f.sock.as_ref()) {
            if fd.poll_read_ready(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        match tun.poll_read_ready(cx) {
            Poll::Ready(_) => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
