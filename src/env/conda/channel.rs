//! Conda channels: names resolved through the channel alias, and their `repodata.json` read
//! over http(s) or from a `file://` directory.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rattler_conda_types::{Channel, ChannelConfig, RepoData, RepoDataRecord};

use super::super::EnvError;

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
pub fn fetch_records(channel: &Channel, subdir: &str) -> Result<Option<Vec<RepoDataRecord>>, EnvError> {
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
        match http_get(url.as_str()) {
            Ok(b) => b,
            Err(HttpError::NotFound) => return Ok(None),
            Err(HttpError::Other(m)) => return Err(channel_err(m)),
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
    /// Anything else, described.
    Other(String),
}

/// An agent with bounded waits: an unreachable or silent server is an error in seconds, not
/// a hang. `LOCKSTEP_CONDA_TIMEOUT` sets the seconds allowed for connecting and for each
/// response.
pub fn agent() -> ureq::Agent {
    let secs = std::env::var("LOCKSTEP_CONDA_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(30u64);
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(secs.clamp(1, 600))))
        .timeout_recv_response(Some(Duration::from_secs(secs.clamp(1, 600))))
        .timeout_recv_body(Some(Duration::from_secs(secs.clamp(1, 600) * 20)))
        .http_status_as_error(false)
        .user_agent(format!("lockstep/{}", crate::VERSION))
        .build()
        .into()
}

fn http_get(url: &str) -> Result<Vec<u8>, HttpError> {
    let response = agent().get(url).call().map_err(|e| HttpError::Other(e.to_string()))?;
    match response.status().as_u16() {
        200 => {}
        404 => return Err(HttpError::NotFound),
        code => return Err(HttpError::Other(format!("HTTP {code}"))),
    }
    let mut body = Vec::new();
    response.into_body().into_reader().read_to_end(&mut body).map_err(|e| HttpError::Other(e.to_string()))?;
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

    #[test]
    fn a_missing_local_subdir_is_empty_and_bad_json_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("noarch")).unwrap();
        std::fs::write(dir.path().join("noarch/repodata.json"), "{").unwrap();
        let chan = Channel::try_from_directory(dir.path()).unwrap();
        assert!(fetch_records(&chan, "linux-64").unwrap().is_none());
        let err = fetch_records(&chan, "noarch").unwrap_err().to_string();
        assert!(err.contains("repodata.json is not valid"), "{err}");
    }
}
