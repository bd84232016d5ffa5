//! Row of `webhook_outbox`: an event whose first webhook delivery is still to do.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub execution_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub sequence: i64,
    pub created_at: i64,
}

impl ActiveModelBehavior for ActiveModel {}
