//! `lockstep ui`: a local web app over the store: the runs, a run (its record, metric
//! charts, files and live logs), runs compared, and sweeps. Read-only; every request needs
//! the random token of the printed URL.

mod files;
mod html;
mod index;
mod pages;
mod query;
mod reply;
mod routes;
mod server;
mod token;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::record::Store;
use crate::support::error_class::{Classify, ErrorClass};
use index::Index;
use token::Token;

/// What to serve, and where.
#[derive(Debug, Clone)]
pub struct UiOptions {
    /// The run store.
    pub store: PathBuf,
    /// The address to listen on: 127.0.0.1 unless given.
    pub host: Option<IpAddr>,
    /// The port; 0 picks a free one.
    pub port: u16,
}

/// Errors of starting the UI.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The address could not be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server's runtime could not be made.
    #[error("cannot start the UI's server: {0}")]
    Runtime(#[source] std::io::Error),
}

impl Classify for UiError {
    fn class(&self) -> ErrorClass {
        match self {
            UiError::Bind { source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::AddrInUse
                        | std::io::ErrorKind::AddrNotAvailable
                        | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                ErrorClass::User
            }
            _ => ErrorClass::Internal,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            UiError::Bind { .. } => {
                vec!["--port 0 (the default) picks a free port; --host names another address".into()]
            }
            UiError::Runtime(_) => Vec::new(),
        }
    }
}

/// What every request is answered from.
pub(crate) struct App {
    token: Token,
    index: Mutex<Index>,
    /// The store's directory, as pages show it.
    store_label: String,
}

/// A UI bound to its address, not serving yet.
pub struct Ui {
    listener: TcpListener,
    app: App,
    addr: SocketAddr,
}

impl Ui {
    /// Listen on the address the options name, with a new token.
    pub fn bind(opts: &UiOptions) -> Result<Ui, super::CommandError> {
        let store = Store::open(&opts.store)?;
        let addr = SocketAddr::new(opts.host.unwrap_or(IpAddr::from([127, 0, 0, 1])), opts.port);
        let listener = TcpListener::bind(addr).map_err(|source| UiError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| UiError::Bind { addr, source })?;
        let app = App {
            token: Token::random(addr.port()),
            store_label: store.root().display().to_string(),
            index: Mutex::new(Index::new(store)),
        };
        Ok(Ui { listener, app, addr })
    }

    /// The URL to open, with the token.
    pub fn url(&self) -> String {
        let host = match self.addr.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("http://{host}:{}/?token={}", self.addr.port(), self.app.token.secret())
    }

    /// Whether others than this machine's users can reach it.
    pub fn beyond_loopback(&self) -> bool {
        !self.addr.ip().is_loopback()
    }

    /// Serve until the process is stopped.
    pub fn serve(self) -> Result<(), super::CommandError> {
        Ok(server::serve(self.listener, self.app)?)
    }
}

/// Open `url` in the desktop's browser (`xdg-open`), without waiting for it.
pub fn open_in_browser(url: &str) {
    let url = url.to_string();
    std::thread::spawn(move || match crate::support::process::Command::new("xdg-open", [url]).guarded(false).spawn() {
        Ok(mut child) => {
            let _ = child.wait_exit(crate::support::process::OnCancel::Stop, None);
            let _ = child.finish();
        }
        Err(e) => crate::support::ui::warn(&format!("could not open a browser (xdg-open): {e}")),
    });
}
