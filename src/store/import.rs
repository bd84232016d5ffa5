//! Bulk import of whole execution histories (`exechub seed`): many new executions
//! with their tags, steps, logs and events, in one transaction per call.

use sea_orm::{ConnectionTrait, DbBackend};

use super::Store;
use super::mapping::execution_to_row;
use super::writes::{insert_chunked, write_parts, write_tags};
use crate::domain::change::Change;
use crate::error::AppResult;

impl Store {
    pub async fn import(&self, histories: &[Change]) -> AppResult<()> {
        let imported = async {
            let (_turn, txn) = self.begin_write().await?;
            let rows = histories
                .iter()
                .map(|c| execution_to_row(&c.execution))
                .collect();
            insert_chunked(&txn, rows, None).await?;
            let executions: Vec<_> = histories.iter().map(|c| &c.execution).collect();
            write_tags(&txn, &executions, false).await?;
            let changes: Vec<&Change> = histories.iter().collect();
            write_parts(&txn, &changes).await?;
            txn.commit().await?;
            Ok(())
        };
        self.recorded(imported.await)
    }

    /// After a bulk import: the query planner's statistics, so that it picks the
    /// indexes the imported data calls for, and on Postgres the visibility map, so
    /// that covering indexes are read without the table.
    pub async fn analyze(&self) -> AppResult<()> {
        let statement = match self.db.get_database_backend() {
            DbBackend::Postgres => "VACUUM ANALYZE",
            _ => "ANALYZE",
        };
        self.db.execute_unprepared(statement).await?;
        Ok(())
    }
}
