//! The debuggee program (see [`crate::programs`]): a provider process for
//! the tests of Ferret's gdb commands. Given `SOCKET BEFORE AFTER` and
//! optionally `gate` and `wait`, it registers provider `E2E.Debuggee`,
//! waits until a session enables it, writes BEFORE events (one `u64`
//! field, `seq`, from 0), prints `ready` on a line of its own, with `gate`
//! reads a line from standard input, calls [`ferret_testkit_checkpoint`]
//! (where a test sets a breakpoint), writes AFTER more, prints its report
//! `{"before":..,"after":..}` (the events it wrote while enabled), and
//! then exits, or with `wait` sleeps until killed.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferret_provider::{EventDescriptor, FieldDesc, FieldType, Level, Options, Provider, Value};

static TICK: EventDescriptor = EventDescriptor::new(
    1,
    "Tick",
    Level::Information,
    0x1,
    0,
    &[FieldDesc::new("seq", FieldType::U64)],
);

/// Where a debugger's breakpoint goes: reached once, between the events
/// before and after.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn ferret_testkit_checkpoint(written: u64) -> u64 {
    // Something the optimiser cannot fold away, so the call stays.
    std::hint::black_box(written)
}

fn write(p: &Provider, from: u64, n: u64) -> u64 {
    let mut written = 0;
    for seq in from..from + n {
        if p.enabled(TICK.level, TICK.keywords) {
            p.write(&TICK, &[Value::U64(seq)]);
            written += 1;
        }
    }
    written
}

/// Runs the program with `args`; returns its exit status.
pub fn main(mut args: impl Iterator<Item = String>) -> i32 {
    let (Some(socket), Some(before), Some(after)) = (args.next(), args.next(), args.next()) else {
        eprintln!("debuggee: SOCKET BEFORE AFTER [gate] [wait]");
        return 2;
    };
    let flags: Vec<String> = args.collect();
    let wait = flags.iter().any(|f| f == "wait");
    let gate = flags.iter().any(|f| f == "gate");
    let (Ok(before), Ok(after)) = (before.parse::<u64>(), after.parse::<u64>()) else {
        eprintln!("debuggee: BEFORE and AFTER are counts");
        return 2;
    };
    ferret_provider::configure(Options {
        socket: PathBuf::from(socket),
        ..Options::default()
    });
    let p = Provider::register("E2E.Debuggee");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p.enabled(TICK.level, TICK.keywords) {
        if Instant::now() > deadline {
            eprintln!("debuggee: no session enabled E2E.Debuggee within 30 s");
            return 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let written_before = write(&p, 0, before);
    println!("ready");
    let _ = std::io::stdout().flush();
    if gate {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    ferret_testkit_checkpoint(written_before);
    let written_after = write(&p, before, after);
    println!("{{\"before\":{written_before},\"after\":{written_after}}}");
    let _ = std::io::stdout().flush();
    if wait {
        // Until the test kills it: a debugger attaches to it meanwhile.
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    0
}
