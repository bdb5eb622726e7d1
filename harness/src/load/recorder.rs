//! Recording latencies: one HdrHistogram per second of the measurement (or
//! per shorter interval, for callers that watch a measurement change within
//! a second), and the whole measurement as their sum. Recording never
//! allocates; an interval's histogram is put aside (one allocation per
//! interval, not per message) when the next interval starts.

use hdrhistogram::Histogram;
use std::time::Duration;

/// Largest latency a histogram tracks: 60 s in nanoseconds. Longer ones are
/// recorded as 60 s.
pub const HIGHEST_NS: u64 = 60_000_000_000;

/// Significant decimal digits kept for every value.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// An empty latency histogram: 1 ns to 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_NS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// The interval of the histograms every command but `faults` records.
pub const SECOND: Duration = Duration::from_secs(1);

/// Latencies of one load thread over the measurement.
pub struct Recorder {
    current: Histogram<u64>,
    current_second: u64,
    finished_seconds: Vec<Histogram<u64>>,
    seconds: u64,
    /// Length of one interval ("second") in nanoseconds.
    interval_ns: u64,
    /// Where the current interval ends, in nanoseconds after the start:
    /// a comparison per message where a division would do the same.
    current_end_ns: u64,
}

impl Recorder {
    /// A recorder for a measurement `seconds` long (rounded up; at least 1).
    pub fn new(seconds: u64) -> Recorder {
        Recorder::with_interval(Duration::from_secs(seconds), SECOND)
    }

    /// A recorder for a measurement `duration` long, one histogram per
    /// `interval` (the count rounded up; at least 1).
    pub fn with_interval(duration: Duration, interval: Duration) -> Recorder {
        let interval_ns = (interval.as_nanos() as u64).max(1);
        let seconds = (duration.as_nanos() as u64).div_ceil(interval_ns).max(1);
        Recorder {
            current: new_histogram(),
            current_second: 0,
            finished_seconds: Vec::with_capacity(seconds as usize),
            seconds,
            interval_ns,
            current_end_ns: interval_ns,
        }
    }

    /// Records `latency_ns` for a message that completed `at_ns` after the
    /// measurement started. Completion times never go backwards; ones past
    /// the end land in the last interval.
    #[inline]
    pub fn record(&mut self, latency_ns: u64, at_ns: u64) {
        while at_ns >= self.current_end_ns && self.current_second + 1 < self.seconds {
            self.next_second();
        }
        self.current.saturating_record(latency_ns);
    }

    fn next_second(&mut self) {
        self.finished_seconds.push(self.current.clone());
        self.current.reset();
        self.current_second += 1;
        self.current_end_ns += self.interval_ns;
    }

    /// The whole histogram (the sum of the seconds: every value lands in
    /// exactly one) and exactly one histogram per second.
    pub fn finish(mut self) -> (Histogram<u64>, Vec<Histogram<u64>>) {
        while self.current_second + 1 < self.seconds {
            self.next_second();
        }
        self.finished_seconds.push(self.current);
        let mut whole = new_histogram();
        for second in &self.finished_seconds {
            // Same bounds everywhere, so adding never fails.
            let _ = whole.add(second);
        }
        (whole, self.finished_seconds)
    }
}

/// Adds each histogram of `from` into the one of the same index in `into`
/// (one interval into the same interval), first growing `into` with empty
/// histograms to `from`'s length.
pub fn add_by_index(
    into: &mut Vec<Histogram<u64>>,
    from: &[Histogram<u64>],
) -> Result<(), hdrhistogram::AdditionError> {
    if into.len() < from.len() {
        into.resize_with(from.len(), new_histogram);
    }
    for (into, from) in into.iter_mut().zip(from) {
        into.add(from)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_their_second_and_in_the_whole() {
        let mut recorder = Recorder::new(3);
        recorder.record(1_000, 10);
        recorder.record(2_000, 2_500_000_000);
        recorder.record(HIGHEST_NS * 2, 9_000_000_000);
        let (whole, seconds) = recorder.finish();
        assert_eq!(whole.len(), 3);
        assert_eq!(seconds.len(), 3);
        assert_eq!(seconds[0].len(), 1);
        assert_eq!(seconds[1].len(), 0);
        assert_eq!(seconds[2].len(), 2);
        assert!(whole.max() >= HIGHEST_NS - HIGHEST_NS / 1000);
    }

    #[test]
    fn shorter_intervals_split_the_measurement_evenly() {
        let mut recorder = Recorder::with_interval(Duration::from_millis(950), Duration::from_millis(100));
        recorder.record(1_000, 99_999_999);
        recorder.record(1_000, 100_000_000);
        recorder.record(1_000, 949_000_000);
        let (whole, intervals) = recorder.finish();
        assert_eq!(intervals.len(), 10);
        assert_eq!(
            (intervals[0].len(), intervals[1].len(), intervals[9].len()),
            (1, 1, 1)
        );
        assert_eq!(whole.len(), 3);
    }
}
