//! Fuzz target: see [`herald_fuzz::tcp`] for what it drives and what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz::tcp(data));
