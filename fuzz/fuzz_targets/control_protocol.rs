//! Control-socket messages: `ferret_abi::proto::decode_untrusted` for both
//! directions. Whatever decodes must encode and decode back to itself.
#![no_main]

use ferret_abi::proto::{Request, Response, decode_untrusted, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode_untrusted::<Request>(data) {
        let bytes = encode(&req).expect("a decoded Request re-encodes");
        let again: Request = decode_untrusted(&bytes).expect("a re-encoded Request decodes");
        assert_eq!(again, req);
    }
    if let Ok(resp) = decode_untrusted::<Response>(data) {
        let bytes = encode(&resp).expect("a decoded Response re-encodes");
        let again: Response = decode_untrusted(&bytes).expect("a re-encoded Response decodes");
        assert_eq!(again, resp);
    }
});
