//! HTML from compile-time templates (`assets/*.html`, built into the binary): `{{name}}`
//! placeholders filled with text, always escaped, or with markup the pages built themselves
//! from escaped parts. Plus the small pieces every page uses: links, tables, times, sizes.

use crate::support::text::{percent_encode, xml_escape};

/// The layout every page shares.
const LAYOUT: &str = include_str!("assets/layout.html");

/// A value for a placeholder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fill<'a> {
    /// Text: escaped.
    Text(&'a str),
    /// Markup built by the pages from escaped parts: put in as it is.
    Markup(&'a str),
}

/// `template` with each `{{name}}` replaced by its value; a placeholder without a value is
/// left empty.
pub(crate) fn fill(template: &str, values: &[(&str, Fill)]) -> String {
    let mut out = String::with_capacity(template.len() + values.iter().map(|(_, v)| len(v)).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else { break };
        let name = &rest[start + 2..start + end];
        match values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v) {
            Some(Fill::Text(t)) => out.push_str(&xml_escape(t)),
            Some(Fill::Markup(m)) => out.push_str(m),
            None => {}
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

fn len(v: &Fill) -> usize {
    match v {
        Fill::Text(t) | Fill::Markup(t) => t.len(),
    }
}

/// A whole page: `main` in the shared layout.
pub(crate) fn page(title: &str, store: &str, main: &str) -> String {
    fill(LAYOUT, &[("title", Fill::Text(title)), ("store", Fill::Text(store)), ("main", Fill::Markup(main))])
}

/// Text, escaped.
pub(crate) fn esc(s: &str) -> String {
    xml_escape(s)
}

/// A link to `href` (built from escaped or percent-encoded parts) showing `text`.
pub(crate) fn link(href: &str, text: &str) -> String {
    format!(r#"<a href="{}">{}</a>"#, esc(href), esc(text))
}

/// A URL query part, percent-encoded.
pub(crate) fn q(s: &str) -> String {
    percent_encode(s)
}

/// A path under a URL, each segment percent-encoded and the slashes kept.
pub(crate) fn url_path(path: &str) -> String {
    path.split('/').map(percent_encode).collect::<Vec<_>>().join("/")
}

/// A table: the header cells as text, the rows as markup cells.
pub(crate) fn table(class: &str, head: &[String], rows: &[Vec<String>]) -> String {
    let mut out = format!(r#"<table class="{}"><thead><tr>"#, esc(class));
    for h in head {
        out.push_str(&format!("<th>{h}</th>"));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&format!("<td>{cell}</td>"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A table without a header: the rows as markup cells, the first cell of each a header cell.
pub(crate) fn rows(class: &str, rows: &[Vec<String>]) -> String {
    let mut out = format!(r#"<table class="{}"><tbody>"#, esc(class));
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let tag = if i == 0 { "th" } else { "td" };
            out.push_str(&format!("<{tag}>{cell}</{tag}>"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A table of name and value pairs, both text.
pub(crate) fn pairs(class: &str, rows: &[(&str, String)]) -> String {
    let rows: Vec<Vec<String>> = rows.iter().map(|(k, v)| vec![esc(k), esc(v)]).collect();
    table(class, &["name".into(), "value".into()], &rows)
}

/// A time in ms since the epoch, as RFC 3339 in UTC, to the second.
pub(crate) fn time(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A duration in ms, as people read it (`850ms`, `12.3s`, `4m05s`, `2h03m`).
pub(crate) fn duration(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) if ms < 3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        Some(ms) => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// A size in bytes, as people read it.
pub(crate) fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// A metric value, short but exact enough to tell values apart.
pub(crate) fn number(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() { "NaN".into() } else { format!("{v}") };
    }
    if v != 0.0 && !(1e-4..1e9).contains(&v.abs()) {
        return format!("{v:.5e}");
    }
    let fixed = format!("{v:.6}");
    fixed.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_markup_kept() {
        let out =
            fill("<p>{{a}}</p>{{b}}{{missing}}.", &[("a", Fill::Text("<script>&")), ("b", Fill::Markup("<b>x</b>"))]);
        assert_eq!(out, "<p>&lt;script&gt;&amp;</p><b>x</b>.");
        let page = page("t<", "/s", "<main-part/>");
        assert!(page.contains("<title>t&lt; · lockstep</title>") && page.contains("<main-part/>"), "{page}");
        assert_eq!(link("/run/a?x=1&y=2", "<a>"), r#"<a href="/run/a?x=1&amp;y=2">&lt;a&gt;</a>"#);
        assert_eq!(url_path("a b/c#d"), "a%20b/c%23d");
    }

    #[test]
    fn times_durations_sizes_and_numbers_read_well() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(duration(Some(850)), "850ms");
        assert_eq!(duration(Some(245_000)), "4m05s");
        assert_eq!(duration(None), "-");
        assert_eq!(size(2048), "2.0 KiB");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.1234567), "0.123457");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(1e20), "1.00000e20");
        assert_eq!(number(-0.5), "-0.5");
    }
}
