//! Row of `limits`: one limit an admin set on a key or key template.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "limits")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub concurrency: Option<i32>,
    pub executions: Option<i32>,
    pub share: Option<i32>,
    pub rate_count: Option<i32>,
    pub rate_period_ms: Option<i64>,
    pub burst: Option<i32>,
    pub max_cost: Option<f64>,
    pub max_tokens: Option<i64>,
    pub budget_period: Option<String>,
    pub updated_at: i64,
    pub updated_by: String,
}

impl ActiveModelBehavior for ActiveModel {}
