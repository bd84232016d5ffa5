//! Row of `idempotency_keys`: the execution created for a client idempotency key.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub execution_id: String,
    pub created_at: i64,
}

impl ActiveModelBehavior for ActiveModel {}
