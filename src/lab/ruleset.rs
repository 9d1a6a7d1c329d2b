//! The medium's filter: one nftables bridge-family table in the air namespace.
//!
//! Policy drop on the bridge's forward hook; frames that are not EtherType 0x88B5 are
//! dropped; a verdict map keyed by `(in port, out port)` accepts exactly the directions of
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

/// The complete ruleset (delete-and-recreate, applied atomically by `nft -f`).
pub fn ruleset(links: &[LinkState]) -> String {
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
    let _ = writeln!(out, "        ether type != 0x{ETHERTYPE:04x} drop");
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
        let r = ruleset(&[link(1, 2, 0, false), link(2, 3, 0, false)]);
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
    }

    #[test]
    fn lossy_links_get_a_chain_per_direction_and_cut_links_nothing() {
        let r = ruleset(&[
            link(1, 2, 150, false),
            link(2, 3, 0, true),
            link(3, 4, 1000, false),
        ]);
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
        let r = ruleset(&[link(1, 2, 0, true)]);
        assert!(!r.contains("vmap"));
        assert_eq!(r.matches('{').count(), r.matches('}').count());
        assert!(r.contains("chain output {"));
    }
}
