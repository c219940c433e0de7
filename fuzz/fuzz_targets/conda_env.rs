#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lockstep::fuzzing::conda_env(data));
