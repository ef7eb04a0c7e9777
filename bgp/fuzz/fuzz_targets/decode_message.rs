//! Fuzz target: any bytes through the framer and the message decoder, under every session
//! context. Decoding must never panic, and a message that decodes cleanly must re-encode to
//! bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tortie_bgp_wire::{Context, Decoded, Message, frame_length};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let ctx = Context {
        four_octet_as: sel & 1 != 0,
        add_path: [sel & 2 != 0, sel & 4 != 0],
    };
    // Walk the stream the way a session does: frame, decode, advance.
    for _ in 0..16 {
        let len = match frame_length(rest) {
            Ok(Some(len)) if len <= rest.len() => len,
            _ => return,
        };
        let (msg, tail) = rest.split_at(len);
        rest = tail;
        let Ok(decoded) = Message::decode(msg, &ctx) else {
            continue;
        };
        let clean = match decoded {
            Decoded::Other(m) => Some(m),
            Decoded::Update(u) if u.issues.is_empty() && u.update.announced_len() > 0 => {
                Some(Message::Update(u.update))
            }
            Decoded::Update(_) => None,
        };
        if let Some(m) = clean {
            let bytes = m.to_bytes(&ctx);
            if bytes.len() <= 4096 {
                match Message::decode(&bytes, &ctx) {
                    Ok(Decoded::Other(again)) => assert_eq!(again, m),
                    Ok(Decoded::Update(again)) => assert_eq!(Message::Update(again.update), m),
                    Err(e) => panic!("re-encoded message does not decode: {e}"),
                }
            }
        }
    }
});
