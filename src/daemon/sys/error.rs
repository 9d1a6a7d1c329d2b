//! The one error type of the OS-facing layer, with messages that say what to do.

use std::io;

/// What opening or configuring a socket, the TUN device or a route went wrong with.
///
/// Every variant's message tells the operator what to do. [`SysError::exit_code`] maps it
/// to a `sysexits.h` code for `veil run`:
///
/// | code | name | variants |
/// |---|---|---|
/// | 77 | `EX_NOPERM` | [`SysError::Permission`], [`SysError::TunDeviceMode`] |
/// | 69 | `EX_UNAVAILABLE` | [`SysError::NoSuchInterface`], [`SysError::InterfaceDown`], [`SysError::NotEthernet`], [`SysError::NoTunDevice`] |
/// | 64 | `EX_USAGE` | [`SysError::InvalidInterfaceName`] |
/// | 71 | `EX_OSERR` | everything else ([`SysError::Io`], [`SysError::Netlink`], [`SysError::NetlinkTimeout`], …) |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SysError {
    /// The kernel refused for lack of a capability (EPERM/EACCES).
    #[error(
        "{what} needs {capability}: run as root or `setcap cap_net_raw,cap_net_admin+ep veil`"
    )]
    Permission {
        /// What was attempted, e.g. "opening a raw packet socket on wlan0".
        what: String,
        /// The capability that is missing: `CAP_NET_RAW` or `CAP_NET_ADMIN`.
        capability: &'static str,
    },
    /// No interface of that name exists in this network namespace.
    #[error("there is no network interface {name:?}: check `ip link`")]
    NoSuchInterface {
        /// The name asked for.
        name: String,
    },
    /// The interface exists but is administratively down.
    #[error("interface {name} is down: bring it up with `ip link set {name} up`")]
    InterfaceDown {
        /// The interface's name.
        name: String,
    },
    /// The interface has no 6-byte hardware address (it is not Ethernet or Wi-Fi).
    #[error("interface {name} has no Ethernet (MAC) address: pick an Ethernet or Wi-Fi interface")]
    NotEthernet {
        /// The interface's name.
        name: String,
    },
    /// Not a name the kernel accepts: empty, over 15 bytes, `.`/`..`, or with a NUL, `/`,
    /// `:` or whitespace.
    #[error("{name:?} is not a valid interface name: 1 to 15 bytes, no '/', ':' or spaces")]
    InvalidInterfaceName {
        /// The name given.
        name: String,
    },
    /// `/dev/net/tun` does not exist.
    #[error("/dev/net/tun is missing: load the TUN driver with `modprobe tun`")]
    NoTunDevice,
    /// `/dev/net/tun` exists but this user may not open it: a file permission, which no
    /// network capability overrides (udev makes it 0666; containers often leave it 0600).
    #[error(
        "/dev/net/tun is not readable and writable by this user: `chmod 0666 /dev/net/tun` \
         (as udev does), or run as root"
    )]
    TunDeviceMode,
    /// Any other OS error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel answered an rtnetlink request with an error code (a positive errno).
    #[error("netlink: {op} failed: {}", io::Error::from_raw_os_error(*code))]
    Netlink {
        /// The operation, e.g. "add address fd00::1/64 on ifindex 7".
        op: String,
        /// The errno the kernel returned (positive).
        code: i32,
    },
    /// The kernel sent no acknowledgement of an rtnetlink request in time.
    #[error("netlink: {op}: the kernel did not answer a netlink request within {} s", after.as_secs())]
    NetlinkTimeout {
        /// The operation, e.g. "look up interface wlan0".
        op: String,
        /// How long we waited.
        after: std::time::Duration,
    },
}

/// `sysexits.h`: permission denied.
const EX_NOPERM: u8 = 77;
/// `sysexits.h`: a required service (interface, driver) is unavailable.
const EX_UNAVAILABLE: u8 = 69;
/// `sysexits.h`: an operating-system error.
const EX_OSERR: u8 = 71;
/// `sysexits.h`: the command was used incorrectly (bad configuration value).
const EX_USAGE: u8 = 64;

/// Capability named when opening an AF_PACKET socket is refused.
pub const CAP_NET_RAW: &str = "CAP_NET_RAW";
/// Capability named when TUNSETIFF or a netlink change is refused.
pub const CAP_NET_ADMIN: &str = "CAP_NET_ADMIN";

impl SysError {
    /// The process exit code for this error (see the table on [`SysError`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            SysError::Permission { .. } | SysError::TunDeviceMode => EX_NOPERM,
            SysError::NoSuchInterface { .. }
            | SysError::InterfaceDown { .. }
            | SysError::NotEthernet { .. }
            | SysError::NoTunDevice => EX_UNAVAILABLE,
            SysError::InvalidInterfaceName { .. } => EX_USAGE,
            SysError::Io { .. } | SysError::Netlink { .. } | SysError::NetlinkTimeout { .. } => {
                EX_OSERR
            }
        }
    }

    /// Maps an OS error of `what`: EPERM/EACCES become [`SysError::Permission`] naming
    /// `capability`, anything else [`SysError::Io`].
    pub fn from_io(source: io::Error, what: impl Into<String>, capability: &'static str) -> Self {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => SysError::Permission {
                what: what.into(),
                capability,
            },
            _ => SysError::Io {
                what: what.into(),
                source,
            },
        }
    }

    /// Maps a netlink error code (positive errno) of `op`: EPERM/EACCES become
    /// [`SysError::Permission`] naming `CAP_NET_ADMIN`, anything else [`SysError::Netlink`].
    pub fn from_netlink(code: i32, op: impl Into<String>) -> Self {
        match code {
            libc::EPERM | libc::EACCES => SysError::Permission {
                what: op.into(),
                capability: CAP_NET_ADMIN,
            },
            _ => SysError::Netlink {
                op: op.into(),
                code,
            },
        }
    }
}

/// Checks an interface name as the kernel's `dev_valid_name` does: 1..=15 bytes, not `.` or
/// `..`, no NUL, `/`, `:` or whitespace.
pub fn check_ifname(name: &str) -> Result<(), SysError> {
    let ok = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == 0 || b == b'/' || b == b':' || b.is_ascii_whitespace());
    if ok {
        Ok(())
    } else {
        Err(SysError::InvalidInterfaceName { name: name.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_and_eacces_map_to_permission_with_the_capability() {
        for errno in [libc::EPERM, libc::EACCES] {
            let e = SysError::from_io(
                io::Error::from_raw_os_error(errno),
                "opening a raw packet socket on wlan0",
                CAP_NET_RAW,
            );
            assert!(matches!(
                e,
                SysError::Permission {
                    capability: "CAP_NET_RAW",
                    ..
                }
            ));
            assert_eq!(e.exit_code(), 77);
            let msg = e.to_string();
            assert!(msg.contains("wlan0 needs CAP_NET_RAW"), "{msg}");
            assert!(
                msg.contains("setcap cap_net_raw,cap_net_admin+ep veil"),
                "{msg}"
            );
        }
        let e = SysError::from_netlink(libc::EPERM, "set mtu");
        assert!(matches!(
            e,
            SysError::Permission {
                capability: "CAP_NET_ADMIN",
                ..
            }
        ));
    }

    #[test]
    fn other_errors_map_to_io_and_netlink() {
        let e = SysError::from_io(io::Error::from_raw_os_error(libc::ENOMEM), "x", CAP_NET_RAW);
        assert!(matches!(e, SysError::Io { .. }));
        assert_eq!(e.exit_code(), 71);
        let e = SysError::from_netlink(libc::EINVAL, "add route fd00::/8");
        assert!(matches!(
            e,
            SysError::Netlink {
                code: libc::EINVAL,
                ..
            }
        ));
        assert_eq!(e.exit_code(), 71);
        assert!(e.to_string().contains("add route fd00::/8 failed"));
    }

    #[test]
    fn exit_codes_of_unavailable_things() {
        let n = || "wlan0".to_string();
        assert_eq!(SysError::NoSuchInterface { name: n() }.exit_code(), 69);
        assert_eq!(SysError::InterfaceDown { name: n() }.exit_code(), 69);
        assert_eq!(SysError::NotEthernet { name: n() }.exit_code(), 69);
        assert_eq!(SysError::NoTunDevice.exit_code(), 69);
        assert_eq!(SysError::TunDeviceMode.exit_code(), 77);
        assert!(SysError::TunDeviceMode.to_string().contains("chmod 0666"));
        assert_eq!(SysError::InvalidInterfaceName { name: n() }.exit_code(), 64);
        let down = SysError::InterfaceDown { name: n() }.to_string();
        assert!(down.contains("ip link set wlan0 up"), "{down}");
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(check_ifname("wlan0").is_ok());
        assert!(check_ifname("fifteen-chars-x").is_ok());
        for bad in [
            "",
            "sixteen-chars-xx",
            "a\0b",
            "a/b",
            "a b",
            "a:1",
            ".",
            "..",
        ] {
            assert!(matches!(
                check_ifname(bad),
                Err(SysError::InvalidInterfaceName { .. })
            ));
        }
    }
}
