//! `-A/--docker-args`: `docker run` options with MLflow's spelling (`-A gpus=all` is
//! `--gpus all`, `-A t` is `-t`), mapped onto the Engine API's container configuration.
//!
//! Only options with a faithful mapping are accepted; anything else is an error naming the
//! supported ones, never silently dropped.

use bollard::models::{DeviceRequest, HostConfig};

use super::DockerError;

/// The options `-A` accepts, with their short aliases, as shown in errors.
pub const SUPPORTED: &str = "gpus, shm-size, memory (m), memory-swap, cpus, network (net), user (u), env (e), \
volume (v), add-host, ipc, cap-add, privileged, init, tty (t), rm";

/// What `-A` options ask of the container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DockerArgs {
    /// Resources, devices, network and privileges (binds are added later).
    pub host_config: HostConfig,
    /// `user`: the user (and group) the entry point runs as.
    pub user: Option<String>,
    /// `env`: variables, in the order given.
    pub env: Vec<(String, String)>,
    /// `volume`: volume specifications as given (host paths not yet made absolute).
    pub volumes: Vec<String>,
    /// `tty`: allocate a terminal (stdout and stderr then arrive as one stream).
    pub tty: bool,
}

/// How an option takes its value.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `NAME=VALUE`, once.
    Value,
    /// `NAME=VALUE`, any number of times.
    List,
    /// `NAME` alone (or `NAME=true|false`).
    Flag,
}

fn canonical(name: &str) -> Option<(&'static str, Kind)> {
    Some(match name {
        "gpus" => ("gpus", Kind::List),
        "shm-size" => ("shm-size", Kind::Value),
        "memory" | "m" => ("memory", Kind::Value),
        "memory-swap" => ("memory-swap", Kind::Value),
        "cpus" => ("cpus", Kind::Value),
        "network" | "net" => ("network", Kind::Value),
        "user" | "u" => ("user", Kind::Value),
        "env" | "e" => ("env", Kind::List),
        "volume" | "v" => ("volume", Kind::List),
        "add-host" => ("add-host", Kind::List),
        "ipc" => ("ipc", Kind::Value),
        "cap-add" => ("cap-add", Kind::List),
        "privileged" => ("privileged", Kind::Flag),
        "init" => ("init", Kind::Flag),
        "tty" | "t" => ("tty", Kind::Flag),
        "rm" => ("rm", Kind::Flag),
        _ => return None,
    })
}

/// Parse `-A` arguments (`NAME` or `NAME=VALUE`, MLflow's form). `lookup` reads the caller's
/// environment, for `env=NAME` without a value (copied when set, as `docker run -e NAME` does).
pub fn parse(args: &[String], lookup: impl Fn(&str) -> Option<String>) -> Result<DockerArgs, DockerError> {
    let mut out = DockerArgs::default();
    let mut seen: Vec<&'static str> = Vec::new();
    for arg in args {
        let (raw_name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg.as_str(), None),
        };
        let raw_name = raw_name.trim_start_matches('-');
        let Some((name, kind)) = canonical(raw_name) else {
            return Err(DockerError::UnsupportedArg { arg: arg.clone() });
        };
        let bad = |reason: String| DockerError::BadArg { arg: arg.clone(), reason };
        if kind != Kind::List && seen.contains(&name) {
            return Err(bad(format!("{name} is given more than once")));
        }
        seen.push(name);
        if kind == Kind::Flag {
            let on = match value {
                None | Some("true") => true,
                Some("false") => false,
                Some(_) => return Err(bad(format!("{name} is a flag: write -A {raw_name}, without a value"))),
            };
            let hc = &mut out.host_config;
            match name {
                "privileged" => hc.privileged = Some(on),
                "init" => hc.init = Some(on),
                "tty" => out.tty = on,
                // lockstep removes every container it starts (unless --keep-container), so `rm`
                // asks for what happens anyway.
                _ => {}
            }
            continue;
        }
        let value = value.ok_or_else(|| bad(format!("{name} needs a value: -A {raw_name}=VALUE")))?;
        let hc = &mut out.host_config;
        match name {
            "gpus" => hc.device_requests.get_or_insert_with(Vec::new).push(parse_gpus(value).map_err(bad)?),
            "shm-size" => hc.shm_size = Some(parse_bytes(value).map_err(bad)?),
            "memory" => hc.memory = Some(parse_bytes(value).map_err(bad)?),
            "memory-swap" => hc.memory_swap = Some(if value == "-1" { -1 } else { parse_bytes(value).map_err(bad)? }),
            "cpus" => hc.nano_cpus = Some(parse_cpus(value).map_err(bad)?),
            "network" => hc.network_mode = Some(nonempty(value).map_err(bad)?),
            "ipc" => hc.ipc_mode = Some(nonempty(value).map_err(bad)?),
            "cap-add" => hc.cap_add.get_or_insert_with(Vec::new).push(nonempty(value).map_err(bad)?),
            "add-host" => hc.extra_hosts.get_or_insert_with(Vec::new).push(parse_add_host(value).map_err(bad)?),
            "user" => out.user = Some(nonempty(value).map_err(bad)?),
            "volume" => out.volumes.push(nonempty(value).map_err(bad)?),
            "env" => match value.split_once('=') {
                Some(("", _)) => return Err(bad("an environment variable needs a name".into())),
                Some((k, v)) => out.env.push((k.to_string(), v.to_string())),
                None => {
                    if let Some(v) = lookup(value) {
                        out.env.push((value.to_string(), v));
                    }
                }
            },
            _ => unreachable!("every canonical value option is handled"),
        }
    }
    Ok(out)
}

fn nonempty(value: &str) -> Result<String, String> {
    if value.is_empty() { Err("the value is empty".into()) } else { Ok(value.to_string()) }
}

/// A size as `docker run` reads it (`512m`, `2g`, `1.5GiB`, a plain number of bytes); units
/// are binary, as Docker's.
pub fn parse_bytes(value: &str) -> Result<i64, String> {
    let bad = || format!("'{value}' is not a size (such as 512m or 2g)");
    let lower = value.trim().to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(bad()),
    };
    let bytes = number * 1024f64.powi(power);
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

/// `--cpus`: a positive number of CPUs, as nano-CPUs.
fn parse_cpus(value: &str) -> Result<i64, String> {
    match value.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() && n < 1e9 => Ok((n * 1e9).round() as i64),
        _ => Err(format!("'{value}' is not a positive number of CPUs")),
    }
}

/// `--add-host host:ip` (also `host=ip`, and Docker's `host-gateway` for the host's address).
fn parse_add_host(value: &str) -> Result<String, String> {
    let (host, ip) =
        value.split_once('=').or_else(|| value.split_once(':')).ok_or_else(|| format!("'{value}' is not HOST:IP"))?;
    if host.is_empty() || ip.is_empty() {
        return Err(format!("'{value}' is not HOST:IP"));
    }
    Ok(format!("{host}:{ip}"))
}

/// `--gpus`, as the docker CLI reads it: `all`, a count, or comma-separated `count=`,
/// `device=`, `driver=`, `capabilities=` fields (quote a field holding commas:
/// `'"device=0,1"'`).
pub fn parse_gpus(value: &str) -> Result<DeviceRequest, String> {
    let fields = csv_fields(value)?;
    let mut req = DeviceRequest::default();
    let mut seen: Vec<String> = Vec::new();
    let count = |s: &str| -> Result<i64, String> {
        if s == "all" { Ok(-1) } else { s.parse().map_err(|_| format!("gpu count '{s}' must be an integer or all")) }
    };
    for field in &fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field.as_str(), None),
        };
        let key_name = if val.is_none() { "count" } else { key };
        if seen.iter().any(|s| s == key_name) {
            return Err(format!("gpu request key '{key_name}' can be given only once"));
        }
        seen.push(key_name.to_string());
        match (key, val) {
            (n, None) => req.count = Some(count(n)?),
            ("count", Some(v)) => req.count = Some(count(v)?),
            ("driver", Some(v)) => req.driver = Some(v.to_string()),
            ("device", Some(v)) => req.device_ids = Some(v.split(',').map(str::to_string).collect()),
            ("capabilities", Some(v)) => {
                let mut caps: Vec<String> = v.split(',').map(str::to_string).collect();
                caps.push("gpu".into());
                req.capabilities = Some(vec![caps]);
            }
            (other, Some(_)) => return Err(format!("unexpected key '{other}' in '{field}'")),
        }
    }
    if req.count.is_some() && req.device_ids.is_some() {
        return Err("a gpu request takes a count or devices, not both".into());
    }
    if req.count.is_none() && req.device_ids.is_none() {
        req.count = Some(1);
    }
    if req.capabilities.is_none() {
        req.capabilities = Some(vec![vec!["gpu".into()]]);
    }
    Ok(req)
}

/// One line of CSV: fields separated by commas, double quotes around fields holding commas.
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err(format!("unbalanced quote in '{line}'"));
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<DockerArgs, DockerError> {
        let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        parse(&owned, |name| (name == "HOME_TOKEN").then(|| "secret".to_string()))
    }

    #[test]
    fn mlflow_spelling_maps_onto_the_api() {
        let a = args(&[
            "gpus=all",
            "shm-size=2g",
            "m=512m",
            "cpus=1.5",
            "network=host",
            "u=1000:1000",
            "e=MODE=fast",
            "env=HOME_TOKEN",
            "env=UNSET_HERE",
            "v=./data:/data:ro",
            "add-host=db:10.0.0.2",
            "ipc=host",
            "t",
            "rm",
            "init",
        ])
        .unwrap();
        let hc = &a.host_config;
        assert_eq!(hc.shm_size, Some(2 << 30));
        assert_eq!(hc.memory, Some(512 << 20));
        assert_eq!(hc.nano_cpus, Some(1_500_000_000));
        assert_eq!(hc.network_mode.as_deref(), Some("host"));
        assert_eq!(hc.ipc_mode.as_deref(), Some("host"));
        assert_eq!(hc.init, Some(true));
        assert_eq!(hc.extra_hosts, Some(vec!["db:10.0.0.2".to_string()]));
        let gpu = &hc.device_requests.as_ref().unwrap()[0];
        assert_eq!(gpu.count, Some(-1));
        assert_eq!(gpu.capabilities, Some(vec![vec!["gpu".to_string()]]));
        assert_eq!(a.user.as_deref(), Some("1000:1000"));
        assert_eq!(
            a.env,
            [("MODE".to_string(), "fast".to_string()), ("HOME_TOKEN".to_string(), "secret".to_string())],
            "a copied variable that is not set is left out, as docker run -e NAME does"
        );
        assert_eq!(a.volumes, ["./data:/data:ro"]);
        assert!(a.tty);
    }

    #[test]
    fn unsupported_repeated_and_malformed_options_are_errors() {
        let err = args(&["detach"]).unwrap_err();
        assert!(matches!(err, DockerError::UnsupportedArg { .. }), "{err}");
        assert!(err.to_string().starts_with("-A detach: "), "{err}");
        assert!(err.hint().unwrap().contains("gpus, shm-size"));
        let err = args(&["memory=1g", "m=2g"]).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
        assert!(args(&["memory=lots"]).unwrap_err().to_string().contains("not a size"));
        assert!(args(&["cpus=0"]).unwrap_err().to_string().contains("positive"));
        assert!(args(&["gpus"]).unwrap_err().to_string().contains("needs a value"));
        assert!(args(&["t=yes"]).unwrap_err().to_string().contains("flag"));
        assert!(args(&["add-host=nohost"]).unwrap_err().to_string().contains("HOST:IP"));
        assert!(args(&["e==x"]).unwrap_err().to_string().contains("name"));
        assert_eq!(args(&["v=/a:/a", "v=/b:/b"]).unwrap().volumes.len(), 2, "list options repeat");
    }

    #[test]
    fn sizes_read_as_docker_reads_them() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("1k").unwrap(), 1024);
        assert_eq!(parse_bytes("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("64MB").unwrap(), 64 << 20);
        assert!(parse_bytes("12x").is_err());
        assert!(parse_bytes("").is_err());
    }

    #[test]
    fn gpu_requests_follow_the_docker_cli() {
        let r = parse_gpus("2").unwrap();
        assert_eq!(r.count, Some(2));
        let r = parse_gpus("\"device=0,1\",capabilities=compute").unwrap();
        assert_eq!(r.device_ids, Some(vec!["0".to_string(), "1".to_string()]));
        assert_eq!(r.count, None);
        assert_eq!(r.capabilities, Some(vec![vec!["compute".to_string(), "gpu".to_string()]]));
        let r = parse_gpus("driver=nvidia").unwrap();
        assert_eq!((r.count, r.driver.as_deref()), (Some(1), Some("nvidia")));
        assert!(parse_gpus("device=0,1").is_err(), "an unquoted comma starts a new field: a count");
        assert!(parse_gpus("count=2,count=3").is_err());
        assert!(parse_gpus("many").is_err());
    }
}
