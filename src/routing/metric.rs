//! Link and path metrics: ETX from delivery ratios, hop penalty, hysteresis.

/// An unusable link or route.
pub const INFINITY: u16 = 0xFFFF;
/// Delivery ratio 1.0 in the u16 fixed point used by Ihu entries.
pub const QUALITY_ONE: u16 = 0xFFFF;
/// Cost of a perfect link (ETX 1).
pub const ETX_ONE: u16 = 256;
/// Added to every link so that, at equal loss, fewer hops win.
pub const HOP_PENALTY: u16 = 32;
/// A candidate replaces the current route only if it is better by at least this much...
pub const HYSTERESIS_MIN: u16 = 16;
/// ...and by at least 1/HYSTERESIS_DIVISOR of the current metric.
pub const HYSTERESIS_DIVISOR: u16 = 8;

/// ETX cost 256 / (rx · tx) with ratios in u16 fixed point; saturates to INFINITY.
pub fn etx_cost(rx: u16, tx: u16) -> u16 {
    if rx == 0 || tx == 0 {
        return INFINITY;
    }
    let one = QUALITY_ONE as u64;
    let cost = ETX_ONE as u64 * one * one / (rx as u64 * tx as u64);
    if cost >= INFINITY as u64 {
        INFINITY
    } else {
        cost as u16
    }
}

/// Cost of one link: ETX plus the hop penalty.
pub fn link_cost(rx: u16, tx: u16) -> u16 {
    add(etx_cost(rx, tx), HOP_PENALTY)
}

/// Path metric addition: INFINITY absorbs, finite sums saturate to INFINITY.
pub fn add(a: u16, b: u16) -> u16 {
    a.saturating_add(b)
}

/// Whether `candidate` is enough better than `current` to switch routes.
pub fn clearly_better(candidate: u16, current: u16) -> bool {
    if current == INFINITY {
        return candidate < INFINITY;
    }
    let margin = (current / HYSTERESIS_DIVISOR).max(HYSTERESIS_MIN);
    candidate < current.saturating_sub(margin)
}

/// Whether a link cost moved enough to re-evaluate routes through it (≥ 1/16 or infinity crossed).
pub fn needs_reevaluation(old: u16, new: u16) -> bool {
    if (old == INFINITY) != (new == INFINITY) {
        return true;
    }
    old.abs_diff(new) as u32 * 16 >= old as u32
}

/// Whether a link cost moved enough to count as a local topology change (≥ 1/4, or infinity crossed).
pub fn is_large_change(old: u16, new: u16) -> bool {
    if (old == INFINITY) != (new == INFINITY) {
        return true;
    }
    old.abs_diff(new) as u32 * 4 >= old as u32
}

/// A ratio `num / den` in u16 fixed point.
pub fn ratio(num: u32, den: u32) -> u16 {
    if den == 0 {
        return 0;
    }
    (num.min(den) as u64 * QUALITY_ONE as u64 / den as u64) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(p: f64) -> u16 {
        (p * QUALITY_ONE as f64).round() as u16
    }

    #[test]
    fn etx_values() {
        assert_eq!(etx_cost(QUALITY_ONE, QUALITY_ONE), 256);
        assert_eq!(etx_cost(QUALITY_ONE / 2, QUALITY_ONE), 512);
        assert_eq!(etx_cost(q(0.6), q(0.6)), 711);
        assert_eq!(etx_cost(0, QUALITY_ONE), INFINITY);
        assert_eq!(etx_cost(1, 1), INFINITY);
        assert_eq!(link_cost(QUALITY_ONE, QUALITY_ONE), 288);
    }

    #[test]
    fn lossy_direct_link_loses_to_clean_two_hops() {
        let direct = link_cost(q(0.6), q(0.6));
        let two_hop = add(
            link_cost(QUALITY_ONE, QUALITY_ONE),
            link_cost(QUALITY_ONE, QUALITY_ONE),
        );
        assert_eq!((direct, two_hop), (743, 576));
        assert!(clearly_better(two_hop, direct));
        assert!(clearly_better(link_cost(QUALITY_ONE, QUALITY_ONE), two_hop));
    }

    #[test]
    fn hysteresis_and_change_thresholds() {
        assert!(!clearly_better(560, 576));
        assert!(clearly_better(500, 576));
        assert!(clearly_better(1000, INFINITY));
        assert!(!clearly_better(INFINITY, INFINITY));
        assert!(needs_reevaluation(288, 306));
        assert!(!needs_reevaluation(288, 300));
        assert!(is_large_change(288, INFINITY));
        assert!(is_large_change(288, 360));
        assert!(!is_large_change(288, 340));
        assert_eq!(add(65000, 1000), INFINITY);
        assert_eq!(ratio(3, 4), 49151);
        assert_eq!(ratio(1, 0), 0);
    }
}
