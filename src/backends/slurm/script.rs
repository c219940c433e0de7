//! The sbatch script of a run, rendered from `templates/slurm/job.sbatch`: `#SBATCH` lines
//! from the config, `module load` lines, the setup lines, the exported variables, and
//! `exec lockstep run ...` with every word quoted.

use std::path::Path;

use super::config::SlurmConfig;
use crate::manifest::shell_quote;

const TEMPLATE: &str = include_str!("../../../templates/slurm/job.sbatch");

/// What the script is rendered from besides the config.
pub struct ScriptParts<'a> {
    /// The run's id (in the job's name and the script's comment).
    pub run_id: &'a str,
    /// The job's log: its stdout and stderr.
    pub log: &'a Path,
    /// The far side's command line.
    pub argv: &'a [String],
}

/// A config value that would break out of its `#SBATCH` line.
pub fn bad_value(config: &SlurmConfig) -> Option<String> {
    let mut values: Vec<&str> = config.directives().into_iter().map(|(_, v)| v).collect();
    values.extend(config.modules.iter().map(String::as_str));
    values.extend(config.environment.values().map(String::as_str));
    values.into_iter().find(|v| v.contains('\n') || v.contains('\r')).map(str::to_string)
}

/// The script's text.
pub fn render(config: &SlurmConfig, parts: &ScriptParts<'_>) -> String {
    let short = crate::support::ids::short(parts.run_id);
    let mut directives = vec![
        format!("#SBATCH --job-name=lockstep-{short}"),
        format!("#SBATCH --output={}", parts.log.display()),
        "#SBATCH --open-mode=append".to_string(),
    ];
    directives.extend(config.directives().into_iter().map(|(option, value)| format!("#SBATCH {option}={value}")));
    let lines = |items: Vec<String>| items.into_iter().map(|l| l + "\n").collect::<String>();
    let modules = lines(config.modules.iter().map(|m| format!("module load {}", shell_quote(m))).collect());
    let setup = lines(config.setup.clone());
    let environment = lines(config.environment.iter().map(|(k, v)| format!("export {k}={}", shell_quote(v))).collect());
    let command = parts.argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
    TEMPLATE
        .replace("{{run_id}}", parts.run_id)
        .replace("{{directives}}", &directives.join("\n"))
        .replace("{{modules}}", &modules)
        .replace("{{setup}}", &setup)
        .replace("{{environment}}", &environment)
        .replace("{{command}}", &command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_holds_every_key_in_its_place() {
        let config: SlurmConfig = serde_json::from_str(
            r#"{"partition": "gpu", "time": "1:00:00", "modules": ["cuda/12"], "setup": ["echo hi"],
                "environment": {"OMP_NUM_THREADS": "4 x"}}"#,
        )
        .unwrap();
        let argv = ["/bin/lockstep".to_string(), "run".into(), "/s/a b.tar.gz".into()];
        let parts = ScriptParts { run_id: "0123456789abcdef", log: Path::new("/s/jobs/x/job.log"), argv: &argv };
        let script = render(&config, &parts);
        let expected = "#SBATCH --job-name=lockstep-0123456789ab\n#SBATCH --output=/s/jobs/x/job.log\n\
             #SBATCH --open-mode=append\n#SBATCH --partition=gpu\n#SBATCH --time=1:00:00\n\
             set -euo pipefail\nmodule load cuda/12\necho hi\nexport OMP_NUM_THREADS='4 x'\n\
             exec /bin/lockstep run '/s/a b.tar.gz'\n";
        assert!(script.starts_with("#!/bin/bash\n"), "{script}");
        assert!(script.ends_with(expected), "{script}");
        assert_eq!(bad_value(&config), None);
        let broken: SlurmConfig = serde_json::from_str(r#"{"qos": "a\n#SBATCH --x"}"#).unwrap();
        assert_eq!(bad_value(&broken).as_deref(), Some("a\n#SBATCH --x"));
    }
}
