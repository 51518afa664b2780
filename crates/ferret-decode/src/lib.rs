//! Decodes Ferret log files into typed events and prints them as text,
//! JSON lines or CSV, or summarises them (`ferret fmt`); decodes a session's
//! buffers as they are delivered in real time the same way (`ferret tail`).
//!
//! Everything read is untrusted: metadata tables are capped, payloads are
//! bounds-checked against their declared fields, and damage is reported as
//! entries rather than errors, so one bad buffer never hides the rest of a
//! file. This crate reads files and bytes handed to it; it never talks to the
//! daemon.

mod decoder;
mod output;
mod summary;

pub use decoder::{DecodedProvider, Entry, Event, EventType, FileDecoder, Stats, StreamDecoder};
pub use output::{
    OutputFormat, Printer, details_text, format_timestamp, level_name, printable_name,
};
pub use summary::{summary_json, write_summary};

pub use ferret_format::{FileHeader, FormatError, Trailer};
