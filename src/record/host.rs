//! The machine a run ran on, as far as it decides numerics: CPU model and the instruction
//! sets that change floating-point kernels, cores and memory, kernel and libc, GPUs, the
//! variables that set thread counts, hash seeds and determinism switches, and the BLAS the
//! environment installed. Collected from /proc, /sys and uname, with no Python started; the
//! GPU query runs only where `nvidia-smi` is installed, bounded in time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::env::EnvRecord;
use crate::support::process;

/// The instruction-set features recorded when the CPU has them: those that select BLAS and
/// NumPy kernels or change the rounding of fused operations (x86 flags, ARM features).
const NUMERIC_CPU_FLAGS: &[&str] = &[
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "asimdhp",
    "sve",
    "sve2",
];

/// The variables recorded by name and value: thread counts, hash seeds, determinism
/// switches, time and locale. Only these: the rest of the environment may hold secrets.
pub const NUMERICS_VARIABLES: &[&str] = &[
    "OMP_NUM_THREADS",
    "OMP_DYNAMIC",
    "OMP_PROC_BIND",
    "MKL_NUM_THREADS",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "KMP_AFFINITY",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "PYTHONHASHSEED",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_VISIBLE_DEVICES",
    "TZ",
    "LANG",
    "LC_ALL",
    "LC_NUMERIC",
    "SOURCE_DATE_EPOCH",
];

/// How long `nvidia-smi` may stay silent before it is given up on.
const GPU_QUERY_LIMIT: Duration = Duration::from_secs(3);

/// One GPU, as `nvidia-smi` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gpu {
    /// Model name (`NVIDIA A100-SXM4-40GB`).
    pub model: String,
    /// Memory in MiB.
    pub memory_mib: Option<u64>,
    /// Driver version.
    pub driver: Option<String>,
    /// The CUDA version the driver supports.
    pub cuda: Option<String>,
    /// The GPU's UUID.
    pub uuid: Option<String>,
}

/// The machine a run ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Operating system (`linux`).
    pub os: String,
    /// CPU architecture (`x86_64`).
    pub arch: String,
    /// CPU model name, when known.
    pub cpu: Option<String>,
    /// Number of logical CPUs.
    pub cpus: usize,
    /// Host name.
    pub hostname: Option<String>,
    /// The lockstep version that made the record.
    pub lockstep_version: String,
    /// Physical cores (distinct core ids), when /proc/cpuinfo says.
    #[serde(default)]
    pub physical_cores: Option<usize>,
    /// The numerics-relevant instruction-set features the CPU has ([`NUMERIC_CPU_FLAGS`]).
    #[serde(default)]
    pub cpu_flags: Vec<String>,
    /// Memory in bytes.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Kernel release (`6.1.0-18-amd64`).
    #[serde(default)]
    pub kernel: Option<String>,
    /// The distribution (os-release's `PRETTY_NAME`).
    #[serde(default)]
    pub distribution: Option<String>,
    /// The C library (`glibc 2.36`).
    #[serde(default)]
    pub libc: Option<String>,
    /// GPUs, when the machine has NVIDIA's tools.
    #[serde(default)]
    pub gpus: Vec<Gpu>,
    /// The numerics-relevant variables that were set ([`NUMERICS_VARIABLES`]).
    #[serde(default)]
    pub numerics_env: BTreeMap<String, String>,
    /// The BLAS/LAPACK libraries the environment installed (`openblas 0.3.27`), from its lock.
    #[serde(default)]
    pub blas: Vec<String>,
}

impl HostInfo {
    /// Describe this machine (the BLAS is filled in by [`HostInfo::with_blas_of`]).
    pub fn current() -> HostInfo {
        let cpu = parse_cpuinfo(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default());
        HostInfo {
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            cpu: cpu.model,
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            hostname: read_trimmed(Path::new("/proc/sys/kernel/hostname")),
            lockstep_version: crate::VERSION.to_string(),
            physical_cores: cpu.physical_cores,
            cpu_flags: cpu.flags,
            memory_bytes: std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| mem_total(&m)),
            kernel: read_trimmed(Path::new("/proc/sys/kernel/osrelease")),
            distribution: std::fs::read_to_string("/etc/os-release").ok().and_then(|s| pretty_name(&s)),
            libc: libc_version(),
            gpus: nvidia_smi().map(|smi| query_gpus(&smi)).unwrap_or_default(),
            numerics_env: numerics_env(|name| std::env::var(name).ok()),
            blas: Vec::new(),
        }
    }

    /// The same, with the BLAS libraries of an environment's lock.
    pub fn with_blas_of(mut self, environment: &EnvRecord) -> HostInfo {
        self.blas = blas_libraries(environment);
        self
    }

    /// The same, with the numerics variables among those the entry point is given besides
    /// lockstep's own environment (a sweep worker's GPU, a factor `verify --isolate` pins):
    /// the record says what the run saw.
    pub fn with_variables(mut self, variables: &[(String, String)]) -> HostInfo {
        for (name, value) in variables.iter().filter(|(name, _)| NUMERICS_VARIABLES.contains(&name.as_str())) {
            self.numerics_env.insert(name.clone(), value.clone());
        }
        self
    }

    /// What differs between a recorded machine and this one, one line per field, in the
    /// words `status` shows: `cpu: A -> B`. The host name and lockstep's version are left
    /// out: they do not change numerics.
    pub fn drift(&self, now: &HostInfo) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |name: &str, was: String, is: String| {
            if was != is {
                out.push(format!("{name}: {was} -> {is}"));
            }
        };
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
        let num = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "unknown".into());
        field("arch", self.arch.clone(), now.arch.clone());
        field("cpu", opt(&self.cpu), opt(&now.cpu));
        field("cpu flags", self.cpu_flags.join(","), now.cpu_flags.join(","));
        field("logical cpus", self.cpus.to_string(), now.cpus.to_string());
        field("physical cores", num(self.physical_cores.map(|n| n as u64)), num(now.physical_cores.map(|n| n as u64)));
        field("memory", num(self.memory_bytes), num(now.memory_bytes));
        field("kernel", opt(&self.kernel), opt(&now.kernel));
        field("distribution", opt(&self.distribution), opt(&now.distribution));
        field("libc", opt(&self.libc), opt(&now.libc));
        let gpus = |g: &[Gpu]| {
            g.iter()
                .map(|g| format!("{} (driver {}, CUDA {})", g.model, opt(&g.driver), opt(&g.cuda)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        field("gpus", gpus(&self.gpus), gpus(&now.gpus));
        let names: std::collections::BTreeSet<&String> =
            self.numerics_env.keys().chain(now.numerics_env.keys()).collect();
        for name in names {
            let value = |env: &BTreeMap<String, String>| env.get(name).cloned().unwrap_or_else(|| "unset".into());
            field(name, value(&self.numerics_env), value(&now.numerics_env));
        }
        out
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// What /proc/cpuinfo says, read in one pass (it has a block per logical CPU: long on a
/// large machine).
#[derive(Debug, Default, PartialEq)]
struct CpuInfo {
    model: Option<String>,
    /// Distinct (physical id, core id) pairs; None where the kernel does not list them (ARM).
    physical_cores: Option<usize>,
    flags: Vec<String>,
}

fn parse_cpuinfo(cpuinfo: &str) -> CpuInfo {
    let (mut model, mut flags) = (None, None);
    let mut cores = std::collections::HashSet::new();
    let mut package = None;
    for line in cpuinfo.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match key.trim() {
            "model name" if model.is_none() => model = Some(value.to_string()),
            "flags" | "Features" if flags.is_none() => flags = Some(value),
            "physical id" => package = Some(value),
            "core id" => {
                cores.insert((package.unwrap_or(""), value));
            }
            _ => {}
        }
    }
    let have: std::collections::HashSet<&str> = flags.unwrap_or("").split_whitespace().collect();
    CpuInfo {
        model,
        physical_cores: (!cores.is_empty()).then_some(cores.len()),
        flags: NUMERIC_CPU_FLAGS.iter().filter(|f| have.contains(*f)).map(|f| f.to_string()).collect(),
    }
}

fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn pretty_name(os_release: &str) -> Option<String> {
    let value = os_release.lines().find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim().trim_matches('"').to_string()).filter(|s| !s.is_empty())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn libc_version() -> Option<String> {
    // SAFETY: gnu_get_libc_version returns a pointer to a static, NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    Some(format!("glibc {}", version.to_string_lossy()))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn libc_version() -> Option<String> {
    None
}

fn numerics_env(get: impl Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    NUMERICS_VARIABLES.iter().filter_map(|name| get(name).map(|v| (name.to_string(), v))).collect()
}

/// `nvidia-smi` on PATH, found without starting anything (a machine without it pays a few
/// `stat` calls).
fn nvidia_smi() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join("nvidia-smi")).find(|p| p.is_file())
}

fn run_bounded(program: &Path, args: &[&str]) -> Option<String> {
    let out = process::Command::new(program, args)
        .run(Duration::from_millis(200), Some(GPU_QUERY_LIMIT))
        .ok()
        .filter(|out| out.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The GPUs `nvidia-smi` lists; nothing when it fails or stays silent too long.
fn query_gpus(smi: &Path) -> Vec<Gpu> {
    let Some(listing) =
        run_bounded(smi, &["--query-gpu=name,memory.total,driver_version,uuid", "--format=csv,noheader,nounits"])
    else {
        return Vec::new();
    };
    let cuda = run_bounded(smi, &["--version"]).and_then(|v| cuda_version(&v));
    parse_gpus(&listing, cuda)
}

fn parse_gpus(listing: &str, cuda: Option<String>) -> Vec<Gpu> {
    let known = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty() && s != "[N/A]" && s != "N/A");
    listing
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let field = |i: usize| fields.get(i).copied().and_then(known);
            Gpu {
                model: field(0).unwrap_or_else(|| "unknown GPU".into()),
                memory_mib: field(1).and_then(|m| m.parse().ok()),
                driver: field(2),
                cuda: cuda.clone(),
                uuid: field(3),
            }
        })
        .collect()
}

/// The CUDA version in `nvidia-smi --version` (`CUDA Version : 12.4`).
fn cuda_version(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "CUDA Version").then(|| value.trim().to_string()).filter(|v| !v.is_empty())
    })
}

/// Whether a package name is a BLAS/LAPACK implementation (the wheels NumPy and SciPy
/// bundle or depend on, and conda's BLAS packages).
fn is_blas(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('_', "-");
    name.contains("openblas")
        || name == "mkl"
        || name.starts_with("mkl-")
        || name == "blis"
        || name == "libblas"
        || name == "libcblas"
        || name == "liblapack"
        || name == "accelerate"
}

fn blas_libraries(environment: &EnvRecord) -> Vec<String> {
    let Some(lock) = environment.lock() else { return Vec::new() };
    let python = lock.packages.iter().map(|p| (&p.name, &p.version));
    let conda = lock.conda_packages.iter().map(|p| (&p.name, &p.version));
    python.chain(conda).filter(|(name, _)| is_blas(name)).map(|(name, version)| format!("{name} {version}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86: &str = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU\nphysical id\t: 0\ncore id\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) CPU\nphysical id\t: 0\ncore id\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n";

    #[test]
    fn cpuinfo_gives_model_cores_and_the_numeric_flags_only() {
        let x86 = parse_cpuinfo(X86);
        assert_eq!(x86.model.as_deref(), Some("Intel(R) Xeon(R) CPU"));
        assert_eq!(x86.physical_cores, Some(1), "two hyperthreads of one core");
        assert_eq!(x86.flags, ["sse4_2", "avx", "avx2", "fma", "avx512f"]);
        let arm = parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd evtstrm sve\n");
        assert_eq!(arm.flags, ["asimd", "sve"]);
        assert_eq!(arm.physical_cores, None);
    }

    #[test]
    fn meminfo_and_os_release() {
        assert_eq!(mem_total("MemTotal:       16384 kB\nMemFree: 1 kB\n"), Some(16384 * 1024));
        assert_eq!(
            pretty_name("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn only_the_listed_variables_are_kept() {
        let env = numerics_env(|name| match name {
            "OMP_NUM_THREADS" => Some("1".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            _ => None,
        });
        assert_eq!(env, BTreeMap::from([("OMP_NUM_THREADS".to_string(), "1".to_string())]));
    }

    #[test]
    fn nvidia_smi_output_is_parsed() {
        let gpus = parse_gpus(
            "NVIDIA A100-SXM4-40GB, 40960, 550.54.15, GPU-1234\nTesla T4, [N/A], 550.54.15, GPU-5678\n",
            cuda_version("NVIDIA-SMI version  : 550.54.15\nCUDA Version         : 12.4\n"),
        );
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].model, "NVIDIA A100-SXM4-40GB");
        assert_eq!(gpus[0].memory_mib, Some(40960));
        assert_eq!(gpus[0].cuda.as_deref(), Some("12.4"));
        assert_eq!(gpus[1].memory_mib, None);
        assert_eq!(gpus[1].uuid.as_deref(), Some("GPU-5678"));
    }

    #[test]
    fn blas_packages_are_recognized() {
        for name in ["scipy-openblas64", "scipy_openblas32", "openblas", "libopenblas", "mkl", "mkl-service", "libblas"]
        {
            assert!(is_blas(name), "{name}");
        }
        for name in ["numpy", "scipy", "blessed", "mklx"] {
            assert!(!is_blas(name), "{name}");
        }
    }

    #[test]
    fn drift_names_what_changed_and_not_the_host_name() {
        let mut a = HostInfo::current();
        a.numerics_env.clear();
        let mut b = a.clone();
        b.hostname = Some("elsewhere".into());
        assert!(a.drift(&b).is_empty(), "{:?}", a.drift(&b));
        b.cpu = Some("Other CPU".into());
        b.numerics_env.insert("OMP_NUM_THREADS".into(), "4".into());
        let drift = a.drift(&b);
        assert!(drift.iter().any(|l| l.starts_with("cpu: ") && l.ends_with("-> Other CPU")), "{drift:?}");
        assert!(drift.contains(&"OMP_NUM_THREADS: unset -> 4".to_string()), "{drift:?}");
        assert_eq!(drift.len(), 2, "{drift:?}");
    }

    #[test]
    fn records_without_the_new_fields_still_load() {
        let old = r#"{"os":"linux","arch":"x86_64","cpu":null,"cpus":2,"hostname":null,"lockstep_version":"0.1.0"}"#;
        let host: HostInfo = serde_json::from_str(old).unwrap();
        assert!(host.cpu_flags.is_empty() && host.gpus.is_empty() && host.blas.is_empty());
    }
}
