//! `ferret-many-providers` for benches/registration.sh: the test program
//! of [`ferret_testkit::many_providers`] as a binary of its own, so that a
//! benchmark can run it from a release build.

fn main() -> std::process::ExitCode {
    let code = ferret_testkit::many_providers::main(std::env::args().skip(1));
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
