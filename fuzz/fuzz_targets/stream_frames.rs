//! Frames on a target's SSH channel: `ferret_transport::stream::read_frame`
//! over any bytes reads frames until a clean end or an error, never
//! panicking and never allocating more than the bytes at hand justify.
#![no_main]

use ferret_transport::stream::{read_frame, write_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    while let Ok(Some((kind, payload))) = read_frame(&mut r) {
        let mut again = Vec::new();
        write_frame(&mut again, kind, &payload).expect("a frame read re-writes");
        let back = read_frame(&mut &again[..]).expect("a re-written frame reads");
        assert_eq!(back, Some((kind, payload)));
    }
});
