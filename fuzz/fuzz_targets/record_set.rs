#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kafkit_core::fuzzing::record_set(data));
