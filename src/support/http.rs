//! HTTP: the one builder of the agents every client uses (downloads, conda channels, the
//! MLflow client), and downloads of files, for `path` parameters and archives given as URLs.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ureq::config::ConfigBuilder;
use ureq::typestate::AgentScope;

use super::error_class::{Classify, ErrorClass};

/// Errors of downloading a file.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server could not be reached or answered with an error.
    #[error("cannot download {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The download could not be saved: a fault of this machine, not of the URL.
    #[error("cannot save {url} to {}: {source}", .path.display())]
    Io {
        /// The URL.
        url: String,
        /// Where it was being saved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl Classify for DownloadError {
    fn class(&self) -> ErrorClass {
        match self {
            DownloadError::Http { .. } => ErrorClass::User,
            DownloadError::Io { .. } => ErrorClass::Internal,
        }
    }
}

/// The start of every HTTP agent lockstep makes: its User-Agent, and a connect that gives up
/// after `connect`, so that an unreachable server is an error in seconds, not a hang. Each
/// client adds the bounds of its answers (and its TLS settings) and builds it.
pub fn agent_builder(connect: Duration) -> ConfigBuilder<AgentScope> {
    ureq::Agent::config_builder()
        .timeout_connect(Some(connect))
        .user_agent(format!("lockstep/{}", env!("CARGO_PKG_VERSION")))
}

/// Download `url` into `dir` under the last segment of its path; the file appears only
/// once it is complete.
pub fn download(url: &str, dir: &Path) -> Result<PathBuf, DownloadError> {
    let http = |message: String| DownloadError::Http { url: url.to_string(), message };
    let io_err = |path: &Path, source| DownloadError::Io { url: url.to_string(), path: path.to_path_buf(), source };
    let agent: ureq::Agent =
        agent_builder(Duration::from_secs(30)).timeout_recv_response(Some(Duration::from_secs(60))).build().into();
    let response = agent.get(url).call().map_err(|e| http(e.to_string()))?;
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let target = dir.join(file_name_of(url));
    let mut tmp = tempfile::Builder::new().prefix(".download-").tempfile_in(dir).map_err(|e| io_err(dir, e))?;
    let mut body = response.into_body().into_reader();
    // A failed read is the server's (or the network's), a failed write this machine's.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(http(e.to_string())),
        };
        tmp.write_all(&buf[..n]).map_err(|e| io_err(tmp.path(), e))?;
    }
    tmp.persist(&target).map_err(|e| io_err(&target, e.error))?;
    Ok(target)
}

/// A safe local file name for a URL: its last path segment, or `download`.
fn file_name_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let after_host = path.split_once("://").map(|(_, rest)| rest).unwrap_or(path);
    let segment = after_host.split_once('/').map(|(_, p)| p).unwrap_or("").rsplit('/').next().unwrap_or("");
    let clean: String = segment.chars().filter(|c| !matches!(c, '\\' | '\0')).collect();
    if clean.is_empty() || clean == "." || clean == ".." { "download".into() } else { clean }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_the_url_path() {
        assert_eq!(file_name_of("https://h/data/train.csv?x=1"), "train.csv");
        assert_eq!(file_name_of("https://h/"), "download");
        assert_eq!(file_name_of("https://h"), "download");
        assert_eq!(file_name_of("http://h/a/.."), "download");
    }

    #[test]
    fn unreachable_server_is_a_clear_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let dir = tempfile::tempdir().unwrap();
        let err = download(&format!("http://127.0.0.1:{port}/x.csv"), dir.path()).unwrap_err();
        assert!(err.to_string().starts_with(&format!("cannot download http://127.0.0.1:{port}/x.csv")), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "nothing half-written");
        assert_eq!(err.class(), ErrorClass::User);
    }

    /// Serve one answer to one request on 127.0.0.1; the URL of `/x.csv` on it.
    fn serve_once(answer: &'static str) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request);
            let _ = conn.write_all(answer.as_bytes());
        });
        format!("http://127.0.0.1:{port}/x.csv")
    }

    #[test]
    fn a_download_that_cannot_be_saved_is_an_internal_error() {
        let url = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\na,b\n");
        let dir = tempfile::tempdir().unwrap();
        // The file's place is taken by a directory, as a full or broken disk would refuse it.
        fs::create_dir(dir.path().join("x.csv")).unwrap();
        let err = download(&url, dir.path()).unwrap_err();
        assert!(matches!(err, DownloadError::Io { .. }), "{err}");
        assert_eq!(err.class(), ErrorClass::Internal, "{err}");
        assert!(err.to_string().starts_with(&format!("cannot save {url} to ")), "{err}");
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, ["x.csv"], "no temporary file is left");
    }

    #[test]
    fn an_error_status_is_the_users() {
        let url = serve_once("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        let dir = tempfile::tempdir().unwrap();
        let err = download(&url, dir.path()).unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
        assert_eq!(err.class(), ErrorClass::User);
    }
}
