//! A daemon inside the test's own process, for the tests of libraries that
//! instrument that process (the `tracing` and `log` bridges): they can run
//! where those libraries live, with no `ferret` binary to build or find.
//! The daemon is the real one (`ferret_daemon::start`: its socket, drain,
//! writer threads and log files), without a keeper process; the test
//! controls it through `ferret-client`, as the CLI does.

use std::path::{Path, PathBuf};

use ferret_abi::proto::{SessionInfo, SessionRef};
use ferret_client::Client;
use ferret_client::plan::{StartPlan, parse_provider};

/// A temporary directory with a daemon serving a socket inside it, from
/// threads of this process; shut down cleanly (every session stopped) when
/// dropped.
#[derive(Debug)]
pub struct InProcess {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    daemon: Option<ferret_daemon::Daemon>,
}

impl InProcess {
    /// Starts the daemon and returns once it listens.
    // Not `Default`: making one starts a daemon.
    #[allow(clippy::new_without_default)]
    pub fn new() -> InProcess {
        let dir = tempfile::Builder::new()
            .prefix("ferret-inproc-")
            .tempdir()
            .expect("tempdir");
        let socket = dir.path().join("control.sock");
        let daemon = ferret_daemon::start(ferret_daemon::Config::new(socket.clone()))
            .expect("start the daemon in this process");
        InProcess {
            dir,
            socket,
            daemon: Some(daemon),
        }
    }

    /// A path inside the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A control client connected to the daemon.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connect to the daemon")
    }

    /// Starts a sequential session `name` on `provider` (a spec as
    /// `ferret start -p` takes it, `NAME[:LEVEL[:ANY[:ALL]]]`) writing
    /// `log`, as `ferret start NAME -p PROVIDER -f LOG` does.
    pub fn start(&self, name: &str, provider: &str, log: &Path) -> SessionInfo {
        let mut plan = StartPlan::new(name, "ferret-testkit");
        plan.providers
            .push(parse_provider(provider).expect("a provider spec"));
        plan.file = Some(log.to_path_buf());
        let started = self
            .client()
            .start_plan(&plan)
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        started.session
    }

    /// Stops the session `name` and returns once it is STOPPED.
    pub fn stop(&self, name: &str) -> SessionInfo {
        self.client()
            .stop(&SessionRef::Name(name.into()), true)
            .unwrap_or_else(|e| panic!("stop {name}: {e}"))
    }

    /// The session called `name`, as the daemon reports it now.
    pub fn session(&self, name: &str) -> SessionInfo {
        self.client()
            .query(&SessionRef::Name(name.into()))
            .unwrap_or_else(|e| panic!("query {name}: {e}"))
    }

    /// Waits until the session called `name` has counted `events` events.
    pub fn wait_events(&self, name: &str, events: u64) {
        crate::wait_session_events(&self.socket, name, events);
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.shutdown();
        }
    }
}
