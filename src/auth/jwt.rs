//! Bearer tokens: verifying them into a `Principal`, and minting them for
//! `exechub token`. The algorithm is pinned by the configured key (HS256 for a
//! secret, RS256 or ES256 for a PEM key); `exp` is required; `iss` and `aud` are
//! checked when configured. With no key configured, a secret is generated once into
//! the data directory and shared by `serve` and `token`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::principal::{Principal, Role};
use crate::config::JwtConfig;
use crate::error::{AppError, AppResult};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    exp: u64,
    #[serde(default)]
    iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    /// One audience or several (RFC 7519 allows both); `Validation` checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<serde_json::Value>,
}

/// The shortest HS256 secret accepted: a shorter one can be guessed offline from
/// any token it signed (and an empty one makes anyone an admin).
pub const MIN_SECRET_BYTES: usize = 32;

fn checked_secret(secret: &str, source: &str) -> anyhow::Result<()> {
    if secret.len() < MIN_SECRET_BYTES {
        anyhow::bail!(
            "{source} is {} bytes; it must be at least {MIN_SECRET_BYTES} \
             (generate one with `openssl rand -base64 48`)",
            secret.len()
        );
    }
    Ok(())
}

pub struct Keys {
    algorithm: Algorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
}

/// The file in the data directory that holds a generated secret.
pub const GENERATED_SECRET_FILE: &str = "jwt-secret";

/// A PEM given inline, or the path of a file that holds it.
fn read_pem(value: &str) -> anyhow::Result<Vec<u8>> {
    if value.trim_start().starts_with("-----BEGIN") {
        Ok(value.as_bytes().to_vec())
    } else {
        std::fs::read(value).with_context(|| format!("reading key file {value}"))
    }
}

fn generated_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(GENERATED_SECRET_FILE);
    if let Ok(secret) = std::fs::read_to_string(&path) {
        let secret = secret.trim().to_owned();
        checked_secret(&secret, &format!("the secret in {}", path.display()))?;
        return Ok(secret);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    tracing::info!(path = %path.display(), "generated a JWT secret");
    Ok(secret)
}

impl Keys {
    pub fn load(config: &JwtConfig, data_dir: &Path) -> anyhow::Result<Self> {
        let (algorithm, decoding, encoding) = match (&config.secret, &config.public_key) {
            (Some(_), Some(_)) => {
                anyhow::bail!("set either EXECHUB_JWT_SECRET or EXECHUB_JWT_PUBLIC_KEY, not both")
            }
            (_, Some(public)) => {
                let pem = read_pem(public)?;
                let private = config.private_key.as_deref().map(read_pem).transpose()?;
                if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                    let encoding = private
                        .map(|p| EncodingKey::from_rsa_pem(&p))
                        .transpose()
                        .context("EXECHUB_JWT_PRIVATE_KEY is not an RSA PEM key")?;
                    (Algorithm::RS256, key, encoding)
                } else {
                    let key = DecodingKey::from_ec_pem(&pem)
                        .context("EXECHUB_JWT_PUBLIC_KEY is neither an RSA nor an EC PEM key")?;
                    let encoding = private
                        .map(|p| EncodingKey::from_ec_pem(&p))
                        .transpose()
                        .context("EXECHUB_JWT_PRIVATE_KEY is not an EC PEM key")?;
                    (Algorithm::ES256, key, encoding)
                }
            }
            (Some(secret), None) => {
                checked_secret(secret, "EXECHUB_JWT_SECRET (--jwt-secret)")?;
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(secret.as_bytes()),
                    Some(EncodingKey::from_secret(secret.as_bytes())),
                )
            }
            (None, None) => {
                let secret = generated_secret(data_dir)?;
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(secret.as_bytes()),
                    Some(EncodingKey::from_secret(secret.as_bytes())),
                )
            }
        };
        let mut validation = Validation::new(algorithm);
        let mut required = vec!["exp", "sub"];
        required.extend(config.issuer.as_ref().map(|_| "iss"));
        required.extend(config.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        validation.leeway = 5;
        validation.validate_nbf = true;
        match &config.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Ok(Keys {
            algorithm,
            decoding,
            encoding,
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        })
    }

    /// A principal from a bearer token, or `UNAUTHENTICATED` saying why not.
    pub fn verify(&self, token: &str) -> AppResult<Principal> {
        self.verify_expiring(token).map(|(principal, _)| principal)
    }

    /// `verify`, with when the token expires (its `exp`), for connections that
    /// outlive requests.
    pub fn verify_expiring(&self, token: &str) -> AppResult<(Principal, SystemTime)> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AppError::Unauthenticated(token_refusal(&e)))?;
        let claims = data.claims;
        let expires =
            (UNIX_EPOCH.checked_add(Duration::from_secs(claims.exp))).ok_or_else(|| {
                AppError::Unauthenticated("invalid token: its `exp` is out of range".into())
            })?;
        if claims.tenant.as_deref().is_some_and(str::is_empty) {
            return Err(AppError::Unauthenticated(
                "invalid token: its `tenant` is empty (leave it out for no tenant)".into(),
            ));
        }
        let principal = Principal {
            subject: claims.sub,
            role: claims.role,
            tenant: claims.tenant,
        };
        Ok((principal, expires))
    }

    /// A signed token for `exechub token`.
    pub fn mint(
        &self,
        role: Role,
        tenant: Option<String>,
        subject: String,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let encoding = self.encoding.as_ref().context(
            "minting needs the private key: set EXECHUB_JWT_PRIVATE_KEY next to EXECHUB_JWT_PUBLIC_KEY",
        )?;
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: subject,
            role,
            tenant,
            exp: now + ttl.as_secs(),
            iat: now,
            iss: self.issuer.clone(),
            aud: self.audience.clone().map(serde_json::Value::String),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(self.algorithm),
            &claims,
            encoding,
        )?)
    }
}

/// Why a token was refused, in words a person can act on: a bad signature most
/// often means the token was minted with another key (another data directory).
fn token_refusal(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => "invalid token: it was not signed with this server's key \
            (mint it with the same --data-dir or --jwt-secret as the server: `exechub token`)"
            .into(),
        ErrorKind::ExpiredSignature => "invalid token: it has expired; mint a new one".into(),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => {
            "invalid token: it is not a JWT (send the token `exechub token` printed)".into()
        }
        _ => format!("invalid token: {error}"),
    }
}
