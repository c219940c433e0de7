//! What a run records about its environment: typed per manager, written in the shape records
//! have always had (`{"manager": ..., <the manager's fields>}`, keys in alphabetical order), so
//! that every `record.json` written before still loads and writes back the same.

use serde::{Deserialize, Deserializer, Serialize, de};
use serde_json::{Map, Value};

use super::EnvManager;
use super::lock::{EnvLock, LOCK_SCHEMA};

/// The environment of a run, as its record holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawRecord", into = "RawRecord")]
pub enum EnvRecord {
    /// The caller's own tools: nothing is recorded.
    Local,
    /// A virtualenv, made by uv or by `python -m venv` and pip.
    Python {
        /// `virtualenv` or `uv`.
        manager: EnvManager,
        /// What is installed.
        lock: Box<EnvLock>,
    },
    /// A conda environment.
    Conda(Box<EnvLock>),
    /// A Docker image.
    Docker(Box<DockerRecord>),
    /// An environment not prepared (yet): a run that failed before its image was ready.
    Unprepared(EnvManager),
    /// An environment this version cannot read: a record from elsewhere, or of a newer lock
    /// schema. It is kept as written, so that the record still lists, shows and writes back,
    /// but nothing is rebuilt from it.
    Unreadable {
        /// The recorded manager.
        manager: EnvManager,
        /// The manager's fields, as written.
        fields: Map<String, Value>,
        /// Why they cannot be read.
        reason: String,
    },
}

/// How a Docker run had its project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerMode {
    /// In a project image built `FROM` the base image.
    Build,
    /// Bind-mounted into the base image (`--mount-project`).
    Mount,
}

/// What a Docker run records: both images, and the engine that ran them. The image references
/// are checked as they are read, because a record from elsewhere puts them into Engine API paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerRecord {
    /// How the project reached the container.
    pub mode: DockerMode,
    /// The base image, as the project (or the recorded run) names it.
    #[serde(deserialize_with = "base_image")]
    pub base_image: String,
    /// The base image's id.
    #[serde(deserialize_with = "base_image_id")]
    pub base_image_id: String,
    /// The base image's repo digest, when it has one (a registry can serve it).
    #[serde(default, deserialize_with = "base_image_digest")]
    pub base_image_digest: Option<String>,
    /// The project image's tag (build mode).
    #[serde(default)]
    pub project_image: Option<String>,
    /// The project image's id (build mode).
    #[serde(default)]
    pub project_image_id: Option<String>,
    /// The image the container ran, by name (MLflow's `mlflow.docker.image.uri`).
    pub image_uri: String,
    /// The image the container ran, by id.
    pub image_id: String,
    /// The base image's platform (`linux/amd64`).
    #[serde(default)]
    pub platform: Option<String>,
    /// The engine's version.
    #[serde(default)]
    pub engine_version: Option<String>,
    /// The engine's API version.
    #[serde(default)]
    pub engine_api_version: Option<String>,
    /// The engine's platform.
    #[serde(default)]
    pub engine_platform: Option<String>,
}

impl EnvRecord {
    /// The record of an environment not prepared yet (`local` has nothing to prepare).
    pub fn unprepared(manager: EnvManager) -> EnvRecord {
        match manager {
            EnvManager::Local => EnvRecord::Local,
            _ => EnvRecord::Unprepared(manager),
        }
    }

    /// The record of an environment with this lock.
    pub fn of_lock(manager: EnvManager, lock: EnvLock) -> EnvRecord {
        match manager {
            EnvManager::Conda => EnvRecord::Conda(Box::new(lock)),
            _ => EnvRecord::Python { manager, lock: Box::new(lock) },
        }
    }

    /// The manager.
    pub fn manager(&self) -> EnvManager {
        match self {
            EnvRecord::Local => EnvManager::Local,
            EnvRecord::Python { manager, .. }
            | EnvRecord::Unprepared(manager)
            | EnvRecord::Unreadable { manager, .. } => *manager,
            EnvRecord::Conda(_) => EnvManager::Conda,
            EnvRecord::Docker(_) => EnvManager::Docker,
        }
    }

    /// The lock of a virtualenv or conda environment.
    pub fn lock(&self) -> Option<&EnvLock> {
        match self {
            EnvRecord::Python { lock, .. } | EnvRecord::Conda(lock) => Some(lock),
            _ => None,
        }
    }

    /// The Docker images of a Docker run.
    pub fn docker(&self) -> Option<&DockerRecord> {
        match self {
            EnvRecord::Docker(d) => Some(d),
            _ => None,
        }
    }

    /// The environment's content key (a directory of the environment cache), when it has one.
    pub fn key(&self) -> Option<&str> {
        self.lock().map(|l| l.key.as_str())
    }

    /// The name of the image a Docker run's container ran.
    pub fn image_uri(&self) -> Option<&str> {
        self.docker().map(|d| d.image_uri.as_str())
    }

    /// The id of the image a Docker run's container ran.
    pub fn image_id(&self) -> Option<&str> {
        self.docker().map(|d| d.image_id.as_str())
    }

    /// The interpreter's version (`3.11.7`), when the environment has one.
    pub fn python_version(&self) -> Option<&str> {
        self.lock()?.python.as_ref().map(|p| p.version.as_str())
    }

    /// How many Python distributions are installed, when the environment has a lock.
    pub fn python_package_count(&self) -> Option<usize> {
        self.lock().map(|l| l.packages.len())
    }

    /// How many conda packages are installed.
    pub fn conda_package_count(&self) -> usize {
        self.lock().map_or(0, |l| l.conda_packages.len())
    }

    /// Why this record cannot be used to rebuild or check its environment, if it cannot.
    pub fn unreadable_reason(&self) -> Option<&str> {
        match self {
            EnvRecord::Unreadable { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// The record's JSON shape: the manager and, beside it, its fields.
#[derive(Serialize, Deserialize)]
struct RawRecord {
    manager: EnvManager,
    #[serde(flatten)]
    fields: Map<String, Value>,
}

impl From<RawRecord> for EnvRecord {
    fn from(raw: RawRecord) -> EnvRecord {
        let RawRecord { manager, fields } = raw;
        if manager == EnvManager::Local {
            return EnvRecord::Local;
        }
        if fields.is_empty() {
            return EnvRecord::Unprepared(manager);
        }
        let parsed = match manager {
            EnvManager::Docker => serde_json::from_value::<DockerRecord>(Value::Object(fields.clone()))
                .map(|d| EnvRecord::Docker(Box::new(d)))
                .map_err(|e| format!("the record's Docker environment: {e}")),
            _ => read_lock(&fields).map(|lock| EnvRecord::of_lock(manager, lock)),
        };
        parsed.unwrap_or_else(|reason| EnvRecord::Unreadable { manager, fields, reason })
    }
}

fn read_lock(fields: &Map<String, Value>) -> Result<EnvLock, String> {
    let lock: EnvLock = serde_json::from_value(Value::Object(fields.clone()))
        .map_err(|e| format!("the record's environment is not a lock: {e}"))?;
    if lock.lock_schema != LOCK_SCHEMA {
        return Err(format!("unknown lock schema '{}'", lock.lock_schema));
    }
    Ok(lock)
}

impl From<EnvRecord> for RawRecord {
    fn from(record: EnvRecord) -> RawRecord {
        let manager = record.manager();
        let value = match record {
            EnvRecord::Local | EnvRecord::Unprepared(_) => return RawRecord { manager, fields: Map::new() },
            EnvRecord::Unreadable { fields, .. } => return RawRecord { manager, fields },
            EnvRecord::Python { lock, .. } | EnvRecord::Conda(lock) => serde_json::to_value(lock),
            EnvRecord::Docker(d) => serde_json::to_value(d),
        };
        // Both are structs of strings, numbers and lists: they always serialize to an object.
        let fields = match value {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        RawRecord { manager, fields }
    }
}

/// Why `value` is not an image reference (`name[:tag][@digest]`, or an image id) that can be
/// put into an Engine API path, if it is not.
fn image_reference_problem(value: &str) -> Option<&'static str> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._-:/@".contains(&b);
    if value.is_empty() {
        Some("is empty")
    } else if !value.bytes().all(allowed) {
        Some("has characters an image reference cannot have")
    } else if value.starts_with(['/', '.', '-']) || value.split('/').any(|part| part.is_empty() || part == "..") {
        Some("has an empty or '..' path component")
    } else {
        None
    }
}

fn image_reference<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    match image_reference_problem(&value) {
        None => Ok(value),
        Some(why) => Err(de::Error::custom(format!("environment.{field} '{}' {why}", value.escape_debug()))),
    }
}

fn base_image<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    image_reference(d, "base_image")
}

fn base_image_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    image_reference(d, "base_image_id")
}

fn base_image_digest<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(value) => {
            image_reference(serde::de::value::StringDeserializer::<D::Error>::new(value), "base_image_digest").map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Environments as `main` (before the typed record) wrote them, byte for byte.
    const OLD_RECORDS: [&str; 5] = [
        r#"{"manager":"local"}"#,
        r#"{"manager":"docker"}"#,
        r#"{"manager":"uv","installer":"uv 0.9.2","key":"ab12","lock_schema":"lockstep.env-lock/v1","packages":[{"name":"six","sha256":"cd","url":"https://x/six.whl","version":"1.16.0"}],"platform":"linux-64","python":{"implementation":"cpython","version":"3.11.7"}}"#,
        r#"{"manager":"conda","channels":["file:///c"],"conda_packages":[{"build":"0","build_number":0,"channel":"file:///c","depends":["python"],"filename":"x-1-0.conda","name":"x","sha256":"ef","subdir":"noarch","url":"file:///c/noarch/x-1-0.conda","version":"1"}],"installer":"lockstep","key":"k","lock_schema":"lockstep.env-lock/v1","packages":[],"platform":"linux-64","python":null,"variables":{"A":"1"}}"#,
        r#"{"manager":"docker","base_image":"base:1","base_image_digest":null,"base_image_id":"sha256:b","engine_api_version":"1.43","engine_platform":"linux/amd64","engine_version":"24.0","image_id":"sha256:b","image_uri":"base:1","mode":"mount","platform":"linux/amd64","project_image":null,"project_image_id":null}"#,
    ];

    #[test]
    fn records_written_before_load_typed_and_write_back_the_same() {
        let kinds: Vec<EnvRecord> = OLD_RECORDS.iter().map(|s| serde_json::from_str(s).unwrap()).collect();
        assert_eq!(kinds[0], EnvRecord::Local);
        assert_eq!(kinds[1], EnvRecord::Unprepared(EnvManager::Docker));
        assert_eq!(kinds[2].manager(), EnvManager::Uv);
        assert_eq!(kinds[2].key(), Some("ab12"));
        assert_eq!(kinds[2].python_version(), Some("3.11.7"));
        assert_eq!(kinds[2].python_package_count(), Some(1));
        assert_eq!(kinds[3].conda_package_count(), 1);
        assert_eq!(kinds[4].image_uri(), Some("base:1"));
        assert_eq!(kinds[4].docker().unwrap().mode, DockerMode::Mount);
        for (old, typed) in OLD_RECORDS.iter().zip(&kinds) {
            assert!(typed.unreadable_reason().is_none(), "{old}: {typed:?}");
            assert_eq!(serde_json::to_string(typed).unwrap(), *old);
        }
    }

    #[test]
    fn an_environment_that_cannot_be_read_is_kept_as_written_with_the_reason() {
        let newer = json!({
            "manager": "uv", "lock_schema": "lockstep.env-lock/v9", "key": "k", "installer": "uv",
            "platform": "linux-64", "python": null, "packages": [],
        });
        let record: EnvRecord = serde_json::from_value(newer.clone()).unwrap();
        assert!(record.unreadable_reason().unwrap().contains("unknown lock schema"), "{record:?}");
        assert_eq!(record.key(), None);
        assert_eq!(serde_json::to_value(&record).unwrap(), newer);
        let evil = json!({"manager": "docker", "base_image_digest": "../../containers/json"});
        let record: EnvRecord = serde_json::from_value(evil).unwrap();
        assert!(
            record
                .unreadable_reason()
                .unwrap()
                .contains("environment.base_image_digest '../../containers/json' has an empty or '..' path component"),
            "{record:?}"
        );
    }

    #[test]
    fn image_references_are_checked() {
        for good in ["busybox:1.36", "reg.example.com/a/b@sha256:ab", "sha256:0123"] {
            assert_eq!(image_reference_problem(good), None, "{good}");
        }
        for bad in ["", "../x", "a//b", "-x", "a b", "/abs"] {
            assert!(image_reference_problem(bad).is_some(), "{bad:?}");
        }
    }
}
