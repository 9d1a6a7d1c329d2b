//! Log output: warnings only by default; `-v` adds one line per neighbour, route and address
//! change, `-vv` link sessions and control connections, `-vvv` everything.

use tracing::Level;

/// The most detailed level shown for `verbose` repetitions of `-v`.
pub fn level_for(verbose: u8) -> Level {
    match verbose {
        0 => Level::WARN,
        1 => Level::INFO,
        2 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// Send logs to stderr at the level for `verbose` (a second call is ignored).
pub fn init(verbose: u8) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level_for(verbose))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_v_shows_more() {
        assert_eq!(level_for(0), Level::WARN);
        assert_eq!(level_for(1), Level::INFO);
        assert_eq!(level_for(2), Level::DEBUG);
        assert_eq!(level_for(9), Level::TRACE);
    }
}
