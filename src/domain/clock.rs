//! Where time enters the domain. Times are kept to the millisecond, the precision
//! they are stored with on both backends (epoch milliseconds), and cut to it once,
//! here: a time the API returns is exactly the one it filters, sorts and compares by.

use chrono::{SubsecRound, Utc};

use super::records::Timestamp;

/// The current time, at the stored precision.
pub fn now() -> Timestamp {
    at_stored_precision(Utc::now())
}

/// `time` cut to the stored precision (a client's timestamp, say).
pub fn at_stored_precision(time: Timestamp) -> Timestamp {
    time.trunc_subsecs(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_cut_to_the_millisecond() {
        let time: Timestamp = "2026-12-02T10:11:12.345678901Z".parse().unwrap();
        assert_eq!(
            at_stored_precision(time).to_rfc3339(),
            "2026-12-02T10:11:12.345+00:00"
        );
        assert_eq!(now(), at_stored_precision(now()));
    }
}
