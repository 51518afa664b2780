//! The macros check field types at compile time: a value that is not a
//! field type, a misspelt option, `opcode:` on an activity and keywords
//! that are not constant are compile errors with messages that say so.

#[test]
fn misuse_of_the_macros_does_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
