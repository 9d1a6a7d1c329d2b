//! Names of everything a lab creates, derived from its prefix, and their checks.
//!
//! A lab with prefix `P` owns namespaces `Pair` (the medium) and `Pn1`..`PnN` (the nodes)
//! and the run directory `/run/veil-lab/P/`. Inside the air namespace node `i`'s port is
//! `n<i>`; inside node `i`'s namespace its only mesh interface is `wlan0`.

use std::path::PathBuf;

/// Default prefix of `veil lab` and [`crate::lab::LabOptions`].
pub const DEFAULT_PREFIX: &str = "vl-";
/// Where every lab's run directory lives.
pub const RUN_ROOT: &str = "/run/veil-lab";
/// Longest accepted prefix: `<prefix>n<MAX_NODES>` stays within 15 characters.
pub const MAX_PREFIX_LEN: usize = 10;
/// Most nodes in one lab (a veth pair, a namespace and a daemon each).
pub const MAX_NODES: usize = 999;
/// The bridge (the medium) inside the air namespace.
pub const BRIDGE: &str = "air";
/// The mesh interface inside every node namespace.
pub const MESH_IF: &str = "wlan0";
/// The nftables bridge-family table in the air namespace.
pub const TABLE: &str = "veil_lab";
/// Linux's limit on interface names (IFNAMSIZ - 1); namespaces are kept within it too.
pub const IFNAME_MAX: usize = 15;
const _: () = assert!(MAX_PREFIX_LEN + "n999".len() <= IFNAME_MAX && MAX_NODES <= 999);

/// Checks a prefix: 1..=MAX_PREFIX_LEN of `[a-z0-9_-]`, starting with a letter.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN {
        return Err(format!("must be 1 to {MAX_PREFIX_LEN} characters"));
    }
    if !prefix.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter".to_string());
    }
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if !prefix.chars().all(ok) {
        return Err("may only contain a-z, 0-9, '-' and '_'".to_string());
    }
    Ok(())
}

/// The air (medium) namespace of a lab.
pub fn air_ns(prefix: &str) -> String {
    format!("{prefix}air")
}

/// Node `i`'s (1-based) namespace.
pub fn node_ns(prefix: &str, i: usize) -> String {
    format!("{prefix}n{i}")
}

/// Node `i`'s port on the bridge, inside the air namespace.
pub fn port(i: usize) -> String {
    format!("n{i}")
}

/// Node `i`'s wlan0 MAC: locally administered, the index in the low bytes.
pub fn mac(i: usize) -> String {
    let b = (i as u32).to_be_bytes();
    format!("02:76:6c:{:02x}:{:02x}:{:02x}", b[1], b[2], b[3])
}

/// The run directory of a lab.
pub fn run_dir(prefix: &str) -> PathBuf {
    PathBuf::from(RUN_ROOT).join(prefix)
}

/// Whether `name` is one of the namespaces a lab with `prefix` would create.
pub fn is_lab_ns(prefix: &str, name: &str) -> bool {
    match name.strip_prefix(prefix) {
        Some("air") => true,
        Some(rest) => rest
            .strip_prefix('n')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_ifnamsiz_for_the_longest_prefix_and_node() {
        let p = "abcdefghij";
        check_prefix(p).unwrap();
        assert_eq!(node_ns(p, MAX_NODES), "abcdefghijn999");
        assert!(node_ns(p, MAX_NODES).len() <= IFNAME_MAX);
        assert!(air_ns(p).len() <= IFNAME_MAX);
        assert!(port(MAX_NODES).len() <= IFNAME_MAX);
        assert_eq!(air_ns("vl-"), "vl-air");
        assert_eq!(node_ns("vl-", 3), "vl-n3");
        assert_eq!(mac(1), "02:76:6c:00:00:01");
        assert_eq!(mac(258), "02:76:6c:00:01:02");
        assert_eq!(run_dir("vl-"), PathBuf::from("/run/veil-lab/vl-"));
    }

    #[test]
    fn bad_prefixes_are_refused_with_a_reason() {
        assert!(check_prefix("").unwrap_err().contains("1 to 10"));
        assert!(check_prefix("abcdefghijk").is_err());
        assert!(check_prefix("1ab").unwrap_err().contains("letter"));
        assert!(check_prefix("a/b").unwrap_err().contains("a-z"));
        assert!(check_prefix("a b").is_err());
        assert!(check_prefix("t_1-").is_ok());
    }

    #[test]
    fn only_this_labs_namespaces_match() {
        assert!(is_lab_ns("vl-", "vl-air"));
        assert!(is_lab_ns("vl-", "vl-n12"));
        assert!(!is_lab_ns("vl-", "vl-n"));
        assert!(!is_lab_ns("vl-", "vl-nx"));
        assert!(!is_lab_ns("vl-", "vl-x1"));
        assert!(!is_lab_ns("vl-", "other"));
        assert!(!is_lab_ns("vl-", "vl-n1a"));
    }
}
