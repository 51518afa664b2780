//! Provider ring framing, as the daemon's drain thread does it:
//! `ferret_daemon::fuzzing::scan_ring` over a 4096-byte ring.
//!
//! Input: tail (u64 LE), then a u64 that picks the head, then the ring's
//! 4096 bytes (zero-padded or cut), laid out from the tail's offset in the
//! ring onwards and wrapping at its end, as a producer would have written
//! them. When the selector's low two bits are not both zero the head lies
//! within one ring of the tail (a plausible span); otherwise the selector
//! is the head itself, anything at all.
#![no_main]

use ferret_daemon::fuzzing::scan_ring;
use libfuzzer_sys::fuzz_target;

const CAP: usize = 4096;

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = data.get(at..) {
        let n = s.len().min(8);
        b[..n].copy_from_slice(&s[..n]);
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let tail = u64_at(data, 0);
    let sel = u64_at(data, 8);
    let plausible = sel & 3 != 0;
    let head = if plausible {
        tail.saturating_add((sel >> 2) % (CAP as u64 + 1))
    } else {
        sel
    };
    let mut ring = vec![0u8; CAP];
    if let Some(bytes) = data.get(16..) {
        let start = (tail % CAP as u64) as usize;
        for (i, &b) in bytes.iter().take(CAP).enumerate() {
            ring[(start + i) % CAP] = b;
        }
    }
    let (events, new_tail) = scan_ring(&ring, tail, head);
    // Every record is consumed (or the span skipped as malformed), so the
    // scan always ends at the head.
    assert_eq!(new_tail, head, "scan stopped short of the head");
    if head >= tail && head - tail <= CAP as u64 {
        // An event record is at least 4 bytes (a compact one with a
        // one-byte delta and no payload).
        assert!(
            events as u64 <= (head - tail) / 4,
            "{events} events in {} bytes",
            head - tail
        );
    }
});
