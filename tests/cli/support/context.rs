//! The shared test context: each test gets its own HOME, cache, store and working directory,
//! and a `lockstep` command with a clean environment.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One test's own directories, removed when it ends.
pub struct TestContext {
    _root: tempfile::TempDir,
    pub home: PathBuf,
    pub cache: PathBuf,
    pub work: PathBuf,
}

/// The `lockstep` binary under test.
pub fn lockstep_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lockstep"))
}

impl TestContext {
    pub fn new() -> TestContext {
        let root = tempfile::Builder::new().prefix("lockstep-test-").tempdir().unwrap();
        let base = fs::canonicalize(root.path()).unwrap();
        let (home, cache, work) = (base.join("home"), base.join("cache"), base.join("work"));
        for d in [&home, &cache, &work] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n[advice]\n\tdetachedHead = false\n",
        )
        .unwrap();
        TestContext { _root: root, home, cache, work }
    }

    /// Environment variables every command of the test gets.
    pub fn envs(&self) -> Vec<(&'static str, String)> {
        let mut envs = vec![
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("HOME", self.home.display().to_string()),
            ("LOCKSTEP_CACHE_DIR", self.cache.display().to_string()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            ("LANG", "C.UTF-8".into()),
            // Tests stay offline: a Python that is not installed is not downloaded.
            ("UV_PYTHON_DOWNLOADS", "never".into()),
        ];
        // The Docker tests use the engine the machine names.
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            envs.push(("DOCKER_HOST", host));
        }
        envs
    }

    /// `lockstep ARGS` in the work directory, with a clean environment.
    pub fn lockstep(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(lockstep_bin());
        cmd.env_clear().current_dir(&self.work).envs(self.envs()).write_stdin("");
        cmd
    }

    /// The same, as a std command for tests that need the process (signals, concurrency).
    pub fn lockstep_process(&self) -> Command {
        let mut cmd = Command::new(lockstep_bin());
        cmd.env_clear().current_dir(&self.work).envs(self.envs()).stdin(Stdio::null());
        cmd
    }

    /// The default store (`.lockstep` in the work directory).
    /// `lockstep run` of a git URL on `server`, a server that never answers, once the fetch
    /// has connected: a runner stopped before its run started.
    pub fn run_stuck_in_a_fetch(&self, server: &super::Server) -> std::process::Child {
        let runner = self
            .lockstep_process()
            .env("LOCKSTEP_GIT_TIMEOUT", "60")
            .args(["run", &format!("git://127.0.0.1:{}/repo.git", server.port)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_for(Duration::from_secs(10), || server.connections() > 0), "the fetch started");
        runner
    }

    pub fn store(&self) -> PathBuf {
        self.work.join(".lockstep")
    }

    /// Write a file under the work directory (parents created).
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        write_file(&self.work.join(rel), content)
    }

    /// A project directory under the work directory with these files.
    pub fn project(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.work.join(name);
        for (rel, content) in files {
            write_file(&dir.join(rel), content);
        }
        dir
    }

    /// All run records in the default store.
    pub fn records(&self) -> Vec<Value> {
        records_in(&self.store())
    }

    /// The only record in the default store.
    pub fn only_record(&self) -> Value {
        let mut r = self.records();
        assert_eq!(r.len(), 1, "exactly one run is recorded");
        r.remove(0)
    }

    /// Run directories (with or without a record) in the default store.
    pub fn run_dirs(&self) -> Vec<PathBuf> {
        match fs::read_dir(self.store().join("runs")) {
            Ok(e) => e.flatten().map(|e| e.path()).collect(),
            Err(_) => vec![],
        }
    }

    /// Assert that the default store holds no run directory.
    pub fn assert_no_runs(&self) {
        assert!(self.run_dirs().is_empty(), "no run is left behind: {:?}", self.run_dirs());
    }

    /// `git ARGS` in `dir` with the test's HOME.
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git").args(args).current_dir(dir).env_clear().envs(self.envs()).output().unwrap();
        assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A git repository at `dir` with one commit of `files`; returns the commit.
    pub fn git_repo(&self, dir: &Path, files: &[(&str, &str)]) -> String {
        fs::create_dir_all(dir).unwrap();
        self.git(dir, &["init", "-q"]);
        self.commit(dir, files, "initial")
    }

    /// Write `files` and commit everything; returns the commit.
    pub fn commit(&self, dir: &Path, files: &[(&str, &str)], message: &str) -> String {
        for (rel, content) in files {
            write_file(&dir.join(rel), content);
        }
        self.git(dir, &["add", "-A"]);
        self.git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
        self.git(dir, &["rev-parse", "HEAD"])
    }
}

/// Write `content` at `path` (parents created; `*.sh` made executable).
pub fn write_file(path: &Path, content: &str) -> PathBuf {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    if path.extension().is_some_and(|e| e == "sh") {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    path.to_path_buf()
}

/// All run records in `store`, oldest first.
pub fn records_in(store: &Path) -> Vec<Value> {
    let Ok(entries) = fs::read_dir(store.join("runs")) else { return vec![] };
    let mut out: Vec<Value> = entries
        .flatten()
        .filter_map(|e| fs::read(e.path().join("record.json")).ok())
        .map(|b| serde_json::from_slice(&b).expect("records are valid JSON"))
        .collect();
    out.sort_by_key(|r| r["start_time"].as_u64());
    out
}

/// stdout of an assert_cmd output as JSON.
pub fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// stderr of an output as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Wait until `cond` holds, up to `limit`.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// The command lines (arguments joined by spaces) of all processes that contain `needle`.
pub fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        if !entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            let joined = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if joined.contains(needle) {
                found.push(joined);
            }
        }
    }
    found
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `bytes` in hex, as records spell digests (computed here, not by the crate under
/// test, so that a digest bug cannot agree with itself).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// `bytes` random bytes in hex, for contents no earlier test run made.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).unwrap();
    hex(&buf)
}
