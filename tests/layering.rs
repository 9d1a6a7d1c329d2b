//! Dependencies point one way, down the layers: no module of the crate imports from a layer
//! above it (issue 9: routing once imported the node's interface id, the daemon the CLI's
//! identity file code). Reads the sources as text: every `crate::name` must name its own
//! layer or one below.

use std::path::{Path, PathBuf};

/// Bottom to top. A module may use its own layer and those before it.
const LAYERS: &[&str] = &[
    "time", "hexstr", "iface", "wire", "crypto", "overlay", "link", "routing", "node", "daemon",
    "sim", "lab", "cli",
];

fn rank(name: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == name)
}

fn sources(layer: &str) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let single = src.join(format!("{layer}.rs"));
    if single.is_file() {
        files.push(single);
    }
    let mut dirs = vec![src.join(layer)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files
}

/// Every `crate::name` in `text`.
fn crate_paths(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("crate::").filter_map(move |(at, _)| {
        let rest = &text[at + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let before = text[..at].chars().next_back();
        // `veilmesh_crate::` or `$crate::` are not this crate's paths.
        let own = !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        own.then(|| &rest[..end])
    })
}

#[test]
fn no_layer_imports_from_a_layer_above_it() {
    let mut upward = Vec::new();
    let mut files = 0;
    for layer in LAYERS {
        let own = rank(layer).unwrap();
        for file in sources(layer) {
            files += 1;
            let text = std::fs::read_to_string(&file).unwrap();
            for used in crate_paths(&text) {
                match rank(used) {
                    Some(r) if r > own => upward.push(format!("{}: crate::{used}", file.display())),
                    Some(_) => {}
                    None => {
                        upward.push(format!("{}: crate::{used} is in no layer", file.display()))
                    }
                }
            }
        }
    }
    assert!(files > 50, "found only {files} source files");
    assert!(
        upward.is_empty(),
        "imports from a layer above:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_scan_sees_an_upward_import() {
    let text = "use crate::node::IfaceId;\nlet x = veilmesh_crate::y; $crate::z";
    assert_eq!(crate_paths(text).collect::<Vec<_>>(), vec!["node"]);
}
