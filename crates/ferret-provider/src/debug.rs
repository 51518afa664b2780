//! What a debugger reads of this process: one static with a fixed name and
//! layout (docs/ABI.md, "Debugger info"), found by its symbol as HHVM's gdb
//! scripts find its ring pointer. It tells Ferret's gdb commands which
//! daemon this process talks to and where its region is mapped, in a live
//! process and in a core file alike. Plain atomics, written by the link
//! thread as it attaches and detaches and by registration; nothing in the
//! process reads them.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

/// The most bytes of the socket path kept (a `sockaddr_un` path is at most
/// 108).
const SOCKET_BYTES: usize = 256;

/// Room for the PROVIDER records of every provider a process may register
/// (1024 slots, each record at most about 300 bytes). Zero-initialised, so
/// it costs no memory until written.
const PROVIDER_BYTES: usize = 320 * 1024;

/// The layout `FERRET_DEBUG_INFO` has.
#[repr(C)]
#[derive(Debug)]
pub struct DebugInfo {
    /// `FERRETDB`.
    magic: [u8; 8],
    /// The layout's version: 1.
    version: u32,
    /// Bytes of `socket` in use.
    socket_len: AtomicU32,
    /// Where the region is mapped, or 0 while the process is detached.
    region_addr: AtomicU64,
    /// Its length in bytes.
    region_len: AtomicU64,
    /// Where [`FERRET_DEBUG_PROVIDERS`] is: the process's providers.
    providers_addr: AtomicU64,
    /// Bytes of it in use.
    providers_len: AtomicU32,
    reserved: u32,
    /// The daemon's control socket this process connects to.
    socket: [AtomicU8; SOCKET_BYTES],
}

/// What Ferret's gdb commands read (`ferret sessions`, `ferret stop`, ...).
// The name is the interface: it must not be mangled, and the static must
// be kept even though nothing in Rust reads it.
#[unsafe(no_mangle)]
#[used]
pub static FERRET_DEBUG_INFO: DebugInfo = DebugInfo {
    magic: *b"FERRETDB",
    version: 1,
    socket_len: AtomicU32::new(0),
    region_addr: AtomicU64::new(0),
    region_len: AtomicU64::new(0),
    providers_addr: AtomicU64::new(0),
    providers_len: AtomicU32::new(0),
    reserved: 0,
    socket: [const { AtomicU8::new(0) }; SOCKET_BYTES],
};

/// The PROVIDER records (docs/FORMAT.md, with source 0 and pid 0) of the
/// providers this process registered, in slot order: what names a region's
/// slots when its events are read from a debugger, with no daemon to ask.
#[unsafe(no_mangle)]
#[used]
pub static FERRET_DEBUG_PROVIDERS: [AtomicU8; PROVIDER_BYTES] =
    [const { AtomicU8::new(0) }; PROVIDER_BYTES];

/// Appends a registered provider to [`FERRET_DEBUG_PROVIDERS`]. Called under
/// the providers' lock, so appends never race; one that does not fit is
/// left out (a debugger then names the slot by number).
pub(crate) fn add_provider(slot: u32, name: &str, guid: ferret_abi::Guid) {
    let meta = ferret_abi::record::ProviderMeta {
        source: 0,
        provider: slot,
        pid: 0,
        guid,
        name: name.to_string(),
    };
    let mut bytes = Vec::new();
    if ferret_abi::record::encode_provider(&meta, &mut bytes).is_err() {
        return;
    }
    let used = FERRET_DEBUG_INFO.providers_len.load(Ordering::Relaxed) as usize;
    let Some(room) = FERRET_DEBUG_PROVIDERS.get(used..used + bytes.len()) else {
        return;
    };
    for (slot, b) in room.iter().zip(&bytes) {
        slot.store(*b, Ordering::Relaxed);
    }
    FERRET_DEBUG_INFO
        .providers_addr
        .store(FERRET_DEBUG_PROVIDERS.as_ptr() as u64, Ordering::Relaxed);
    FERRET_DEBUG_INFO
        .providers_len
        .store((used + bytes.len()) as u32, Ordering::Release);
}

/// Records the socket path, once the options are known.
pub(crate) fn set_socket(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let n = bytes.len().min(SOCKET_BYTES);
    for (slot, b) in FERRET_DEBUG_INFO.socket.iter().zip(&bytes[..n]) {
        slot.store(*b, Ordering::Relaxed);
    }
    FERRET_DEBUG_INFO
        .socket_len
        .store(n as u32, Ordering::Release);
}

/// Records where the region is mapped (`0, 0` once detached).
pub(crate) fn set_region(addr: usize, len: usize) {
    FERRET_DEBUG_INFO
        .region_len
        .store(len as u64, Ordering::Relaxed);
    FERRET_DEBUG_INFO
        .region_addr
        .store(addr as u64, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_debuggers_read_is_fixed() {
        assert_eq!(std::mem::offset_of!(DebugInfo, magic), 0);
        assert_eq!(std::mem::offset_of!(DebugInfo, version), 8);
        assert_eq!(std::mem::offset_of!(DebugInfo, socket_len), 12);
        assert_eq!(std::mem::offset_of!(DebugInfo, region_addr), 16);
        assert_eq!(std::mem::offset_of!(DebugInfo, region_len), 24);
        assert_eq!(std::mem::offset_of!(DebugInfo, providers_addr), 32);
        assert_eq!(std::mem::offset_of!(DebugInfo, providers_len), 40);
        assert_eq!(std::mem::offset_of!(DebugInfo, socket), 48);
        assert_eq!(std::mem::size_of::<DebugInfo>(), 48 + SOCKET_BYTES);
    }
}
