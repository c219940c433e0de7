//! MLflow's search filters and orders (`metrics.rmse < 0.5 AND params.alpha = '0.1'`,
//! `metrics.rmse DESC`), for `runs/search` and `logged-models/search`: clauses joined by
//! AND, each an entity's field compared with a string, a number or a list.

use std::cmp::Ordering;

use serde_json::Value;

use super::state::Run;
use super::wire::{ApiError, float_of, int_of};

/// What a field names.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Attribute,
    Metric,
    Param,
    Tag,
}

/// A value a field has.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Text(String),
    Number(f64),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Text(String),
    Number(f64),
    List(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
struct Clause {
    kind: Kind,
    key: String,
    op: Op,
    operand: Operand,
}

/// A parsed filter: every clause must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Filter {
    clauses: Vec<Clause>,
}

/// One `order_by` item.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Order {
    kind: Kind,
    key: String,
    ascending: bool,
}

fn unsupported(what: &str, text: &str) -> ApiError {
    ApiError::invalid(format!("Invalid {what} '{text}'"))
}

/// `prefix.key` (key plain, in backticks or in double quotes) as a kind and a key.
fn identifier(text: &str) -> Result<(Kind, String), ApiError> {
    let (prefix, key) = match text.split_once('.') {
        Some((p, k)) if !p.starts_with(['`', '"']) => (p, k),
        _ => ("", text),
    };
    let kind = match prefix.to_ascii_lowercase().as_str() {
        "" | "attribute" | "attributes" | "attr" | "run" => Kind::Attribute,
        "metric" | "metrics" => Kind::Metric,
        "param" | "params" | "parameter" | "parameters" => Kind::Param,
        "tag" | "tags" => Kind::Tag,
        _ => return Err(unsupported("search entity", text)),
    };
    let key = key.trim_matches(|c| c == '`' || c == '"');
    if key.is_empty() {
        return Err(unsupported("search key", text));
    }
    Ok((kind, key.to_string()))
}

/// Split a filter into tokens: identifiers, operators, quoted strings, numbers, lists.
fn tokens(text: &str) -> Result<Vec<String>, ApiError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' || c == '`' {
            // A quoted string runs to its closing quote; a backslash escapes one.
            let mut tok = String::from(c);
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                tok.push(chars[i]);
                i += 1;
            }
            if i == chars.len() {
                return Err(unsupported("filter (unclosed quote)", text));
            }
            tok.push(c);
            i += 1;
            // A quoted key may go on: `tags."a b"` is one identifier.
            if let Some(last) = out.last_mut().filter(|t: &&mut String| t.ends_with('.')) {
                last.push_str(&tok);
            } else {
                out.push(tok);
            }
        } else if c == '(' {
            let end = chars[i..].iter().position(|&c| c == ')').ok_or_else(|| unsupported("filter", text))?;
            out.push(chars[i..=i + end].iter().collect());
            i += end + 1;
        } else if "=!<>".contains(c) {
            let two = i + 1 < chars.len() && chars[i + 1] == '=';
            out.push(chars[i..i + if two { 2 } else { 1 }].iter().collect());
            i += if two { 2 } else { 1 };
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"=!<>('\"`".contains(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(word);
        }
    }
    Ok(out)
}

fn unquote(token: &str) -> Option<String> {
    let first = token.chars().next()?;
    (token.len() >= 2 && (first == '\'' || first == '"') && token.ends_with(first))
        .then(|| token[1..token.len() - 1].to_string())
}

impl Filter {
    /// Parse a filter; an empty one matches everything.
    pub(super) fn parse(text: &str) -> Result<Filter, ApiError> {
        let toks = tokens(text)?;
        let mut clauses = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            if !clauses.is_empty() {
                if !toks[i].eq_ignore_ascii_case("and") {
                    return Err(unsupported("filter (only AND joins clauses)", text));
                }
                i += 1;
            }
            let (kind, key) = identifier(toks.get(i).ok_or_else(|| unsupported("filter", text))?)?;
            let mut op_text = toks.get(i + 1).ok_or_else(|| unsupported("filter", text))?.to_ascii_uppercase();
            let mut next = i + 2;
            if op_text == "NOT" && toks.get(i + 2).is_some_and(|t| t.eq_ignore_ascii_case("in")) {
                op_text = "NOT IN".into();
                next += 1;
            }
            let op = match op_text.as_str() {
                "=" | "==" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                "LIKE" => Op::Like,
                "ILIKE" => Op::ILike,
                "IN" => Op::In,
                "NOT IN" => Op::NotIn,
                other => return Err(unsupported("comparator", other)),
            };
            let value = toks.get(next).ok_or_else(|| unsupported("filter", text))?;
            let operand = if let Some(list) = value.strip_prefix('(').and_then(|v| v.strip_suffix(')')) {
                let items = list.split(',').map(|s| unquote(s.trim()).ok_or_else(|| unsupported("list", value)));
                Operand::List(items.collect::<Result<_, _>>()?)
            } else if let Some(s) = unquote(value) {
                Operand::Text(s)
            } else {
                Operand::Number(value.parse().map_err(|_| unsupported("value", value))?)
            };
            clauses.push(Clause { kind, key, op, operand });
            i = next + 1;
        }
        Ok(Filter { clauses })
    }

    /// Whether a run passes.
    pub(super) fn matches_run(&self, run: &Run) -> bool {
        self.clauses.iter().all(|c| clause_holds(c, run_field(run, c.kind, &c.key)))
    }

    /// Whether a logged model passes.
    pub(super) fn matches_model(&self, model: &Value) -> bool {
        self.clauses.iter().all(|c| clause_holds(c, model_field(model, c.kind, &c.key)))
    }
}

fn clause_holds(c: &Clause, field: Option<Field>) -> bool {
    let Some(field) = field else { return false };
    match (&field, &c.operand) {
        (Field::Number(a), Operand::Number(b)) => compare(c.op, a.partial_cmp(b)),
        (Field::Text(a), Operand::Text(b)) => match c.op {
            Op::Like => like(a, b, false),
            Op::ILike => like(a, b, true),
            op => compare(op, Some(a.as_str().cmp(b.as_str()))),
        },
        (Field::Number(a), Operand::Text(b)) => b.parse::<f64>().is_ok_and(|b| compare(c.op, a.partial_cmp(&b))),
        (Field::Text(a), Operand::Number(b)) => a.parse::<f64>().is_ok_and(|a| compare(c.op, a.partial_cmp(b))),
        (Field::Text(a), Operand::List(list)) => (c.op == Op::In) == list.contains(a),
        (Field::Number(_), Operand::List(_)) => false,
    }
}

fn compare(op: Op, ordering: Option<Ordering>) -> bool {
    let Some(o) = ordering else { return false };
    match op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
        Op::Like | Op::ILike | Op::In | Op::NotIn => false,
    }
}

/// SQL's LIKE: `%` any run of characters, `_` one character.
fn like(text: &str, pattern: &str, fold: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = match fold {
        true => (text.to_lowercase().chars().collect(), pattern.to_lowercase().chars().collect()),
        false => (text.chars().collect(), pattern.chars().collect()),
    };
    fn go(t: &[char], p: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| go(&t[i..], &p[1..])),
            Some('_') => !t.is_empty() && go(&t[1..], &p[1..]),
            Some(c) => t.first() == Some(c) && go(&t[1..], &p[1..]),
        }
    }
    go(&t, &p)
}

fn run_field(run: &Run, kind: Kind, key: &str) -> Option<Field> {
    let text = |s: &str| Some(Field::Text(s.to_string()));
    match kind {
        Kind::Metric => run.latest(key).map(|p| Field::Number(p.value)),
        Kind::Param => run.params.get(key).map(|v| Field::Text(v.clone())),
        Kind::Tag => run.tags.get(key).map(|v| Field::Text(v.clone())),
        Kind::Attribute => match key {
            "run_id" => text(&run.run_id),
            "run_name" => text(&run.name),
            "status" => text(&run.status),
            "user_id" => text(&run.user_id),
            "artifact_uri" => text(&run.artifact_uri),
            "lifecycle_stage" => text(&run.lifecycle_stage),
            "experiment_id" => text(&run.experiment_id),
            "start_time" | "created" | "Created" => Some(Field::Number(run.start_time as f64)),
            "end_time" => run.end_time.map(|t| Field::Number(t as f64)),
            _ => None,
        },
    }
}

fn model_field(model: &Value, kind: Kind, key: &str) -> Option<Field> {
    let info = &model["info"];
    let pairs = |list: &Value| -> Option<Field> {
        list.as_array()?
            .iter()
            .find(|p| p["key"] == key)
            .and_then(|p| p["value"].as_str().map(|v| Field::Text(v.to_string())))
    };
    match kind {
        Kind::Param => pairs(&model["data"]["params"]),
        Kind::Tag => pairs(&info["tags"]),
        Kind::Metric => model["data"]["metrics"]
            .as_array()?
            .iter()
            .rev()
            .find(|m| m["key"] == key)
            .and_then(|m| float_of(&m["value"]))
            .map(Field::Number),
        Kind::Attribute => {
            let key = match key {
                "creation_time" | "creation_timestamp" => "creation_timestamp_ms",
                "last_updated_timestamp" => "last_updated_timestamp_ms",
                k => k,
            };
            match &info[key] {
                Value::String(s) => Some(Field::Text(s.strip_prefix("LOGGED_MODEL_").unwrap_or(s).to_string())),
                v => int_of(v).map(|n| Field::Number(n as f64)),
            }
        }
    }
}

impl Order {
    /// Parse `field [ASC|DESC]`.
    pub(super) fn parse(text: &str) -> Result<Order, ApiError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (field, ascending) = match words.as_slice() {
            [field] => (*field, true),
            [field, dir] if dir.eq_ignore_ascii_case("asc") => (*field, true),
            [field, dir] if dir.eq_ignore_ascii_case("desc") => (*field, false),
            _ => return Err(unsupported("order_by clause", text)),
        };
        let (kind, key) = identifier(field)?;
        Ok(Order { kind, key, ascending })
    }

    /// MLflow's order: runs without the field last, whichever the direction.
    pub(super) fn compare_runs(&self, a: &Run, b: &Run) -> Ordering {
        self.compare(run_field(a, self.kind, &self.key), run_field(b, self.kind, &self.key))
    }

    fn compare(&self, a: Option<Field>, b: Option<Field>) -> Ordering {
        match (a, b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => {
                let o = match (a, b) {
                    (Field::Number(x), Field::Number(y)) => x.total_cmp(&y),
                    (Field::Text(x), Field::Text(y)) => x.cmp(&y),
                    (Field::Number(_), Field::Text(_)) => Ordering::Less,
                    (Field::Text(_), Field::Number(_)) => Ordering::Greater,
                };
                if self.ascending { o } else { o.reverse() }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_like_matches_as_sql() {
        let f = Filter::parse("metrics.rmse < 0.5 and params.`alpha x` = '0.1' AND tags.\"a b\" LIKE 'x%'").unwrap();
        assert_eq!(f.clauses.len(), 3);
        assert_eq!((f.clauses[1].kind, f.clauses[1].key.as_str()), (Kind::Param, "alpha x"));
        assert_eq!((f.clauses[2].kind, f.clauses[2].key.as_str(), f.clauses[2].op), (Kind::Tag, "a b", Op::Like));
        let f = Filter::parse("attributes.run_id IN ('a', 'b') AND status != 'FAILED'").unwrap();
        assert_eq!(f.clauses[0].operand, Operand::List(vec!["a".into(), "b".into()]));
        assert!(Filter::parse("").unwrap().clauses.is_empty());
        for bad in ["metrics.rmse <", "x = 'open", "a = 1 OR b = 2", "foo.bar = 1", "a ~ 1"] {
            assert_eq!(Filter::parse(bad).unwrap_err().status, 400, "{bad}");
        }
        assert!(like("model-v2", "model%", false) && like("Ab", "a_", true) && !like("ab", "a", false));
    }

    #[test]
    fn logged_models_match_by_name_and_status() {
        let model = serde_json::json!({"info": {"name": "m", "status": "LOGGED_MODEL_READY", "creation_timestamp_ms": 5,
            "tags": [{"key": "k", "value": "v"}]}, "data": {"params": [], "metrics": [{"key": "acc", "value": 0.9}]}});
        for (filter, wanted) in [
            ("name = 'm'", true),
            ("name = 'other'", false),
            ("status = 'READY'", true),
            ("creation_time > 3", true),
            ("tags.k = 'v' AND metrics.acc >= 0.9", true),
            ("params.p = 'x'", false),
        ] {
            assert_eq!(Filter::parse(filter).unwrap().matches_model(&model), wanted, "{filter}");
        }
        let order = Order::parse("metrics.rmse DESC").unwrap();
        assert!(!order.ascending && order.kind == Kind::Metric);
        assert!(Order::parse("a b c").is_err());
    }
}
