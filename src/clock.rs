//! The service's clock: where time enters the rules. Every adapter that applies a
//! rule takes `now` from here, already at the precision times are stored with
//! (`domain::clock`), so a time the API returns is the one it stores.

use chrono::Utc;

use crate::domain::clock::at_stored_precision;
use crate::domain::records::Timestamp;

/// The current time, at the stored precision.
pub fn now() -> Timestamp {
    at_stored_precision(Utc::now())
}
