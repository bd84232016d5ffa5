//! The rules of webhook delivery, without I/O: which events an execution's webhooks
//! want, the payload and its signature, the backoff between attempts, and which
//! destinations are refused (private and loopback addresses, unless allowed).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::change::Change;
use super::records::{Event, Execution, Webhook};
use super::values::EventType;

/// The union of the event types `webhooks` want, in declaration order.
pub fn watched<'a>(webhooks: impl Iterator<Item = &'a Webhook>) -> Vec<EventType> {
    let mut kinds: Vec<EventType> = Vec::new();
    for kind in webhooks.flat_map(|w| w.events.iter().copied()) {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

/// The events of a change that its execution's webhooks want delivered.
pub fn wanted(change: &Change) -> impl Iterator<Item = &Event> {
    change
        .events
        .iter()
        .filter(|e| change.execution.webhook_events.contains(&e.kind))
}

/// A webhook's headers as a reader sees them: every value when `values_shown`, else
/// the names with each value `[redacted]` (headers often carry credentials).
pub fn shown_headers(headers: &Option<Value>, values_shown: bool) -> Option<Value> {
    match headers {
        Some(Value::Object(headers)) if !values_shown => Some(Value::Object(
            (headers.keys())
                .map(|name| (name.clone(), Value::from("[redacted]")))
                .collect(),
        )),
        other => other.clone(),
    }
}

/// An event type as webhooks name it: `EXECUTION_COMPLETED` → `execution.completed`.
pub fn event_name(kind: EventType) -> String {
    kind.as_str().to_lowercase().replacen('_', ".", 1)
}

/// The body POSTed for `event`: the execution's state after it.
pub fn payload(event: &Event, execution: &Execution) -> Value {
    json!({
        "event": event_name(event.kind),
        "sequence": event.sequence,
        "timestamp": event.timestamp,
        "execution": {
            "id": execution.id,
            "status": event.status,
            "progress": event.progress,
            "result": event.payload.result.as_ref().or(execution.result.as_ref()),
            "error": event.payload.error.as_ref().or(execution.error.as_ref()),
        }
    })
}

/// `X-Exechub-Signature`: `sha256=` and the hex HMAC-SHA256 of `timestamp.body`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The wait before attempt `attempt + 1`: 1 s, 2 s, 4 s, … up to an hour.
pub fn backoff(attempt: i32) -> Duration {
    let exponent = attempt.clamp(1, 13) as u32 - 1;
    Duration::from_secs(2u64.pow(exponent)).min(Duration::from_secs(3600))
}

/// Whether `ip` is loopback, private, link-local or otherwise not on the internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.octets()[0] == 0 // 0/8, "this network"
                || v4.octets()[0] >= 240 // 240/4, reserved
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64/10
                || v4.octets()[..3] == [192, 0, 0] // 192.0.0/24, protocol assignments
                || v4.octets()[0] == 198 && (v4.octets()[1] & 0xfe) == 18 // 198.18/15
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let embedded = |high: u16, low: u16| {
                is_private(IpAddr::V4(Ipv4Addr::from(
                    (u32::from(high) << 16) | u32::from(low),
                )))
            };
            match segments {
                // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d).
                [0, 0, 0, 0, 0, 0xffff, high, low] | [0x64, 0xff9b, 0, 0, 0, 0, high, low] => {
                    embedded(high, low)
                }
                // IPv4-compatible (::a.b.c.d, deprecated), :: and ::1 among them.
                [0, 0, 0, 0, 0, 0, _, _] => true,
                // 6to4 (2002:a.b.c.d::/48).
                [0x2002, high, low, ..] => embedded(high, low),
                [first, ..] => {
                    v6.is_multicast()
                        || (first & 0xfe00) == 0xfc00 // unique local
                        || (first & 0xffc0) == 0xfe80 // link-local
                        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_signatures_and_backoff() {
        assert_eq!(
            event_name(EventType::ExecutionCompleted),
            "execution.completed"
        );
        assert_eq!(event_name(EventType::LogAppended), "log.appended");
        // Computed independently: printf '1.{}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            signature("key", 1, "{}"),
            "sha256=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(40), Duration::from_secs(3600));
    }

    #[test]
    fn private_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "::",
            "64:ff9b::10.0.0.1",
            "2002:7f00:1::1",
            "0.0.0.0",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }
}
