//! A reusable buffer of owned fields, for events whose values live only as
//! long as a callback (as `tracing`'s visitors and `log`'s key-value
//! sources hand them out) and so cannot be borrowed by a
//! [`DynamicEvent`](crate::DynamicEvent) until it is written.

use std::fmt::{self, Write as _};
use std::ops::Range;

use ferret_abi::{Guid, Value};

use crate::DynamicEvent;

/// One field's value, with text and bytes kept as ranges of the buffer.
#[derive(Clone, Debug)]
enum Slot {
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Guid(Guid),
    Str(Range<usize>),
    Bytes(Range<usize>),
}

/// Fields copied out of short-lived borrows: names and text go into one
/// string, bytes into one vector, so that a buffer reused across events
/// stops allocating once it has grown to the largest event's size.
///
/// ```
/// use ferret_provider::{FieldBuffer, Level, Value};
///
/// ferret_provider::provider!(static SCRIPT = "Example.FieldBuffer");
///
/// let mut fields = FieldBuffer::new();
/// for (key, n) in [("apples", 3u64), ("pears", 5)] {
///     // The key is copied, so it may be a temporary.
///     fields.push(&key.to_uppercase(), Value::U64(n));
/// }
/// fields.push_display("note", &format_args!("{} kinds", 2));
/// let mut event = SCRIPT.dynamic_event("Basket", Level::Information, 0);
/// fields.add_to(&mut event);
/// event.write();
/// fields.clear();
/// ```
#[derive(Clone, Debug, Default)]
pub struct FieldBuffer {
    names: Vec<Range<usize>>,
    slots: Vec<Slot>,
    text: String,
    bytes: Vec<u8>,
}

impl FieldBuffer {
    /// An empty buffer.
    ///
    /// ```
    /// let fields = ferret_provider::FieldBuffer::new();
    /// assert!(fields.is_empty());
    /// ```
    pub const fn new() -> FieldBuffer {
        FieldBuffer {
            names: Vec::new(),
            slots: Vec::new(),
            text: String::new(),
            bytes: Vec::new(),
        }
    }

    /// Forgets every field, keeping the memory for the next event.
    ///
    /// ```
    /// use ferret_provider::{FieldBuffer, Value};
    ///
    /// let mut fields = FieldBuffer::new();
    /// fields.push("n", Value::U32(1));
    /// fields.clear();
    /// assert_eq!(fields.len(), 0);
    /// ```
    pub fn clear(&mut self) {
        self.names.clear();
        self.slots.clear();
        self.text.clear();
        self.bytes.clear();
    }

    /// The number of fields.
    ///
    /// ```
    /// use ferret_provider::{FieldBuffer, Value};
    ///
    /// let mut fields = FieldBuffer::new();
    /// fields.push("ok", Value::Bool(true));
    /// assert_eq!(fields.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True if the buffer has no fields.
    ///
    /// ```
    /// assert!(ferret_provider::FieldBuffer::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn push_name(&mut self, name: &str) {
        let start = self.text.len();
        self.text.push_str(name);
        self.names.push(start..self.text.len());
    }

    /// Adds a field, copying its name and any text or bytes it holds.
    /// Integers are widened to 64 bits, which is how consumers of dynamic
    /// data (bindings, bridges) see them anyway.
    ///
    /// ```
    /// use ferret_provider::{FieldBuffer, Value};
    ///
    /// let mut fields = FieldBuffer::new();
    /// let text = String::from("short-lived");
    /// fields.push("label", Value::Str(&text));
    /// drop(text);
    /// assert_eq!(fields.len(), 1);
    /// ```
    pub fn push(&mut self, name: &str, value: Value<'_>) {
        self.push_name(name);
        let slot = match value {
            Value::U8(v) => Slot::U64(v.into()),
            Value::U16(v) => Slot::U64(v.into()),
            Value::U32(v) => Slot::U64(v.into()),
            Value::U64(v) => Slot::U64(v),
            Value::I8(v) => Slot::I64(v.into()),
            Value::I16(v) => Slot::I64(v.into()),
            Value::I32(v) => Slot::I64(v.into()),
            Value::I64(v) => Slot::I64(v),
            Value::F64(v) => Slot::F64(v),
            Value::Bool(v) => Slot::Bool(v),
            Value::Guid(v) => Slot::Guid(v),
            Value::Str(s) => {
                let start = self.text.len();
                self.text.push_str(s);
                Slot::Str(start..self.text.len())
            }
            Value::Bytes(b) => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(b);
                Slot::Bytes(start..self.bytes.len())
            }
        };
        self.slots.push(slot);
    }

    /// Adds a text field holding `value` formatted with `Display`, written
    /// straight into the buffer.
    ///
    /// ```
    /// use ferret_provider::FieldBuffer;
    ///
    /// let mut fields = FieldBuffer::new();
    /// fields.push_display("addr", &std::net::Ipv4Addr::LOCALHOST);
    /// ```
    pub fn push_display(&mut self, name: &str, value: &dyn fmt::Display) {
        self.push_name(name);
        let start = self.text.len();
        // Writing to a String fails only if the Display impl itself
        // reports an error; whatever it wrote before that is kept.
        let _ = write!(self.text, "{value}");
        self.slots.push(Slot::Str(start..self.text.len()));
    }

    /// Adds a text field holding `value` formatted with `Debug`.
    ///
    /// ```
    /// use ferret_provider::FieldBuffer;
    ///
    /// let mut fields = FieldBuffer::new();
    /// fields.push_debug("pair", &(1, "a"));
    /// ```
    pub fn push_debug(&mut self, name: &str, value: &dyn fmt::Debug) {
        self.push_name(name);
        let start = self.text.len();
        let _ = write!(self.text, "{value:?}");
        self.slots.push(Slot::Str(start..self.text.len()));
    }

    /// Adds every field to `event`, in the order they were pushed; the
    /// event borrows them until it is written.
    ///
    /// ```
    /// use ferret_provider::{FieldBuffer, Level, Value};
    ///
    /// ferret_provider::provider!(static APP = "Example.AddTo");
    /// let mut fields = FieldBuffer::new();
    /// fields.push("n", Value::I64(-1));
    /// let mut event = APP.dynamic_event("Sample", Level::Verbose, 0);
    /// fields.add_to(&mut event);
    /// event.write();
    /// ```
    pub fn add_to<'a>(&'a self, event: &mut DynamicEvent<'a>) {
        if !event.is_enabled() {
            return;
        }
        for (name, slot) in self.names.iter().zip(&self.slots) {
            let value = match slot {
                Slot::U64(v) => Value::U64(*v),
                Slot::I64(v) => Value::I64(*v),
                Slot::F64(v) => Value::F64(*v),
                Slot::Bool(v) => Value::Bool(*v),
                Slot::Guid(v) => Value::Guid(*v),
                Slot::Str(r) => Value::Str(&self.text[r.clone()]),
                Slot::Bytes(r) => Value::Bytes(&self.bytes[r.clone()]),
            };
            event.field(&self.text[name.clone()], value);
        }
    }
}
