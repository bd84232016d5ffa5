//! A principal's tenant scope as an SQL condition on executions, so that every read
//! sees only what the caller may see.

use sea_orm::{ColumnTrait, Condition};

use super::entities::execution::Column;
use crate::auth::TenantScope;

pub fn condition(scope: &TenantScope) -> Condition {
    match scope {
        TenantScope::All => Condition::all(),
        TenantScope::Tenant(tenant) => Condition::any()
            .add(Column::CustomerId.eq(tenant.as_str()))
            .add(Column::ProviderId.eq(tenant.as_str())),
        TenantScope::Unowned => Condition::all()
            .add(Column::CustomerId.is_null())
            .add(Column::ProviderId.is_null()),
    }
}
