//! Event metadata and payloads: the first byte says how many field types
//! follow (one byte each, `% 12 + 1`); the rest is a payload decoded with
//! `ferret_abi::payload::decode_untrusted`. The whole input is also parsed
//! as the body of an EVENT_TYPE record.
#![no_main]

use ferret_abi::payload::decode_untrusted;
use ferret_abi::record::{
    FieldMeta, FieldType, HEADER_LEN, MAX_RECORD, Record, encode_event_type, kind, parse_untrusted,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&n, rest)) = data.split_first() {
        let n = (n as usize % 33).min(rest.len());
        let (codes, payload) = rest.split_at(n);
        let fields: Vec<FieldMeta> = codes
            .iter()
            .enumerate()
            .map(|(i, &b)| FieldMeta {
                name: format!("f{i}"),
                ty: FieldType::from_u8(b % 13 + 1).expect("codes 1 to 13 are field types"),
            })
            .collect();
        if let Ok(values) = decode_untrusted(&fields, payload) {
            assert_eq!(values.len(), fields.len());
            let mut len = 0;
            for (v, f) in values.iter().zip(&fields) {
                assert_eq!(v.field_type(), f.ty);
                len += v.encoded_len();
            }
            assert_eq!(
                len,
                payload.len(),
                "decoded values do not cover the payload"
            );
        }
    }

    // The input as an EVENT_TYPE record's body.
    let body = &data[..data.len().min(MAX_RECORD - HEADER_LEN)];
    let size = HEADER_LEN + body.len();
    let mut record = Vec::with_capacity(size);
    record.extend_from_slice(&(size as u16).to_le_bytes());
    record.push(kind::EVENT_TYPE);
    record.extend_from_slice(body);
    if let Ok((Record::EventType(meta), got)) = parse_untrusted(&record) {
        assert_eq!(got, size);
        let mut again = Vec::new();
        encode_event_type(&meta, &mut again).expect("a parsed event type re-encodes");
        match parse_untrusted(&again) {
            Ok((Record::EventType(m), n)) => {
                assert_eq!(n, again.len());
                assert_eq!(m, meta);
            }
            other => panic!("re-encoded event type parses as {other:?}"),
        }
    }
});
