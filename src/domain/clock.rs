//! The precision of time: milliseconds, as times are stored on both backends (epoch
//! milliseconds). A time is cut to it once, where it enters the service
//! (`crate::clock::now`, a client's timestamp), so a time the API returns is exactly
//! the one it filters, sorts and compares by.

use chrono::SubsecRound;

use super::records::Timestamp;

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
