//! Virtual time for the sans-IO core: the caller passes `now` in, nothing here reads a clock.

use core::ops::{Add, AddAssign, Sub};

/// A point in time, in microseconds since an arbitrary origin chosen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

/// A span of time in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

impl Instant {
    /// The origin of the caller's clock.
    pub const ZERO: Instant = Instant(0);

    /// An instant `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros)
    }

    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1000))
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, zero if `earlier` is later than `self`.
    pub const fn saturating_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);
    /// The longest representable span.
    pub const MAX: Duration = Duration(u64::MAX);

    /// A span of `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Self {
        Duration(micros)
    }

    /// A span of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Duration(millis.saturating_mul(1000))
    }

    /// A span of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration(secs.saturating_mul(1_000_000))
    }

    /// The span in microseconds.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The span in whole milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1000
    }

    /// The span in seconds, as a float (for reports only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// `self * num / den`, saturating, for jitter and scaling without floats.
    pub const fn mul_div(self, num: u64, den: u64) -> Duration {
        if den == 0 {
            return Duration::MAX;
        }
        let wide = (self.0 as u128 * num as u128) / den as u128;
        if wide > u64::MAX as u128 {
            Duration::MAX
        } else {
            Duration(wide as u64)
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Duration {
    type Output = Duration;
    fn sub(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_sub(rhs.0))
    }
}

/// The names of one table's timers: each maps to its own slot below the table's size.
pub trait TimerName: Copy {
    /// This timer's slot in its table.
    fn slot(self) -> usize;
}

/// Named deadlines after quinn-proto's timer table: `N` entries, one per timer name `T`.
///
/// Code that gives some state an earlier deadline arms its timer (`arm` only ever moves it
/// earlier); when the timer fires, its handler does what is due and sets the exact next
/// deadline (`set`). A deadline whose state moved on in between fires early, finds nothing
/// to do and re-arms, so state that only moves deadlines later never touches the table.
/// `next` is the minimum of `N` entries: O(1) in the size of the state the timers watch.
#[derive(Debug, Clone)]
pub struct TimerTable<T, const N: usize> {
    at: [Option<Instant>; N],
    names: core::marker::PhantomData<T>,
}

impl<T, const N: usize> Default for TimerTable<T, N> {
    fn default() -> Self {
        TimerTable {
            at: [None; N],
            names: core::marker::PhantomData,
        }
    }
}

impl<T: TimerName, const N: usize> TimerTable<T, N> {
    /// Set `timer` to exactly `at` (its handler ran and knows the next deadline).
    pub fn set(&mut self, timer: T, at: Option<Instant>) {
        if let Some(entry) = self.at.get_mut(timer.slot()) {
            *entry = at;
        }
    }

    /// Make `timer` fire no later than `at`.
    pub fn arm(&mut self, timer: T, at: Instant) {
        if let Some(entry) = self.at.get_mut(timer.slot()) {
            *entry = Some(entry.map_or(at, |t| t.min(at)));
        }
    }

    /// Whether `timer` is due at `now`; a due timer is disarmed (its handler sets the next).
    pub fn take_due(&mut self, timer: T, now: Instant) -> bool {
        match self.at.get_mut(timer.slot()) {
            Some(entry) if entry.is_some_and(|t| t <= now) => {
                *entry = None;
                true
            }
            _ => false,
        }
    }

    /// When `timer` fires next (`None`: not armed).
    pub fn get(&self, timer: T) -> Option<Instant> {
        self.at.get(timer.slot()).copied().flatten()
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    enum Name {
        A,
        B,
        C,
    }

    impl TimerName for Name {
        fn slot(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn arming_only_moves_a_deadline_earlier_and_a_due_timer_fires_once() {
        let t = |ms| Instant::ZERO + Duration::from_millis(ms);
        let mut table = TimerTable::<Name, 3>::default();
        assert_eq!(table.next(), None);
        table.arm(Name::A, t(500));
        table.arm(Name::A, t(900));
        table.arm(Name::B, t(700));
        assert_eq!(table.next(), Some(t(500)));
        table.arm(Name::A, t(200));
        assert_eq!(
            (table.next(), table.get(Name::A)),
            (Some(t(200)), Some(t(200)))
        );
        assert!(!table.take_due(Name::A, t(199)));
        assert!(!table.take_due(Name::C, t(1000)), "never armed");
        assert!(table.take_due(Name::A, t(200)));
        assert!(!table.take_due(Name::A, t(200)), "disarmed once taken");
        assert_eq!(table.next(), Some(t(700)));
        table.set(Name::B, Some(t(800)));
        assert_eq!(table.next(), Some(t(800)));
        table.set(Name::B, None);
        assert_eq!(table.next(), None);
    }

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let t = Instant::from_millis(5);
        assert_eq!(t - Instant::from_millis(7), Duration::ZERO);
        assert_eq!((t + Duration::MAX).as_micros(), u64::MAX);
        assert_eq!(
            Duration::from_secs(2).mul_div(3, 4),
            Duration::from_millis(1500)
        );
        assert_eq!(Duration::from_secs(1).mul_div(1, 0), Duration::MAX);
    }
}
