//! The medium's filter: one nftables bridge-family table in the air namespace.
//!
//! Policy drop on the bridge's forward hook; frames that are not EtherType 0x88B5 (or, in a
//! lab with `carry_ipv6`, 0x86DD: another daemon's link-local IPv6 peering) are dropped; a verdict map keyed by `(in port, out port)` accepts exactly the directions of
//! links that are not cut, through a per-direction chain that first drops `loss`‰ of the
//! frames at random. The bridge floods a broadcast to every port and the hook runs once
//! per egress port, so a broadcast reaches exactly the sender's radio neighbours. The
//! output hook drops everything the air namespace itself would send (IPv6 noise of the
//! bridge device). The whole table is replaced in one `nft -f` transaction.

use std::fmt::Write;

use super::names::{port, TABLE};
use super::state::LinkState;

/// EtherType of veilmesh frames (docs/protocol.md); the only one the medium carries.
pub use crate::wire::ETHERTYPE;

/// EtherType of IPv6, carried along the links when a lab asks for it.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// The complete ruleset (delete-and-recreate, applied atomically by `nft -f`). With
/// `carry_ipv6` IPv6 frames take the same per-link verdicts (cuts, loss) as veil's, so a
/// daemon peering over link-local IPv6 sees exactly the lab's topology; NDP and multicast
/// are filtered per egress port like veil's broadcasts.
pub fn ruleset(links: &[LinkState], carry_ipv6: bool) -> String {
    let mut out = String::new();
    // `add` then `delete` makes the delete succeed whether or not the table exists.
    let _ = writeln!(out, "add table bridge {TABLE}");
    let _ = writeln!(out, "delete table bridge {TABLE}");
    let _ = writeln!(out, "table bridge {TABLE} {{");
    let _ = writeln!(out, "    chain forward {{");
    let _ = writeln!(
        out,
        "        type filter hook forward priority 0; policy drop;"
    );
    if carry_ipv6 {
        let _ = writeln!(
            out,
            "        ether type != {{ 0x{ETHERTYPE:04x}, 0x{ETHERTYPE_IPV6:04x} }} drop"
        );
    } else {
        let _ = writeln!(out, "        ether type != 0x{ETHERTYPE:04x} drop");
    }
    let mut entries = Vec::new();
    let mut chains = String::new();
    for l in links.iter().filter(|l| !l.cut && l.loss_permille < 1000) {
        for (from, to) in [(l.a, l.b), (l.b, l.a)] {
            let key = format!("\"{}\" . \"{}\"", port(from), port(to));
            if l.loss_permille == 0 {
                entries.push(format!("{key} : accept"));
                continue;
            }
            let chain = format!("l{from}_{to}");
            entries.push(format!("{key} : jump {chain}"));
            let _ = writeln!(chains, "    chain {chain} {{");
            let _ = writeln!(
                chains,
                "        numgen random mod 1000 < {} drop",
                l.loss_permille
            );
            let _ = writeln!(chains, "        accept");
            let _ = writeln!(chains, "    }}");
        }
    }
    if !entries.is_empty() {
        let _ = writeln!(out, "        iifname . oifname vmap {{");
        for e in &entries {
            let _ = writeln!(out, "            {e},");
        }
        let _ = writeln!(out, "        }}");
    }
    let _ = writeln!(out, "    }}");
    let _ = writeln!(out, "    chain output {{");
    let _ = writeln!(
        out,
        "        type filter hook output priority 0; policy drop;"
    );
    let _ = writeln!(out, "    }}");
    out.push_str(&chains);
    let _ = writeln!(out, "}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(a: usize, b: usize, loss_permille: u16, cut: bool) -> LinkState {
        LinkState {
            a,
            b,
            loss_permille,
            cut,
        }
    }

    #[test]
    fn lossless_links_accept_both_directions() {
        let r = ruleset(&[link(1, 2, 0, false), link(2, 3, 0, false)], false);
        assert!(r.starts_with("add table bridge veil_lab\ndelete table bridge veil_lab\n"));
        assert!(r.contains("policy drop;"));
        assert!(r.contains("ether type != 0x88b5 drop"));
        for d in [
            "\"n1\" . \"n2\"",
            "\"n2\" . \"n1\"",
            "\"n2\" . \"n3\"",
            "\"n3\" . \"n2\"",
        ] {
            assert!(r.contains(&format!("{d} : accept,")), "{d} in\n{r}");
        }
        assert!(!r.contains("\"n1\" . \"n3\""));
        assert!(!r.contains("numgen"));
        assert!(!r.contains("86dd"), "IPv6 only when asked:\n{r}");
    }

    #[test]
    fn ipv6_when_asked_takes_the_same_link_verdicts() {
        let links = [link(1, 2, 0, false), link(2, 3, 150, false)];
        let r = ruleset(&links, true);
        assert!(r.contains("ether type != { 0x88b5, 0x86dd } drop"), "{r}");
        assert!(!r.contains("ether type != 0x88b5 drop"));
        // Everything after the EtherType line is the same map and chains as without IPv6.
        let tail = |r: &str| r.split_once(" drop\n").map(|(_, t)| t.to_string()).unwrap();
        assert_eq!(tail(&r), tail(&ruleset(&links, false)));
        assert!(r.contains("\"n2\" . \"n3\" : jump l2_3,"));
        assert!(!r.contains("\"n1\" . \"n3\""));
    }

    #[test]
    fn lossy_links_get_a_chain_per_direction_and_cut_links_nothing() {
        let r = ruleset(
            &[
                link(1, 2, 150, false),
                link(2, 3, 0, true),
                link(3, 4, 1000, false),
            ],
            false,
        );
        assert!(r.contains("\"n1\" . \"n2\" : jump l1_2,"));
        assert!(r.contains("\"n2\" . \"n1\" : jump l2_1,"));
        assert!(r.contains(
            "chain l1_2 {\n        numgen random mod 1000 < 150 drop\n        accept\n    }"
        ));
        assert!(
            !r.contains("n3"),
            "cut and fully lossy links must be absent:\n{r}"
        );
    }

    #[test]
    fn no_links_means_no_map_but_a_valid_table() {
        let r = ruleset(&[link(1, 2, 0, true)], false);
        assert!(!r.contains("vmap"));
        assert_eq!(r.matches('{').count(), r.matches('}').count());
        assert!(r.contains("chain output {"));
    }
}
