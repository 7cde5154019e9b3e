//! Fuzz target: see [`herald_fuzz::query`] for what it drives and what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz::query(data));
