//! Admins' commands on flow control: set a limit, remove one, seed them from the
//! limits file at start; and the view of what each limited key holds. A limit is
//! not a change to an execution: it is saved with its audit row and takes effect at
//! the next start its keys are asked about (`domain::limits`).

use super::Service;
use crate::auth::{Permission, Principal, Role};
use crate::clock;
use crate::domain::limits::{KeyTemplate, Limit, LimitInput, limit_for, wait};
use crate::domain::records::Timestamp;
use crate::error::{AppError, AppResult};
use crate::store::KeyState;

/// One limit with what each key it limits holds now.
pub struct LimitView {
    pub limit: Limit,
    pub keys: Vec<KeyView>,
}

pub struct KeyView {
    pub state: KeyState,
    /// Starts the rate allows at once now.
    pub tokens_left: Option<u32>,
    /// When the limit's budget period began, if it has a budget.
    pub period_start: Option<Timestamp>,
}

impl KeyView {
    /// What the key spent in the current budget period: cost and tokens.
    pub fn spent(&self) -> (f64, i64) {
        let usage = &self.state.usage;
        match self.period_start {
            Some(start) if usage.period_start == Some(start) => {
                (usage.spent_cost, usage.spent_tokens)
            }
            _ => (0.0, 0),
        }
    }
}

impl Service {
    /// Sets a limit on its key (replacing the one there), as `by`, an admin.
    pub async fn set_limit(&self, by: &Principal, input: LimitInput) -> AppResult<Limit> {
        by.require(Permission::ManageLimits)?;
        let limit = Limit::parse(input, &by.subject, clock::now())?;
        self.0
            .store
            .save_limits(by, std::slice::from_ref(&limit))
            .await?;
        Ok(limit)
    }

    /// Removes the limit on `key`; false when there was none.
    pub async fn remove_limit(&self, by: &Principal, key: &str) -> AppResult<bool> {
        by.require(Permission::ManageLimits)?;
        let key = KeyTemplate::parse("key", key)?.to_string();
        (self.0.store).remove_limit(by, &key, clock::now()).await
    }

    /// Sets the limits of the limits file, as the admin `config`, all or none: a
    /// bad one, or a key named twice, stops the start, naming its place in the file.
    pub async fn seed_limits(&self, inputs: Vec<LimitInput>) -> AppResult<()> {
        let by = Principal {
            subject: "config".into(),
            role: Role::Admin,
            tenant: None,
        };
        let now = clock::now();
        let mut limits: Vec<Limit> = Vec::new();
        for (index, input) in inputs.into_iter().enumerate() {
            let in_file = |field: &str| format!("limit[{index}].{field}");
            let limit = Limit::parse(input, &by.subject, now).map_err(|error| match error {
                AppError::BadInput { field, message } => {
                    AppError::bad_input(in_file(&field), message)
                }
                other => other,
            })?;
            if limits.iter().any(|l| l.key == limit.key) {
                return Err(AppError::bad_input(
                    in_file("key"),
                    format!("`{}` is named twice", limit.key),
                ));
            }
            limits.push(limit);
        }
        self.0.store.save_limits(&by, &limits).await
    }

    /// Every limit with what its keys hold, for admins and for operators of no
    /// tenant (a key names customers).
    pub async fn limits(&self, by: &Principal) -> AppResult<Vec<LimitView>> {
        by.require(Permission::ReadLimits)?;
        if by.tenant.is_some() && by.role != Role::Admin {
            return Err(AppError::Forbidden(
                "a tenant's token may not read every tenant's limits".into(),
            ));
        }
        let store = &self.0.store;
        store.reload_limits().await?;
        let limits = store.limits();
        let mut views: Vec<LimitView> = (limits.iter())
            .map(|limit| LimitView {
                limit: limit.clone(),
                keys: Vec::new(),
            })
            .collect();
        let now = clock::now();
        for state in store.key_states().await? {
            // A share's count (`share <key>`) shows under the limit of its key.
            let limited = wait::key_of(&state.key);
            let Some(limit) = limit_for(&limits, limited) else {
                continue;
            };
            let index = limits.iter().position(|l| l == limit).expect("one of them");
            let tokens_left =
                (limit.rate.as_ref()).map(|rate| rate.tokens_left(state.usage.tat, now));
            let period_start = limit.budget.as_ref().map(|b| b.period.start(now));
            let usage = &state.usage;
            let idle = usage.running == 0
                && usage.executions == 0
                && usage.executions_waiting == 0
                && state.waiting_steps == 0;
            if idle && tokens_left.is_none() && period_start.is_none() {
                continue;
            }
            let view = KeyView {
                state,
                tokens_left,
                period_start,
            };
            views[index].keys.push(view);
        }
        Ok(views)
    }
}
