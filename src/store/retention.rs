//! Deleting old log lines. Executions, steps and events are history and are kept;
//! logs are the bulk of the data and age out.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::Store;
use super::entities::log;
use super::mapping::to_ms;
use crate::domain::records::Timestamp;
use crate::error::AppResult;

impl Store {
    /// Deletes log lines stamped before `cutoff`; returns how many.
    pub async fn delete_logs_before(&self, cutoff: Timestamp) -> AppResult<u64> {
        let deleted = log::Entity::delete_many()
            .filter(log::Column::Timestamp.lt(to_ms(cutoff)))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}
