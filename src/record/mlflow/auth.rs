//! Who sends a request: credentials from MLflow's variables or from the tracking URI's
//! user-info (kept out of every URL shown), and the CA certificates trusted for TLS.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::TrackingError;

/// A password or token: `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How requests prove who sends them; `Debug` never shows the secret.
#[derive(Clone)]
pub(super) enum Auth {
    Bearer(String),
    Basic(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Auth::Bearer(_) => "Bearer(..)",
            Auth::Basic(_) => "Basic(..)",
        })
    }
}

impl Auth {
    pub(super) fn header(&self) -> String {
        match self {
            Auth::Bearer(token) => format!("Bearer {token}"),
            Auth::Basic(encoded) => format!("Basic {encoded}"),
        }
    }
}

/// Split `scheme://user:pass@host/...` into the URI without user-info (and without a
/// trailing `/`) and the user-info.
pub(super) fn split_userinfo(uri: &str) -> Result<(String, Option<String>), TrackingError> {
    let shown = crate::source::git::strip_credentials(uri);
    let bad = |reason| TrackingError::BadUri { uri: shown.clone(), reason };
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| bad("it has no scheme"))?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(bad("only http:// and https:// servers are supported"));
    }
    if rest.contains(['?', '#']) {
        return Err(bad("a server URI has no query or fragment"));
    }
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, authority),
    };
    if host.is_empty() {
        return Err(bad("it names no host"));
    }
    Ok((format!("{}://{host}{}", scheme.to_ascii_lowercase(), path.trim_end_matches('/')), userinfo))
}

pub(super) fn read_certificates(path: &Path) -> Result<ureq::tls::RootCerts, TrackingError> {
    let err = |message: String| TrackingError::Certificate { path: path.to_path_buf(), message };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| err(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(ureq::tls::RootCerts::Specific(Arc::new(certs)))
}
