//! The Slurm cluster fixture: Debian's `slurm-wlm` and `munge` on 127.0.0.1, with a minimal
//! `slurm.conf` in a temp dir (free ports, its own munge socket and key, state and spool dirs
//! there, no accounting, no cgroups): munged, `slurmctld -D` and `slurmd -D`, stopped by pid
//! when dropped, also when the test fails. Tests take turns: one cluster at a time.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::context::{free_port, wait_for};

/// The node's name in the test cluster.
pub const NODE: &str = "node1";

/// A running test cluster.
pub struct SlurmCluster {
    _turn: MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    /// The cluster's `slurm.conf` (`SLURM_CONF` of every command that talks to it).
    pub conf: PathBuf,
    /// The directory the jobs and the submit side share (`staging_dir`).
    pub staging: PathBuf,
    munged: Option<Child>,
    slurmctld: Option<Child>,
    slurmd: Option<Child>,
}

/// Whether the daemons are installed; without them, a test prints why it skips, unless CI
/// is set, where the cluster must run.
pub fn available() -> bool {
    let found = ["slurmctld", "slurmd", "munged", "sbatch"].iter().all(|p| which(p).is_some());
    // The cluster's daemons and jobs run as root (SlurmUser=root), as on CI.
    let root = unsafe { libc::geteuid() } == 0;
    if !(found && root) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have slurm-wlm and munge (.ci/run installs them) and run as root"
        );
        eprintln!("skipped: the Slurm tests need slurm-wlm and munge (apt-get install slurm-wlm munge) and root");
    }
    found && root
}

fn which(program: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].iter().map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

impl SlurmCluster {
    /// Start munged, the controller and the node daemon; wait until the node is idle.
    pub fn start() -> SlurmCluster {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::Builder::new().prefix("slurm-").tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        for sub in ["munge", "state", "spool", "log", "staging"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        // munged and the jobs' users must reach the socket through the temp dir.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(root.join("munge"), fs::Permissions::from_mode(0o755)).unwrap();
        let key = root.join("munge/munge.key");
        fs::write(&key, super::context::random_hex(512)).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o400)).unwrap();
        let conf = root.join("slurm.conf");
        fs::write(&conf, slurm_conf(&root)).unwrap();
        let mut cluster = SlurmCluster {
            _turn: turn,
            conf,
            staging: root.join("staging"),
            dir,
            munged: None,
            slurmctld: None,
            slurmd: None,
        };
        let m = root.join("munge");
        cluster.munged = Some(cluster.daemon(
            "munged",
            &[
                "-F".to_string(),
                "-f".into(),
                format!("--socket={}", m.join("sock").display()),
                format!("--key-file={}", key.display()),
                format!("--log-file={}", m.join("log").display()),
                format!("--pid-file={}", m.join("pid").display()),
                format!("--seed-file={}", m.join("seed").display()),
            ],
            "munged.out",
        ));
        assert!(
            wait_for(Duration::from_secs(10), || m.join("sock").exists()),
            "munged started: {}",
            cluster.log("munged.out")
        );
        cluster.start_controller(false);
        let conf = cluster.conf.display().to_string();
        cluster.slurmd =
            Some(cluster.daemon("slurmd", &["-D".into(), "-N".into(), NODE.into(), "-f".into(), conf], "slurmd.out"));
        let idle = wait_for(Duration::from_secs(30), || cluster.tool("sinfo", &["-h", "-o", "%t"]).trim() == "idle");
        assert!(idle, "the node is idle: {} {}", cluster.log("slurmctld.log"), cluster.log("slurmd.log"));
        cluster
    }

    fn daemon(&self, program: &str, args: &[String], out: &str) -> Child {
        let log = fs::File::create(self.root().join("log").join(out)).unwrap();
        Command::new(which(program).unwrap())
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{program} starts: {e}"))
    }

    fn root(&self) -> PathBuf {
        fs::canonicalize(self.dir.path()).unwrap()
    }

    fn log(&self, name: &str) -> String {
        fs::read_to_string(self.root().join("log").join(name)).unwrap_or_default()
    }

    /// Start the controller; `forget` starts it with its saved state cleared (`-c`): it no
    /// longer knows the jobs it had.
    pub fn start_controller(&mut self, forget: bool) {
        let mut args = vec!["-D".to_string(), "-i".into(), "-f".into(), self.conf.display().to_string()];
        if forget {
            args.push("-c".into());
        }
        self.slurmctld = Some(self.daemon("slurmctld", &args, "slurmctld.out"));
        let up = wait_for(Duration::from_secs(20), || self.answers());
        assert!(up, "slurmctld answers: {}", self.log("slurmctld.log"));
    }

    /// Stop the controller (SIGTERM by pid, then wait); jobs on the node run on.
    pub fn stop_controller(&mut self) {
        if let Some(child) = self.slurmctld.take() {
            stop(child);
        }
    }

    fn answers(&self) -> bool {
        Command::new("scontrol")
            .arg("ping")
            .env("SLURM_CONF", &self.conf)
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("is UP"))
    }

    /// `PROGRAM ARGS` against this cluster; its stdout.
    pub fn tool(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program).args(args).env("SLURM_CONF", &self.conf).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The controller's state of a job, if it knows the job.
    pub fn job_state(&self, job_id: &str) -> Option<String> {
        let line = self.tool("scontrol", &["show", "job", "-o", job_id]);
        line.split_whitespace().find_map(|w| w.strip_prefix("JobState=")).map(str::to_string)
    }

    /// `--backend-config` for this cluster, with more keys.
    pub fn config(&self, extra: serde_json::Value) -> String {
        let mut config = serde_json::json!({ "staging_dir": self.staging });
        if let serde_json::Value::Object(more) = extra {
            config.as_object_mut().unwrap().extend(more);
        }
        config.to_string()
    }
}

impl Drop for SlurmCluster {
    fn drop(&mut self) {
        // The jobs first, through this cluster's controller, so that no step outlives it.
        if self.slurmctld.is_some() {
            let _ = Command::new("scancel").args(["--user", "root"]).env("SLURM_CONF", &self.conf).output();
            wait_for(Duration::from_secs(10), || self.tool("squeue", &["-h"]).trim().is_empty());
        }
        for child in [self.slurmd.take(), self.slurmctld.take(), self.munged.take()].into_iter().flatten() {
            stop(child);
        }
        // A step daemon whose slurmd was stopped before the step ended (the stopped-controller
        // test) stays behind; it carries this cluster's SLURM_CONF, by which it is found.
        kill_marked(&format!("SLURM_CONF={}", self.conf.display()));
    }
}

/// SIGKILL every process whose environment holds `marker`, until none is left.
fn kill_marked(marker: &str) {
    let marked = || -> Vec<i32> {
        let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != std::process::id() as i32)
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
            })
            .collect()
    };
    wait_for(Duration::from_secs(10), || {
        let pids = marked();
        for pid in &pids {
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        pids.is_empty()
    });
}

/// SIGTERM by pid, up to 10 s, then SIGKILL; reaped.
fn stop(mut child: Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    if !wait_for(Duration::from_secs(10), || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The minimal configuration: one node with two CPUs on 127.0.0.1, the builtin scheduler
/// without batch delay, no accounting, no cgroups.
fn slurm_conf(root: &Path) -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let r = root.display();
    format!(
        "ClusterName=lockstep\nSlurmctldHost={host}(127.0.0.1)\nSlurmctldPort={ctld}\nSlurmdPort={d}\n\
         SlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\nAuthInfo=socket={r}/munge/sock\n\
         CredType=cred/munge\nStateSaveLocation={r}/state\nSlurmdSpoolDir={r}/spool\n\
         SlurmctldPidFile={r}/slurmctld.pid\nSlurmdPidFile={r}/slurmd.pid\n\
         SlurmctldLogFile={r}/log/slurmctld.log\nSlurmdLogFile={r}/log/slurmd.log\n\
         ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSchedulerType=sched/builtin\n\
         SchedulerParameters=batch_sched_delay=0\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
         JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
         MpiDefault=none\nReturnToService=2\nSlurmctldTimeout=10\nSlurmdTimeout=30\nInactiveLimit=0\n\
         MinJobAge=300\nKillWait=2\nMessageTimeout=5\n\
         NodeName={NODE} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n\
         PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP\n",
        ctld = free_port(),
        d = free_port(),
    )
}
