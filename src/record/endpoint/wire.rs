//! The REST API's wire format as MLflow's client speaks it: requests (a JSON body, or the
//! query string of a GET), answers, and errors as `{error_code, message}` with MLflow's
//! status codes. Every mistake of the client is a 4xx: the client retries 5xx for minutes.

use serde_json::{Map, Value, json};

use crate::record::logged::float;

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ApiError {
    pub(super) status: u16,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl ApiError {
    /// 400 `INVALID_PARAMETER_VALUE`: what the client sent is not acceptable.
    pub(super) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError { status: 400, code: "INVALID_PARAMETER_VALUE", message: message.into() }
    }

    /// 404 `RESOURCE_DOES_NOT_EXIST`.
    pub(super) fn missing(message: impl Into<String>) -> ApiError {
        ApiError { status: 404, code: "RESOURCE_DOES_NOT_EXIST", message: message.into() }
    }

    /// 400 `RESOURCE_ALREADY_EXISTS`.
    pub(super) fn exists(message: impl Into<String>) -> ApiError {
        ApiError { status: 400, code: "RESOURCE_ALREADY_EXISTS", message: message.into() }
    }

    /// 404 `ENDPOINT_NOT_FOUND`.
    pub(super) fn no_endpoint(method: &str, path: &str) -> ApiError {
        ApiError { status: 404, code: "ENDPOINT_NOT_FOUND", message: format!("No API endpoint for {method} {path}") }
    }

    /// The body of the answer.
    pub(super) fn body(&self) -> Value {
        json!({ "error_code": self.code, "message": self.message })
    }
}

/// What a handler answers: a JSON body (200) or an error.
pub(super) type Answer = Result<Value, ApiError>;

/// The fields of a request, from its JSON body or (for a GET) its query string, where a list
/// is the key repeated.
#[derive(Debug, Default)]
pub(super) struct Request {
    fields: Map<String, Value>,
}

impl Request {
    /// A request from its query string and body.
    pub(super) fn parse(query: &str, body: &[u8]) -> Result<Request, ApiError> {
        let mut fields = Map::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (form_decode(k), Value::String(form_decode(v)));
            match fields.get_mut(&k) {
                Some(Value::Array(list)) => list.push(v),
                Some(first) => *first = Value::Array(vec![first.take(), v]),
                None => {
                    fields.insert(k, v);
                }
            }
        }
        if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => fields.extend(map),
                Ok(_) => return Err(ApiError::invalid("the request body is not a JSON object")),
                Err(e) => return Err(ApiError::invalid(format!("the request body is not valid JSON: {e}"))),
            }
        }
        Ok(Request { fields })
    }

    /// A field as sent.
    pub(super) fn value(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// A string field, absent when empty.
    pub(super) fn str(&self, key: &str) -> Option<&str> {
        match self.fields.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(Value::Array(list)) => list.first().and_then(Value::as_str).filter(|s| !s.is_empty()),
            _ => None,
        }
    }

    /// A string field that must be there.
    pub(super) fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.str(key).ok_or_else(|| missing_field(key))
    }

    /// The run a request names (`run_id`, or the older `run_uuid`).
    pub(super) fn run_id(&self) -> Result<&str, ApiError> {
        self.str("run_id").or_else(|| self.str("run_uuid")).ok_or_else(|| missing_field("run_id"))
    }

    /// An integer field (a number, or a string of one as proto3 JSON allows).
    pub(super) fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => int_of(v).map(Some).ok_or_else(|| ApiError::invalid(format!("'{key}' is not an integer: {v}"))),
        }
    }

    /// A list field (a repeated query key, a JSON array, or one value).
    pub(super) fn list(&self, key: &str) -> Vec<Value> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list.clone(),
            Some(one) => vec![one.clone()],
        }
    }
}

fn missing_field(key: &str) -> ApiError {
    ApiError::invalid(format!("Missing value for required parameter '{key}'."))
}

/// An integer from a JSON number or string.
pub(super) fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A metric value from a JSON number or one of proto3's strings (`NaN`, `Infinity`).
pub(super) fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => float::parse(s),
        _ => None,
    }
}

/// A metric value as proto3 JSON writes it.
pub(super) fn float_json(v: f64) -> Value {
    serde_json::to_value(Wrapped(v)).expect("a float serializes")
}

#[derive(serde::Serialize)]
struct Wrapped(#[serde(with = "float")] f64);

/// `(key, value)` string pairs of a list of `{key, value}` objects.
pub(super) fn pairs(list: &[Value], what: &str) -> Result<Vec<(String, String)>, ApiError> {
    list.iter()
        .map(|item| {
            let key = item.get("key").and_then(Value::as_str).filter(|k| !k.is_empty());
            let key = key.ok_or_else(|| ApiError::invalid(format!("a {what} has no key: {item}")))?;
            let value = match item.get("value") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            Ok((key.to_string(), value))
        })
        .collect()
}

/// `{key, value}` objects of string pairs.
pub(super) fn pair_list<'a>(items: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    Value::Array(items.into_iter().map(|(k, v)| json!({ "key": k, "value": v })).collect())
}

/// `application/x-www-form-urlencoded` decoding, as `requests` encodes GET parameters.
fn form_decode(s: &str) -> String {
    crate::support::text::percent_decode(&s.replace('+', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_parameters_and_json_bodies_read_alike() {
        let r = Request::parse("run_id=abc&metric_key=a+b%2Fc&ids=1&ids=2", b"").unwrap();
        assert_eq!(r.run_id().unwrap(), "abc");
        assert_eq!(r.str("metric_key"), Some("a b/c"));
        assert_eq!(r.list("ids"), [json!("1"), json!("2")]);
        let r = Request::parse("", br#"{"run_uuid": "x", "step": "7", "timestamp": 5}"#).unwrap();
        assert_eq!(r.run_id().unwrap(), "x");
        assert_eq!((r.int("step").unwrap(), r.int("timestamp").unwrap()), (Some(7), Some(5)));
        assert_eq!(r.int("missing").unwrap(), None);
        assert_eq!(Request::parse("", br#"{"step": "x"}"#).unwrap().int("step").unwrap_err().status, 400);
    }

    #[test]
    fn bad_bodies_and_missing_fields_are_400_not_500() {
        for body in [&b"{not json"[..], b"[1]"] {
            let err = Request::parse("", body).unwrap_err();
            assert_eq!((err.status, err.code), (400, "INVALID_PARAMETER_VALUE"));
        }
        let err = Request::parse("", b"{}").unwrap().run_id().unwrap_err();
        assert_eq!(
            err.body(),
            json!({"error_code": "INVALID_PARAMETER_VALUE", "message": "Missing value for required parameter 'run_id'."})
        );
    }

    #[test]
    fn non_finite_values_use_proto3_spellings() {
        assert_eq!(float_json(f64::NAN), json!("NaN"));
        assert_eq!(float_json(f64::NEG_INFINITY), json!("-Infinity"));
        assert_eq!(float_json(0.25), json!(0.25));
        assert!(float_of(&json!("NaN")).unwrap().is_nan());
        assert_eq!(float_of(&json!(true)), None);
    }
}
