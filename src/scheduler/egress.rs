//! The one HTTP client through which executions reach the network: `http` steps and
//! webhook deliveries. Unless `--allow-private-destinations`, it never connects to
//! a loopback, private, link-local or otherwise internal address: a host name is
//! resolved by the client's own resolver, which keeps only public addresses, so
//! the address checked is the address connected to (a name that resolves to a
//! public address when checked and to an internal one when connecting gets
//! nowhere); an address written in the URL, in any of its spellings, is checked as
//! parsed; and every redirect hop is checked the same way.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

use crate::domain::webhooks::is_private;

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// Why a destination was refused: it is internal.
#[derive(Debug)]
pub struct PrivateDestination(pub String);

impl fmt::Display for PrivateDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is a private address (allow with --allow-private-destinations)",
            self.0
        )
    }
}

impl StdError for PrivateDestination {}

/// The guarded client, and whether private destinations are allowed.
#[derive(Clone)]
pub struct Egress {
    client: reqwest::Client,
    allow_private: bool,
}

impl Egress {
    /// Guarded unless `allow_private`; follows redirects (each hop checked) only
    /// when `follow_redirects`.
    pub fn new(allow_private: bool, follow_redirects: bool) -> reqwest::Result<Self> {
        Ok(Egress {
            client: client(allow_private, follow_redirects)?,
            allow_private,
        })
    }

    /// A POST to `url`, unless its host is a private address.
    pub fn post(&self, url: reqwest::Url) -> Result<reqwest::RequestBuilder, PrivateDestination> {
        if !self.allow_private {
            refuse_literal(&url)?;
        }
        Ok(self.client.post(url))
    }
}

fn client(allow_private: bool, follow_redirects: bool) -> reqwest::Result<reqwest::Client> {
    let redirects = redirect::Policy::custom(move |attempt| {
        if !follow_redirects {
            attempt.stop()
        } else if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if !allow_private && let Err(refused) = refuse_literal(attempt.url()) {
            attempt.error(refused)
        } else {
            attempt.follow()
        }
    });
    let builder = reqwest::Client::builder().redirect(redirects);
    if allow_private {
        return builder.build();
    }
    // A proxy would resolve names itself, past the resolver that checks them.
    builder
        .no_proxy()
        .dns_resolver(Arc::new(PublicOnly))
        .build()
}

/// Refuses a URL whose host is an internal address written as an address (the
/// resolver never sees those). Names pass: the resolver checks what they resolve to.
fn refuse_literal(url: &reqwest::Url) -> Result<(), PrivateDestination> {
    let host = url.host_str().unwrap_or_default();
    match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) if is_private(ip) => Err(PrivateDestination(host.to_owned())),
        _ => Ok(()),
    }
}

/// Whether `error`, or any error behind it, is a refused destination.
pub fn is_refused(error: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<PrivateDestination>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// `error` with the errors behind it, which reqwest's own message leaves out.
pub fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut described = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        described.push_str(": ");
        described.push_str(&error.to_string());
        cause = error.source();
    }
    described
}

/// Resolves names as the system does, keeping only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = resolved.filter(|a| !is_private(a.ip())).collect();
            if public.is_empty() {
                let refused: Box<dyn StdError + Send + Sync> = Box::new(PrivateDestination(host));
                return Err(refused);
            }
            let addresses: Addrs = Box::new(public.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_an_internal_address_is_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://0.0.0.0/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::127.0.0.1]/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://10.0.0.1:8080/x",
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            assert!(refuse_literal(&url).is_err(), "{url}");
        }
        let public = reqwest::Url::parse("https://93.184.215.14/").unwrap();
        assert!(refuse_literal(&public).is_ok());
    }
}
