//! What a rule sees: the execution with its steps (and its webhooks, for the
//! commands that read them), as read under lock in the transaction that will save
//! the rule's change.

use super::change::Change;
use super::limits::{self, Usage};
use super::progress;
use super::records::{Execution, Step, Webhook};
use super::schedule;
use crate::error::AppResult;

pub struct Snapshot {
    pub execution: Execution,
    pub steps: Vec<Step>,
    /// Read only for the commands that ask for them; empty otherwise.
    pub webhooks: Vec<Webhook>,
    /// The limits in force and what the keys of these steps hold, as the rules
    /// before in the same transaction left them; idle when no limit is set.
    pub usage: Usage,
}

impl Snapshot {
    /// The state `change` leaves: what the next rule of a shared transaction sees.
    /// (Webhooks are not read for shared transactions, so they are not followed.)
    pub fn advance(&mut self, change: &Change) {
        self.execution = change.execution.clone();
        progress::merge_into(&mut self.steps, &change.steps);
        self.usage.advance(&change.limits);
    }

    /// `rule`'s change on this snapshot, settled: the steps it made ready are
    /// handed out in the same change (`schedule::settle`) unless it crossed the
    /// execution's budget (`limits::budget`), and the slots of steps
    /// that stopped running are given back (`limits::account`).
    pub fn settle<F>(&self, rule: F) -> AppResult<Change>
    where
        F: FnOnce(&Snapshot) -> AppResult<Change>,
    {
        let mut change = rule(self)?;
        limits::budget::enforce(&mut change, &self.execution, &self.usage)?;
        schedule::settle(&mut change, &self.execution, &self.steps);
        limits::share::share_out(&mut change, &self.usage);
        limits::account(&mut change, &self.execution, &self.steps, &self.usage);
        Ok(change)
    }
}
