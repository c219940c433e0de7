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
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::context::{free_port, wait_for};
use super::uv::path_with_uv;
use super::venv::pypi_venv;

/// The environment variable that marks the processes of one head: its temp dir.
const MARKER: &str = "LOCKSTEP_TEST_RAY_HEAD";

/// The `ray` executable of the tests' virtualenv.
pub fn ray_bin() -> PathBuf {
    pypi_venv("ray-2.60.0", "ray-venv.sh").join("bin/ray")
}

/// A Ray head with its dashboard (and so the Jobs API) on 127.0.0.1.
///
/// A head takes 2 CPUs and starts a dozen processes: the tests that use one take turns
/// (each holds `_turn`), so that none waits out a time limit because of the others.
pub struct RayHead {
    _turn: MutexGuard<'static, ()>,
    child: Option<Child>,
    /// Ray's temp dir (sessions, logs, sockets) and the head's HOME. Short, under /tmp:
    /// Ray's unix sockets live in it, and their paths must stay under 108 bytes.
    dir: tempfile::TempDir,
    /// The dashboard's port.
    pub port: u16,
}

impl RayHead {
    /// Start a head and wait until its Jobs API answers.
    pub fn start() -> RayHead {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
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
            .env(MARKER, &marker)
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
        let mut head = RayHead { _turn: turn, child: Some(child), dir, port };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        // Jobs are taken once the dashboard answers and the head's agent, which runs them,
        // is up (the dashboard gives up on an agent that is not there within 10 s).
        let ready = [format!("{}/api/jobs/", head.address()), format!("http://127.0.0.1:{agent_port}/api/healthz")];
        let up = wait_for(Duration::from_secs(120), || {
            if let Some(Ok(Some(status))) = head.child.as_mut().map(|c| c.try_wait()) {
                panic!("ray start exited with {status}: {}", head.log());
            }
            ready.iter().all(|url| agent.get(url).call().is_ok())
        });
        assert!(up, "the Ray head answers on {port}: {}", head.log());
        head
    }

    /// The dashboard's address, as `--backend-config '{"address": ...}'` takes it.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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
