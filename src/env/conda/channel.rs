//! Conda channels: names resolved through the channel alias, and their `repodata.json` read
//! over http(s) or from a `file://` directory.

use crate::support::fs::write_atomic;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rattler_conda_types::{Channel, ChannelConfig, RepoData, RepoDataRecord};
use serde::{Deserialize, Serialize};

use super::super::EnvError;
use crate::support::cache::{Cache, CacheBucket};
use crate::support::http;

/// The variable naming a mirror that replaces `https://conda.anaconda.org` for named channels.
const ALIAS_VAR: &str = "LOCKSTEP_CONDA_CHANNEL_ALIAS";
const DEFAULT_ALIAS: &str = "https://conda.anaconda.org";
const DEFAULT_CHANNELS_BASE: &str = "https://repo.anaconda.com/pkgs";

/// The channels of a conda file as base URLs (ending in `/`), highest priority first, with
/// the alias of `LOCKSTEP_CONDA_CHANNEL_ALIAS`.
pub fn resolve_channels(written: &[String], project_dir: &Path, file: &str) -> Result<Vec<Channel>, EnvError> {
    let alias = std::env::var(ALIAS_VAR).ok().filter(|v| !v.is_empty());
    resolve_channels_with(written, project_dir, file, alias.as_deref())
}

/// The channels of a conda file under the channel alias `alias` (conda's default when `None`).
/// `defaults` stands for Anaconda's main and r channels (under the alias, when one is set);
/// with no channel at all, conda-forge is used.
fn resolve_channels_with(
    written: &[String],
    project_dir: &Path,
    file: &str,
    mirror: Option<&str>,
) -> Result<Vec<Channel>, EnvError> {
    let alias = mirror.unwrap_or(DEFAULT_ALIAS).to_string();
    // With a trailing slash, a mirror's path (`https://host/conda`) is kept when names are
    // joined to it.
    let config = ChannelConfig {
        channel_alias: url::Url::parse(&format!("{}/", alias.trim_end_matches('/')))
            .map_err(|e| EnvError::Spec { file: ALIAS_VAR.into(), message: format!("'{alias}' is not a URL: {e}") })?,
        root_dir: project_dir.to_path_buf(),
    };
    let written: Vec<String> = if written.is_empty() { vec!["conda-forge".into()] } else { written.to_vec() };
    let mut out = Vec::new();
    for name in &written {
        let expanded: Vec<String> = if name == "defaults" {
            let base = if mirror.is_some() { alias.clone() } else { DEFAULT_CHANNELS_BASE.into() };
            vec![format!("{}/main", base.trim_end_matches('/')), format!("{}/r", base.trim_end_matches('/'))]
        } else {
            vec![name.clone()]
        };
        for n in expanded {
            let channel = Channel::from_str(&n, &config).map_err(|e| EnvError::Spec {
                file: file.into(),
                message: format!("channel '{name}' is not a channel name, URL or directory: {e}"),
            })?;
            out.push(channel);
        }
    }
    Ok(out)
}

/// The records of `channel` for `subdir`; `None` when the channel has no such subdirectory.
/// Remote repodata is kept in the cache and revalidated (ETag / Last-Modified), and
/// `repodata.json.zst` is preferred where a channel serves it (a tenth of the bytes).
pub fn fetch_records(channel: &Channel, subdir: &str, cache: &Cache) -> Result<Option<Vec<RepoDataRecord>>, EnvError> {
    let url = channel
        .base_url
        .url()
        .join(&format!("{subdir}/repodata.json"))
        .map_err(|e| EnvError::Channel { url: channel.base_url.to_string(), message: e.to_string() })?;
    let shown = url.to_string();
    let channel_err = |message: String| EnvError::Channel { url: shown.clone(), message };
    let bytes = if url.scheme() == "file" {
        let path = url.to_file_path().map_err(|_| channel_err("not a local path".into()))?;
        match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(channel_err(e.to_string())),
        }
    } else {
        let compressed = match cached_get(cache, &format!("{url}.zst")) {
            Ok(b) => Some(b),
            // Channels that do not serve it answer 404, or 403 from some object stores.
            Err(HttpError::NotFound | HttpError::Status(_)) => None,
            Err(HttpError::Other(m)) => return Err(channel_err(m)),
        };
        match compressed {
            Some(zst) => {
                let mut out = Vec::new();
                ruzstd::decoding::StreamingDecoder::new(&zst[..])
                    .map_err(|e| channel_err(format!("repodata.json.zst is not valid: {e}")))?
                    .read_to_end(&mut out)
                    .map_err(|e| channel_err(format!("repodata.json.zst is not valid: {e}")))?;
                out
            }
            None => match cached_get(cache, url.as_str()) {
                Ok(b) => b,
                Err(HttpError::NotFound) => return Ok(None),
                Err(HttpError::Status(code)) => return Err(channel_err(format!("HTTP {code}"))),
                Err(HttpError::Other(m)) => return Err(channel_err(m)),
            },
        }
    };
    let repodata: RepoData =
        serde_json::from_slice(&bytes).map_err(|e| channel_err(format!("repodata.json is not valid: {e}")))?;
    Ok(Some(repodata.into_repo_data_records(channel)))
}

/// Why a GET failed.
pub enum HttpError {
    /// 404.
    NotFound,
    /// Another status than 200, 304 or 404.
    Status(u16),
    /// Anything else, described.
    Other(String),
}

/// An agent with bounded waits: an unreachable or silent server is an error in seconds, not
/// a hang. `LOCKSTEP_CONDA_TIMEOUT` sets the seconds allowed for connecting and for each
/// response.
pub fn agent() -> ureq::Agent {
    let secs = std::env::var("LOCKSTEP_CONDA_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(30u64);
    http::agent_builder(Duration::from_secs(secs.clamp(1, 600)))
        .timeout_recv_response(Some(Duration::from_secs(secs.clamp(1, 600))))
        .timeout_recv_body(Some(Duration::from_secs(secs.clamp(1, 600) * 20)))
        .http_status_as_error(false)
        .build()
        .into()
}

#[derive(Serialize)]
struct RepodataKey<'a> {
    schema: u32,
    url: &'a str,
}

/// What the server said about a cached body, to ask it whether the body is still current.
#[derive(Serialize, Deserialize, Default)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

/// GET `url` through the cache: a cached body is revalidated (`If-None-Match`,
/// `If-Modified-Since`) and reused on 304; a new body replaces it atomically. A cache that
/// cannot be written only costs the next download.
fn cached_get(cache: &Cache, url: &str) -> Result<Vec<u8>, HttpError> {
    let dir = cache.bucket(CacheBucket::Repodata).ok();
    let key = crate::support::cache::content_key(&RepodataKey { schema: 1, url });
    let (body_path, meta_path) = match &dir {
        Some(d) => (Some(d.join(format!("{key}.body"))), Some(d.join(format!("{key}.meta.json")))),
        None => (None, None),
    };
    let cached = body_path.as_ref().and_then(|p| std::fs::read(p).ok());
    let validators: Validators = match (&cached, &meta_path) {
        (Some(_), Some(p)) => std::fs::read(p).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default(),
        _ => Validators::default(),
    };
    let mut request = agent().get(url);
    if let Some(etag) = &validators.etag {
        request = request.header("If-None-Match", etag);
    }
    if let Some(modified) = &validators.last_modified {
        request = request.header("If-Modified-Since", modified);
    }
    let response = request.call().map_err(|e| HttpError::Other(e.to_string()))?;
    match response.status().as_u16() {
        304 if cached.is_some() => return Ok(cached.unwrap_or_default()),
        200 => {}
        404 => return Err(HttpError::NotFound),
        code => return Err(HttpError::Status(code)),
    }
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let fresh = Validators { etag: header("etag"), last_modified: header("last-modified") };
    let mut body = Vec::new();
    response.into_body().into_reader().read_to_end(&mut body).map_err(|e| HttpError::Other(e.to_string()))?;
    if let (Some(body_path), Some(meta_path)) = (body_path, meta_path) {
        let meta = serde_json::to_vec(&fresh).expect("validators serialize");
        // The body first: validators never describe a body that is not there.
        let _ = write_atomic(&body_path, &body).and_then(|_| write_atomic(&meta_path, &meta));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_urls_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let chans = resolve_channels(
            &["conda-forge".into(), "https://mirror.example/c".into(), "./local".into()],
            dir.path(),
            "conda.yaml",
        )
        .unwrap();
        assert_eq!(chans[0].base_url.as_str(), "https://conda.anaconda.org/conda-forge/");
        assert_eq!(chans[1].base_url.as_str(), "https://mirror.example/c/");
        assert!(chans[2].base_url.as_str().starts_with("file:///"), "{}", chans[2].base_url);
        let defaults = resolve_channels(&[], dir.path(), "conda.yaml").unwrap();
        assert_eq!(defaults[0].base_url.as_str(), "https://conda.anaconda.org/conda-forge/");
    }

    #[test]
    fn a_mirror_replaces_the_alias_of_named_channels() {
        let dir = tempfile::tempdir().unwrap();
        let written = ["conda-forge".to_string(), "defaults".into(), "https://other.example/x".into()];
        let chans =
            resolve_channels_with(&written, dir.path(), "conda.yaml", Some("http://mirror.local/conda")).unwrap();
        let urls: Vec<&str> = chans.iter().map(|c| c.base_url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://mirror.local/conda/conda-forge/",
                "http://mirror.local/conda/main/",
                "http://mirror.local/conda/r/",
                "https://other.example/x/"
            ]
        );
        let plain = resolve_channels_with(&["defaults".into()], dir.path(), "conda.yaml", None).unwrap();
        assert_eq!(plain[0].base_url.as_str(), "https://repo.anaconda.com/pkgs/main/");
        assert!(resolve_channels_with(&written, dir.path(), "conda.yaml", Some("not a url")).is_err());
    }

    /// A server that answers each request with the next of `answers` (status, headers, body)
    /// and keeps what it was asked.
    fn serve(answers: Vec<(u16, &'static str, Vec<u8>)>) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (status, headers, body) in answers {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = vec![0u8; 8192];
                let n = conn.read(&mut buf).unwrap();
                log.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase());
                let head = format!(
                    "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                conn.write_all(head.as_bytes()).unwrap();
                conn.write_all(&body).unwrap();
            }
        });
        (port, seen)
    }

    #[test]
    fn remote_repodata_is_cached_and_revalidated() {
        let dir = tempfile::tempdir().unwrap();
        let repodata = r#"{"info": {"subdir": "noarch"}, "packages": {}, "packages.conda": {}}"#;
        let (port, seen) = serve(vec![
            (404, "", vec![]),
            (200, "ETag: \"v1\"\r\n", repodata.into()),
            (404, "", vec![]),
            (304, "ETag: \"v1\"\r\n", vec![]),
        ]);
        let url = format!("http://127.0.0.1:{port}/chan");
        let chan = resolve_channels_with(&[url], dir.path(), "conda.yaml", None).unwrap().remove(0);
        let cache = Cache::at(dir.path().join("cache"));
        assert_eq!(fetch_records(&chan, "noarch", &cache).unwrap().unwrap().len(), 0);
        assert_eq!(fetch_records(&chan, "noarch", &cache).unwrap().unwrap().len(), 0, "the cached body is used on 304");
        let seen = seen.lock().unwrap();
        assert!(seen[0].starts_with("get /chan/noarch/repodata.json.zst"), "{}", seen[0]);
        assert!(!seen[1].contains("if-none-match"), "{}", seen[1]);
        assert!(
            seen[3].starts_with("get /chan/noarch/repodata.json ") && seen[3].contains("if-none-match: \"v1\""),
            "{}",
            seen[3]
        );
    }

    #[test]
    fn zstd_repodata_is_preferred() {
        let dir = tempfile::tempdir().unwrap();
        let repodata = br#"{"info": {"subdir": "noarch"}, "packages": {"a-1-0.tar.bz2": {"name": "a", "version": "1", "build": "0", "build_number": 0, "depends": []}}}"#;
        let zst = ruzstd::encoding::compress_to_vec(&repodata[..], ruzstd::encoding::CompressionLevel::Fastest);
        let (port, seen) = serve(vec![(200, "", zst)]);
        let url = format!("http://127.0.0.1:{port}/chan");
        let chan = resolve_channels_with(&[url], dir.path(), "conda.yaml", None).unwrap().remove(0);
        let records = fetch_records(&chan, "noarch", &Cache::at(dir.path().join("cache"))).unwrap().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].package_record.name.as_normalized(), "a");
        assert_eq!(seen.lock().unwrap().len(), 1, "the plain repodata.json is not asked for");
    }

    #[test]
    fn a_missing_local_subdir_is_empty_and_bad_json_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("noarch")).unwrap();
        std::fs::write(dir.path().join("noarch/repodata.json"), "{").unwrap();
        let chan = Channel::try_from_directory(dir.path()).unwrap();
        let cache = Cache::at(dir.path().join("cache"));
        assert!(fetch_records(&chan, "linux-64", &cache).unwrap().is_none());
        let err = fetch_records(&chan, "noarch", &cache).unwrap_err().to_string();
        assert!(err.contains("repodata.json is not valid"), "{err}");
    }
}
