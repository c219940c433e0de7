//! The client of a Ray cluster's Jobs API, the REST API its dashboard serves (what `ray job
//! submit` talks to): submit a job, read its state and log, stop it, and put the package its
//! working directory comes from into the cluster's store (GCS).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::error::RayError;
use super::wire::{JobInfo, LogsResponse, StopResponse, SubmitRequest, SubmitResponse, error_message};
use crate::support::http::agent_builder;

/// How long a request waits for the dashboard to take the connection.
const CONNECT: Duration = Duration::from_secs(5);
/// The bound on one request of the API; a submit waits for the job's supervisor to start.
const REQUEST: Duration = Duration::from_secs(60);
/// The bound on one package upload, which may carry hundreds of MB.
const UPLOAD: Duration = Duration::from_secs(600);
/// What the dashboard answers a submit while the head's agent is not up.
const NO_AGENT: &str = "No available agent to submit job";
/// How long a submit waits for a starting head's agent.
const AGENT_WAIT: Duration = Duration::from_secs(30);
/// The largest answer read: a job's whole log comes in one answer.
const MAX_ANSWER: u64 = 1 << 30;

/// A connection to one Ray cluster's Jobs API.
#[derive(Debug, Clone)]
pub struct JobsClient {
    /// `http(s)://host:port[/prefix]`, no trailing `/`.
    base: String,
    agent: ureq::Agent,
}

impl JobsClient {
    /// A client of the dashboard at `address`: `http(s)://HOST:PORT`, or `HOST:PORT` for
    /// http, as `ray job submit --address` takes it.
    pub fn new(address: &str) -> Result<JobsClient, RayError> {
        let base = base_url(address)?;
        // A new connection per request: the dashboard (aiohttp) writes an answer's head and
        // body apart, so on a kept connection the body waits for the delayed ACK (40 ms).
        let reuse = if base.starts_with("https://") { 3 } else { 0 };
        let agent = agent_builder(CONNECT)
            .max_idle_connections_per_host(reuse)
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST))
            .build()
            .into();
        Ok(JobsClient { base, agent })
    }

    /// The API's base URL, as errors and records show it.
    pub fn address(&self) -> &str {
        &self.base
    }

    /// The cluster's Ray version (`GET /api/version`): whether the address is a dashboard.
    pub fn ray_version(&self) -> Result<String, RayError> {
        #[derive(serde::Deserialize)]
        struct Version {
            ray_version: String,
        }
        let answer: Version = self.json("GET", "/api/version", None)?;
        Ok(answer.ray_version)
    }

    /// Submit a job; its submission id.
    pub fn submit(&self, request: &SubmitRequest) -> Result<String, RayError> {
        let body = serde_json::to_vec(request).expect("a submit request serializes");
        let started = Instant::now();
        loop {
            match self.json::<SubmitResponse>("POST", "/api/jobs/", Some(body.clone())) {
                Ok(answer) => return Ok(answer.submission_id),
                // A head that is starting has no agent to run jobs yet; it refused before
                // taking the job, so asking again cannot start it twice.
                Err(RayError::Refused { message, .. })
                    if message.starts_with(NO_AGENT) && started.elapsed() < AGENT_WAIT =>
                {
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A job's state, or `None` when the cluster does not know it.
    pub fn job(&self, job_id: &str) -> Result<Option<JobInfo>, RayError> {
        match self.json("GET", &job_path(job_id, ""), None) {
            Ok(info) => Ok(Some(info)),
            Err(RayError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A job's whole log so far (Ray's lines, then the entrypoint's stdout and stderr).
    pub fn logs(&self, job_id: &str) -> Result<String, RayError> {
        let answer: LogsResponse = self.json("GET", &job_path(job_id, "/logs"), None).map_err(|e| no_job(e, job_id))?;
        Ok(answer.logs)
    }

    /// Ask the cluster to stop a job (SIGTERM, then SIGKILL after Ray's grace); false when
    /// it had already ended.
    pub fn stop(&self, job_id: &str) -> Result<bool, RayError> {
        let answer: StopResponse =
            self.json("POST", &job_path(job_id, "/stop"), Some(Vec::new())).map_err(|e| no_job(e, job_id))?;
        Ok(answer.stopped)
    }

    /// Whether the cluster holds the package `gcs://NAME` (`GET /api/packages/gcs/NAME`,
    /// which also keeps it from being collected for a while, until a job refers to it).
    pub fn has_package(&self, name: &str) -> Result<bool, RayError> {
        let path = format!("/api/packages/gcs/{name}");
        match self.send("GET", &path, None, REQUEST) {
            Ok(_) => Ok(true),
            Err(RayError::Refused { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Put the file at `file` into the cluster as the package `gcs://NAME`.
    pub fn upload_package(&self, name: &str, file: &Path) -> Result<(), RayError> {
        let path = format!("/api/packages/gcs/{name}");
        let body =
            std::fs::File::open(file).map_err(|source| RayError::Package { path: file.to_path_buf(), source })?;
        let request = ureq::http::Request::builder()
            .method("PUT")
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .map_err(|e| self.unreachable("PUT", &path, e.to_string()))?;
        let request = self.agent.configure_request(request).timeout_global(Some(UPLOAD)).build();
        let response = self.agent.run(request).map_err(|e| self.unreachable("PUT", &path, e.to_string()))?;
        self.answer("PUT", &path, response).map(|_| ())
    }

    /// A request whose answer is JSON of type `T`.
    fn json<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<T, RayError> {
        let bytes = self.send(method, path, body, REQUEST)?;
        serde_json::from_slice(&bytes).map_err(|e| RayError::BadAnswer {
            address: self.base.clone(),
            what: format!("{method} {path}"),
            message: e.to_string(),
        })
    }

    /// One request (a JSON body when given); the body of a 2xx answer, else the error it
    /// stands for.
    fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>, limit: Duration) -> Result<Vec<u8>, RayError> {
        let builder = ureq::http::Request::builder().method(method).uri(format!("{}{path}", self.base));
        let invalid = |e: ureq::http::Error| self.unreachable(method, path, e.to_string());
        let result = match body {
            Some(bytes) => {
                let request = builder.header("Content-Type", "application/json").body(bytes).map_err(invalid)?;
                self.agent.run(self.agent.configure_request(request).timeout_global(Some(limit)).build())
            }
            None => self.agent.run(builder.body(()).map_err(invalid)?),
        };
        let response = result.map_err(|e| self.unreachable(method, path, e.to_string()))?;
        self.answer(method, path, response)
    }

    /// The body of an answer, or the error its status stands for.
    fn answer(
        &self,
        method: &str,
        path: &str,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<Vec<u8>, RayError> {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| self.unreachable(method, path, e.to_string()))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        Err(RayError::Refused {
            address: self.base.clone(),
            what: format!("{method} {path}"),
            status,
            message: error_message(&String::from_utf8_lossy(&body)),
        })
    }

    fn unreachable(&self, method: &str, path: &str, message: String) -> RayError {
        RayError::Unreachable { address: self.base.clone(), what: format!("{method} {path}"), message }
    }
}

/// `/api/jobs/<id><tail>`, the id percent-encoded.
fn job_path(job_id: &str, tail: &str) -> String {
    format!("/api/jobs/{}{tail}", crate::support::text::percent_encode(job_id))
}

/// A 404 of a job's log or stop as the job being unknown.
fn no_job(e: RayError, job_id: &str) -> RayError {
    match e {
        RayError::Refused { address, status: 404, .. } => RayError::NoSuchJob { address, job_id: job_id.to_string() },
        e => e,
    }
}

/// The Jobs API's base URL of an address.
fn base_url(address: &str) -> Result<String, RayError> {
    let bad = |reason| RayError::BadAddress { address: address.to_string(), reason };
    let trimmed = address.trim();
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    if trimmed == "auto" {
        return Err(bad("'auto' finds a cluster started on this machine by its files; give the dashboard's URL"));
    }
    let with_scheme = if trimmed.contains("://") { trimmed.to_string() } else { format!("http://{trimmed}") };
    let url = url::Url::parse(&with_scheme).map_err(|_| bad("it is not a URL nor HOST:PORT"))?;
    match url.scheme() {
        "http" | "https" => {}
        "ray" => {
            return Err(bad(
                "ray:// is the Ray Client's address; jobs are submitted to the dashboard (http://HOST:8265)",
            ));
        }
        _ => return Err(bad("the Jobs API is served over http:// or https://")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it has user-info, a query or a fragment, which the Jobs API does not take"));
    }
    Ok(with_scheme.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_taken_as_ray_job_submit_takes_them() {
        assert_eq!(base_url("127.0.0.1:8265").unwrap(), "http://127.0.0.1:8265");
        assert_eq!(base_url("http://head:8265/").unwrap(), "http://head:8265");
        assert_eq!(base_url(" https://ray.example.com/prefix ").unwrap(), "https://ray.example.com/prefix");
        for bad in ["", "auto", "ray://head:10001", "ftp://h", "http://", "http://u:p@h:1", "h:1?x=1", "http://h: 1"] {
            let err = base_url(bad).unwrap_err();
            assert!(matches!(err, RayError::BadAddress { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn job_ids_are_encoded_in_paths() {
        assert_eq!(job_path("lockstep-1", "/logs"), "/api/jobs/lockstep-1/logs");
        assert_eq!(job_path("a/b c", ""), "/api/jobs/a%2Fb%20c");
    }

    #[test]
    fn an_address_with_nothing_listening_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = JobsClient::new(&format!("127.0.0.1:{port}")).unwrap();
        let err = client.job("x").unwrap_err();
        assert!(matches!(err, RayError::Unreachable { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("cannot reach the Ray dashboard at http://127.0.0.1:{port} (GET /api/jobs/x)")),
            "{err}"
        );
    }
}
