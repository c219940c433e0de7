//! The events file of a run's tracking endpoint (`tracking/events.jsonl`): one JSON object a
//! line, appended with one `write(2)` per event as requests arrive, so that a SIGKILLed
//! lockstep loses at most the request in flight. A torn last line is dropped when read.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::record::RecordError;

/// The events file, relative to the run directory.
pub const EVENTS_FILE: &str = "tracking/events.jsonl";

/// One thing the script logged, as the endpoint received it. Times are ms since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A run was created (the run of lockstep itself first, then nested and new runs).
    Run {
        /// Its id.
        run_id: String,
        /// The run it is nested in (`mlflow.parentRunId`).
        parent: Option<String>,
        /// Its experiment.
        experiment_id: String,
        /// Its name.
        name: Option<String>,
        /// Its start.
        start_time: i64,
        /// Where its artifacts go (a local path).
        artifact_uri: String,
    },
    /// A run's status, end or name changed.
    Update {
        /// The run.
        run_id: String,
        /// `RUNNING`, `FINISHED`, `FAILED`, `KILLED` or `SCHEDULED`.
        status: Option<String>,
        /// Its end.
        end_time: Option<i64>,
        /// Its new name.
        name: Option<String>,
    },
    /// A param was logged.
    Param {
        /// The run.
        run_id: String,
        /// The name.
        key: String,
        /// The value.
        value: String,
    },
    /// A metric point was logged.
    Metric {
        /// The run.
        run_id: String,
        /// The metric.
        key: String,
        /// The value (NaN and infinities as strings).
        #[serde(with = "float")]
        value: f64,
        /// The step.
        step: i64,
        /// When it was measured.
        timestamp: i64,
    },
    /// A tag was set.
    Tag {
        /// The run.
        run_id: String,
        /// The name.
        key: String,
        /// The value.
        value: String,
    },
    /// A tag was deleted.
    DeleteTag {
        /// The run.
        run_id: String,
        /// The name.
        key: String,
    },
    /// Datasets were logged as inputs.
    Input {
        /// The run.
        run_id: String,
        /// MLflow's dataset object.
        dataset: Value,
        /// The input's tags (`mlflow.data.context`, ...).
        #[serde(default)]
        tags: Vec<Value>,
    },
    /// A logged model was created or changed: the whole object each time.
    Model {
        /// MLflow's `LoggedModel` object (`info`, `data`).
        model: Value,
    },
    /// An experiment was created.
    Experiment {
        /// Its id.
        experiment_id: String,
        /// Its name.
        name: String,
        /// Where its artifacts go.
        artifact_location: String,
    },
}

/// The events of one run directory, in the order they arrived.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Events {
    /// The events.
    pub events: Vec<Event>,
    /// Lines that could not be read (a torn last line, a line of a short write).
    pub dropped: usize,
}

/// One metric point of a history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    /// The value.
    pub value: f64,
    /// The step.
    pub step: i64,
    /// When it was measured, ms since the epoch.
    pub timestamp: i64,
}

impl Events {
    /// Events read from `text`: a line that is not a whole event is dropped.
    pub fn parse(text: &str) -> Events {
        let mut out = Events::default();
        for line in text.split_inclusive('\n') {
            match line.strip_suffix('\n').map(serde_json::from_str::<Event>) {
                Some(Ok(event)) => out.events.push(event),
                _ if line.trim().is_empty() => {}
                _ => out.dropped += 1,
            }
        }
        out
    }

    /// The run lockstep made (the first one created), if any.
    pub fn top_run_id(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match e {
            Event::Run { run_id, .. } => Some(run_id.as_str()),
            _ => None,
        })
    }

    /// The full history of one metric of one run, in the order logged.
    pub fn metric_history(&self, run: &str, metric: &str) -> Vec<MetricPoint> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Metric { run_id, key, value, step, timestamp } if run_id == run && key == metric => {
                    Some(MetricPoint { value: *value, step: *step, timestamp: *timestamp })
                }
                _ => None,
            })
            .collect()
    }
}

/// The events of the run in `run_dir`; none when it has no events file.
pub fn read_events(run_dir: &Path) -> Result<Events, RecordError> {
    let path = run_dir.join(EVENTS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Events::parse(&String::from_utf8_lossy(&bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Events::default()),
        Err(e) => Err(RecordError::Io { path, source: e }),
    }
}

/// The writer of an events file: every event one `write(2)` on a file opened with
/// `O_APPEND`, so that concurrent appends never interleave and a kill never tears one.
#[derive(Debug)]
pub struct EventLog {
    file: File,
    path: PathBuf,
}

impl EventLog {
    /// Open (creating it and its directory) the events file of `run_dir`.
    pub fn open(run_dir: &Path) -> Result<EventLog, RecordError> {
        let path = run_dir.join(EVENTS_FILE);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(RecordError::io(dir))?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(RecordError::io(&path))?;
        Ok(EventLog { file, path })
    }

    /// Append events, all in one write.
    pub fn append(&self, events: &[Event]) -> Result<(), RecordError> {
        let mut buf = Vec::with_capacity(128 * events.len());
        for event in events {
            serde_json::to_writer(&mut buf, event).expect("events serialize to JSON");
            buf.push(b'\n');
        }
        (&self.file).write_all(&buf).map_err(RecordError::io(&self.path))
    }
}

/// MLflow's numbers: finite ones as JSON numbers, NaN and the infinities as the strings
/// `NaN`, `Infinity` and `-Infinity` (JSON has no spelling for them).
pub(crate) mod float {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write `v`.
    pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match v {
            v if v.is_nan() => s.serialize_str("NaN"),
            v if *v == f64::INFINITY => s.serialize_str("Infinity"),
            v if *v == f64::NEG_INFINITY => s.serialize_str("-Infinity"),
            v => s.serialize_f64(*v),
        }
    }

    /// Read a number or one of the strings.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Number {
            Plain(f64),
            Text(String),
        }
        match Number::deserialize(d)? {
            Number::Plain(v) => Ok(v),
            Number::Text(t) => parse(&t).ok_or_else(|| serde::de::Error::custom(format!("not a number: '{t}'"))),
        }
    }

    /// A number as MLflow's clients spell it in text (Python's `float()` accepts these).
    pub(crate) fn parse(text: &str) -> Option<f64> {
        match text.trim().to_ascii_lowercase().as_str() {
            "nan" | "+nan" | "-nan" => Some(f64::NAN),
            "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
            t => t.parse().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(key: &str, value: f64, step: i64) -> Event {
        Event::Metric { run_id: "r".into(), key: key.into(), value, step, timestamp: 1000 + step }
    }

    #[test]
    fn events_round_trip_with_non_finite_values() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        let events =
            [metric("loss", f64::NAN, 0), metric("loss", f64::INFINITY, 1), metric("loss", f64::NEG_INFINITY, 2)];
        log.append(&events[..1]).unwrap();
        log.append(&events[1..]).unwrap();
        let text = std::fs::read_to_string(dir.path().join(EVENTS_FILE)).unwrap();
        assert!(text.contains(r#""value":"NaN""#) && text.contains(r#""value":"-Infinity""#), "{text}");
        let read = read_events(dir.path()).unwrap();
        assert_eq!(read.dropped, 0);
        let history = read.metric_history("r", "loss");
        assert!(history[0].value.is_nan());
        assert_eq!(
            history[1..].iter().map(|p| (p.value, p.step)).collect::<Vec<_>>(),
            [(f64::INFINITY, 1), (f64::NEG_INFINITY, 2)]
        );
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_the_rest_kept() {
        let good = serde_json::to_string(&metric("acc", 0.5, 3)).unwrap();
        let text = format!("{good}\n{{\"kind\":\"metric\",\"run_id\":\"r\",\"ke");
        let events = Events::parse(&text);
        assert_eq!(events.events, [metric("acc", 0.5, 3)]);
        assert_eq!(events.dropped, 1);
        // A whole line without its newline is torn too: the writer always ends an event with one.
        assert_eq!(Events::parse(&good).events.len(), 0);
        let missing = tempfile::tempdir().unwrap();
        assert_eq!(read_events(missing.path()).unwrap(), Events::default());
    }

    #[test]
    fn numbers_parse_as_python_spells_them() {
        assert!(float::parse("nan").unwrap().is_nan());
        assert_eq!(float::parse("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(float::parse("1e-3"), Some(0.001));
        assert_eq!(float::parse("x"), None);
        let e: Result<Event, _> =
            serde_json::from_str(r#"{"kind":"metric","run_id":"r","key":"k","value":"big","step":0,"timestamp":0}"#);
        assert!(e.is_err());
    }
}
