//! Row of `audit_log`: who did what to which execution, when.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub at: i64,
    pub subject: String,
    pub role: String,
    pub tenant: Option<String>,
    pub action: String,
    pub execution_id: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub detail: Option<Json>,
}

impl ActiveModelBehavior for ActiveModel {}
