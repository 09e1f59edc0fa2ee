//! Fuzz target: `Gguf::from_bytes` on arbitrary bytes must return a value
//! or an error, never panic; whatever parses must have readable tensors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = ryot_gguf::Gguf::from_bytes(data) {
        for t in g.tensors() {
            if let Ok(d) = g.data_of(t) {
                assert_eq!(Some(d.len()), t.known_byte_size());
            }
        }
    }
});
