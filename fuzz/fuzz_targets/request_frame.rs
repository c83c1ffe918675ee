#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kafkit_core::fuzzing::request_frame(data));
