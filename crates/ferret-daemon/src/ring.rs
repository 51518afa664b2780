//! Framing the records committed to one provider ring, trusting nothing the
//! producer wrote: positions, lengths and kinds are all checked against the
//! ring's capacity and the committed span.
//!
//! Event records with activity ids frame like any other event: the kind
//! says how long the header is, and the drain copies the record, ids
//! included, without looking at them.

use ferret_abi::record::{
    EVENT_ABS_HEADER_LEN, HEADER_LEN, THREAD_LEN, Ticks, decode_event_header, kind, peek_header,
};

use crate::shm::ReadBytes;

/// Why the rest of a committed span was discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RingFault {
    /// The head is behind the tail or more than a ring ahead of it.
    BadHead,
    /// A record's size or kind is impossible.
    BadRecord,
}

/// What a scan did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScanOutcome {
    /// The new tail: everything before it is consumed.
    pub(crate) tail: u64,
    /// Set if the span held something malformed, with the bytes skipped;
    /// everything up to the head was skipped.
    pub(crate) fault: Option<(RingFault, u64)>,
}

/// The time of the last record consumed from a ring, which the next
/// record's delta is counted from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TimeBase {
    /// Absolute ticks.
    pub(crate) ticks: u64,
    /// False until an absolute time has been seen (and after a fault).
    pub(crate) known: bool,
}

/// One event record found in a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RingEvent {
    /// The time base before this event (the previous record's time).
    pub(crate) base: TimeBase,
    /// Its position in the ring's byte stream (bytes ever written before it).
    pub(crate) position: u64,
    /// Its offset in the ring's memory.
    pub(crate) offset: usize,
    /// Its size.
    pub(crate) size: usize,
    /// Its event type.
    pub(crate) type_id: u16,
    /// Its time.
    pub(crate) ticks: Ticks,
}

/// What a scan reports the records it frames to.
pub(crate) trait RingSink {
    /// One event record. Returns false to leave it and everything after it
    /// unconsumed, for a later scan.
    fn event(&mut self, e: RingEvent) -> bool;
    /// A THREAD record: the records after it were written by thread `tid`.
    fn thread(&mut self, tid: u32);
}

/// A sink that takes events with a closure and ignores THREAD records
/// (for tests and fuzzing).
pub(crate) struct EventsOnly<F: FnMut(RingEvent) -> bool>(pub(crate) F);

impl<F: FnMut(RingEvent) -> bool> RingSink for EventsOnly<F> {
    fn event(&mut self, e: RingEvent) -> bool {
        (self.0)(e)
    }

    fn thread(&mut self, _tid: u32) {}
}

/// Reports each event record committed between `tail` and `head` to `sink`
/// (and each THREAD record), and returns where consumption ended.
///
/// `ring` holds the ring's `capacity` bytes (a power of two). A malformed
/// record ends the scan: the tail jumps to the head and the fault says how
/// many bytes were skipped, since nothing after a bad length can be framed.
///
/// `time` is the ring's time base; it follows the records consumed.
pub(crate) fn scan<B: ReadBytes + ?Sized>(
    ring: &B,
    capacity: u64,
    mut tail: u64,
    head: u64,
    time: &mut TimeBase,
    sink: &mut impl RingSink,
) -> ScanOutcome {
    debug_assert!(capacity.is_power_of_two() && ring.len() as u64 >= capacity);
    if head < tail || head - tail > capacity {
        return ScanOutcome {
            tail: head,
            fault: Some((RingFault::BadHead, head.wrapping_sub(tail))),
        };
    }
    let fault = |tail: u64| ScanOutcome {
        tail: head,
        fault: Some((RingFault::BadRecord, head - tail)),
    };
    while tail < head {
        let pos = tail & (capacity - 1);
        let contiguous = capacity - pos;
        let available = contiguous.min(head - tail);
        if contiguous < HEADER_LEN as u64 {
            // Too little room for a header before the ring's end: padding.
            if contiguous > head - tail {
                return fault(tail);
            }
            tail += contiguous;
            continue;
        }
        // Bytes past the committed span may be read here but are never used:
        // `n` limits every decode to what is committed.
        let n = (available as usize).min(EVENT_ABS_HEADER_LEN);
        let raw = ring.read16(pos as usize);
        let Some((size, k)) = peek_header(&raw[..n]) else {
            return fault(tail);
        };
        if k == kind::PAD {
            if contiguous > head - tail {
                return fault(tail);
            }
            tail += contiguous;
            continue;
        }
        if k == kind::THREAD {
            if size != THREAD_LEN || n < THREAD_LEN {
                return fault(tail);
            }
            sink.thread(u32::from_le_bytes([raw[3], raw[4], raw[5], raw[6]]));
            tail += THREAD_LEN as u64;
            continue;
        }
        let Some((type_id, ticks, header_len)) = decode_event_header(&raw[..n]) else {
            return fault(tail);
        };
        if size < header_len || size as u64 > available {
            return fault(tail);
        }
        let base = *time;
        let consumed = sink.event(RingEvent {
            base,
            position: tail,
            offset: pos as usize,
            size,
            type_id,
            ticks,
        });
        if !consumed {
            break;
        }
        time.ticks = ticks.resolve(base.ticks);
        time.known |= matches!(ticks, Ticks::Absolute(_));
        tail += size as u64;
    }
    ScanOutcome { tail, fault: None }
}

/// Checks that `copy`, bytes copied out of a ring after [`scan`] framed
/// them as `events` consecutive event records, still frames as exactly that
/// many event records ending at its last byte.
///
/// The producer can rewrite its ring between the scan and the copy. A copy
/// whose framing changed would put records into a session's buffer that
/// readers frame differently from the drain: a size that runs past the copy
/// would swallow the next process's records, and bytes hidden in a payload
/// would become records of their own (a CONTEXT naming another process,
/// say). Only the copy, which the producer can no longer touch, is checked.
pub(crate) fn frames_as_events(copy: &[u8], events: u64) -> bool {
    let mut at = 0;
    let mut n = 0u64;
    while at < copy.len() {
        let rest = &copy[at..];
        let Some((size, _)) = peek_header(rest) else {
            return false;
        };
        let Some((_, _, header_len)) = decode_event_header(rest) else {
            return false;
        };
        if size < header_len || size > rest.len() {
            return false;
        }
        at += size;
        n += 1;
    }
    n == events
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferret_abi::Guid;
    use ferret_abi::record::{
        ActivityIds, encode_event_header, encode_event_header_ids, event_header_len,
    };
    use proptest::prelude::*;

    const CAP: u64 = 256;

    /// Writes events of the given payload sizes into a ring the way the
    /// provider does (padding at the end when a record does not fit) and
    /// returns the ring, the head and each event's offset.
    fn produce(start: u64, sizes: &[usize]) -> (Vec<u8>, u64, Vec<usize>) {
        produce_with_ids(start, sizes, |_| ActivityIds::NONE)
    }

    /// As `produce`, with the activity ids `ids(i)` on event `i`.
    fn produce_with_ids(
        start: u64,
        sizes: &[usize],
        ids: impl Fn(usize) -> ActivityIds,
    ) -> (Vec<u8>, u64, Vec<usize>) {
        let mut ring = vec![0u8; CAP as usize];
        let mut head = start;
        let mut offsets = Vec::new();
        for (i, &payload) in sizes.iter().enumerate() {
            let ticks = if i == 0 {
                Ticks::Absolute(1000)
            } else {
                Ticks::Delta(i as u32)
            };
            let header = event_header_len(ticks, &ids(i));
            let size = header + payload;
            let pos = head % CAP;
            if size as u64 > CAP - pos {
                if CAP - pos >= 3 {
                    ring[pos as usize..pos as usize + 3].copy_from_slice(&[3, 0, kind::PAD]);
                }
                head += CAP - pos;
            }
            let pos = (head % CAP) as usize;
            encode_event_header_ids(&mut ring[pos..], size, 9, ticks, &ids(i));
            offsets.push(pos);
            head += size as u64;
        }
        (ring, head, offsets)
    }

    #[test]
    fn events_are_framed_across_the_wrap() {
        let (ring, head, offsets) = produce(200, &[8, 20, 40, 3]);
        let mut seen = Vec::new();
        let out = scan(
            &ring[..],
            CAP,
            200,
            head,
            &mut TimeBase::default(),
            &mut EventsOnly(|e| {
                assert_eq!(e.type_id, 9);
                seen.push(e.offset);
                true
            }),
        );
        assert_eq!(
            out,
            ScanOutcome {
                tail: head,
                fault: None
            }
        );
        assert_eq!(seen, offsets);
    }

    #[test]
    fn events_with_activity_ids_are_framed_whole_across_the_wrap() {
        // Plain, activity and activity-plus-related records in turn; the
        // run crosses the end of the ring.
        let ids = |i: usize| match i % 3 {
            0 => ActivityIds::NONE,
            1 => ActivityIds {
                activity: Some(Guid([i as u8; 16])),
                related: None,
            },
            _ => ActivityIds {
                activity: Some(Guid([i as u8; 16])),
                related: Some(Guid([0xee; 16])),
            },
        };
        let (ring, head, offsets) = produce_with_ids(150, &[4, 4, 4, 4, 4, 4], ids);
        let mut seen = Vec::new();
        let out = scan(
            &ring[..],
            CAP,
            150,
            head,
            &mut TimeBase::default(),
            &mut EventsOnly(|e: RingEvent| {
                seen.push((e.offset, e.size));
                true
            }),
        );
        assert_eq!(out.fault, None);
        assert_eq!(out.tail, head);
        let sizes: Vec<usize> = seen.iter().map(|s| s.1).collect();
        assert_eq!(
            sizes,
            vec![
                13 + 4,
                9 + 16 + 4,
                9 + 32 + 4,
                9 + 4,
                9 + 16 + 4,
                9 + 32 + 4
            ]
        );
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), offsets);
    }

    #[test]
    fn an_activity_record_shorter_than_its_ids_is_a_fault() {
        let ids = |_| ActivityIds {
            activity: Some(Guid([1; 16])),
            related: Some(Guid([2; 16])),
        };
        let (mut ring, head, offsets) = produce_with_ids(0, &[0, 0], ids);
        // The second record's size now ends inside its related id.
        ring[offsets[1]] = 20;
        let mut n = 0;
        let out = scan(
            &ring[..],
            CAP,
            0,
            head,
            &mut TimeBase::default(),
            &mut EventsOnly(|_| {
                n += 1;
                true
            }),
        );
        assert_eq!(n, 1);
        assert_eq!(out.fault.map(|f| f.0), Some(RingFault::BadRecord));
    }

    #[test]
    fn fewer_than_three_bytes_at_the_end_are_padding() {
        // The first record ends two bytes before the end of the ring; once
        // it is consumed, the next one starts at offset 0.
        let (ring, head, offsets) = produce(0, &[241, 5]);
        assert_eq!(offsets, vec![0, 0]);
        assert_eq!(head, 256 + 14);
        let mut seen = Vec::new();
        let out = scan(
            &ring[..],
            CAP,
            254,
            head,
            &mut TimeBase::default(),
            &mut EventsOnly(|e| {
                seen.push(e.offset);
                true
            }),
        );
        assert_eq!(out.fault, None);
        assert_eq!(seen, vec![0]);
    }

    #[test]
    fn a_head_behind_the_tail_or_too_far_ahead_is_a_fault() {
        let ring = vec![0u8; CAP as usize];
        let out = scan(
            &ring[..],
            CAP,
            64,
            32,
            &mut TimeBase::default(),
            &mut EventsOnly(|_| -> bool { panic!("no events") }),
        );
        assert_eq!(out.fault.map(|f| f.0), Some(RingFault::BadHead));
        let out = scan(
            &ring[..],
            CAP,
            0,
            CAP + 8,
            &mut TimeBase::default(),
            &mut EventsOnly(|_| -> bool { panic!("no events") }),
        );
        assert_eq!(out.fault.map(|f| f.0), Some(RingFault::BadHead));
        assert_eq!(out.tail, CAP + 8);
    }

    #[test]
    fn a_record_claiming_past_the_head_is_a_fault() {
        let (mut ring, head, offsets) = produce(0, &[8, 8]);
        ring[offsets[1]] = 200; // second record's size now runs past the head
        let mut n = 0;
        let out = scan(
            &ring[..],
            CAP,
            0,
            head,
            &mut TimeBase::default(),
            &mut EventsOnly(|_| {
                n += 1;
                true
            }),
        );
        assert_eq!(n, 1);
        assert_eq!(
            out.fault,
            Some((RingFault::BadRecord, head - offsets[1] as u64))
        );
        assert_eq!(out.tail, head);
    }

    #[test]
    fn a_run_rewritten_after_framing_fails_the_copy_check() {
        let (ring, head, offsets) = produce(0, &[8, 8, 8]);
        let run = &ring[..head as usize];
        assert!(frames_as_events(run, 3));
        assert!(!frames_as_events(run, 2), "the count must match too");
        // A size that now runs past the run would swallow what follows it.
        let mut grown = run.to_vec();
        grown[offsets[2]] = 40;
        assert!(!frames_as_events(&grown, 3));
        // A size that now ends early turns payload bytes into records.
        let mut shrunk = run.to_vec();
        shrunk[offsets[0]] = 13;
        assert!(!frames_as_events(&shrunk, 3));
        // A record that is no longer an event (a CONTEXT, say).
        let mut other = run.to_vec();
        other[offsets[1] + 2] = kind::CONTEXT;
        assert!(!frames_as_events(&other, 3));
        // Cut inside a record's header.
        assert!(!frames_as_events(&run[..offsets[1] + 4], 2));
    }

    /// Records what a scan reports, THREAD records included.
    #[derive(Default)]
    struct Log(Vec<(char, u64)>);

    impl RingSink for Log {
        fn event(&mut self, e: RingEvent) -> bool {
            self.0.push(('e', e.offset as u64));
            true
        }
        fn thread(&mut self, tid: u32) {
            self.0.push(('t', tid as u64));
        }
    }

    #[test]
    fn thread_records_name_the_writer_of_what_follows() {
        let mut ring = vec![0u8; CAP as usize];
        let mut at = 0;
        for (tid, events) in [(5u32, 2), (6, 1)] {
            ring[at..at + THREAD_LEN].copy_from_slice(&ferret_abi::record::thread_record(tid));
            at += THREAD_LEN;
            for i in 0..events {
                let ticks = if i == 0 {
                    Ticks::Absolute(1)
                } else {
                    Ticks::Delta(1)
                };
                let size = if i == 0 { 13 } else { 9 };
                encode_event_header(&mut ring[at..], size, 0, ticks);
                at += size;
            }
        }
        let mut log = Log::default();
        let out = scan(
            &ring[..],
            CAP,
            0,
            at as u64,
            &mut TimeBase::default(),
            &mut log,
        );
        assert_eq!(out.fault, None);
        assert_eq!(
            log.0,
            vec![('t', 5), ('e', 7), ('e', 20), ('t', 6), ('e', 36)]
        );
        // A THREAD record of the wrong size cannot be framed past.
        ring[0] = 9;
        let mut log = Log::default();
        let out = scan(
            &ring[..],
            CAP,
            0,
            at as u64,
            &mut TimeBase::default(),
            &mut log,
        );
        assert_eq!(out.fault.map(|f| f.0), Some(RingFault::BadRecord));
        assert!(log.0.is_empty());
    }

    #[test]
    fn deltas_accumulate_on_the_time_base() {
        let (ring, head, _) = produce(0, &[1, 1, 1]);
        let mut time = TimeBase::default();
        let mut bases = Vec::new();
        scan(
            &ring[..],
            CAP,
            0,
            head,
            &mut time,
            &mut EventsOnly(|e| {
                bases.push(e.base);
                true
            }),
        );
        // The first record is absolute (1000), then deltas of 1 and 2.
        assert_eq!(
            bases[1],
            TimeBase {
                ticks: 1000,
                known: true
            }
        );
        assert_eq!(
            bases[2],
            TimeBase {
                ticks: 1001,
                known: true
            }
        );
        assert_eq!(
            time,
            TimeBase {
                ticks: 1003,
                known: true
            }
        );
    }

    #[test]
    fn a_refused_record_stays_unconsumed() {
        let (ring, head, offsets) = produce(0, &[8, 8, 8]);
        let mut n = 0;
        let out = scan(
            &ring[..],
            CAP,
            0,
            head,
            &mut TimeBase::default(),
            &mut EventsOnly(|_| {
                n += 1;
                n < 2
            }),
        );
        assert_eq!(
            out,
            ScanOutcome {
                tail: offsets[1] as u64,
                fault: None
            }
        );
    }

    #[test]
    fn zeroed_memory_is_a_fault_not_a_loop() {
        let ring = vec![0u8; CAP as usize];
        let out = scan(
            &ring[..],
            CAP,
            0,
            64,
            &mut TimeBase::default(),
            &mut EventsOnly(|_| -> bool { panic!("no events") }),
        );
        assert_eq!(out.fault, Some((RingFault::BadRecord, 64)));
    }

    proptest! {
        #[test]
        fn garbage_never_panics_and_never_passes_the_head(
            bytes in proptest::collection::vec(any::<u8>(), CAP as usize),
            tail in 0u64..2048, span in 0u64..600,
        ) {
            let head = tail + span;
            let out = scan(&bytes[..], CAP, tail, head, &mut TimeBase::default(), &mut EventsOnly(|e| {
                assert!(e.offset + e.size <= CAP as usize);
                assert!(e.position + e.size as u64 <= head);
                true
            }));
            prop_assert!(out.tail == head);
        }

        #[test]
        fn every_framed_event_passes_the_copy_check_and_garbage_never_panics_it(
            bytes in proptest::collection::vec(any::<u8>(), CAP as usize),
            tail in 0u64..2048, span in 0u64..600, events in 0u64..8,
        ) {
            let head = tail + span;
            scan(&bytes[..], CAP, tail, head, &mut TimeBase::default(), &mut EventsOnly(|e| {
                assert!(frames_as_events(&bytes[e.offset..e.offset + e.size], 1));
                true
            }));
            let _ = frames_as_events(&bytes[(tail % CAP) as usize..], events);
        }

        #[test]
        fn well_formed_rings_yield_every_event(start in 0u64..4096, sizes in proptest::collection::vec(0usize..24, 1..8)) {
            let total: usize = sizes.iter().map(|s| s + 13).sum();
            prop_assume!(total as u64 + 120 < CAP);
            let (ring, head, offsets) = produce(start, &sizes);
            let mut seen = Vec::new();
            let out = scan(&ring[..], CAP, start, head, &mut TimeBase::default(), &mut EventsOnly(|e| {
            seen.push(e.offset);
            true
        }));
            prop_assert_eq!(out.fault, None);
            prop_assert_eq!(seen, offsets);
        }
    }
}
