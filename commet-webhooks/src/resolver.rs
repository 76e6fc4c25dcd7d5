//! The DNS resolver of the strict client: resolves with the system resolver, then drops every
//! address [`is_forbidden_address`](commet_core::delivery::is_forbidden_address) refuses, at connection time (so a name that resolved to a
//! public address when the endpoint was saved and to `127.0.0.1` now is still refused).

use std::error::Error;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

type BoxError = Box<dyn Error + Send + Sync>;

use commet_core::delivery::is_forbidden_address;

/// Resolves names to public addresses only.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's) on the addresses.
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|error| -> BoxError { Box::new(error) })?
                .collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| {
                    let forbidden = is_forbidden_address(address.ip());
                    if forbidden && refused.is_none() {
                        refused = Some(address.ip());
                    }
                    !forbidden
                })
                .collect();
            if allowed.is_empty() {
                let error: BoxError = match refused {
                    Some(ip) => Box::new(ForbiddenAddressError { host, ip }),
                    None => Box::new(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{host} resolves to no address"),
                    )),
                };
                return Err(error);
            }
            let addresses: Addrs = Box::new(allowed.into_iter());
            Ok(addresses)
        })
    }
}

/// A host resolved to forbidden addresses only. Found again in reqwest's error chain to report
/// [`FailureKind::ForbiddenAddress`](commet_engine::webhooks::FailureKind::ForbiddenAddress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForbiddenAddressError {
    /// The name as resolved.
    pub(crate) host: String,
    /// The first forbidden address it resolved to.
    pub(crate) ip: IpAddr,
}

impl fmt::Display for ForbiddenAddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} resolves to {}, a private, loopback or otherwise non-public address, and the \
             request does not allow private addresses",
            self.host, self.ip
        )
    }
}

impl Error for ForbiddenAddressError {}
