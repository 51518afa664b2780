//! Target computers: a controller here, a daemon on another host, and SSH
//! between them, as `docker -H ssh://` does it.
//!
//! The controller runs the system `ssh` (or `$FERRET_SSH_COMMAND`) with
//! `ferret bridge` as the command on the target. The bridge connects to
//! the target's daemon as the remote user and relays the control
//! protocol's packets, framed by [`ferret_transport::stream`], between the
//! SSH channel and the daemon's socket. A byte stream cannot carry
//! descriptors, so log files are opened on the target, by the bridge, with
//! the same rules a local controller follows ([`crate::plan`]): the daemon
//! writes only where the remote user could.

use std::fmt;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferret_abi::proto::{self, Response};
use ferret_transport::stream::{FrameError, read_frame, write_frame};
use ferret_transport::{Conn, TransportError};

use crate::plan::{FileRequest, Opened};

/// The environment variable naming the target, when `--target` is not given.
pub const TARGET_ENV: &str = "FERRET_TARGET";

/// The environment variable holding the command that replaces `ssh`, split
/// on whitespace (as git's `GIT_SSH_COMMAND`).
pub const SSH_COMMAND_ENV: &str = "FERRET_SSH_COMMAND";

/// The environment variable naming the `ferret` program on the target
/// (default: `ferret`, found on the remote user's PATH).
pub const REMOTE_FERRET_ENV: &str = "FERRET_REMOTE_FERRET";

/// A frame carrying one packet of the control protocol, either way.
const PACKET: u8 = 0;
/// A frame asking the bridge to open a log file on the target
/// ([`FileRequest`]); the descriptor goes with the next packet.
const OPEN: u8 = 1;
/// The bridge's answer to [`OPEN`]: `Ok(())` or the reason, in one line.
const OPENED: u8 = 2;
/// A frame asking the bridge for a file on the target (its absolute path,
/// encoded): the bridge answers [`FETCHED`], then [`DATA`] frames, then
/// [`FETCH_END`], holding its output for the whole transfer.
const FETCH: u8 = 3;
/// The bridge's answer to [`FETCH`]: `Ok(())` once the file is open, or
/// the reason.
const FETCHED: u8 = 4;
/// A chunk of a fetched file.
const DATA: u8 = 5;
/// The end of a fetched file: `Ok(total bytes sent)` or why reading stopped.
const FETCH_END: u8 = 6;

/// The most bytes one [`DATA`] frame carries.
const CHUNK: usize = 256 * 1024;

/// A host that runs a Ferret daemon, reached over SSH:
/// `ssh://[user@]host[:port][/path/of/the/daemon/socket]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The remote user, if not ssh's default.
    pub user: Option<String>,
    /// The host name or address (IPv6 in brackets in the URL).
    pub host: String,
    /// The SSH port, if not ssh's default.
    pub port: Option<u16>,
    /// The daemon's socket on the target, if not its default.
    pub socket: Option<String>,
}

impl Target {
    /// Reads a target URL, saying in one line what is wrong with a bad one.
    pub fn parse(text: &str) -> Result<Target, String> {
        let rest = text.strip_prefix("ssh://").ok_or_else(|| {
            format!("target '{text}' is not ssh://[user@]host[:port][/socket]; only SSH targets are supported")
        })?;
        let (authority, socket) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(rest[i..].to_string())),
            None => (rest, None),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
            let (h, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("target '{text}': an IPv6 address needs its closing ']'"))?;
            match after {
                "" => (h.to_string(), None),
                p => (h.to_string(), Some(p.strip_prefix(':').unwrap_or(p))),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        let port = port
            .map(|p| {
                p.parse::<u16>().ok().filter(|&n| n != 0).ok_or_else(|| {
                    format!("target '{text}': port '{p}' is not a number from 1 to 65535")
                })
            })
            .transpose()?;
        let bad = |s: &str| {
            s.is_empty()
                || s.starts_with('-')
                || s.chars().any(|c| c.is_control() || c.is_whitespace())
        };
        if bad(&host) {
            return Err(format!("target '{text}' names no host"));
        }
        if user.as_deref().is_some_and(bad) {
            return Err(format!(
                "target '{text}': the user name is empty or not allowed"
            ));
        }
        if socket
            .as_deref()
            .is_some_and(|s| s.len() < 2 || s.chars().any(char::is_control))
        {
            return Err(format!(
                "target '{text}': the socket path is empty or not allowed"
            ));
        }
        Ok(Target {
            user,
            host,
            port,
            socket,
        })
    }

    /// The `ssh` command line that runs the bridge on the target.
    fn command(&self) -> Command {
        let ssh = std::env::var(SSH_COMMAND_ENV)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "ssh".to_string());
        let mut words = ssh.split_whitespace();
        let mut cmd = Command::new(words.next().unwrap_or("ssh"));
        cmd.args(words);
        // No terminal, and no questions the controller's user cannot see
        // (a host key prompt would hang a script).
        cmd.arg("-T").arg("-o").arg("BatchMode=yes");
        if let Some(p) = self.port {
            cmd.arg("-p").arg(p.to_string());
        }
        if let Some(u) = &self.user {
            cmd.arg("-l").arg(u);
        }
        // "--" ends ssh's options: a host can never be read as one.
        cmd.arg("--").arg(&self.host);
        let ferret = std::env::var(REMOTE_FERRET_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "ferret".to_string());
        // The remote side runs this through the user's shell: quote every word.
        let mut remote = vec![shell_quote(&ferret)];
        if let Some(s) = &self.socket {
            remote.push("--socket".into());
            remote.push(shell_quote(s));
        }
        remote.push("bridge".into());
        cmd.arg(remote.join(" "));
        cmd
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ssh://")?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            write!(f, "{}", self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(s) = &self.socket {
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Opens `what` on the target, for the bridge: as a local controller
/// would, but only at an absolute path, since a relative one would depend
/// on where the bridge happens to run.
fn open_for_bridge(what: &FileRequest) -> Result<Opened, String> {
    let path = what.path();
    if !path.is_absolute() {
        return Err(format!(
            "the log file '{}' on a target must be an absolute path (it is the target's)",
            path.display()
        ));
    }
    what.open().map_err(|e| e.0)
}

/// The controller's end of an SSH link to a target's bridge.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    target: Target,
    child: Arc<Mutex<Child>>,
    input: Arc<Mutex<ChildStdin>>,
    output: Arc<Mutex<ChildStdout>>,
    /// What ssh and the bridge said on standard error, last lines first
    /// cut: the reason when the link ends.
    stderr: Arc<Mutex<String>>,
    /// The thread gathering `stderr`, joined once the link ends so that
    /// the reason is read in full.
    gatherer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    recv_timeout: Arc<Mutex<Option<Duration>>>,
}

/// The most bytes of ssh's standard error kept for the reason a link ended.
const STDERR_KEPT: usize = 4096;

impl Link {
    /// Runs ssh to `target` with the bridge at the other end.
    pub(crate) fn open(target: &Target) -> Result<Link, LinkError> {
        let mut cmd = target.command();
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| LinkError {
            target: target.to_string(),
            why: format!("cannot run ssh: {e}; install OpenSSH's client or set {SSH_COMMAND_ENV}"),
        })?;
        let (Some(input), Some(output), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(LinkError {
                target: target.to_string(),
                why: "ssh started without its pipes".into(),
            });
        };
        let stderr = Arc::new(Mutex::new(String::new()));
        let gathered = Arc::clone(&stderr);
        let gatherer = std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut kept = gathered.lock().unwrap_or_else(|p| p.into_inner());
                kept.push_str(&String::from_utf8_lossy(&buf[..n]));
                if kept.len() > STDERR_KEPT {
                    let cut = kept.len() - STDERR_KEPT;
                    let cut = (cut..kept.len())
                        .find(|&i| kept.is_char_boundary(i))
                        .unwrap_or(0);
                    kept.drain(..cut);
                }
            }
        });
        Ok(Link {
            target: target.clone(),
            child: Arc::new(Mutex::new(child)),
            input: Arc::new(Mutex::new(input)),
            output: Arc::new(Mutex::new(output)),
            stderr,
            gatherer: Arc::new(Mutex::new(Some(gatherer))),
            recv_timeout: Arc::new(Mutex::new(None)),
        })
    }

    /// Why the link ended: the last line ssh or the bridge wrote, or that
    /// the connection closed.
    pub(crate) fn ended(&self) -> LinkError {
        // ssh writes its reason just before it exits; wait for it to exit
        // (it has, or will at once, since its output ended) so the line is
        // all there.
        if let Ok(mut c) = self.child.lock() {
            let _ = c.wait();
        }
        let gatherer = self.gatherer.lock().ok().and_then(|mut g| g.take());
        if let Some(g) = gatherer {
            let _ = g.join();
        }
        let text = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        let line = text
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| l.strip_prefix("ferret: ").unwrap_or(l).to_string());
        LinkError {
            target: self.target.to_string(),
            why: line.unwrap_or_else(|| "the connection closed".to_string()),
        }
    }

    fn write(&self, kind: u8, payload: &[u8]) -> Result<(), LinkError> {
        let mut w = self.input.lock().unwrap_or_else(|p| p.into_inner());
        write_frame(&mut *w, kind, payload).map_err(|_| self.ended())
    }

    fn read(&self) -> Result<(u8, Vec<u8>), RecvError> {
        let mut r = self.output.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = *self.recv_timeout.lock().unwrap_or_else(|p| p.into_inner()) {
            if !readable(r.as_fd(), t) {
                return Err(RecvError::TimedOut);
            }
        }
        match read_frame(&mut *r) {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) | Err(FrameError::Io(_)) | Err(FrameError::Cut) => {
                drop(r);
                Err(RecvError::Link(self.ended()))
            }
            Err(e @ FrameError::Length(_)) => Err(RecvError::Link(LinkError {
                target: self.target.to_string(),
                why: format!("the bridge sent a bad frame ({e})"),
            })),
        }
    }

    /// Sends one encoded packet.
    pub(crate) fn send_packet(&self, bytes: &[u8]) -> Result<(), LinkError> {
        self.write(PACKET, bytes)
    }

    /// Receives one packet's bytes.
    pub(crate) fn recv_packet(&self) -> Result<Vec<u8>, RecvError> {
        loop {
            match self.read()? {
                (PACKET, bytes) => return Ok(bytes),
                // Nothing else is expected here; an OPENED without an OPEN
                // is skipped rather than mistaken for a reply.
                _ => continue,
            }
        }
    }

    /// Asks the bridge to open `what` on the target; its descriptor goes
    /// with the next packet sent.
    pub(crate) fn open_on_target(&self, what: &FileRequest) -> Result<(), OpenError> {
        let bytes = proto::encode(what).map_err(|e| {
            OpenError::Link(LinkError {
                target: self.target.to_string(),
                why: e.to_string(),
            })
        })?;
        self.write(OPEN, &bytes).map_err(OpenError::Link)?;
        loop {
            match self.read() {
                Ok((OPENED, bytes)) => {
                    let answer: Result<(), String> =
                        proto::decode_untrusted(&bytes).map_err(|e| {
                            OpenError::Link(LinkError {
                                target: self.target.to_string(),
                                why: format!("the bridge's answer did not decode ({e})"),
                            })
                        })?;
                    return answer.map_err(OpenError::Refused);
                }
                Ok(_) => continue,
                Err(RecvError::Link(e)) => return Err(OpenError::Link(e)),
                Err(RecvError::TimedOut) => continue,
            }
        }
    }

    /// Copies the target's file at `path` into `out`; returns its size.
    pub(crate) fn fetch(&self, path: &str, out: &mut dyn Write) -> Result<u64, LinkError> {
        let fail = |why: String| LinkError {
            target: self.target.to_string(),
            why,
        };
        let bytes = proto::encode(&path.to_string()).map_err(|e| fail(e.to_string()))?;
        self.write(FETCH, &bytes)?;
        let mut got = 0u64;
        let mut opened = false;
        loop {
            let (kind, bytes) = match self.read() {
                Ok(frame) => frame,
                Err(RecvError::Link(e)) => return Err(e),
                Err(RecvError::TimedOut) => continue,
            };
            match kind {
                FETCHED if !opened => {
                    let answer: Result<(), String> = proto::decode_untrusted(&bytes)
                        .map_err(|e| fail(format!("the bridge's answer did not decode ({e})")))?;
                    answer.map_err(fail)?;
                    opened = true;
                }
                DATA if opened => {
                    out.write_all(&bytes)
                        .map_err(|e| fail(format!("cannot write what came of {path}: {e}")))?;
                    got += bytes.len() as u64;
                }
                FETCH_END if opened => {
                    let end: Result<u64, String> = proto::decode_untrusted(&bytes)
                        .map_err(|e| fail(format!("the bridge's answer did not decode ({e})")))?;
                    let sent = end.map_err(fail)?;
                    if sent != got {
                        return Err(fail(format!(
                            "the bridge sent {got} bytes of {path} but counted {sent}"
                        )));
                    }
                    return Ok(got);
                }
                _ => {
                    return Err(fail(format!(
                        "the bridge sent a frame of kind {kind} in the middle of a file"
                    )));
                }
            }
        }
    }

    pub(crate) fn set_recv_timeout(&self, t: Option<Duration>) {
        *self.recv_timeout.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    /// Ends the link: ssh is killed, so a reader blocked on it wakes.
    pub(crate) fn shutdown(&self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The last handle ends ssh and reaps it; the bridge on the target
        // then sees its input close, and the daemon the controller's
        // connection close, as for a local controller.
        if Arc::strong_count(&self.child) == 1 {
            if let Ok(mut c) = self.child.lock() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn readable(fd: std::os::fd::BorrowedFd<'_>, t: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let ts = rustix::event::Timespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: t.subsec_nanos() as i64,
    };
    matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
}

/// A target could not be reached, or its link ended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("target {target}: {why}")]
pub struct LinkError {
    /// The target, as its URL.
    pub target: String,
    /// Why, in one line.
    pub why: String,
}

pub(crate) enum RecvError {
    Link(LinkError),
    TimedOut,
}

pub(crate) enum OpenError {
    Link(LinkError),
    Refused(String),
}

/// Serves one bridged controller until either side ends: frames on
/// `input` and `output` (an SSH channel's standard input and output),
/// packets on `conn` (the daemon's socket). Log files the controller asks
/// for are opened here, as this process's user, and undone if the daemon
/// refuses the request they went with.
pub fn bridge(
    mut conn: Conn,
    mut input: impl Read,
    output: impl Write + Send + 'static,
) -> Result<(), String> {
    let to_daemon = conn
        .try_clone()
        .map_err(|e| format!("cannot share the daemon connection: {e}"))?;
    let output = Arc::new(Mutex::new(output));
    // A file opened for the request now on its way, to remove if the daemon
    // refuses that request.
    let armed: Arc<Mutex<Option<Opened>>> = Arc::new(Mutex::new(None));
    let replies = {
        let output = Arc::clone(&output);
        let armed = Arc::clone(&armed);
        std::thread::spawn(move || -> Result<(), String> {
            loop {
                match conn.recv_bytes() {
                    // The daemon passes controllers no descriptors; any
                    // that came are closed here.
                    Ok(_fds) => {}
                    Err(TransportError::Closed) => return Ok(()),
                    Err(e) => return Err(format!("the daemon connection failed: {e}")),
                }
                let packet = conn.last_packet();
                if let Some(opened) = armed.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    if matches!(
                        proto::decode_untrusted::<Response>(packet),
                        Ok(Response::Error(_))
                    ) {
                        opened.undo();
                    }
                }
                let mut w = output.lock().unwrap_or_else(|p| p.into_inner());
                if write_frame(&mut *w, PACKET, packet).is_err() {
                    // The controller went away: nothing more to relay.
                    return Ok(());
                }
            }
        })
    };
    let mut pending: Option<Opened> = None;
    let result = loop {
        let frame = match read_frame(&mut input) {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(format!("the controller's stream failed: {e}")),
        };
        match frame {
            (PACKET, bytes) => {
                let opened = pending.take();
                let sent = match opened.as_ref().and_then(|o| o.fd()) {
                    Some(fd) => to_daemon.send_bytes(&bytes, &[fd]),
                    None => to_daemon.send_bytes(&bytes, &[]),
                };
                if let Some(o) = opened {
                    *armed.lock().unwrap_or_else(|p| p.into_inner()) = Some(o);
                }
                if let Err(e) = sent {
                    break Err(format!("cannot send to the daemon: {e}"));
                }
            }
            (OPEN, bytes) => {
                if let Some(stale) = pending.take() {
                    stale.undo();
                }
                let answer: Result<(), String> =
                    match proto::decode_untrusted::<FileRequest>(&bytes) {
                        Ok(what) => open_for_bridge(&what).map(|o| pending = Some(o)),
                        Err(e) => Err(format!(
                            "the controller's open request did not decode ({e})"
                        )),
                    };
                let bytes = proto::encode(&answer).map_err(|e| e.to_string())?;
                let mut w = output.lock().unwrap_or_else(|p| p.into_inner());
                if write_frame(&mut *w, OPENED, &bytes).is_err() {
                    break Ok(());
                }
            }
            (FETCH, bytes) => {
                let mut w = output.lock().unwrap_or_else(|p| p.into_inner());
                if send_file(&bytes, &mut *w).is_err() {
                    break Ok(());
                }
            }
            (kind, _) => {
                break Err(format!(
                    "the controller sent a frame of unknown kind {kind}"
                ));
            }
        }
    };
    if let Some(stale) = pending.take() {
        stale.undo();
    }
    // The controller is gone (or broke the stream): the daemon sees the
    // connection close, as it would for a local controller.
    let _ = to_daemon.shutdown();
    let _ = replies.join();
    result
}

/// Answers a [`FETCH`]: the file at the absolute path `request` names,
/// read as this process's user and never through a link at the end, in
/// [`DATA`] frames. Fails only when the controller's stream does.
fn send_file(request: &[u8], w: &mut impl Write) -> std::io::Result<()> {
    let opened = proto::decode_untrusted::<String>(request)
        .map_err(|e| format!("the controller's fetch request did not decode ({e})"))
        .and_then(|path| open_to_send(&path).map(|f| (path, f)));
    let (path, mut file) = match opened {
        Ok(ok) => ok,
        Err(why) => {
            let answer: Result<(), String> = Err(why);
            return write_frame(w, FETCHED, &proto::encode(&answer).unwrap_or_default());
        }
    };
    let ok: Result<(), String> = Ok(());
    write_frame(w, FETCHED, &proto::encode(&ok).unwrap_or_default())?;
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    let end: Result<u64, String> = loop {
        match file.read(&mut buf) {
            Ok(0) => break Ok(sent),
            Ok(n) => {
                write_frame(w, DATA, &buf[..n])?;
                sent += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(format!("reading {path} failed after {sent} bytes: {e}")),
        }
    };
    write_frame(w, FETCH_END, &proto::encode(&end).unwrap_or_default())
}

fn open_to_send(path: &str) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    if !std::path::Path::new(path).is_absolute() {
        return Err(format!(
            "'{path}' on a target must be an absolute path (it is the target's)"
        ));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(file),
        Ok(_) => Err(format!("{path} is not a regular file")),
        Err(e) => Err(format!("cannot read {path}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_urls_read_as_ssh_does() {
        let t = Target::parse("ssh://alice@web-1:2222/run/ferret/control.sock").unwrap();
        assert_eq!(
            t,
            Target {
                user: Some("alice".into()),
                host: "web-1".into(),
                port: Some(2222),
                socket: Some("/run/ferret/control.sock".into()),
            }
        );
        assert_eq!(
            t.to_string(),
            "ssh://alice@web-1:2222/run/ferret/control.sock"
        );
        let t = Target::parse("ssh://[::1]:22").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", Some(22)));
        assert_eq!(t.to_string(), "ssh://[::1]:22");
        assert_eq!(Target::parse("ssh://h").unwrap().to_string(), "ssh://h");
    }

    #[test]
    fn bad_target_urls_say_what_is_wrong() {
        for (url, says) in [
            ("web-1", "only SSH targets"),
            ("ssh://", "names no host"),
            ("ssh://-oProxyCommand=x", "names no host"),
            ("ssh://h:0", "port '0'"),
            ("ssh://h:99999", "port '99999'"),
            ("ssh://@h", "user name"),
            ("ssh://[::1", "closing ']'"),
            ("ssh://h/", "socket path"),
        ] {
            let e = Target::parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn the_remote_command_is_quoted_for_the_remote_shell() {
        assert_eq!(shell_quote("/usr/bin/ferret"), "/usr/bin/ferret");
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(rm -rf ~)"), "'$(rm -rf ~)'");
    }
}
