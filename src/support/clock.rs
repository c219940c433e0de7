//! Wall-clock time in the unit records use.

/// Milliseconds since the Unix epoch, MLflow's unit for timestamps.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
