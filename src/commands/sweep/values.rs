//! The values of one swept parameter, as written after `-P NAME=`: a comma list,
//! `range(start, stop, step)`, `linspace(a, b, n)`, `logspace(a, b, n)`, or a quoted list
//! (`["a,b","c"]`) for values that hold a comma.

use super::SweepError;

/// Most values one expression may make: a typo in a step (`range(0, 1e9, 1)`) is refused
/// before it plans a billion trials.
const MAX_VALUES: usize = 100_000;

/// The values `text` stands for, in order. `name` is the parameter's, for errors.
pub(crate) fn parse(name: &str, text: &str) -> Result<Vec<String>, SweepError> {
    let bad = |reason: String| SweepError::BadValues { name: name.to_string(), text: text.to_string(), reason };
    let trimmed = text.trim();
    if trimmed.starts_with('[') {
        return quoted_list(trimmed).map_err(bad);
    }
    if let Some((func, args)) = call(trimmed) {
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        let values = match func {
            "range" => range(&args),
            "linspace" => spaced(&args, false),
            "logspace" => spaced(&args, true),
            _ => return Err(bad(format!("`{func}` is not range, linspace or logspace"))),
        };
        return values.map_err(bad);
    }
    let values: Vec<String> = text.split(',').map(str::to_string).collect();
    if values.len() > 1 && values.iter().any(String::is_empty) {
        return Err(bad("an item of the list is empty".into()));
    }
    Ok(values)
}

/// `func(args)` split apart, when `text` has that shape with a known-looking name.
fn call(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_suffix(')')?;
    let (func, args) = inner.split_once('(')?;
    let func = func.trim();
    (!func.is_empty() && func.chars().all(|c| c.is_ascii_alphabetic())).then_some((func, args))
}

fn quoted_list(text: &str) -> Result<Vec<String>, String> {
    let items: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON list of values: {e}"))?;
    if items.is_empty() {
        return Err("the list is empty".into());
    }
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            serde_json::Value::Bool(b) => Ok(b.to_string()),
            other => Err(format!("{other} is not a string, number or boolean")),
        })
        .collect()
}

/// A number argument; `integer` says whether it was written as one.
fn number(arg: &str) -> Result<(f64, bool), String> {
    let value: f64 = arg.parse().map_err(|_| format!("'{arg}' is not a number"))?;
    if !value.is_finite() {
        return Err(format!("'{arg}' is not a finite number"));
    }
    let integer = arg.trim_start_matches(['-', '+']).bytes().all(|b| b.is_ascii_digit());
    Ok((value, integer))
}

fn arity(args: &[&str], n: usize, signature: &str) -> Result<(), String> {
    match args.len() == n && args.iter().all(|a| !a.is_empty()) {
        true => Ok(()),
        false => Err(format!("{signature} takes {n} arguments")),
    }
}

/// Python's `range`, with float steps allowed: `stop` is left out.
fn range(args: &[&str]) -> Result<Vec<String>, String> {
    arity(args, 3, "range(start, stop, step)")?;
    let (start, si) = number(args[0])?;
    let (stop, ei) = number(args[1])?;
    let (step, ti) = number(args[2])?;
    if step == 0.0 {
        return Err("the step is 0".into());
    }
    let count = ((stop - start) / step).ceil();
    if count <= 0.0 {
        return Err("it holds no value (the step goes away from stop)".into());
    }
    // A float count like 3.0000000001 from (1 - 0.25 * 4) rounding must not add a value at stop.
    let count = match ((stop - start) / step - ((stop - start) / step).round()).abs() < 1e-9 {
        true => ((stop - start) / step).round(),
        false => count,
    };
    let count = checked_count(count)?;
    let integers = si && ei && ti;
    Ok((0..count).map(|i| format_number(start + step * i as f64, integers)).collect())
}

/// `linspace(a, b, n)`: n evenly spaced values from a to b, both included; `logspace` is 10 to
/// the power of each.
fn spaced(args: &[&str], log: bool) -> Result<Vec<String>, String> {
    arity(args, 3, if log { "logspace(a, b, n)" } else { "linspace(a, b, n)" })?;
    let (a, _) = number(args[0])?;
    let (b, _) = number(args[1])?;
    let n: usize = args[2].parse().map_err(|_| format!("n '{}' is not a positive integer", args[2]))?;
    if n == 0 {
        return Err("n is 0: it holds no value".into());
    }
    let n = checked_count(n as f64)?;
    let at = |i: usize| if n == 1 { a } else { a + (b - a) * i as f64 / (n - 1) as f64 };
    Ok((0..n).map(|i| format_number(if log { 10f64.powf(at(i)) } else { at(i) }, false)).collect())
}

fn checked_count(count: f64) -> Result<usize, String> {
    match count <= MAX_VALUES as f64 {
        true => Ok(count as usize),
        false => Err(format!("it holds more than {MAX_VALUES} values")),
    }
}

/// A computed value as people write it: 0.1 * 3 is `0.3`, not `0.30000000000000004`.
fn format_number(value: f64, integer: bool) -> String {
    if integer {
        return format!("{}", value as i64);
    }
    let rounded: f64 = format!("{value:.12e}").parse().unwrap_or(value);
    let text = format!("{rounded}");
    if rounded == 0.0 { "0".into() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<String> {
        parse("p", text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> String {
        parse("p", text).unwrap_err().to_string()
    }

    #[test]
    fn every_syntax_makes_its_values() {
        assert_eq!(ok("0.1,0.5,1.0"), ["0.1", "0.5", "1.0"]);
        assert_eq!(ok("one"), ["one"]);
        assert_eq!(ok("a b, c"), ["a b", " c"], "items are kept as written");
        assert_eq!(ok("range(0, 1, 0.25)"), ["0", "0.25", "0.5", "0.75"]);
        assert_eq!(ok("range(1,10,3)"), ["1", "4", "7"]);
        assert_eq!(ok("range(5, 0, -2)"), ["5", "3", "1"]);
        assert_eq!(ok("range(0, 0.3, 0.1)"), ["0", "0.1", "0.2"], "no value at stop from rounding");
        assert_eq!(ok("linspace(0, 1, 5)"), ["0", "0.25", "0.5", "0.75", "1"]);
        assert_eq!(ok("linspace(2, 3, 1)"), ["2"]);
        assert_eq!(ok("logspace(-3, 0, 4)"), ["0.001", "0.01", "0.1", "1"]);
        assert_eq!(ok(r#"["a,b","c"]"#), ["a,b", "c"]);
        assert_eq!(ok(r#"[1, 2.5, true]"#), ["1", "2.5", "true"]);
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        assert!(err("range(0, 1)").contains("range(start, stop, step) takes 3 arguments"));
        assert!(err("range(0, 1, 0)").contains("the step is 0"));
        assert!(err("range(0, 1, -1)").contains("holds no value"));
        assert!(err("range(0, x, 1)").contains("'x' is not a number"));
        assert!(err("range(0, 1e9, 1)").contains("more than 100000 values"));
        assert!(err("linspace(0, 1, 0)").contains("n is 0"));
        assert!(err("linspace(0, 1, 2.5)").contains("not a positive integer"));
        assert!(err("logspace(0, 1)").contains("logspace(a, b, n) takes 3"));
        assert!(err("grid(1, 2)").contains("`grid` is not range, linspace or logspace"));
        assert!(err(r#"["a", "b""#).contains("not a JSON list"));
        assert!(err("[]").contains("the list is empty"));
        assert!(err(r#"[["a"]]"#).contains("is not a string, number or boolean"));
        assert!(err("1,,2").contains("an item of the list is empty"));
        assert!(err("range(0, inf, 1)").contains("not a finite number"));
    }
}
