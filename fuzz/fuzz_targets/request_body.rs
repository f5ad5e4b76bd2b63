//! Fuzzes request-body decoding and patching (see `berth_apiserver::fuzzing`).
//! Run: `cargo fuzz run request_body` (needs cargo-fuzz; `RUSTC_BOOTSTRAP=1` on a stable toolchain).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    berth_apiserver::fuzzing::run(data);
});
