//! Any byte string through the frame decoder: it returns a summary or an error, never
//! panics, and every offset it reports lies inside the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = tortie_wire::parse_frame(data) {
        assert!(usize::from(p.l3_offset) <= data.len());
        assert!(usize::from(p.l4_offset) <= data.len());
        assert!(usize::from(p.l3_offset) + usize::from(p.ip_len) <= data.len());
    }
});
