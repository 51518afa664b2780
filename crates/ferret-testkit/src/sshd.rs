//! A real OpenSSH server for the tests of target computers: `sshd -D` on
//! 127.0.0.1 with a host key, a user key and a configuration of its own in
//! a temporary directory, accepting only that key for the user running the
//! test. The client side is the system `ssh`, told to use that key and to
//! trust that host key, as a user's `~/.ssh/config` would.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{terminate, wait_until};

/// Where Debian installs the server (`.ci/run` installs `openssh-server`).
const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd and the keys that reach it.
#[derive(Debug)]
pub struct Sshd {
    child: Child,
    dir: tempfile::TempDir,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// The user the tests log in as: whoever runs them.
    pub user: String,
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ferret-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen (install openssh-client)");
    assert!(status.success(), "ssh-keygen failed");
}

impl Sshd {
    /// Starts sshd and waits until it accepts connections. Without
    /// OpenSSH installed the test is skipped (`None`, said on stdout), or
    /// fails when FERRET_REQUIRE_TOOLS=1, as CI sets it.
    pub fn start() -> Option<Sshd> {
        let have = |p: &str| {
            Command::new(p)
                .arg("-V")
                .stdin(Stdio::null())
                .output()
                .is_ok()
        };
        if !Path::new(SSHD).exists() || !have("ssh") || !have("ssh-keygen") {
            assert!(
                std::env::var("FERRET_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "OpenSSH ({SSHD}, ssh, ssh-keygen) is not installed, and FERRET_REQUIRE_TOOLS=1"
            );
            println!("skipped: OpenSSH's server and client are not installed");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("ferret-sshd-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("user_key"));
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).expect("authorized_keys");
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
        let user = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .expect("id -un")
                .stdout,
        )
        .expect("user name")
        .trim()
        .to_string();
        // The privilege-separation directory sshd insists on.
        let _ = std::fs::create_dir_all("/run/sshd");
        // A free port: bound once to learn it, then handed to sshd. Another
        // process taking it in between makes sshd fail, and we try again.
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            std::fs::write(
                d.join("known_hosts"),
                format!("[127.0.0.1]:{port} {host_pub}"),
            )
            .expect("known_hosts");
            let config = format!(
                "ListenAddress 127.0.0.1:{port}\n\
                 HostKey {d}/host_key\n\
                 AuthorizedKeysFile {d}/authorized_keys\n\
                 PidFile {d}/sshd.pid\n\
                 AllowUsers {user}\n\
                 PermitRootLogin prohibit-password\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 LogLevel ERROR\n",
                d = d.display()
            );
            std::fs::write(d.join("sshd_config"), config).expect("sshd_config");
            let log = std::fs::File::create(d.join("sshd.log")).expect("sshd log");
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(d.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("run sshd");
            let mut up = false;
            wait_until(Duration::from_secs(10), "sshd to listen", || {
                up = TcpStream::connect(("127.0.0.1", port)).is_ok();
                up || child.try_wait().ok().flatten().is_some()
            });
            if up {
                return Some(Sshd {
                    child,
                    dir,
                    port,
                    user,
                });
            }
            let _ = child.wait();
        }
        panic!(
            "sshd did not start; its log:\n{}",
            std::fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default()
        );
    }

    /// The `ssh` command line that reaches this server with the test's
    /// key, for `FERRET_SSH_COMMAND`.
    pub fn ssh_command(&self) -> String {
        let d = self.dir.path().display();
        format!(
            "ssh -F /dev/null -i {d}/user_key -o IdentitiesOnly=yes -o UserKnownHostsFile={d}/known_hosts -o StrictHostKeyChecking=yes -o LogLevel=ERROR"
        )
    }

    /// The target URL of a daemon on `socket` behind this server.
    pub fn target(&self, socket: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            socket.display()
        )
    }

    /// The server's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The directory of its keys and configuration.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}
