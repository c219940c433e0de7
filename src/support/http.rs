//! Downloads over http(s): `path` parameters given as URLs.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors of downloading a file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server could not be reached or answered with an error.
    #[error("cannot download {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The download could not be saved.
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

/// Download `url` into `dir` under the last segment of its path; the file appears only
/// once it is complete.
pub fn download(url: &str, dir: &Path) -> Result<PathBuf, FetchError> {
    let http = |message: String| FetchError::Http { url: url.to_string(), message };
    let io_err = |path: &Path, source| FetchError::Io { url: url.to_string(), path: path.to_path_buf(), source };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .user_agent(format!("lockstep/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| http(e.to_string()))?;
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let target = dir.join(file_name_of(url));
    let mut tmp = tempfile::Builder::new().prefix(".download-").tempfile_in(dir).map_err(|e| io_err(dir, e))?;
    let mut body = response.into_body().into_reader();
    io::copy(&mut body, &mut tmp).map_err(|e| http(e.to_string()))?;
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
    }
}
