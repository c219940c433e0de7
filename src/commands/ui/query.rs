//! A request's query string: `name=value` pairs, percent-decoded (`+` is a space, as forms
//! send it).

use crate::support::text::percent_decode;

/// The pairs of a query, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Parse `query` (without the `?`).
    pub(crate) fn parse(query: &str) -> Query {
        let decode = |s: &str| percent_decode(&s.replace('+', " "));
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    /// The first non-empty value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    /// The pairs, without `token`: what a redirect after the token keeps.
    pub(crate) fn without_token(&self) -> String {
        let kept: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| k != "token")
            .map(|(k, v)| format!("{}={}", super::html::q(k), super::html::q(v)))
            .collect();
        kept.join("&")
    }

    /// The query with `name` set to `value` (or removed when `value` is empty), encoded.
    pub(crate) fn with(&self, name: &str, value: &str) -> String {
        let mut pairs: Vec<(String, String)> =
            self.0.iter().filter(|(k, _)| k != name && k != "token").cloned().collect();
        if !value.is_empty() {
            pairs.push((name.to_string(), value.to_string()));
        }
        pairs.iter().map(|(k, v)| format!("{}={}", super::html::q(k), super::html::q(v))).collect::<Vec<_>>().join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_decoded_and_rewritten() {
        let q = Query::parse("param=alpha%3D0.5&status=&sort=-rmse&token=abc&x+y=a+b");
        assert_eq!(q.get("param"), Some("alpha=0.5"));
        assert_eq!(q.get("status"), None, "empty is absent");
        assert_eq!(q.get("x y"), Some("a b"));
        assert_eq!(q.without_token(), "param=alpha%3D0.5&status=&sort=-rmse&x%20y=a%20b");
        assert_eq!(q.with("sort", "start"), "param=alpha%3D0.5&status=&x%20y=a%20b&sort=start");
        assert_eq!(Query::parse(""), Query::default());
    }
}
