//! Where the control socket lives.

use std::path::PathBuf;

/// The environment variable that names the control socket.
pub const SOCKET_ENV: &str = "FERRET_SOCKET";

/// The control socket's path: `explicit` if given, else `$FERRET_SOCKET`,
/// else `$XDG_RUNTIME_DIR/ferret/control.sock`, else
/// `/run/ferret/control.sock` for root, else `/tmp/ferret-UID/control.sock`.
pub fn socket_path(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(p) = explicit {
        return p;
    }
    if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(dir).join("ferret").join("control.sock");
    }
    let uid = rustix::process::getuid().as_raw();
    if uid == 0 {
        PathBuf::from("/run/ferret/control.sock")
    } else {
        PathBuf::from(format!("/tmp/ferret-{uid}/control.sock"))
    }
}
