//! A dead daemon's ring as `ferret recover` reads it:
//! `ferret_daemon::fuzzing::recover_ring` over a one-ring region.
//!
//! Input: tail, head and keep positions (three u64 LE, each reduced to
//! within three rings), one byte giving the metadata length (0 to 255),
//! that many bytes of metadata area, then the ring's bytes from offset 0
//! (zero-padded or cut to 4096). Recovery must never panic, and it cannot
//! report more records than the bytes it read could hold.
#![no_main]

use ferret_daemon::fuzzing::recover_ring;
use libfuzzer_sys::fuzz_target;

const CAP: u64 = 4096;

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = data.get(at..) {
        let n = s.len().min(8);
        b[..n].copy_from_slice(&s[..n]);
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let tail = u64_at(data, 0) % (3 * CAP);
    let head = u64_at(data, 8) % (3 * CAP);
    let keep = u64_at(data, 16) % (3 * CAP);
    let meta_len = data.get(24).copied().unwrap_or(0) as usize;
    let rest = data.get(25..).unwrap_or(&[]);
    let meta = &rest[..meta_len.min(rest.len())];
    let ring = &rest[meta.len()..];
    let (events, unusable) = recover_ring(ring, meta, tail, head, keep);
    // A record is at least 3 bytes, and at most one ring is read.
    assert!(events + unusable <= CAP / 3 + 1, "{events} + {unusable}");
});
