//! Row of `checkpoints`: one checkpoint of one execution.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "checkpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub execution_id: String,
    pub timestamp: i64,
    pub step_id: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub state: Json,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
}

impl ActiveModelBehavior for ActiveModel {}
