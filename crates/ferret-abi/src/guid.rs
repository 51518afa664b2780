//! Provider GUIDs derived from provider names.
//!
//! Ferret uses the same name hash as ETW's TraceLogging and .NET's
//! EventSource, so a provider called `MyCompany.MyComponent` has the same
//! GUID on Linux under Ferret as on Windows under ETW:
//!
//! 1. Upper-case the name (each character whose upper case is one character is
//!    replaced by it; others are kept) and encode it as UTF-16 big-endian.
//! 2. SHA-1 over the 16 namespace bytes `48 2C 2D B2 C3 90 47 C8 87 F8 1A 15
//!    BF C1 30 FB` followed by those bytes.
//! 3. Take the first 16 bytes of the digest and set the high nibble of byte 7
//!    to 5 (a name-based GUID).
//! 4. Read them as a Windows GUID: `Data1` is bytes 0-3 little-endian, `Data2`
//!    bytes 4-5 little-endian, `Data3` bytes 6-7 little-endian, `Data4` bytes
//!    8-15 as they are.

use core::fmt;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

const NAMESPACE: [u8; 16] = [
    0x48, 0x2C, 0x2D, 0xB2, 0xC3, 0x90, 0x47, 0xC8, 0x87, 0xF8, 0x1A, 0x15, 0xBF, 0xC1, 0x30, 0xFB,
];

/// A GUID, stored as the 16 bytes of its Windows in-memory form (the first
/// three fields little-endian).
///
/// ```
/// use ferret_abi::Guid;
///
/// let g = Guid::from_name("MyProvider");
/// assert_eq!(g.to_string(), "b3864c38-4273-58c5-545b-8b3608343471");
/// assert_eq!(g.data1(), 0xb3864c38);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The GUID that ETW's TraceLogging derives from a provider name.
    pub fn from_name(name: &str) -> Guid {
        let mut hasher = Sha1::new();
        hasher.update(NAMESPACE);
        for c in name.chars() {
            let mut upper = c.to_uppercase();
            let c = match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            };
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                hasher.update(unit.to_be_bytes());
            }
        }
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        bytes[7] = (bytes[7] & 0x0F) | 0x50;
        Guid(bytes)
    }

    /// The GUID's `Data1` field.
    pub fn data1(&self) -> u32 {
        u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

impl fmt::Display for Guid {
    /// The registry form without braces: `b3864c38-4273-58c5-545b-8b3608343471`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        let d2 = u16::from_le_bytes([b[4], b[5]]);
        let d3 = u16::from_le_bytes([b[6], b[7]]);
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.data1(),
            d2,
            d3,
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_guid_windows_tools_derive() {
        // The value Microsoft's EventHeader documentation gives for "MyProvider".
        assert_eq!(
            Guid::from_name("MyProvider").to_string(),
            "b3864c38-4273-58c5-545b-8b3608343471"
        );
    }

    #[test]
    fn the_hash_ignores_case() {
        assert_eq!(Guid::from_name("myprovider"), Guid::from_name("MYPROVIDER"));
        assert_ne!(Guid::from_name("a"), Guid::from_name("b"));
    }
}
