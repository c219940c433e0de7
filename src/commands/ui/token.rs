//! The UI's token: random, in the printed URL, then in a cookie, as Jupyter does, so that
//! other users of the machine cannot read the runs. Compared in constant time.

use hyper::header::{AUTHORIZATION, COOKIE, HeaderMap};

/// The secret every request must carry: `?token=`, the cookie, or `Authorization: token ...`.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    secret: String,
    cookie: String,
}

impl Token {
    /// A new random token (24 bytes, hex) for a server on `port`: the cookie's name holds the
    /// port, since browsers share cookies between the ports of one host.
    pub(crate) fn random(port: u16) -> Token {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        let secret = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Token { secret, cookie: format!("lockstep-ui-{port}") }
    }

    /// The secret, for the printed URL.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether `query`'s `token` parameter is the secret.
    pub(crate) fn in_query(&self, query: &str) -> bool {
        query.split('&').filter_map(|pair| pair.strip_prefix("token=")).any(|t| self.matches(t))
    }

    /// Whether the request's cookie or `Authorization` header carries the secret.
    pub(crate) fn in_headers(&self, headers: &HeaderMap) -> bool {
        let cookie = headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).any(|v| {
            v.split(';').filter_map(|c| c.trim().split_once('=')).any(|(k, t)| k == self.cookie && self.matches(t))
        });
        let authorization = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("token "))
            .is_some_and(|t| self.matches(t));
        cookie || authorization
    }

    /// The `Set-Cookie` value that lets the browser in from now on: never sent to scripts,
    /// nor along with requests from other sites.
    pub(crate) fn set_cookie(&self) -> String {
        format!("{}={}; Path=/; HttpOnly; SameSite=Strict", self.cookie, self.secret)
    }

    /// Constant-time comparison: how long it takes says nothing about how much matched.
    fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.secret.as_bytes(), given.as_bytes());
        let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
        for (i, x) in a.iter().enumerate() {
            diff |= x ^ b.get(i).copied().unwrap_or(0);
        }
        diff == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_accepted_in_the_query_the_cookie_or_the_header_only_when_whole() {
        let t = Token::random(8080);
        assert_eq!(t.secret().len(), 48);
        assert_ne!(t.secret(), Token::random(8080).secret(), "random");
        assert!(t.in_query(&format!("a=1&token={}", t.secret())));
        assert!(!t.in_query(&format!("token={}", &t.secret()[..47])), "a prefix is not the token");
        assert!(!t.in_query(&format!("token={}0", t.secret())));
        assert!(!t.in_query("token="));
        let mut h = HeaderMap::new();
        assert!(!t.in_headers(&h));
        h.insert(COOKIE, format!("x=1; lockstep-ui-8080={}", t.secret()).parse().unwrap());
        assert!(t.in_headers(&h));
        h.insert(COOKIE, format!("lockstep-ui-9090={}", t.secret()).parse().unwrap());
        assert!(!t.in_headers(&h), "another server's cookie");
        h.insert(AUTHORIZATION, format!("token {}", t.secret()).parse().unwrap());
        assert!(t.in_headers(&h));
        assert!(t.set_cookie().contains("HttpOnly") && t.set_cookie().starts_with("lockstep-ui-8080="));
    }
}
