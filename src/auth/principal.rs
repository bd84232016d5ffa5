//! Who is calling and what they may do. Roles and tenants exactly as the architecture
//! says: admin everything; operator every read and mutation within its tenant (but
//! not stored credentials); agent
//! reads and step/log/metric reports within its tenant; viewer reads within its tenant.

use std::str::FromStr;

use async_graphql::SimpleObject;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Agent,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Agent => "agent",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "agent" => Ok(Role::Agent),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "unknown role `{other}` (admin, operator, agent, viewer)"
            )),
        }
    }
}

/// What a request wants to do to an execution.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Permission {
    Read,
    /// Create executions.
    Create,
    /// Lifecycle and update mutations.
    Manage,
    /// Step reports, logs, metrics, progress and checkpoints.
    Report,
    /// Read credentials stored for an execution (its webhooks' header values).
    ReadSecrets,
    /// Read the limits and what their keys hold, across tenants.
    ReadLimits,
    /// Set and remove limits.
    ManageLimits,
}

/// Which executions a principal may see, for use in SQL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TenantScope {
    /// Every execution (admin).
    All,
    /// Executions whose customer or provider is this tenant.
    Tenant(String),
    /// A non-admin token without a tenant: only executions that belong to no tenant.
    Unowned,
}

#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
#[graphql(complex)]
pub struct Principal {
    pub subject: String,
    #[graphql(skip)]
    pub role: Role,
    pub tenant: Option<String>,
}

#[async_graphql::ComplexObject]
impl Principal {
    #[graphql(name = "role")]
    async fn role_name(&self) -> &'static str {
        self.role.as_str()
    }
}

impl Principal {
    /// The scheduler acting on its own: sees every tenant.
    pub fn scheduler() -> Principal {
        Principal {
            subject: crate::domain::schedule::SCHEDULER.into(),
            role: Role::Admin,
            tenant: None,
        }
    }

    pub fn scope(&self) -> TenantScope {
        match (&self.role, &self.tenant) {
            (Role::Admin, _) => TenantScope::All,
            (_, Some(tenant)) => TenantScope::Tenant(tenant.clone()),
            (_, None) => TenantScope::Unowned,
        }
    }

    /// Whether the execution with these owners is visible to this principal.
    pub fn sees(&self, customer_id: Option<&str>, provider_id: Option<&str>) -> bool {
        match self.scope() {
            TenantScope::All => true,
            TenantScope::Tenant(t) => customer_id == Some(&t) || provider_id == Some(&t),
            TenantScope::Unowned => customer_id.is_none() && provider_id.is_none(),
        }
    }

    /// Whether the role allows the action at all (tenancy is checked separately).
    pub fn require(&self, permission: Permission) -> AppResult<()> {
        let allowed = match self.role {
            Role::Admin => true,
            Role::Operator => !matches!(
                permission,
                Permission::ReadSecrets | Permission::ManageLimits
            ),
            Role::Agent => matches!(permission, Permission::Read | Permission::Report),
            Role::Viewer => permission == Permission::Read,
        };
        if allowed {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "role {} may not {}",
                self.role.as_str(),
                match permission {
                    Permission::Read => "read executions",
                    Permission::Create => "create executions",
                    Permission::Manage => "change an execution's lifecycle",
                    Permission::Report => "report on steps",
                    Permission::ReadSecrets => "read stored credentials",
                    Permission::ReadLimits => "read limits",
                    Permission::ManageLimits => "set limits",
                }
            )))
        }
    }

    /// The customer of a new execution: the given one, or the caller's tenant; a
    /// tenant-bound caller may only create executions its tenant takes part in.
    pub fn owner_for_new(
        &self,
        customer_id: Option<String>,
        provider_id: Option<&str>,
    ) -> AppResult<Option<String>> {
        let customer_id = customer_id.or_else(|| match self.role {
            Role::Admin => None,
            _ => self.tenant.clone(),
        });
        if self.sees(customer_id.as_deref(), provider_id) {
            Ok(customer_id)
        } else {
            Err(AppError::Forbidden(
                "customerId or providerId must be your tenant".into(),
            ))
        }
    }
}
