//! Which answer a request gets: the token check first, then the page, fragment, file or
//! asset its path names. Only GET and HEAD: the UI changes nothing.

use hyper::Method;
use hyper::header::HeaderMap;

use super::App;
use super::files::{self, Refused};
use super::index::Index;
use super::pages;
use super::query::Query;
use super::reply::Reply;

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The answer to one request.
pub(crate) fn respond(app: &App, method: &Method, path: &str, query: &str, headers: &HeaderMap) -> Reply {
    if method != Method::GET && method != Method::HEAD {
        return Reply::error(405, "the UI only reads: GET and HEAD").with("Allow", "GET, HEAD".into());
    }
    if app.token.in_query(query) {
        // Into the cookie, and out of the address bar (and of the history).
        let query = Query::parse(query).without_token();
        let location = if query.is_empty() { path.to_string() } else { format!("{path}?{query}") };
        return Reply::redirect(&location).with("Set-Cookie", app.token.set_cookie());
    }
    if !app.token.in_headers(headers) {
        return Reply::error(
            403,
            "this page needs the token: open the URL `lockstep ui` printed (with its ?token=...)",
        );
    }
    match path {
        "/static/app.js" => return Reply::app(200, "text/javascript; charset=utf-8", APP_JS),
        "/static/app.css" => return Reply::app(200, "text/css; charset=utf-8", APP_CSS),
        _ => {}
    }
    let query = Query::parse(query);
    let mut index = app.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    index.refresh();
    let label = app.store_label.as_str();
    let segments: Vec<&str> = path.trim_start_matches('/').splitn(4, '/').collect();
    match segments.as_slice() {
        [""] => Reply::html(pages::runs::page(&index, &query, label)),
        ["fragment", "runs"] => Reply::html(pages::runs::fragment(&index, &query)),
        ["compare"] => pages::compare::page(&mut index, &query, label),
        ["run", id, tail @ ..] => run_route(&mut index, id, tail, &query, label),
        ["fragment", "run", id] => run_route(&mut index, id, &["live"], &query, label),
        ["sweep", id] => match index.sweep(id) {
            Some(sweep) => Reply::html(pages::sweep::page(&index, sweep, &query, label)),
            None => Reply::error(404, &format!("no sweep '{id}' in this store")),
        },
        _ => Reply::error(404, &format!("no page at {path}")),
    }
}

/// The pages and files of the run `id` names (a full id or a unique prefix).
fn run_route(index: &mut Index, id: &str, tail: &[&str], query: &Query, label: &str) -> Reply {
    let Some(id) = index.find(id).map(|r| r.record.run_id.to_string()) else {
        return Reply::error(404, &format!("no run '{id}' in this store"));
    };
    match tail {
        [] => Reply::html(pages::run::page(index, &id, query, label)),
        ["live"] => Reply::html(pages::run::live(index, &id, query)),
        ["log", stream] => pages::run::log(index, &id, stream, query),
        ["file", rest] => file(index, &id, rest),
        ["view", rest] => pages::view::page(index, &id, rest, label),
        _ => Reply::error(404, "no such page of a run"),
    }
}

/// A run's file, raw.
pub(crate) fn file(index: &Index, id: &str, rest: &str) -> Reply {
    let Some(run) = index.run(id) else { return Reply::error(404, "no such run") };
    match files::resolve(&index.run_dir(id), &index.objects(), &run.record, rest) {
        Ok(path) => match std::fs::read(&path) {
            Ok(bytes) => Reply::file(files::content_type(rest), bytes),
            Err(_) => Reply::error(404, "the file cannot be read"),
        },
        Err(Refused::NotListed) => Reply::error(404, "the run's record lists no such file"),
        Err(Refused::Gone) => Reply::error(404, "the file is not in the run's directory (any more)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Store;
    use std::sync::Mutex;

    fn app(dir: &std::path::Path) -> App {
        let store = Store::open(dir).unwrap();
        App { token: super::super::Token::random(1), store_label: "s".into(), index: Mutex::new(Index::new(store)) }
    }

    fn get(app: &App, path: &str, query: &str, auth: bool) -> Reply {
        let mut headers = HeaderMap::new();
        if auth {
            headers.insert("authorization", format!("token {}", app.token.secret()).parse().unwrap());
        }
        respond(app, &Method::GET, path, query, &headers)
    }

    #[test]
    fn the_token_opens_the_app_and_nothing_opens_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        assert_eq!(get(&app, "/", "", false).status, 403);
        let first = get(&app, "/run/ab", &format!("token={}&x=time", app.token.secret()), false);
        assert_eq!((first.status, first.header("Location")), (303, Some("/run/ab?x=time")));
        assert!(first.header("Set-Cookie").unwrap().starts_with("lockstep-ui-1="));
        let page = get(&app, "/", "", true);
        assert_eq!(page.status, 200);
        assert!(page.header("Content-Security-Policy").unwrap().contains("default-src 'none'"));
        assert_eq!(
            get(&app, "/static/app.js", "", true).header("Content-Type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(respond(&app, &Method::POST, "/", "", &HeaderMap::new()).status, 405);
        for path in ["/run/zz", "/run/..", "/sweep/../x", "/elsewhere", "/run/ab/file/artifacts/x"] {
            assert_eq!(get(&app, path, "", true).status, 404, "{path}");
        }
    }
}
