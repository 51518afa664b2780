//! The budget of session buffer memory: what every session may hold at
//! most (`max_buffers` × buffer size) is reserved when it starts and when
//! `update --max-buffers` raises it, and released when it is STOPPED. The
//! reservations of all sessions together are capped, and so are those of
//! each user's sessions, so that no user can make the daemon ask for more
//! memory than the machine can spare (issue 13, "Scale and bounds").
//!
//! Buffers are allocated only as a session needs them, so a reservation is
//! a bound on what a session may come to hold, not memory taken at start.

use crate::error::{SessionError, Why};

use ferret_abi::limits::{MAX_SIZE, size_unit};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The per-user cap when the daemon is not told one: enough for one
/// session of the largest size a session may have (1 GiB), or 256 sessions
/// of the default 64 buffers of 64 KiB.
pub const DEFAULT_USER_BUFFER_MEMORY: u64 = GIB;

/// The global cap when physical memory is unknown.
const FALLBACK_TOTAL: u64 = 4 * GIB;

/// The smallest cap the daemon takes: one session of the smallest buffers.
pub const MIN_BUFFER_MEMORY: u64 = 2 * 4 * KIB;

/// How much session buffer memory may be reserved, in all and per user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferBudget {
    /// Bytes all sessions together may reserve (`--buffer-memory`).
    pub total: u64,
    /// Bytes the sessions of one user may reserve (`--user-buffer-memory`).
    /// Root's sessions are exempt: root may already take the machine's
    /// memory in other ways, and an administrator's trace should not be
    /// refused for a bound meant to keep users from each other. Root is
    /// still bound by `total`, which protects the daemon itself.
    pub per_user: u64,
}

impl Default for BufferBudget {
    /// The budget for a machine whose memory is unknown.
    fn default() -> BufferBudget {
        BufferBudget::for_memory(None)
    }
}

impl BufferBudget {
    /// The default budget for a machine with `physical` bytes of memory: a
    /// quarter of it in all (rounded down to a MiB), since trace buffers
    /// filling more would crowd out the programs being traced; and
    /// [`DEFAULT_USER_BUFFER_MEMORY`] per user, or the whole total if that
    /// is less.
    pub fn for_memory(physical: Option<u64>) -> BufferBudget {
        let total = physical
            .map(|m| (m / 4) & !(MIB - 1))
            .unwrap_or(FALLBACK_TOTAL)
            .max(MIN_BUFFER_MEMORY);
        BufferBudget {
            total,
            per_user: DEFAULT_USER_BUFFER_MEMORY.min(total),
        }
    }

    /// Checks that a session of `uid` may reserve `asked` bytes while its
    /// user's sessions already reserve `by_user` and all sessions `in_all`
    /// (neither counting this one). `what` says what asks ("this session
    /// asks for", "--max-buffers 64 would reserve"); `fix` says what the
    /// user could make smaller.
    pub fn check(
        &self,
        uid: u32,
        asked: u64,
        by_user: u64,
        in_all: u64,
        what: &str,
        fix: &str,
    ) -> Result<(), SessionError> {
        if uid != 0 && by_user.saturating_add(asked) > self.per_user {
            return Err(SessionError::new(
                Why::Resources,
                format!(
                    "the sessions of uid {uid} may reserve at most {} of buffers (the daemon's --user-buffer-memory); {} are reserved by its other sessions and {what} {}; {fix}, stop one of its sessions, or run the daemon with a higher --user-buffer-memory",
                    show(self.per_user),
                    show(by_user),
                    show(asked)
                ),
            ));
        }
        if in_all.saturating_add(asked) > self.total {
            return Err(SessionError::new(
                Why::Resources,
                format!(
                    "all sessions together may reserve at most {} of buffers (the daemon's --buffer-memory); {} are reserved by other sessions and {what} {}; {fix}, stop a session, or run the daemon with a higher --buffer-memory",
                    show(self.total),
                    show(in_all),
                    show(asked)
                ),
            ));
        }
        Ok(())
    }
}

/// The bytes a session with these buffers reserves.
pub fn reservation(max_buffers: u32, buffer_kib: u32) -> u64 {
    max_buffers as u64 * buffer_kib as u64 * KIB
}

/// A byte count in the largest binary unit it is a whole number of.
pub fn show(bytes: u64) -> String {
    for (unit, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if bytes >= unit && bytes % unit == 0 {
            return format!("{} {name}", bytes / unit);
        }
    }
    if bytes == 0 {
        return "0 bytes".to_string();
    }
    format!("{bytes} bytes")
}

/// Physical memory from the text of `/proc/meminfo` (its `MemTotal` line,
/// in KiB), or None if the text has none that reads.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => kib.checked_mul(KIB),
        Some(_) => None,
    }
}

/// Reads a daemon cap: a whole number in the units of
/// [`ferret_abi::limits::size_unit`] (no unit: MiB), at least
/// [`MIN_BUFFER_MEMORY`].
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(end);
    let scale = size_unit(unit).ok_or_else(|| {
        format!(
            "'{text}' has an unknown unit; give MiB as a whole number, or use a K, M, G or T suffix (e.g. 512M, 4G)"
        )
    })?;
    let n: u64 = number.parse().map_err(|_| {
        format!("'{text}' is not a whole number; give MiB, or use a suffix (e.g. 512M, 4G)")
    })?;
    let bytes = n
        .checked_mul(scale)
        .filter(|b| *b <= MAX_SIZE)
        .ok_or_else(|| format!("'{text}' is too large; the most is 1024T"))?;
    if bytes < MIN_BUFFER_MEMORY {
        return Err(format!(
            "'{text}' is less than the {} the smallest session needs",
            show(MIN_BUFFER_MEMORY)
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> BufferBudget {
        BufferBudget {
            total: 100 * MIB,
            per_user: 40 * MIB,
        }
    }

    #[test]
    fn a_reservation_within_both_caps_is_taken() {
        assert!(budget().check(1000, 40 * MIB, 0, 0, "x", "y").is_ok());
        assert!(
            budget()
                .check(1000, 10 * MIB, 30 * MIB, 90 * MIB, "x", "y")
                .is_ok()
        );
    }

    #[test]
    fn the_per_user_cap_counts_only_that_users_sessions() {
        let e = budget()
            .check(
                1000,
                16 * MIB,
                32 * MIB,
                32 * MIB,
                "this session asks for",
                "use a smaller --max-buffers",
            )
            .unwrap_err();
        assert_eq!(e.why, Why::Resources);
        assert_eq!(
            e.message,
            "the sessions of uid 1000 may reserve at most 40 MiB of buffers (the daemon's --user-buffer-memory); 32 MiB are reserved by its other sessions and this session asks for 16 MiB; use a smaller --max-buffers, stop one of its sessions, or run the daemon with a higher --user-buffer-memory"
        );
        assert!(!e.message.contains('\n'));
    }

    #[test]
    fn root_is_exempt_from_the_per_user_cap_but_not_the_global_one() {
        assert!(
            budget()
                .check(0, 60 * MIB, 30 * MIB, 30 * MIB, "x", "y")
                .is_ok()
        );
        let e = budget()
            .check(
                0,
                60 * MIB,
                50 * MIB,
                50 * MIB,
                "this session asks for",
                "z",
            )
            .unwrap_err();
        assert_eq!(
            e.message,
            "all sessions together may reserve at most 100 MiB of buffers (the daemon's --buffer-memory); 50 MiB are reserved by other sessions and this session asks for 60 MiB; z, stop a session, or run the daemon with a higher --buffer-memory"
        );
    }

    #[test]
    fn sums_saturate_rather_than_wrap() {
        assert!(budget().check(1, u64::MAX, 1, 1, "x", "y").is_err());
        assert!(budget().check(0, u64::MAX, 1, 1, "x", "y").is_err());
    }

    #[test]
    fn defaults_take_a_quarter_of_memory_and_a_gib_per_user() {
        let b = BufferBudget::for_memory(Some(24_683_664 * KIB));
        assert_eq!(b.total, 6026 * MIB);
        assert_eq!(b.per_user, GIB);
        let small = BufferBudget::for_memory(Some(2 * GIB));
        assert_eq!((small.total, small.per_user), (512 * MIB, 512 * MIB));
        assert_eq!(BufferBudget::default().total, 4 * GIB);
        assert_eq!(BufferBudget::for_memory(Some(0)).total, MIN_BUFFER_MEMORY);
    }

    #[test]
    fn the_attack_in_issue_13_is_refused_by_default() {
        // 64 buffers of 16 MiB, twice, by one unprivileged user.
        let b = BufferBudget::for_memory(Some(16 * GIB));
        let one = reservation(64, 16384);
        assert_eq!(one, GIB);
        assert!(b.check(1000, one, 0, 0, "x", "y").is_ok());
        assert!(b.check(1000, one, one, one, "x", "y").is_err());
    }

    #[test]
    fn meminfo_reads_its_total() {
        let text = "MemTotal:       24683664 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total(text), Some(24_683_664 * KIB));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: lots kB\n"), None);
        assert_eq!(mem_total("MemTotal: 1 MB\n"), None);
        assert_eq!(mem_total("MemTotal: 99999999999999999999 kB\n"), None);
        assert_eq!(mem_total(""), None);
    }

    #[test]
    fn caps_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_memory("64"), Ok(64 * MIB));
        assert_eq!(parse_memory("512K"), Ok(512 * KIB));
        assert_eq!(parse_memory("4GiB"), Ok(4 * GIB));
        assert_eq!(parse_memory(" 2t "), Ok(2 << 40));
        assert!(parse_memory("4K").is_err());
        assert!(parse_memory("").is_err());
        assert!(parse_memory("1.5G").is_err());
        assert!(parse_memory("-1").is_err());
        assert!(parse_memory("12X").is_err());
        assert!(parse_memory("99999999999999999999").is_err());
        assert!(parse_memory("2000T").is_err());
    }

    #[test]
    fn sizes_show_in_whole_units() {
        assert_eq!(show(GIB), "1 GiB");
        assert_eq!(show(6025 * MIB), "6025 MiB");
        assert_eq!(show(1536 * KIB), "1536 KiB");
        assert_eq!(show(0), "0 bytes");
        assert_eq!(show(1000), "1000 bytes");
    }
}
