//! The test programs: a provider process that attacks its daemon
//! ([`hostile`](crate::hostile)), one that registers many providers
//! ([`many_providers`](crate::many_providers)) and one to debug
//! ([`debuggee`](crate::debuggee)).
//!
//! A test runs one as a process of its own by running *its own test binary*
//! again, with a test called [`ENTRY`] that does nothing but call
//! [`serve`]: the child runs that one test, which becomes the program.
//! Cargo builds a package's binaries afresh only for that package's own
//! integration tests, so a program that was a binary of this crate could
//! be stale (or missing) when one test file is built; the test binary is
//! always the code under test. The process is a real, separate provider
//! process, as the programs' binaries would be.
//!
//! `ferret-many-providers`, a binary of this crate, runs the same code for
//! benches/registration.sh.

use std::process::Command;

/// The name of the test through which a test binary runs a program: each
/// test file that runs one has `#[test] fn test_program() { serve() }`.
pub const ENTRY: &str = "test_program";

const PROGRAM_VAR: &str = "FERRET_TESTKIT_PROGRAM";
const ARGS_VAR: &str = "FERRET_TESTKIT_ARGS";
/// Separates the program's arguments in [`ARGS_VAR`]; no argument a test
/// passes contains it.
const ARG_SEPARATOR: char = '\u{1f}';

/// A test program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// [`crate::hostile`]: breaks every rule of docs/ABI.md.
    HostileProvider,
    /// [`crate::many_providers`]: registers many providers and writes from
    /// those a session enables.
    ManyProviders,
    /// [`crate::debuggee`]: writes events around a breakpoint's location,
    /// for the gdb commands' tests.
    Debuggee,
}

impl Program {
    fn name(self) -> &'static str {
        match self {
            Program::HostileProvider => "ferret-hostile-provider",
            Program::ManyProviders => "ferret-many-providers",
            Program::Debuggee => "ferret-debuggee",
        }
    }

    fn from_name(name: &str) -> Option<Program> {
        [
            Program::HostileProvider,
            Program::ManyProviders,
            Program::Debuggee,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }

    /// A command that runs this program with `args` in a process of its
    /// own; its standard output ends with the program's one-line report
    /// (see [`report`]).
    pub fn command<S: AsRef<str>>(self, args: &[S]) -> Command {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut joined = String::new();
        for (i, a) in args.iter().enumerate() {
            let a = a.as_ref();
            assert!(!a.contains(ARG_SEPARATOR), "argument {a:?}");
            if i > 0 {
                joined.push(ARG_SEPARATOR);
            }
            joined.push_str(a);
        }
        let mut cmd = Command::new(exe);
        // Only the entry test, its output not captured, so that what the
        // program prints reaches the pipe.
        cmd.args([ENTRY, "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env(PROGRAM_VAR, self.name())
            .env(ARGS_VAR, joined);
        cmd
    }
}

/// The body of each test file's [`ENTRY`] test: in a process started by
/// [`Program::command`], runs the program and exits with its status; in a
/// test run, returns at once.
pub fn serve() {
    let Ok(name) = std::env::var(PROGRAM_VAR) else {
        return;
    };
    let program = Program::from_name(&name).unwrap_or_else(|| panic!("no test program {name}"));
    let args: Vec<String> = match std::env::var(ARGS_VAR) {
        Ok(a) if a.is_empty() => Vec::new(),
        Ok(a) => a.split(ARG_SEPARATOR).map(str::to_string).collect(),
        Err(_) => Vec::new(),
    };
    let code = match program {
        Program::HostileProvider => crate::hostile::main(args.into_iter()),
        Program::ManyProviders => crate::many_providers::main(args.into_iter()),
        Program::Debuggee => crate::debuggee::main(args.into_iter()),
    };
    // Exiting here keeps the test harness from printing its summary after
    // the report, so the report is the last line of the output.
    std::process::exit(code);
}

/// The program's report: the JSON object on the last line of its standard
/// output (the test harness prints a line of its own before the program
/// starts).
pub fn report(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("no report in {text:?}"));
    serde_json::from_str(last).unwrap_or_else(|e| panic!("bad report {last:?}: {e}"))
}
