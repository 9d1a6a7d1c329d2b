//! `lab.json`: everything another `veil lab` process needs to find and change a running
//! lab (namespaces, links and their state, daemon pids), written atomically on each change.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::LabError;
use crate::sim::Topology;

/// Version of the `lab.json` layout; a different one is refused rather than misread.
pub const STATE_VERSION: u32 = 1;
/// Largest `lab.json` read (a lab of `MAX_NODES` is far below it).
const MAX_STATE_BYTES: u64 = 4 << 20;

/// One undirected link between 1-based nodes `a < b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkState {
    /// Lower node (1-based).
    pub a: usize,
    /// Higher node (1-based).
    pub b: usize,
    /// Frames lost per 1000, each direction independently.
    pub loss_permille: u16,
    /// Cut by `veil lab cut`: nothing crosses until `heal`.
    pub cut: bool,
}

/// The persistent description of a lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    /// `STATE_VERSION`.
    pub version: u32,
    /// Name prefix of every namespace.
    pub prefix: String,
    /// Topology spec as parsed.
    pub topology: String,
    /// Seed given on the command line (recorded for reproduction).
    pub seed: u64,
    /// Number of nodes.
    pub nodes: usize,
    /// The medium's namespace.
    pub air_ns: String,
    /// Node namespaces, node 1 first.
    pub node_ns: Vec<String>,
    /// Links of the topology, with their current state.
    pub links: Vec<LinkState>,
    /// Daemon pid per node (None: not running / not started).
    pub pids: Vec<Option<u32>>,
    /// The `veil` binary the daemons run.
    pub veil_bin: PathBuf,
    /// A command that runs the daemons instead of `veil_bin` (program and arguments, e.g.
    /// `qemu-mipsel-static target/…/veil`); `veil_bin` still answers status queries.
    #[serde(default)]
    pub daemon_cmd: Vec<String>,
    /// The lab's run directory (`lab.json`, one directory per node).
    pub run_dir: PathBuf,
    /// The medium also carries IPv6 along the links (`LabOptions::carry_ipv6`); kept here
    /// so that a later `cut`/`heal`/`loss` rebuilds the same filter. Absent in older files.
    #[serde(default)]
    pub carry_ipv6: bool,
}

impl LabState {
    /// Links of `topo` (0-based) as 1-based link states with `loss_permille`.
    pub fn links_of(topo: &Topology, loss_permille: Option<u16>) -> Vec<LinkState> {
        topo.links()
            .iter()
            .map(|l| LinkState {
                a: l.a.min(l.b) + 1,
                b: l.a.max(l.b) + 1,
                loss_permille: loss_permille.unwrap_or_else(|| permille(l.params.loss * 100.0)),
                cut: false,
            })
            .collect()
    }

    /// The link between `a` and `b` (either order), if the topology has it.
    pub fn link_mut(&mut self, a: usize, b: usize) -> Option<&mut LinkState> {
        let (a, b) = (a.min(b), a.max(b));
        self.links.iter_mut().find(|l| l.a == a && l.b == b)
    }

    /// Path of `lab.json` in `run_dir`.
    pub fn path_in(run_dir: &Path) -> PathBuf {
        run_dir.join("lab.json")
    }

    /// Writes `lab.json` atomically (temporary file, then rename).
    pub fn save(&self) -> Result<(), LabError> {
        let path = Self::path_in(&self.run_dir);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| LabError::State {
            path: path.clone(),
            problem: e.to_string(),
        })?;
        std::fs::write(&tmp, text + "\n").map_err(|e| LabError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LabError::io(&path, e))
    }

    /// Reads and checks `run_dir/lab.json`.
    pub fn load(run_dir: &Path) -> Result<LabState, LabError> {
        let path = Self::path_in(run_dir);
        let meta = std::fs::metadata(&path).map_err(|e| LabError::io(&path, e))?;
        if meta.len() > MAX_STATE_BYTES {
            return Err(LabError::State {
                path,
                problem: format!("larger than {MAX_STATE_BYTES} bytes"),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| LabError::io(&path, e))?;
        Self::parse(&text, &path)
    }

    /// Parses `text` (from `path`, named in errors) and checks it is self-consistent.
    pub fn parse(text: &str, path: &Path) -> Result<LabState, LabError> {
        let bad = |problem: String| LabError::State {
            path: path.to_path_buf(),
            problem,
        };
        let s: LabState = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if s.version != STATE_VERSION {
            return Err(bad(format!(
                "version {} (this veil understands {STATE_VERSION})",
                s.version
            )));
        }
        if s.node_ns.len() != s.nodes || s.pids.len() != s.nodes {
            return Err(bad(format!(
                "{} nodes but {} namespaces and {} pids",
                s.nodes,
                s.node_ns.len(),
                s.pids.len()
            )));
        }
        let in_range = |l: &LinkState| l.a >= 1 && l.a < l.b && l.b <= s.nodes;
        if let Some(l) = s.links.iter().find(|l| !in_range(l)) {
            return Err(bad(format!("link {}-{} out of range", l.a, l.b)));
        }
        Ok(s)
    }
}

/// A loss in percent as frames per 1000, clamped to 0..=1000.
pub fn permille(pct: f64) -> u16 {
    if pct.is_nan() {
        return 0;
    }
    (pct * 10.0).round().clamp(0.0, 1000.0) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LabState {
        let topo = Topology::parse("line:3").unwrap();
        LabState {
            version: STATE_VERSION,
            prefix: "t-".into(),
            topology: "line:3".into(),
            seed: 7,
            nodes: 3,
            air_ns: "t-air".into(),
            node_ns: vec!["t-n1".into(), "t-n2".into(), "t-n3".into()],
            links: LabState::links_of(&topo, Some(25)),
            pids: vec![Some(10), None, Some(12)],
            veil_bin: "/usr/bin/veil".into(),
            daemon_cmd: Vec::new(),
            run_dir: "/run/veil-lab/t-".into(),
            carry_ipv6: true,
        }
    }

    #[test]
    fn round_trips_through_json_and_files() {
        let s = sample();
        assert_eq!(
            s.links,
            vec![
                LinkState {
                    a: 1,
                    b: 2,
                    loss_permille: 25,
                    cut: false
                },
                LinkState {
                    a: 2,
                    b: 3,
                    loss_permille: 25,
                    cut: false
                },
            ]
        );
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(LabState::parse(&text, Path::new("x")).unwrap(), s);
        // A lab.json written before `carry_ipv6` existed reads as a veil-only medium.
        let old = text.replace(",\"carry_ipv6\":true", "");
        assert_ne!(old, text);
        let old = LabState::parse(&old, Path::new("x")).unwrap();
        assert!(!old.carry_ipv6);
        let dir = std::env::temp_dir().join(format!("veil-lab-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s2 = LabState {
            run_dir: dir.clone(),
            ..s
        };
        s2.save().unwrap();
        assert_eq!(LabState::load(&dir).unwrap(), s2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn inconsistent_or_foreign_files_are_refused() {
        let p = Path::new("/run/veil-lab/t-/lab.json");
        let mut s = sample();
        s.version = 9;
        let e = LabState::parse(&serde_json::to_string(&s).unwrap(), p).unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
        let mut s = sample();
        s.pids.pop();
        let e = LabState::parse(&serde_json::to_string(&s).unwrap(), p).unwrap_err();
        assert!(e.to_string().contains("2 pids"), "{e}");
        let mut s = sample();
        s.links[0].b = 4;
        assert!(LabState::parse(&serde_json::to_string(&s).unwrap(), p).is_err());
        assert!(LabState::parse("{", p)
            .unwrap_err()
            .to_string()
            .contains("lab.json"));
    }

    #[test]
    fn link_lookup_and_permille() {
        let mut s = sample();
        s.link_mut(3, 2).unwrap().cut = true;
        assert!(s.links[1].cut);
        assert!(s.link_mut(1, 3).is_none());
        assert_eq!(permille(2.5), 25);
        assert_eq!(permille(100.0), 1000);
        assert_eq!(permille(250.0), 1000);
        assert_eq!(permille(-1.0), 0);
        assert_eq!(permille(f64::NAN), 0);
    }
}
