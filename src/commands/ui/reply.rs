//! An answer of the UI: status, headers and body, with the headers every page gets (no
//! caching, no sniffing, no framing, scripts only from the app itself).

/// The policy of the app's own pages: its script and style only, no plugins, no framing.
const APP_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                          connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub(crate) status: u16,
    /// The headers.
    pub(crate) headers: Vec<(&'static str, String)>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// A reply of the app itself (a page, a fragment, its script).
    pub(crate) fn app(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![
                ("Content-Type", content_type.to_string()),
                ("Content-Security-Policy", APP_POLICY.to_string()),
                ("X-Content-Type-Options", "nosniff".into()),
                ("Referrer-Policy", "no-referrer".into()),
                ("Cache-Control", "no-store".into()),
            ],
            body: body.into(),
        }
    }

    /// An HTML page or fragment.
    pub(crate) fn html(body: String) -> Reply {
        Reply::app(200, "text/html; charset=utf-8", body)
    }

    /// An error page.
    pub(crate) fn error(status: u16, message: &str) -> Reply {
        let body = super::html::page("error", "", &format!(r#"<p class="error">{}</p>"#, super::html::esc(message)));
        Reply::app(status, "text/html; charset=utf-8", body)
    }

    /// A file of a run, served so that it cannot act as the app: its type from its name, in
    /// a sandbox (an HTML or SVG file runs no script in the app's origin), never sniffed.
    pub(crate) fn file(content_type: &str, body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            headers: vec![
                ("Content-Type", content_type.to_string()),
                ("Content-Security-Policy", "sandbox".into()),
                ("X-Content-Type-Options", "nosniff".into()),
                ("Cache-Control", "no-store".into()),
            ],
            body,
        }
    }

    /// A redirect to `location` (a path of the app).
    pub(crate) fn redirect(location: &str) -> Reply {
        let mut r = Reply::app(303, "text/plain; charset=utf-8", "");
        r.headers.push(("Location", location.to_string()));
        r
    }

    /// The same reply with one more header.
    pub(crate) fn with(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    /// The value of header `name`, for tests.
    #[cfg(test)]
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}
