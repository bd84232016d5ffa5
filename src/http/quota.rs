//! How many operations one principal may keep open at once, over every WebSocket
//! and SSE stream of the process (`--max-subscriptions-per-principal`): each holds
//! memory and a share of every event's fan-out, so one token cannot open a hundred
//! thousand of them. (Per connection, `ws` counts its own.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::auth::Principal;

#[derive(Clone)]
pub struct Quota {
    per_principal: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open operation, counted until dropped.
pub struct Held {
    quota: Quota,
    principal: String,
}

impl Quota {
    pub fn new(per_principal: usize) -> Self {
        Quota {
            per_principal,
            open: Arc::default(),
        }
    }

    /// Counts one more operation of `principal`, or `None` when it has its most.
    pub fn hold(&self, principal: &Principal) -> Option<Held> {
        let key = format!(
            "{}\n{}\n{:?}",
            principal.role.as_str(),
            principal.subject,
            principal.tenant
        );
        let mut open = self.lock();
        let count = open.entry(key.clone()).or_default();
        if *count >= self.per_principal {
            return None;
        }
        *count += 1;
        Some(Held {
            quota: self.clone(),
            principal: key,
        })
    }

    /// Why an operation was refused.
    pub fn refusal(&self) -> String {
        format!(
            "at most {} subscriptions per principal at once (--max-subscriptions-per-principal)",
            self.per_principal
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.quota.lock();
        if let Some(count) = open.get_mut(&self.principal) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.principal);
            }
        }
    }
}
