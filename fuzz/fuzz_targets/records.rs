//! Record framing: `ferret_abi::record::parse_untrusted` at every offset of
//! the input, and `ferret_format::Records` over the input as a buffer's
//! record area. Event records (compact, or with or without activity ids)
//! must account for every byte of their size.
#![no_main]

use ferret_abi::record::{Record, decode_event_header, parse_untrusted};
use ferret_format::Records;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        let step = match parse_untrusted(rest) {
            Ok((record, size)) => {
                assert!(
                    size <= rest.len(),
                    "record size {size} past the {} bytes given",
                    rest.len()
                );
                if !matches!(record, Record::Pad) {
                    assert!(size >= 3, "record size {size} is shorter than its header");
                }
                if let Record::Event { ids, payload, .. } = &record {
                    // The header (time and ids) and the payload make up the
                    // record exactly: ids are never read from the payload.
                    let (_, _, header) =
                        decode_event_header(&rest[..size]).expect("an event's header");
                    assert_eq!(
                        header + payload.len(),
                        size,
                        "event header and payload do not add up to the size"
                    );
                    if ids.related.is_some() {
                        assert!(
                            ids.activity.is_some(),
                            "a related id without an activity id"
                        );
                    }
                }
                size
            }
            Err(_) => 1,
        };
        at += step.max(1);
    }

    let mut records = Records::new(data);
    let mut last = records.remaining();
    while let Some(r) = records.next() {
        let now = records.remaining();
        assert!(now <= last, "Records went backwards");
        last = now;
        if r.is_err() {
            assert!(records.next().is_none(), "Records yielded after an error");
            break;
        }
    }
});
