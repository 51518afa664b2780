//! Typed fields for [`write_event!`](crate::write_event): which Rust types
//! may be event fields, and how a call site's field types become metadata
//! at compile time.
//!
//! Every field type maps to one of the log format's field types (a
//! [`WireValue`]); the set is closed, so a value can never be encoded as a
//! type other than the one its metadata declares. [`FieldValue`] is open:
//! a program's own types become fields by naming the wire value they carry.

use ferret_abi::record::FieldType;
use ferret_abi::shm::Span;
use ferret_abi::{Guid, Value};

mod sealed {
    /// Keeps the set of wire types closed: the encoder trusts that a
    /// `WireValue`'s value has the type its `TYPE` says.
    pub trait Sealed {}
}

/// A type the log format stores directly: integers, floats, `bool`, `str`,
/// byte slices and [`Guid`]. Implemented by this crate only; use
/// [`FieldValue`] to make other types fields.
///
/// ```
/// use ferret_provider::{FieldType, WireValue};
///
/// assert_eq!(<u16 as WireValue>::TYPE, FieldType::U16);
/// assert_eq!(<str as WireValue>::TYPE, FieldType::Str);
/// // `usize` is stored as a u64 and `f32` as an f64.
/// assert_eq!(<usize as WireValue>::TYPE, FieldType::U64);
/// assert_eq!(<f32 as WireValue>::TYPE, FieldType::F64);
/// ```
pub trait WireValue: sealed::Sealed {
    /// The field type this value is stored as.
    const TYPE: FieldType;
    /// The value to encode; its type is always [`WireValue::TYPE`].
    fn value(&self) -> Value<'_>;
}

macro_rules! wire {
    ($($t:ty => $ft:ident, |$v:ident| $e:expr;)*) => {$(
        impl sealed::Sealed for $t {}
        impl WireValue for $t {
            const TYPE: FieldType = FieldType::$ft;
            #[inline(always)]
            fn value(&self) -> Value<'_> {
                let $v = self;
                $e
            }
        }
        impl FieldValue for $t {
            type Wire = $t;
            #[inline(always)]
            fn wire(&self) -> &$t {
                self
            }
        }
    )*};
}

wire! {
    u8 => U8, |v| Value::U8(*v);
    i8 => I8, |v| Value::I8(*v);
    u16 => U16, |v| Value::U16(*v);
    i16 => I16, |v| Value::I16(*v);
    u32 => U32, |v| Value::U32(*v);
    i32 => I32, |v| Value::I32(*v);
    u64 => U64, |v| Value::U64(*v);
    i64 => I64, |v| Value::I64(*v);
    usize => U64, |v| Value::U64(*v as u64);
    isize => I64, |v| Value::I64(*v as i64);
    f32 => F64, |v| Value::F64(f64::from(*v));
    f64 => F64, |v| Value::F64(*v);
    bool => Bool, |v| Value::Bool(*v);
    str => Str, |v| Value::Str(v);
    [u8] => Bytes, |v| Value::Bytes(v);
    Guid => Guid, |v| Value::Guid(*v);
}

impl<const N: usize> sealed::Sealed for [u8; N] {}
impl<const N: usize> WireValue for [u8; N] {
    const TYPE: FieldType = FieldType::Bytes;
    #[inline(always)]
    fn value(&self) -> Value<'_> {
        Value::Bytes(self)
    }
}
impl<const N: usize> FieldValue for [u8; N] {
    type Wire = [u8; N];
    #[inline(always)]
    fn wire(&self) -> &[u8; N] {
        self
    }
}

/// A type that can be a field of [`write_event!`](crate::write_event) and
/// [`start_activity!`](crate::start_activity): every [`WireValue`],
/// `String`, `Vec<u8>`, and references, boxes and `Arc`s of field types.
/// Anything else is a compile error at the call site.
///
/// A program makes its own types fields by saying which wire value they
/// carry:
///
/// ```
/// use ferret_provider::FieldValue;
///
/// /// An order number, logged as a u64.
/// struct OrderId(u64);
///
/// impl FieldValue for OrderId {
///     type Wire = u64;
///     fn wire(&self) -> &u64 {
///         &self.0
///     }
/// }
///
/// ferret_provider::provider!(static SHOP = "Example.Shop");
/// let order = OrderId(42);
/// ferret_provider::write_event!(SHOP, "Ordered", level: Information, order = order);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an event field",
    label = "not a Ferret field type",
    note = "fields are integers, f32/f64, bool, str/String, byte slices/arrays/Vec<u8>, Guid, references to these, or types that implement FieldValue"
)]
pub trait FieldValue {
    /// The wire type the value is stored as.
    type Wire: WireValue + ?Sized;
    /// The value to store.
    fn wire(&self) -> &Self::Wire;
}

impl FieldValue for String {
    type Wire = str;
    #[inline(always)]
    fn wire(&self) -> &str {
        self
    }
}

impl FieldValue for Vec<u8> {
    type Wire = [u8];
    #[inline(always)]
    fn wire(&self) -> &[u8] {
        self
    }
}

impl<T: FieldValue + ?Sized> FieldValue for &T {
    type Wire = T::Wire;
    #[inline(always)]
    fn wire(&self) -> &T::Wire {
        (**self).wire()
    }
}

impl<T: FieldValue + ?Sized> FieldValue for &mut T {
    type Wire = T::Wire;
    #[inline(always)]
    fn wire(&self) -> &T::Wire {
        (**self).wire()
    }
}

impl<T: FieldValue + ?Sized> FieldValue for Box<T> {
    type Wire = T::Wire;
    #[inline(always)]
    fn wire(&self) -> &T::Wire {
        (**self).wire()
    }
}

impl<T: FieldValue + ?Sized> FieldValue for std::sync::Arc<T> {
    type Wire = T::Wire;
    #[inline(always)]
    fn wire(&self) -> &T::Wire {
        (**self).wire()
    }
}

impl FieldValue for std::borrow::Cow<'_, str> {
    type Wire = str;
    #[inline(always)]
    fn wire(&self) -> &str {
        self
    }
}

/// A call site's fields as a tuple of references, one per field: their
/// types (and so the event's metadata) are known at compile time for each
/// instantiation of the call site.
#[doc(hidden)]
pub trait FieldTuple {
    /// The field types, in order.
    const TYPES: &'static [FieldType];
    /// [`signature`] of `TYPES`.
    const SIGNATURE: u64;
    /// The payload's encoded length.
    fn encoded_len(&self) -> usize;
    /// Writes the payload (exactly [`FieldTuple::encoded_len`] bytes) into
    /// `dst` from `at`, each field by the code for its type. `dst` is ring
    /// space the daemon maps too, so it is a [`Span`], never a `&mut [u8]`.
    fn encode(&self, dst: &mut Span<'_>, at: usize);
}

/// A non-zero number naming a list of field types: exact for up to 14
/// fields (four bits per type code and the count), a 62-bit hash beyond.
/// Two instantiations of one call site (a call site in a generic function)
/// with different field types get different signatures.
#[doc(hidden)]
pub const fn signature(types: &[FieldType]) -> u64 {
    const EXACT: usize = 14;
    if types.len() <= EXACT {
        let mut sig = (1u64 << 63) | ((types.len() as u64) << 56);
        let mut i = 0;
        while i < types.len() {
            sig |= (types[i] as u64) << (4 * i);
            i += 1;
        }
        sig
    } else {
        // FNV-1a over the type codes.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut i = 0;
        while i < types.len() {
            h ^= types[i] as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        (3u64 << 62) | (h >> 2)
    }
}

impl FieldTuple for () {
    const TYPES: &'static [FieldType] = &[];
    const SIGNATURE: u64 = signature(Self::TYPES);
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        0
    }
    #[inline(always)]
    fn encode(&self, _: &mut Span<'_>, _: usize) {}
}

macro_rules! tuples {
    ($( ($($t:ident $i:tt),+) )*) => {$(
        impl<$($t: FieldValue + ?Sized),+> FieldTuple for ($(&$t,)+) {
            const TYPES: &'static [FieldType] = &[$(<$t::Wire as WireValue>::TYPE),+];
            const SIGNATURE: u64 = signature(Self::TYPES);
            // One statement per field, unrolled: each value's variant is
            // known here, so its length and encoding fold to the code for
            // its type.
            #[inline(always)]
            fn encoded_len(&self) -> usize {
                0 $(+ self.$i.wire().value().encoded_len())+
            }
            #[inline(always)]
            fn encode(&self, dst: &mut Span<'_>, at: usize) {
                let mut off = at;
                $(off += self.$i.wire().value().encode_at(dst, off);)+
                let _ = off;
            }
        }
    )*};
}

tuples! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15,
     Q 16)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15,
     Q 16, R 17)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15,
     Q 16, R 17, S 18)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15,
     Q 16, R 17, S 18, T 19)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15,
     Q 16, R 17, S 18, T 19, U 20)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15,
     Q 16, R 17, S 18, T 19, U 20, V 21)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15,
     Q 16, R 17, S 18, T 19, U 20, V 21, W 22)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15,
     Q 16, R 17, S 18, T 19, U 20, V 21, W 22, X 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_tell_type_lists_apart() {
        use FieldType::*;
        let lists: [&[FieldType]; 6] =
            [&[], &[U8], &[U8, U8], &[Str, U16], &[U16, Str], &[Guid; 20]];
        for (i, a) in lists.iter().enumerate() {
            assert_ne!(signature(a), 0, "signatures are never 0 (0 means none)");
            for b in &lists[i + 1..] {
                assert_ne!(signature(a), signature(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn tuples_report_the_wire_types_of_their_fields() {
        let name = String::from("x");
        let t = (&1u16, &name, &&b"ab"[..], &Guid([1; 16]), &-1isize);
        assert_eq!(
            <(&u16, &String, &&[u8], &Guid, &isize) as FieldTuple>::TYPES,
            &[
                FieldType::U16,
                FieldType::Str,
                FieldType::Bytes,
                FieldType::Guid,
                FieldType::I64
            ]
        );
        // The values as a provider writes them: encoded by the tuple, then
        // read back as the declared types.
        let mut payload = vec![0u8; t.encoded_len()];
        t.encode(&mut Span::new(&mut payload), 0);
        let fields: Vec<_> = <(&u16, &String, &&[u8], &Guid, &isize)>::TYPES
            .iter()
            .map(|&ty| ferret_abi::record::FieldMeta {
                name: "f".into(),
                ty,
            })
            .collect();
        let v = ferret_abi::payload::decode_untrusted(&fields, &payload).expect("decodes");
        assert_eq!(
            v,
            &[
                Value::U16(1),
                Value::Str("x"),
                Value::Bytes(b"ab"),
                Value::Guid(Guid([1; 16])),
                Value::I64(-1)
            ]
        );
        for (v, ty) in v
            .iter()
            .zip(<(&u16, &String, &&[u8], &Guid, &isize)>::TYPES)
        {
            assert_eq!(v.field_type(), *ty);
        }
    }
}
