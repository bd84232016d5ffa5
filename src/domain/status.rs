//! Execution and step statuses and the transition tables that every state change is
//! checked against. This is the only place that decides whether a hop is allowed.

use std::str::FromStr;

use async_graphql::Enum;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Queued,
    Starting,
    Running,
    Paused,
    Completed,
    Failed,
    Cancelled,
    Retry,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Skipped,
}

/// A hop from `from` to `to`: `INVALID_TRANSITION` unless its table allows it.
fn allowed(allows: bool, from: &'static str, to: &'static str) -> AppResult<()> {
    if allows {
        Ok(())
    } else {
        Err(AppError::InvalidTransition { from, to })
    }
}

impl ExecutionStatus {
    pub const ALL: [ExecutionStatus; 8] = [
        Self::Queued,
        Self::Starting,
        Self::Running,
        Self::Paused,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Retry,
    ];

    /// The transition table of the architecture, enforced exactly.
    pub fn can_become(self, to: ExecutionStatus) -> bool {
        use ExecutionStatus::*;
        matches!(
            (self, to),
            (Queued, Starting | Cancelled)
                | (Starting, Running | Failed | Cancelled)
                | (Running, Paused | Completed | Failed | Cancelled)
                | (Paused, Running | Cancelled)
                | (Failed, Retry | Cancelled)
                | (Retry, Starting | Failed | Cancelled)
        )
    }

    /// Checks one hop, giving `INVALID_TRANSITION` when the table forbids it.
    pub fn check(self, to: ExecutionStatus) -> AppResult<()> {
        allowed(self.can_become(to), self.as_str(), to.as_str())
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        use ExecutionStatus::*;
        match self {
            Queued => "QUEUED",
            Starting => "STARTING",
            Running => "RUNNING",
            Paused => "PAUSED",
            Completed => "COMPLETED",
            Failed => "FAILED",
            Cancelled => "CANCELLED",
            Retry => "RETRY",
        }
    }
}

impl StepStatus {
    pub fn can_become(self, to: StepStatus) -> bool {
        use StepStatus::*;
        matches!(
            (self, to),
            (Pending, Running | Completed | Skipped | Failed)
                | (Running, Completed | Failed | Pending)
                | (Failed, Pending | Skipped)
        )
    }

    pub fn check(self, to: StepStatus) -> AppResult<()> {
        allowed(self.can_become(to), self.as_str(), to.as_str())
    }

    /// Completed or skipped: the step no longer holds back the steps after it.
    pub fn is_done(self) -> bool {
        matches!(self, Self::Completed | Self::Skipped)
    }

    pub fn as_str(self) -> &'static str {
        use StepStatus::*;
        match self {
            Pending => "PENDING",
            Running => "RUNNING",
            Completed => "COMPLETED",
            Failed => "FAILED",
            Skipped => "SKIPPED",
        }
    }
}

impl FromStr for ExecutionStatus {
    type Err = AppError;
    fn from_str(s: &str) -> AppResult<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| AppError::Internal(format!("unknown execution status {s}")))
    }
}

impl FromStr for StepStatus {
    type Err = AppError;
    fn from_str(s: &str) -> AppResult<Self> {
        use StepStatus::*;
        [Pending, Running, Completed, Failed, Skipped]
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| AppError::Internal(format!("unknown step status {s}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses_go_nowhere() {
        for to in ExecutionStatus::ALL {
            assert!(!ExecutionStatus::Completed.can_become(to));
            assert!(!ExecutionStatus::Cancelled.can_become(to));
        }
    }

    /// All 64 pairs against the architecture's table, written out independently.
    #[test]
    fn every_pair_matches_the_architecture_table() {
        use ExecutionStatus::*;
        let allowed = [
            (Queued, Starting),
            (Queued, Cancelled),
            (Starting, Running),
            (Starting, Failed),
            (Starting, Cancelled),
            (Running, Paused),
            (Running, Completed),
            (Running, Failed),
            (Running, Cancelled),
            (Paused, Running),
            (Paused, Cancelled),
            (Failed, Retry),
            (Failed, Cancelled),
            (Retry, Starting),
            (Retry, Failed),
            (Retry, Cancelled),
        ];
        for from in ExecutionStatus::ALL {
            for to in ExecutionStatus::ALL {
                let expected = allowed.contains(&(from, to));
                assert_eq!(from.can_become(to), expected, "{from:?} -> {to:?}");
                match from.check(to) {
                    Ok(()) => assert!(expected),
                    Err(AppError::InvalidTransition { from: f, to: t }) => {
                        assert!(!expected);
                        assert_eq!((f, t), (from.as_str(), to.as_str()));
                    }
                    Err(other) => panic!("unexpected {other:?}"),
                }
            }
        }
    }
}
