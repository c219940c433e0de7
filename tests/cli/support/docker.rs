//! Docker fixtures. The engine has no registry, so the tests make their own base images:
//! Debian's static busybox imported as a root filesystem through the API, once per test
//! process. With `CI=true` a missing engine or busybox fails the Docker tests; elsewhere they
//! are skipped with a printed reason. Also two stand-ins on unix sockets: a proxy that keeps
//! the API calls a run makes, and an engine that stalls.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bollard::query_parameters::{CreateImageOptions, ListContainersOptions, RemoveImageOptions};
use futures_util::StreamExt;
use lockstep::env::docker::Engine;
use lockstep::env::docker::engine::engine_host;

use super::context::{TestContext, sha256_hex};

/// The fixture images, made once per test process.
pub struct Images {
    /// busybox in /bin, with a symlink per applet.
    pub busybox: String,
    /// The same, running as user 1000.
    pub non_root: String,
    /// A root filesystem where `/mlflow` is a file, so that the project image cannot be built.
    pub broken: String,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The fixture images, or None (after printing why) when this machine cannot run the tests.
pub fn images() -> Option<&'static Images> {
    static IMAGES: OnceLock<Result<Images, String>> = OnceLock::new();
    match IMAGES.get_or_init(make_images) {
        Ok(images) => Some(images),
        Err(reason) if in_ci() => panic!("Docker tests must run in CI: {reason}"),
        Err(reason) => {
            // Written to the file descriptor, past the test harness's capture, and once.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                let _ = writeln!(std::io::stderr(), "docker tests skipped: {reason}");
            });
            None
        }
    }
}

/// Debian's static busybox (package busybox-static).
fn static_busybox() -> Result<PathBuf, String> {
    for candidate in ["/bin/busybox", "/usr/bin/busybox"] {
        let path = Path::new(candidate);
        if let Ok(bytes) = fs::read(path)
            && is_static_elf(&bytes)
        {
            return Ok(path.to_path_buf());
        }
    }
    Err("no statically linked busybox (apt-get install busybox-static)".into())
}

/// An ELF file without a program interpreter runs without a dynamic loader.
fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        bytes.get(at..at + 4).is_some_and(|t| u32::from_le_bytes(t.try_into().unwrap()) != 3)
    })
}

fn tar_file(b: &mut tar::Builder<&mut Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

fn tar_dir(b: &mut tar::Builder<&mut Vec<u8>>, path: &str, mode: u32) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(mode);
    h.set_size(0);
    b.append_data(&mut h, path, std::io::empty()).unwrap();
}

/// A root filesystem: /bin/busybox with its applets, /tmp, and `extra` files.
fn rootfs(busybox: &Path, extra: &[(&str, &str)]) -> Vec<u8> {
    let applets = std::process::Command::new(busybox).arg("--list").output().unwrap();
    let mut out = Vec::new();
    {
        let mut b = tar::Builder::new(&mut out);
        tar_dir(&mut b, "bin", 0o755);
        tar_dir(&mut b, "tmp", 0o1777);
        tar_file(&mut b, "bin/busybox", 0o755, &fs::read(busybox).unwrap());
        for applet in String::from_utf8_lossy(&applets.stdout).lines().filter(|a| *a != "busybox") {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            b.append_link(&mut h, format!("bin/{applet}"), "busybox").unwrap();
        }
        for (path, content) in extra {
            tar_file(&mut b, path, 0o644, content.as_bytes());
        }
        b.finish().unwrap();
    }
    out
}

fn make_images() -> Result<Images, String> {
    let engine = Engine::connect().map_err(|e| format!("no Docker engine: {e}"))?;
    let busybox = static_busybox()?;
    let digest = sha256_hex(&fs::read(&busybox).unwrap());
    let tag = &digest[..12];
    let import = |repo: &str, rootfs: Vec<u8>, changes: Vec<String>| -> Result<String, String> {
        let reference = format!("lockstep-test/{repo}:{tag}");
        if engine.block_on(engine.docker().inspect_image(&reference)).is_ok() {
            return Ok(reference);
        }
        let options = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(format!("lockstep-test/{repo}")),
            tag: Some(tag.to_string()),
            changes,
            ..Default::default()
        };
        engine.block_on(async {
            let mut stream = engine.docker().create_image(Some(options), Some(bollard::body_full(rootfs.into())), None);
            while let Some(item) = stream.next().await {
                item.map_err(|e| format!("cannot import {reference}: {e}"))?;
            }
            Ok::<_, String>(())
        })?;
        Ok(reference)
    };
    Ok(Images {
        busybox: import("busybox", rootfs(&busybox, &[]), vec![])?,
        non_root: import("busybox-user", rootfs(&busybox, &[]), vec!["USER 1000".into()])?,
        broken: import("broken", rootfs(&busybox, &[("mlflow", "a file where a directory should be")]), vec![])?,
    })
}

/// Containers of a run that still exist.
pub fn containers_of(run_id: &str) -> usize {
    let engine = Engine::connect().unwrap();
    let filters = HashMap::from([("label".to_string(), vec![format!("lockstep.run_id={run_id}")])]);
    let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    engine.block_on(engine.docker().list_containers(Some(options))).unwrap().len()
}

/// Remove an image, if it exists.
pub fn remove_image(reference: &str) {
    let engine = Engine::connect().unwrap();
    let options = RemoveImageOptions { force: true, ..Default::default() };
    let _ = engine.block_on(engine.docker().remove_image(reference, Some(options), None));
}

/// A project `name` whose docker_env is `image` (plus `extra` MLproject lines) and whose
/// main entry point, with parameters alpha and name, runs `command`.
pub fn docker_project(ctx: &TestContext, name: &str, image: &str, extra: &str, command: &str) -> PathBuf {
    let manifest = format!(
        "name: {name}\ndocker_env:\n  image: {image}\n{extra}entry_points:\n  main:\n    parameters:\n      alpha: {{type: float, default: 0.5}}\n      name: {{type: string, default: x}}\n    command: {command}\n",
        command = serde_json::to_string(command).unwrap()
    );
    ctx.project(name, &[("MLproject", &manifest)])
}

/// A unix-socket proxy in front of the engine that keeps every byte clients send, to see which
/// API calls a run makes.
pub struct ApiProxy {
    socket: PathBuf,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl ApiProxy {
    pub fn start(dir: &Path) -> ApiProxy {
        let upstream = engine_host();
        let upstream = upstream.strip_prefix("unix://").expect("the tests' engine is on a unix socket").to_string();
        let socket = dir.join("api.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = UnixStream::connect(&upstream) else { return };
                let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        log.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                    let _ = c_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        ApiProxy { socket, sent }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The request lines sent since the last call.
    pub fn take_requests(&self) -> Vec<String> {
        let bytes = std::mem::take(&mut *self.sent.lock().unwrap());
        let text = String::from_utf8_lossy(&bytes);
        text.split("\r\n")
            .filter(|l| ["GET /", "POST /", "DELETE /", "HEAD /", "PUT /"].iter().any(|m| l.starts_with(m)))
            .map(|l| l.split('?').next().unwrap_or(l).to_string())
            .collect()
    }
}

/// Where the stand-in engine of [`stalling_engine`] stops answering.
pub enum Stall {
    /// It knows no image, and a pull never finishes.
    Pull,
    /// It has this base image, not the project's, and reads nothing of a build's context.
    Build(&'static str),
}

/// A stand-in engine on a unix socket that stalls as `stall` says. Returns the socket and a
/// flag set once the stalled request began.
pub fn stalling_engine(dir: &Path, stall: Stall) -> (PathBuf, Arc<Mutex<bool>>) {
    let socket = dir.join("fake-engine.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let stalled = Arc::new(Mutex::new(false));
    let flag = stalled.clone();
    let stall = Arc::new(stall);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let (flag, stall) = (flag.clone(), stall.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut request = String::new();
                    if reader.read_line(&mut request).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        if header == "\r\n" {
                            break;
                        }
                        if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let path = request.split_whitespace().nth(1).unwrap_or("").split('?').next().unwrap_or("");
                    if let Stall::Build(_) = *stall
                        && path.ends_with("/build")
                    {
                        *flag.lock().unwrap() = true;
                        // The context is never read: the client's side of the upload fills up.
                        std::thread::sleep(std::time::Duration::from_secs(120));
                        return;
                    }
                    let mut body = vec![0u8; length];
                    let _ = reader.read_exact(&mut body);
                    let reply = |status: &str, body: &str| {
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    let inspected = path.split_once("/images/").and_then(|(_, rest)| rest.strip_suffix("/json"));
                    let response = if path.ends_with("/version") {
                        reply("200 OK", r#"{"Version":"fake","ApiVersion":"1.41","Os":"linux","Arch":"amd64"}"#)
                    } else if let (Stall::Build(base), Some(image)) = (&*stall, inspected)
                        && image == *base
                    {
                        let id = format!("sha256:{}", "ab".repeat(32));
                        reply(
                            "200 OK",
                            &format!(r#"{{"Id":"{id}","Os":"linux","Architecture":"amd64","Config":{{}}}}"#),
                        )
                    } else if let Stall::Pull = *stall
                        && path.ends_with("/images/create")
                    {
                        *flag.lock().unwrap() = true;
                        let head =
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                        let line = "{\"status\":\"Pulling fs layer\",\"id\":\"abc\"}\n";
                        let _ = write!(conn, "{head}{:x}\r\n{line}\r\n", line.len());
                        // Never finishes: wait for the client to give up and close.
                        let _ = reader.read_line(&mut String::new());
                        return;
                    } else {
                        reply("404 Not Found", r#"{"message":"no such image"}"#)
                    };
                    if conn.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (socket, stalled)
}
