//! A page showing one file of a run: text as text (escaped), images as images, anything
//! else as a link to download it.

use super::super::files::{self, Refused};
use super::super::html::{self, esc, link};
use super::super::index::Index;
use super::super::reply::Reply;
use crate::support::ids::short;

/// How much of a text file the page shows.
const SHOWN: usize = 1024 * 1024;

/// The page of file `rest` (as [`files::resolve`] names them) of run `id`.
pub(crate) fn page(index: &Index, id: &str, rest: &str, store: &str) -> Reply {
    let Some(run) = index.run(id) else { return Reply::error(404, "no such run") };
    let path = match files::resolve(&index.run_dir(id), &index.objects(), &run.record, rest) {
        Ok(path) => path,
        Err(Refused::NotListed) => return Reply::error(404, "the run's record lists no such file"),
        Err(Refused::Gone) => return Reply::error(404, "the file is not in the run's directory (any more)"),
    };
    let name = crate::support::text::percent_decode(rest);
    let raw = format!("/run/{id}/file/{rest}");
    let mut main = format!(
        r#"<h1>{}</h1><p>of run {} · {}</p>"#,
        esc(&name),
        link(&format!("/run/{id}"), short(id)),
        link(&raw, "raw")
    );
    if files::is_image(&name) {
        main.push_str(&format!(r#"<p><img class="artifact" src="{}" alt="{}"></p>"#, esc(&raw), esc(&name)));
    } else {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let head = &bytes[..bytes.len().min(SHOWN)];
        if files::is_text(head) {
            main.push_str(&format!(r#"<pre class="file">{}</pre>"#, esc(&String::from_utf8_lossy(head))));
            if bytes.len() > SHOWN {
                main.push_str(&format!(
                    "<p>the first {} of {} shown</p>",
                    html::size(SHOWN as u64),
                    html::size(bytes.len() as u64)
                ));
            }
        } else {
            main.push_str(&format!("<p>a binary file of {}</p>", esc(&html::size(bytes.len() as u64))));
        }
    }
    Reply::html(html::page(&name, store, &main))
}
