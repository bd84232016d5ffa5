//! Live events. After a change commits, its events are published on the `Hub`:
//! subscribers of one execution and of the feed receive them in this process, and,
//! with Redis configured, every other process receives them through Redis pub/sub
//! (`fanout`). The bus may drop or reorder; `streams` turns it into gapless, ordered
//! streams by reading what it missed from the events table, one read (`catch_up`)
//! for all the subscribers that missed the same; a filtered feed's question (which
//! executions does it pass) is asked once for all who share it (`feed_matches`).

pub mod catch_up;
pub mod fanout;
pub mod feed_matches;
pub mod hub;
pub mod streams;

pub use hub::Hub;
