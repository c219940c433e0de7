//! The Ray head fixture: Ray 2.60.0 from PyPI in a virtualenv cached under the target
//! directory (`tests/support/ray-venv.sh` makes it once), and `ray start --head --block` on
//! 127.0.0.1 with free ports and its own temp dir, stopped when dropped, also when the test
//! fails. Every process of the head, down to the jobs' entrypoints (which Ray starts in
//! sessions of their own), carries a marker in its environment; stopping kills every process
//! with the marker, so none outlives the test. Never `ray stop`, which would stop every
//! cluster of the machine.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::context::{free_port, lockstep_bin, wait_for};
use super::uv::path_with_uv;
use super::venv::pypi_venv;

/// The environment variable that marks the processes of one head: its temp dir.
const MARKER: &str = "LOCKSTEP_TEST_RAY_HEAD";

/// The `ray` executable of the tests' virtualenv.
pub fn ray_bin() -> PathBuf {
    pypi_venv("ray-2.60.0", "ray-venv.sh").join("bin/ray")
}

/// The lockstep under test without its debug info, for the config's `lockstep` key: Ray's
/// dashboard takes packages below 100 MiB, and the debug build is three times that. Made
/// once per test process (`objcopy`, from binutils).
pub fn stripped_lockstep() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ray-lockstep");
        fs::create_dir_all(&dir).unwrap();
        let (part, bin) = (dir.join(format!("lockstep.{}", std::process::id())), dir.join("lockstep"));
        let out = Command::new("objcopy").arg("--strip-debug").arg(lockstep_bin()).arg(&part).output();
        let out = out.expect("objcopy (binutils) runs");
        assert!(out.status.success(), "objcopy --strip-debug: {}", String::from_utf8_lossy(&out.stderr));
        // Concurrent test processes each make their own, then rename it into place.
        fs::rename(&part, &bin).unwrap();
        bin
    })
    .clone()
}

/// A Ray head with its dashboard (and so the Jobs API) on 127.0.0.1.
///
/// A head takes 2 CPUs and starts a dozen processes: the tests that use one take turns
/// (each holds `_turn`), so that none waits out a time limit because of the others.
pub struct RayHead {
    /// Held from the start: a head that died at start is replaced under the same turn.
    _turn: Option<MutexGuard<'static, ()>>,
    child: Option<Child>,
    /// Ray's temp dir (sessions, logs, sockets) and the head's HOME. Short, under /tmp:
    /// Ray's unix sockets live in it, and their paths must stay under 108 bytes.
    dir: tempfile::TempDir,
    /// The dashboard's port.
    pub port: u16,
}

impl RayHead {
    /// Start a head and wait until its Jobs API answers. On a loaded machine Ray may give
    /// up on its own daemons at start (a GCS deadline): then a new head is started, twice.
    pub fn start() -> RayHead {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for attempt in 1.. {
            match RayHead::launch() {
                Ok(mut head) => {
                    head._turn = Some(turn);
                    return head;
                }
                Err(log) if attempt < 3 => eprintln!("the Ray head did not start (attempt {attempt}): {log}"),
                Err(log) => panic!("the Ray head did not start: {log}"),
            }
        }
        unreachable!("the attempts end in a head or a panic")
    }

    /// One head, or what it wrote when it died at start.
    fn launch() -> Result<RayHead, String> {
        let ray = ray_bin();
        let dir = tempfile::Builder::new().prefix("ray-").tempdir_in("/tmp").unwrap();
        let (port, agent_port) = (free_port(), free_port());
        let marker = dir.path().display().to_string();
        let mut command = Command::new(&ray);
        command
            .args(["start", "--head", "--block", "--port=0", "--node-ip-address=127.0.0.1"])
            .args(["--include-dashboard=true", "--dashboard-host=127.0.0.1", &format!("--dashboard-port={port}")])
            // Ports Ray otherwise takes fixed (10001, 52365): two heads would collide.
            .arg(format!("--ray-client-server-port={}", free_port()))
            .arg(format!("--dashboard-agent-listen-port={agent_port}"))
            .args(["--disable-usage-stats", "--num-cpus=2"])
            .arg(format!("--temp-dir={marker}"))
            .current_dir(dir.path())
            .env_clear()
            // The jobs' entrypoints inherit this PATH: uv for python_env projects.
            .env("PATH", path_with_uv())
            .env("HOME", dir.path())
            .env("LANG", "C.UTF-8")
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env(MARKER, &marker)
            // A loaded machine (CI, parallel tests) may take longer than Ray's 30 s.
            .env("RAY_raylet_start_wait_time_s", "120")
            // Ray turns 127.0.0.1 into the machine's outward address unless told that this
            // is a one-machine cluster; the tests' traffic stays on loopback.
            .env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path().join("head.out")).unwrap())
            .stderr(fs::File::create(dir.path().join("head.err")).unwrap());
        // If the test process dies without dropping the head, the kernel kills `ray start`,
        // and Ray's fate sharing takes its daemons with it.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().expect("ray start runs");
        let mut head = RayHead { _turn: None, child: Some(child), dir, port };
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into();
        // Jobs are taken once the dashboard answers and the head's agent, which runs them,
        // is up (the dashboard gives up on an agent that is not there within 10 s).
        let ready = [format!("{}/api/jobs/", head.address()), format!("http://127.0.0.1:{agent_port}/api/healthz")];
        let mut exited = None;
        let up = wait_for(Duration::from_secs(180), || {
            if let Some(Ok(Some(status))) = head.child.as_mut().map(|c| c.try_wait()) {
                exited = Some(status);
                return true;
            }
            ready.iter().all(|url| agent.get(url).call().is_ok())
        });
        assert!(up, "the Ray head answers on {port}: {}", head.log());
        match exited {
            None => Ok(head),
            Some(status) => {
                let log = format!("ray start exited with {status}: {}", head.log());
                head.stop();
                Err(log)
            }
        }
    }

    /// The dashboard's address, as `--backend-config '{"address": ...}'` takes it.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The head's HOME, where its jobs' lockstep keeps its store (`.lockstep-ray`) and cache.
    pub fn home(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `--backend-config` for this head: its address and the stripped lockstep, plus `extra`.
    pub fn config(&self, extra: serde_json::Value) -> String {
        let mut config = serde_json::json!({ "address": self.address(), "lockstep": stripped_lockstep() });
        config.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        config.to_string()
    }

    /// What `ray start` wrote.
    pub fn log(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("head.out"), read("head.err"))
    }

    /// The pids of the head's processes, daemons, workers and jobs.
    pub fn processes(&self) -> Vec<i32> {
        let needle = format!("{MARKER}={}\0", self.dir.path().display());
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            if let Ok(environ) = fs::read(entry.path().join("environ"))
                && environ.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                pids.push(pid);
            }
        }
        pids
    }

    /// The command lines of the head's processes that contain `needle` (a job's entrypoint).
    pub fn processes_with(&self, needle: &str) -> Vec<String> {
        self.processes()
            .into_iter()
            .filter_map(|pid| fs::read(format!("/proc/{pid}/cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(needle))
            .collect()
    }

    /// Stop the head now: every process it started, killed.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // Killed, not asked: a graceful `ray start` shutdown takes many seconds, and
        // nothing of the head's is kept. A daemon may start a worker while the others die,
        // so this goes on until none is left.
        let gone = wait_for(Duration::from_secs(20), || {
            let pids = self.processes();
            for pid in &pids {
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
            pids.is_empty()
        });
        let _ = child.kill();
        let _ = child.wait();
        assert!(gone || std::thread::panicking(), "the Ray head's processes are gone: {:?}", self.processes());
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        self.stop();
    }
}
