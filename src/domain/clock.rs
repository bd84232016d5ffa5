//! The precision of time: milliseconds, as times are stored on both backends (epoch
//! milliseconds). A time is cut to it once, where it enters the service
//! (`crate::clock::now`, a client's timestamp), so a time the API returns is exactly
//! the one it filters, sorts and compares by.

use chrono::SubsecRound;

use super::records::Timestamp;

/// `duration` after `time` (a lease's end, say); a duration too long for a
/// timestamp counts as none.
pub fn after(time: Timestamp, duration: std::time::Duration) -> Timestamp {
    time + chrono::TimeDelta::from_std(duration).unwrap_or_default()
}

/// `time` cut to the stored precision.
pub fn at_stored_precision(time: Timestamp) -> Timestamp {
    time.trunc_subsecs(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_cut_to_the_millisecond() {
        let time: Timestamp = "2026-12-02T10:11:12.345678901Z".parse().unwrap();
        let cut = at_stored_precision(time);
        assert_eq!(cut.to_rfc3339(), "2026-12-02T10:11:12.345+00:00");
        assert_eq!(at_stored_precision(cut), cut);
    }
}
