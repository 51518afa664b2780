//! Field values and the payload encoding of event records.
//!
//! A payload is the event type's fields in declaration order, with no names
//! and no padding: fixed-size types take their size in little-endian, `bool`
//! one byte (0 or 1), `guid` its 16 bytes, `str` and `bytes` a u16 length
//! followed by that many bytes.

use thiserror::Error;

use crate::Guid;
use crate::record::{FieldMeta, FieldType};
use crate::shm::Span;

/// One field value, borrowed from the caller (when writing) or from the
/// record (when decoding).
///
/// ```
/// use ferret_abi::Value;
/// use ferret_abi::record::FieldType;
///
/// let v = Value::Str("hello");
/// assert_eq!(v.field_type(), FieldType::Str);
/// let mut buf = [0u8; 7];
/// assert_eq!(v.encode(&mut buf), v.encoded_len());
/// assert_eq!(buf, [5, 0, b'h', b'e', b'l', b'l', b'o']);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Unsigned 8-bit integer.
    U8(u8),
    /// Signed 8-bit integer.
    I8(i8),
    /// Unsigned 16-bit integer.
    U16(u16),
    /// Signed 16-bit integer.
    I16(i16),
    /// Unsigned 32-bit integer.
    U32(u32),
    /// Signed 32-bit integer.
    I32(i32),
    /// Unsigned 64-bit integer.
    U64(u64),
    /// Signed 64-bit integer.
    I64(i64),
    /// Double.
    F64(f64),
    /// Boolean.
    Bool(bool),
    /// UTF-8 text (at most 65535 bytes are kept).
    Str(&'a str),
    /// Raw bytes (at most 65535 are kept).
    Bytes(&'a [u8]),
    /// A GUID.
    Guid(Guid),
}

/// The most bytes a `str` or `bytes` value keeps; longer ones are cut.
pub const MAX_VARIABLE: usize = u16::MAX as usize;

impl Value<'_> {
    /// The field type this value encodes as.
    pub const fn field_type(&self) -> FieldType {
        match self {
            Value::U8(_) => FieldType::U8,
            Value::I8(_) => FieldType::I8,
            Value::U16(_) => FieldType::U16,
            Value::I16(_) => FieldType::I16,
            Value::U32(_) => FieldType::U32,
            Value::I32(_) => FieldType::I32,
            Value::U64(_) => FieldType::U64,
            Value::I64(_) => FieldType::I64,
            Value::F64(_) => FieldType::F64,
            Value::Bool(_) => FieldType::Bool,
            Value::Str(_) => FieldType::Str,
            Value::Bytes(_) => FieldType::Bytes,
            Value::Guid(_) => FieldType::Guid,
        }
    }

    /// Bytes this value takes in a payload.
    // This and `encode` are always inlined: a provider's typed call site
    // knows each value's variant, and inlined the match folds away to the
    // code for that one type.
    #[inline(always)]
    pub fn encoded_len(&self) -> usize {
        match self {
            Value::U8(_) | Value::I8(_) | Value::Bool(_) => 1,
            Value::U16(_) | Value::I16(_) => 2,
            Value::U32(_) | Value::I32(_) => 4,
            Value::U64(_) | Value::I64(_) | Value::F64(_) => 8,
            Value::Guid(_) => 16,
            Value::Str(s) => 2 + str_cut(s),
            Value::Bytes(b) => 2 + b.len().min(MAX_VARIABLE),
        }
    }

    /// Writes the value at the start of `dst` and returns the bytes written.
    ///
    /// # Panics
    ///
    /// If `dst` is shorter than [`Value::encoded_len`]; callers size it first.
    #[inline(always)]
    pub fn encode(&self, dst: &mut [u8]) -> usize {
        self.encode_at(&mut Span::new(dst), 0)
    }

    /// Writes the value into `dst` at `at` and returns the bytes written.
    /// The provider's writer encodes into ring space through this: a
    /// [`Span`] never becomes a reference to memory the daemon maps too.
    ///
    /// # Panics
    ///
    /// If the value would pass the end of `dst`; callers size it first.
    /// Nothing is written past the end.
    #[inline(always)]
    pub fn encode_at(&self, dst: &mut Span<'_>, at: usize) -> usize {
        // One check for the whole value, then unchecked writes inside it:
        // every arm below writes exactly `encoded_len` bytes from `at`
        // (`var` writes 2 + min(len, MAX_VARIABLE) bytes of a string already
        // cut to `str_cut`, which is what `encoded_len` counts).
        dst.check(at, self.encoded_len());
        #[inline(always)]
        fn put<const N: usize>(dst: &mut Span<'_>, at: usize, b: [u8; N]) -> usize {
            // SAFETY: [at, at + N) is the value's range, checked above.
            unsafe { dst.put_array_unchecked(at, b) };
            N
        }
        #[inline(always)]
        fn var(dst: &mut Span<'_>, at: usize, b: &[u8]) -> usize {
            let n = b.len().min(MAX_VARIABLE);
            // SAFETY: [at, at + 2 + n) is the value's range, checked above.
            unsafe {
                dst.put_array_unchecked(at, (n as u16).to_le_bytes());
                copy_short(dst, at + 2, &b[..n]);
            }
            2 + n
        }
        match *self {
            Value::U8(v) => put(dst, at, [v]),
            Value::I8(v) => put(dst, at, v.to_le_bytes()),
            Value::Bool(v) => put(dst, at, [v as u8]),
            Value::U16(v) => put(dst, at, v.to_le_bytes()),
            Value::I16(v) => put(dst, at, v.to_le_bytes()),
            Value::U32(v) => put(dst, at, v.to_le_bytes()),
            Value::I32(v) => put(dst, at, v.to_le_bytes()),
            Value::U64(v) => put(dst, at, v.to_le_bytes()),
            Value::I64(v) => put(dst, at, v.to_le_bytes()),
            Value::F64(v) => put(dst, at, v.to_le_bytes()),
            Value::Str(s) => var(dst, at, &s.as_bytes()[..str_cut(s)]),
            Value::Bytes(b) => var(dst, at, b),
            Value::Guid(g) => put(dst, at, g.0),
        }
    }
}

/// Copies `src` into `dst` at `at`. Most strings and byte fields in events
/// are short: 4 to 16 bytes take two overlapping loads and stores here,
/// where a call to `memcpy` costs several times more.
///
/// # Safety
///
/// `[at, at + src.len())` must lie inside `dst`.
#[inline(always)]
unsafe fn copy_short(dst: &mut Span<'_>, at: usize, src: &[u8]) {
    // Both halves are loaded as integers before either is stored, so that
    // the compiler keeps them fixed-size moves rather than merging them
    // into one variable-length copy.
    let n = src.len();
    // SAFETY: in all three branches each store lies inside [at, at + n),
    // which the caller promises is inside `dst`.
    unsafe {
        if (8..=16).contains(&n) {
            let head = *src.first_chunk::<8>().unwrap_or(&[0; 8]);
            let tail = *src.last_chunk::<8>().unwrap_or(&[0; 8]);
            dst.put_array_unchecked(at, head);
            dst.put_array_unchecked(at + (n - 8), tail);
        } else if (4..8).contains(&n) {
            let head = *src.first_chunk::<4>().unwrap_or(&[0; 4]);
            let tail = *src.last_chunk::<4>().unwrap_or(&[0; 4]);
            dst.put_array_unchecked(at, head);
            dst.put_array_unchecked(at + (n - 4), tail);
        } else {
            dst.put_unchecked(at, src);
        }
    }
}

/// How many of a string's bytes a payload keeps: all of them up to
/// [`MAX_VARIABLE`], else the longest prefix that does not split a UTF-8
/// sequence. [`Value::encoded_len`] and [`Value::encode`] must agree on it,
/// or a record would be sized for bytes that are never written.
#[inline(always)]
fn str_cut(s: &str) -> usize {
    if s.len() <= MAX_VARIABLE {
        return s.len();
    }
    let mut n = MAX_VARIABLE;
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// Why a payload does not match its event type.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PayloadError {
    /// The payload ends inside a field.
    #[error("payload ends inside field '{0}'")]
    Truncated(String),
    /// A `str` field is not UTF-8.
    #[error("field '{0}' is not valid UTF-8")]
    BadUtf8(String),
    /// Bytes remain after the last field.
    #[error("{0} bytes remain after the last field")]
    Trailing(usize),
}

/// Decodes `payload` as the fields `fields` describe. Nothing in `payload`
/// is trusted; each value is bounds-checked.
pub fn decode_untrusted<'a>(
    fields: &[FieldMeta],
    payload: &'a [u8],
) -> Result<Vec<Value<'a>>, PayloadError> {
    let mut out = Vec::with_capacity(fields.len());
    decode_each(fields, payload, |v| out.push(v))?;
    Ok(out)
}

/// Decodes `payload` as [`decode_untrusted`] does, into `out` (cleared
/// first), so that a reader decoding event after event reuses one
/// allocation. On an error `out` holds the fields before the bad one.
pub fn decode_untrusted_into<'a>(
    fields: &[FieldMeta],
    payload: &'a [u8],
    out: &mut Vec<Value<'a>>,
) -> Result<(), PayloadError> {
    out.clear();
    decode_each(fields, payload, |v| out.push(v))
}

/// Checks `payload` exactly as [`decode_untrusted`] does, without keeping
/// the values: for readers that only count events, so that they allocate
/// nothing per event yet reject the same payloads.
pub fn check_untrusted(fields: &[FieldMeta], payload: &[u8]) -> Result<(), PayloadError> {
    decode_each(fields, payload, |_| {})
}

/// Decodes each field in turn, handing its value to `out`. The one decoder
/// behind [`decode_untrusted`] and [`check_untrusted`], so that the two
/// cannot disagree about what is valid.
fn decode_each<'a>(
    fields: &[FieldMeta],
    payload: &'a [u8],
    mut out: impl FnMut(Value<'a>),
) -> Result<(), PayloadError> {
    let mut rest = payload;
    for f in fields {
        let truncated = || PayloadError::Truncated(f.name.clone());
        let value = match f.ty {
            FieldType::U8 => Value::U8(u8::from_le_bytes(take(&mut rest).ok_or_else(truncated)?)),
            FieldType::I8 => Value::I8(i8::from_le_bytes(take(&mut rest).ok_or_else(truncated)?)),
            FieldType::Bool => Value::Bool(take::<1>(&mut rest).ok_or_else(truncated)?[0] != 0),
            FieldType::U16 => {
                Value::U16(u16::from_le_bytes(take(&mut rest).ok_or_else(truncated)?))
            }
            FieldType::I16 => {
                Value::I16(i16::from_le_bytes(take(&mut rest).ok_or_else(truncated)?))
            }
            FieldType::U32 => {
                Value::U32(u32::from_le_bytes(take(&mut rest).ok_or_else(truncated)?))
            }
            FieldType::I32 => {
                Value::I32(i32::from_le_bytes(take(&mut rest).ok_or_else(truncated)?))
            }
            FieldType::U64 => {
                Value::U64(u64::from_le_bytes(take(&mut rest).ok_or_else(truncated)?))
            }
            FieldType::I64 => {
                Value::I64(i64::from_le_bytes(take(&mut rest).ok_or_else(truncated)?))
            }
            FieldType::F64 => {
                Value::F64(f64::from_le_bytes(take(&mut rest).ok_or_else(truncated)?))
            }
            FieldType::Str => {
                let b = take_variable(&mut rest).ok_or_else(truncated)?;
                let s = utf8(b).ok_or_else(|| PayloadError::BadUtf8(f.name.clone()))?;
                Value::Str(s)
            }
            FieldType::Bytes => Value::Bytes(take_variable(&mut rest).ok_or_else(truncated)?),
            FieldType::Guid => Value::Guid(Guid(take(&mut rest).ok_or_else(truncated)?)),
        };
        out(value);
    }
    if !rest.is_empty() {
        return Err(PayloadError::Trailing(rest.len()));
    }
    Ok(())
}

/// `b` as a string if it is UTF-8. Most strings in events are short and
/// ASCII: for those one pass that ORs the bytes together settles it, where
/// the general validator costs several times more per string.
#[inline]
fn utf8(b: &[u8]) -> Option<&str> {
    if short_ascii(b) {
        // SAFETY: every byte is below 0x80, and ASCII is UTF-8.
        return Some(unsafe { core::str::from_utf8_unchecked(b) });
    }
    core::str::from_utf8(b).ok()
}

/// True if `b` is at most 16 bytes, all ASCII: two overlapping word loads
/// test 4 to 16 bytes at once.
#[inline(always)]
fn short_ascii(b: &[u8]) -> bool {
    const HIGH64: u64 = 0x8080_8080_8080_8080;
    const HIGH32: u32 = 0x8080_8080;
    match (b.first_chunk::<8>(), b.last_chunk::<8>()) {
        (Some(head), Some(tail)) if b.len() <= 16 => {
            (u64::from_ne_bytes(*head) | u64::from_ne_bytes(*tail)) & HIGH64 == 0
        }
        (Some(_), Some(_)) => false,
        _ => match (b.first_chunk::<4>(), b.last_chunk::<4>()) {
            (Some(head), Some(tail)) => {
                (u32::from_ne_bytes(*head) | u32::from_ne_bytes(*tail)) & HIGH32 == 0
            }
            _ => b.iter().all(|&x| x < 0x80),
        },
    }
}

fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(*head)
}

fn take_variable<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = u16::from_le_bytes(take::<2>(rest)?) as usize;
    let slice: &'a [u8] = rest;
    let b = slice.get(..n)?;
    *rest = &slice[n..];
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field(name: &str, ty: FieldType) -> FieldMeta {
        FieldMeta {
            name: name.into(),
            ty,
        }
    }

    #[test]
    fn every_type_round_trips() {
        let values = [
            Value::U8(200),
            Value::I8(-5),
            Value::U16(60000),
            Value::I16(-30000),
            Value::U32(4_000_000_000),
            Value::I32(-2_000_000_000),
            Value::U64(u64::MAX),
            Value::I64(i64::MIN),
            Value::F64(3.5),
            Value::Bool(true),
            Value::Str("héllo"),
            Value::Bytes(&[0, 1, 2, 255]),
            Value::Guid(Guid::from_name("MyProvider")),
        ];
        let fields: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, v)| field(&format!("f{i}"), v.field_type()))
            .collect();
        let mut buf = vec![0u8; values.iter().map(Value::encoded_len).sum()];
        let mut at = 0;
        for v in &values {
            at += v.encode(&mut buf[at..]);
        }
        assert_eq!(at, buf.len());
        assert_eq!(decode_untrusted(&fields, &buf).unwrap(), values);
    }

    #[test]
    fn long_strings_are_cut_on_a_character_boundary() {
        let s = "é".repeat(40000); // 80000 bytes
        let v = Value::Str(&s);
        let mut buf = vec![0u8; v.encoded_len()];
        // The record is sized by `encoded_len`: every byte of it is written.
        assert_eq!(v.encode(&mut buf), buf.len());
        let decoded = decode_untrusted(&[field("s", FieldType::Str)], &buf).unwrap();
        let Value::Str(out) = decoded[0] else {
            panic!("not a string")
        };
        assert!(out.len() <= MAX_VARIABLE && s.starts_with(out));
    }

    #[test]
    fn truncated_payloads_are_errors() {
        let fields = [field("a", FieldType::U32), field("b", FieldType::Str)];
        let mut buf = vec![0u8; 4 + 2 + 3];
        Value::U32(1).encode(&mut buf);
        Value::Str("abc").encode(&mut buf[4..]);
        for cut in 0..buf.len() {
            assert!(decode_untrusted(&fields, &buf[..cut]).is_err());
        }
        assert_eq!(
            decode_untrusted(&fields, &[buf.clone(), vec![0]].concat()),
            Err(PayloadError::Trailing(1))
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(codes in proptest::collection::vec(1u8..=13, 0..8),
                               bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let fields: Vec<_> = codes.iter().map(|c| field("x", FieldType::from_u8(*c).unwrap())).collect();
            let _ = decode_untrusted(&fields, &bytes);
        }

        #[test]
        fn short_copies_copy_every_byte(src in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut dst = vec![0xA5u8; src.len()];
            // SAFETY: `dst` is exactly as long as `src`.
            unsafe { copy_short(&mut Span::new(&mut dst), 0, &src) };
            prop_assert_eq!(dst, src);
        }

        #[test]
        fn the_ascii_shortcut_agrees_with_the_utf8_validator(
            bytes in proptest::collection::vec(prop_oneof![0u8..0x80, any::<u8>()], 0..48)) {
            prop_assert_eq!(utf8(&bytes), core::str::from_utf8(&bytes).ok());
        }
    }
}
