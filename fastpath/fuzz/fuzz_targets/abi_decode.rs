//! Any byte string through the table-format decoder: an error or a message, never a panic;
//! a decoded message re-encodes to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tortie_abi::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok((msg, used)) = Message::decode(data) {
        assert!(used <= data.len());
        let again = msg.encode();
        let (back, n) = Message::decode(&again).expect("re-encoded message decodes");
        assert_eq!(n, again.len());
        assert_eq!(back, msg);
    }
});
