//! A rate: at most `count` starts per `period`, with `burst` of them at once, kept
//! by the generic cell rate algorithm (GCRA): one stored instant per key, the
//! theoretical arrival time (`tat`) of the next start. A start is allowed while
//! `tat - (burst - 1) × interval ≤ now`; it moves `tat` one interval on. In any
//! window of one period at most `count + burst - 1` starts are allowed.

use std::time::Duration;

use chrono::TimeDelta;

use crate::domain::records::Timestamp;
use crate::error::{AppError, AppResult};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
    /// How many starts may go at once after a quiet spell (at least 1).
    pub burst: u32,
}

/// The largest count and burst accepted.
const MAX_COUNT: u32 = 1_000_000;

impl Rate {
    /// Parses `60/min`, `10/s`, `1000/h`, `5/10s` (a count, a slash and a period
    /// as humantime reads it, with `s`, `min`, `h` and `d` alone meaning one of them).
    pub fn parse(field: &str, text: &str, burst: Option<i32>) -> AppResult<Rate> {
        let bad = |why: &str| AppError::bad_input(field, format!("`{text}`: {why}"));
        let (count, period) = text
            .split_once('/')
            .ok_or_else(|| bad("a rate is a count per period, e.g. 60/min"))?;
        let count: u32 = (count.trim().parse().ok())
            .filter(|c| (1..=MAX_COUNT).contains(c))
            .ok_or_else(|| bad("the count is a whole number from 1 to 1000000"))?;
        let period = period.trim();
        let starts_with_digit = period.starts_with(|c: char| c.is_ascii_digit());
        let spelled = if starts_with_digit {
            period.to_owned()
        } else {
            format!("1{period}")
        };
        let period = humantime::parse_duration(&spelled)
            .ok()
            .filter(|p| *p >= Duration::from_millis(1) && *p <= Duration::from_secs(31 * 86_400))
            .ok_or_else(|| bad("the period is a duration from 1ms to 31d, e.g. s, min, h, 10s"))?;
        let burst = match burst {
            None => 1,
            Some(b) if (1..=MAX_COUNT as i32).contains(&b) => b as u32,
            Some(_) => {
                return Err(AppError::bad_input(
                    "burst",
                    "the burst is a whole number from 1 to 1000000",
                ));
            }
        };
        Ok(Rate {
            count,
            period,
            burst,
        })
    }

    /// The rate as `parse` reads it (the burst apart).
    pub fn text(&self) -> String {
        format!("{}/{}", self.count, humantime::format_duration(self.period))
    }

    /// Time between two starts at the steady rate.
    fn interval(&self) -> TimeDelta {
        let nanos = self.period.as_nanos() / u128::from(self.count);
        TimeDelta::nanoseconds(nanos.max(1) as i64)
    }

    /// How far ahead of `now` `tat` may be: room for the burst.
    fn tolerance(&self) -> TimeDelta {
        self.interval() * (self.burst as i32 - 1)
    }

    /// A start at `now` with the key's `tat`: the new `tat` when allowed, or the
    /// earliest instant a start is allowed.
    pub fn admit(&self, tat: Option<Timestamp>, now: Timestamp) -> Result<Timestamp, Timestamp> {
        let tat = tat.unwrap_or(now).max(now);
        let allowed_from = tat - self.tolerance();
        if allowed_from > now {
            Err(allowed_from)
        } else {
            Ok(tat + self.interval())
        }
    }

    /// Whether a start reserved for `until` may go at `now`: from then on, for one
    /// interval. A step that comes later than that asks again, so that late starts
    /// never pile up.
    pub fn honours(&self, until: Timestamp, now: Timestamp) -> bool {
        until <= now && now < until + self.interval()
    }

    /// The arrival time that allows no start before `until` (a service that
    /// answered "retry after" pauses the key until then).
    pub fn paused_until(&self, until: Timestamp) -> Timestamp {
        until + self.tolerance()
    }

    /// How many starts are allowed at once at `now`.
    pub fn tokens_left(&self, tat: Option<Timestamp>, now: Timestamp) -> u32 {
        let ahead = tat.unwrap_or(now).max(now) - now;
        let used = ahead.num_nanoseconds().unwrap_or(i64::MAX) as f64
            / self.interval().num_nanoseconds().unwrap_or(1) as f64;
        (self.burst as f64 - used.ceil()).max(0.0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn rates_parse_with_a_period_and_refuse_what_is_not_one() {
        let rate = Rate::parse("rate", "60/min", None).unwrap();
        assert_eq!(
            (rate.count, rate.period, rate.burst),
            (60, Duration::from_secs(60), 1)
        );
        assert_eq!(
            Rate::parse("rate", "5/10s", Some(3)).unwrap().period,
            Duration::from_secs(10)
        );
        assert_eq!(Rate::parse("rate", "10 / s", None).unwrap().count, 10);
        for bad in [
            "60",
            "0/min",
            "-1/s",
            "x/s",
            "60/fortnight",
            "60/0s",
            "1/400d",
        ] {
            let error = Rate::parse("rate", bad, None).unwrap_err();
            assert!(
                matches!(&error, AppError::BadInput { field, .. } if field == "rate"),
                "{bad}: {error:?}"
            );
        }
        let error = Rate::parse("rate", "1/s", Some(0)).unwrap_err();
        assert!(matches!(error, AppError::BadInput { field, .. } if field == "burst"));
    }

    #[test]
    fn no_period_holds_more_than_the_count_and_the_burst() {
        let rate = Rate::parse("rate", "10/s", Some(3)).unwrap();
        let start = Utc::now();
        let mut tat = None;
        let mut starts: Vec<chrono::DateTime<Utc>> = Vec::new();
        // Someone asking every millisecond for three seconds.
        for ms in 0..3000 {
            let now = start + TimeDelta::milliseconds(ms);
            if let Ok(next) = rate.admit(tat, now) {
                tat = Some(next);
                starts.push(now);
            }
        }
        assert_eq!(rate.tokens_left(tat, *starts.last().unwrap()), 0);
        for (i, first) in starts.iter().enumerate() {
            let within = starts[i..]
                .iter()
                .filter(|t| **t - *first < TimeDelta::seconds(1))
                .count();
            assert!(
                within < 10 + 3,
                "{within} starts within a second of {first}"
            );
        }
        assert!(starts.len() >= 30, "{} starts", starts.len());
        let last = *starts.last().unwrap();
        let refused = rate.admit(tat, last).unwrap_err();
        assert_eq!(
            refused,
            last + TimeDelta::milliseconds(100),
            "one interval on"
        );
        assert_eq!(rate.tokens_left(None, start), 3);
    }
}
