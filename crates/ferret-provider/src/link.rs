//! The process's link to the daemon: one background thread that connects,
//! receives the shared-memory region, registers providers, and on
//! disconnection disables everything and tries again.
//!
//! Nothing here runs on the event-writing path. Writers see a new region
//! through [`GENERATION`] and the enable table, which sits at a fixed address
//! for the life of the process: attaching maps the region's table over it,
//! detaching maps zero pages over it, so `enabled()` never follows a pointer
//! that can change.
//!
//! A child made by `fork()` is a new provider process: `pthread_atfork`
//! handlers take this module's locks around the fork (so none is held by a
//! thread that does not exist in the child), and in the child disable every
//! provider, forget the parent's region and connection without touching
//! them, and start a link thread that attaches the child as its own process.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ferret_abi::Guid;
use ferret_abi::proto::{Hello, PROTO_MAGIC, Request, Response, Role};
use ferret_abi::shm::{ABI_MAJOR, ABI_MINOR, ENABLE_TABLE_BYTES, EnableSlot};
use ferret_transport::Conn;
use rustix::mm::{MapFlags, ProtFlags};

use crate::region::Region;

/// Bumped on every attach and detach; each thread compares it with the
/// generation of the ring it holds.
pub(crate) static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Bumped in the child of every `fork()`. A region mapped under another
/// value belongs to an ancestor process: the child never writes to it,
/// hands rings back to it or unmaps it.
pub(crate) static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);

/// How the provider library finds and waits for the daemon.
///
/// ```
/// use std::time::Duration;
/// use ferret_provider::Options;
///
/// let options = Options {
///     register_timeout: Duration::from_millis(500),
///     ..Options::default()
/// };
/// assert_eq!(options.reconnect_interval, Options::default().reconnect_interval);
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    /// The control socket; by default `FERRET_SOCKET` or the per-user default.
    pub socket: PathBuf,
    /// How long `Provider::register` waits for the daemon's answer, so that a
    /// program started after its session writes its first event into it.
    /// Default 3 s, or `FERRET_REGISTER_TIMEOUT_MS`.
    pub register_timeout: Duration,
    /// How often to look for a daemon while none answers. Default 500 ms,
    /// or `FERRET_RECONNECT_MS`.
    pub reconnect_interval: Duration,
}

impl Default for Options {
    fn default() -> Options {
        let ms = |var: &str, default: u64| {
            std::env::var(var)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        Options {
            socket: ferret_abi::paths::socket_path(None),
            register_timeout: Duration::from_millis(ms("FERRET_REGISTER_TIMEOUT_MS", 3000)),
            reconnect_interval: Duration::from_millis(ms("FERRET_RECONNECT_MS", 500).max(10)),
        }
    }
}

/// A registered provider; lives for the rest of the process.
#[derive(Debug)]
pub(crate) struct ProviderInner {
    pub(crate) name: String,
    pub(crate) guid: Guid,
    /// Its enable-table slot, or `u32::MAX` for a provider that could not get one.
    pub(crate) slot: u32,
    pub(crate) words: &'static EnableSlot,
}

/// A slot that is never enabled, for providers that could not register.
pub(crate) static DISABLED_SLOT: EnableSlot = EnableSlot {
    levels: [const { AtomicU64::new(0) }; 5],
    no_loss_wait_us: AtomicU64::new(0),
    reserved: [const { AtomicU64::new(0) }; 2],
};

#[derive(Debug, Default)]
struct LinkState {
    /// True once the first connection attempt has finished, either way.
    attempted: bool,
    /// A handle for sending while the link thread receives.
    sender: Option<Conn>,
    /// Slots whose registration awaits an answer, in the order sent.
    pending: VecDeque<u32>,
    /// Registrations not sent yet because the socket had no room, in order.
    /// Sends never wait under this state's lock: a thread blocked in a send
    /// while holding it would delay every `fork()` of the host until the
    /// send timed out.
    unsent: VecDeque<&'static ProviderInner>,
    /// Per slot, the generation in which the daemon last answered its registration.
    answered: Vec<u64>,
    /// The generation of the current connection (0 when none).
    generation: u64,
    /// Why the last connection attempt failed, if it did.
    last_error: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Global {
    table: usize,
    pub(crate) options: Options,
    providers: Mutex<Vec<&'static ProviderInner>>,
    region: Mutex<Option<Arc<Region>>>,
    link: Mutex<LinkState>,
    changed: Condvar,
    /// The descriptor of the link thread's connection while it has one (-1
    /// otherwise), so that a forked child can close its copy: the daemon
    /// sees a process end only once every copy of its connection is closed.
    link_fd: AtomicI32,
}

static GLOBAL: OnceLock<Option<&'static Global>> = OnceLock::new();
static OPTIONS: Mutex<Option<Options>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn into a panic in the host: keep going
    // with the data as the panicking thread left it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets the options used when the first provider registers. Returns false if
/// providers were already registered (the options then in force stay).
///
/// ```
/// use ferret_provider::{Options, configure};
///
/// // A program that talks to a daemon on a socket of its own.
/// let configured = configure(Options {
///     socket: std::env::temp_dir().join("my-app-ferret.sock"),
///     ..Options::default()
/// });
/// assert!(configured, "no provider was used before");
/// ```
pub fn configure(options: Options) -> bool {
    if GLOBAL.get().is_some() {
        return false;
    }
    // The options lock is one the fork handlers take, so they must be in
    // place before it is first held: a child forked while it was held by a
    // thread it does not have would wait for it for ever.
    install_fork_handlers();
    *lock(&OPTIONS) = Some(options);
    true
}

/// The process state, created on first use. `None` if the enable table could
/// not be reserved, in which case every provider stays disabled.
pub(crate) fn global() -> Option<&'static Global> {
    if let Some(g) = GLOBAL.get() {
        return *g;
    }
    setup_global()
}

/// The fork handlers' state: not installed, being installed, installed.
static FORK_HANDLERS: AtomicU8 = AtomicU8::new(0);
/// Held for the whole setup of the process state, and by `before_fork`: a
/// fork then waits for a setup in progress, so that no child ever finds
/// `GLOBAL` half made (its setup would never finish there, and every
/// provider of the child would wait for it for ever).
static SETUP: Mutex<()> = Mutex::new(());

/// Installs the fork handlers, before the first registration takes any
/// lock, so that every lock of the setup is one `before_fork` takes.
fn install_fork_handlers() {
    match FORK_HANDLERS.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: the handlers are `extern "C"` functions that never
            // unwind (every fallible step is checked) and only use this
            // module's state.
            unsafe {
                libc::pthread_atfork(
                    Some(before_fork),
                    Some(after_fork_in_parent),
                    Some(after_fork_in_child),
                );
            }
            FORK_HANDLERS.store(2, Ordering::Release);
        }
        Err(2) => {}
        Err(_) => {
            // Another thread is installing them, which takes microseconds.
            // The wait is bounded: in a child forked at that very moment
            // the installing thread does not exist, and the child goes on
            // rather than wait for ever.
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(10);
            while FORK_HANDLERS.load(Ordering::Acquire) != 2 && std::time::Instant::now() < deadline
            {
                std::thread::yield_now();
            }
        }
    }
}

#[cold]
fn setup_global() -> Option<&'static Global> {
    install_fork_handlers();
    let _setup = lock(&SETUP);
    *GLOBAL.get_or_init(|| {
        let options = lock(&OPTIONS).take().unwrap_or_default();
        crate::debug::set_socket(&options.socket);
        // SAFETY: a fresh anonymous read-only reservation that this process
        // keeps for its whole life; later MAP_FIXED calls replace its pages
        // in place and never unmap it.
        let table = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                ENABLE_TABLE_BYTES,
                ProtFlags::READ,
                MapFlags::PRIVATE,
            )
        }
        .ok()?;
        let g: &'static Global = Box::leak(Box::new(Global {
            table: table as usize,
            options,
            providers: Mutex::new(Vec::new()),
            region: Mutex::new(None),
            link: Mutex::new(LinkState::default()),
            changed: Condvar::new(),
            link_fd: AtomicI32::new(-1),
        }));
        spawn_link(g, true);
        Some(g)
    })
}

/// Starts the link thread; if that fails, the process stays detached and
/// `register` does not wait for it.
fn spawn_link(g: &'static Global, wait_for_start: bool) {
    // The standard library holds a lock of its own while a new thread
    // starts (and ends), which no fork handler can take: a child forked
    // then would find it held in its own first thread spawn, and its link
    // thread would never run. So in the first setup the spawn returns only
    // once the thread runs, while the setup lock still keeps forks out. A
    // forked child does not wait: another thread of its parent may have
    // been starting or ending at the fork, and its registrations then wait
    // only for their timeout, where a wait here would hang the child.
    let (started, has_started) = std::sync::mpsc::sync_channel::<()>(1);
    let spawned = std::thread::Builder::new()
        .name("ferret-provider".into())
        .spawn(move || {
            let _ = started.send(());
            run(g)
        });
    match spawned {
        Ok(_) if wait_for_start => {
            let _ = has_started.recv_timeout(std::time::Duration::from_secs(1));
        }
        Ok(_) => {}
        Err(_) => lock(&g.link).attempted = true,
    }
}

/// The locks `before_fork` took, released after the fork on each side.
struct ForkGuards {
    _setup: MutexGuard<'static, ()>,
    _options: MutexGuard<'static, Option<Options>>,
    process: Option<ProcessGuards>,
}

/// The locks of the process state, once it exists.
struct ProcessGuards {
    link: MutexGuard<'static, LinkState>,
    _providers: MutexGuard<'static, Vec<&'static ProviderInner>>,
    region: MutexGuard<'static, Option<Arc<Region>>>,
    _interner: Option<crate::dynamic::InternerForkGuard>,
    _callbacks: MutexGuard<'static, Vec<Arc<crate::notify::Callback>>>,
}

thread_local! {
    static FORK_GUARDS: RefCell<Option<ForkGuards>> = const { RefCell::new(None) };
}

/// Runs in the forking thread before `fork()`: takes every lock of this
/// module (in the order the rest of the module nests them: link, providers,
/// region), then the interning table's and the enable-change callbacks'
/// (which are never held together with another), so that no other thread
/// holds one at the moment of the fork. In the child those threads do not
/// exist and would never release them.
extern "C" fn before_fork() {
    // The setup's locks first, in the order the setup nests them: a setup
    // in progress finishes before the fork.
    let setup = lock(&SETUP);
    let options = lock(&OPTIONS);
    let process = match GLOBAL.get() {
        Some(Some(g)) => Some(ProcessGuards {
            link: lock(&g.link),
            _providers: lock(&g.providers),
            region: lock(&g.region),
            _interner: crate::dynamic::lock_for_fork(),
            _callbacks: crate::notify::lock_for_fork(),
        }),
        _ => None,
    };
    let guards = ForkGuards {
        _setup: setup,
        _options: options,
        process,
    };
    let _ = FORK_GUARDS.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = Some(guards);
        }
    });
}

/// Runs in the parent after `fork()`: releases the locks.
extern "C" fn after_fork_in_parent() {
    let _ = FORK_GUARDS.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            slot.take();
        }
    });
}

/// Runs in the child after `fork()`, before `fork()` returns there: turns
/// the child into a new, detached provider process and starts its link
/// thread, which attaches it to the daemon as a process of its own.
extern "C" fn after_fork_in_child() {
    let Some(Some(g)) = GLOBAL.get() else {
        // No process state yet: release the setup's locks, and the child's
        // first registration sets it up as any process's does.
        let _ = FORK_GUARDS.try_with(|slot| slot.try_borrow_mut().ok().and_then(|mut s| s.take()));
        return;
    };
    // From here on every region mapped so far belongs to the parent: the
    // child never writes into it, never hands its rings back and never
    // unmaps it (its rings are not even mapped in the child, see
    // `Region::map`).
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
    // The table still shows the parent's enable words, which would let the
    // child write into the parent's rings; zero pages disable everything
    // until the child's own region arrives.
    map_zero_table(g);
    let Some((setup_guards, mut guards)) = FORK_GUARDS
        .try_with(|slot| slot.try_borrow_mut().ok().and_then(|mut s| s.take()))
        .ok()
        .flatten()
        .and_then(|mut all| all.process.take().map(|p| (all, p)))
    else {
        // `before_fork` could not take the locks (a fork from a thread that
        // is exiting): nothing can safely be reset, so stay detached.
        return;
    };
    *guards.region = None;
    let link = &mut *guards.link;
    // The parent's connection: the child closes its copies, so that the
    // daemon sees the parent's connection close when the parent ends.
    link.sender = None;
    let fd = g.link_fd.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: `fd` is the child's copy of the link thread's socket; that
        // thread does not exist in the child, so nothing else will use or
        // close this descriptor.
        unsafe { drop(std::os::fd::OwnedFd::from_raw_fd(fd)) };
    }
    link.pending.clear();
    link.unsent.clear();
    link.generation = 0;
    link.attempted = false;
    link.last_error = None;
    // Threads (here only the forking one) drop their parent's ring on their
    // next write and look for the child's region.
    GENERATION.fetch_add(1, Ordering::Release);
    drop(guards);
    drop(setup_guards);
    spawn_link(g, false);
    // The parent's enable-change watcher did not survive the fork either.
    crate::notify::after_fork_in_child();
}

/// Maps zero pages over the enable table: every provider reads as disabled.
fn map_zero_table(g: &Global) {
    // SAFETY: replaces the fixed table range with zero pages; the range is
    // the process-lifetime reservation made in `global`, so nothing else
    // lives there. Concurrent readers see the old page or zeros.
    let _ = unsafe {
        rustix::mm::mmap_anonymous(
            g.table as *mut _,
            ENABLE_TABLE_BYTES,
            ProtFlags::READ,
            MapFlags::PRIVATE | MapFlags::FIXED,
        )
    };
}

impl Global {
    fn table_slot(&self, slot: u32) -> &'static EnableSlot {
        // SAFETY: the table reservation is ENABLE_TABLE_BYTES long, lives for
        // the process, and slot < ENABLE_SLOTS; its pages always hold either
        // zeros or the daemon's table, and EnableSlot is atomics only.
        unsafe {
            &*((self.table + slot as usize * ferret_abi::shm::SLOT_BYTES) as *const EnableSlot)
        }
    }

    /// The region writers should use now.
    pub(crate) fn current_region(&self) -> Option<Arc<Region>> {
        lock(&self.region).clone()
    }

    /// Finds or creates the provider called `name` and, if a daemon answers,
    /// registers it there, waiting at most the register timeout.
    pub(crate) fn register(&'static self, name: &str) -> &'static ProviderInner {
        let inner = {
            let mut providers = lock(&self.providers);
            if let Some(p) = providers.iter().find(|p| p.name == name) {
                return p;
            }
            let valid = ferret_abi::proto::validate_provider_name(name).is_ok();
            let slot = providers.len();
            let (slot, words) = if valid && slot < ferret_abi::shm::ENABLE_SLOTS {
                (slot as u32, self.table_slot(slot as u32))
            } else {
                (u32::MAX, &DISABLED_SLOT)
            };
            let inner: &'static ProviderInner = Box::leak(Box::new(ProviderInner {
                name: name.to_string(),
                guid: Guid::from_name(name),
                slot,
                words,
            }));
            providers.push(inner);
            if slot != u32::MAX {
                crate::debug::add_provider(slot, name, inner.guid);
            }
            inner
        };
        if inner.slot == u32::MAX {
            return inner;
        }
        let deadline = Instant::now() + self.options.register_timeout;
        let mut link = lock(&self.link);
        while !link.attempted {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return inner;
            }
            link = self
                .changed
                .wait_timeout(link, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let generation = link.generation;
        if generation == 0 || !send_registration(&mut link, inner) {
            return inner;
        }
        while link.generation == generation
            && link.answered.get(inner.slot as usize).copied() != Some(generation)
        {
            let mut left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if !link.unsent.is_empty() {
                flush_registrations(&mut link);
                left = left.min(UNSENT_RETRY);
            }
            link = self
                .changed
                .wait_timeout(link, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        inner
    }

    /// Every provider registered in this process.
    pub(crate) fn providers(&self) -> Vec<&'static ProviderInner> {
        lock(&self.providers).clone()
    }
}

/// Queues one registration on the current connection and sends what the
/// socket has room for. False if there is no connection or it failed.
fn send_registration(link: &mut LinkState, p: &'static ProviderInner) -> bool {
    if link.sender.is_none() {
        return false;
    }
    link.unsent.push_back(p);
    flush_registrations(link)
}

/// Sends queued registrations, in order, while the socket has room, without
/// ever waiting for it. False if the connection failed.
fn flush_registrations(link: &mut LinkState) -> bool {
    let Some(sender) = &link.sender else {
        return false;
    };
    while let Some(p) = link.unsent.front() {
        let req = Request::RegisterProvider {
            slot: p.slot,
            name: p.name.clone(),
            guid: p.guid,
        };
        match sender.try_send(&req) {
            Ok(true) => {
                link.pending.push_back(p.slot);
                link.unsent.pop_front();
            }
            Ok(false) => return true,
            Err(_) => return false,
        }
    }
    true
}

/// How often a registration waiting for room on the socket tries again.
const UNSENT_RETRY: Duration = Duration::from_millis(5);

/// The link thread: connect, serve, detach, wait, forever.
fn run(g: &'static Global) {
    loop {
        match attach(g) {
            Ok(mut conn) => {
                serve(g, &mut conn);
                detach(g);
            }
            Err(e) => {
                let mut link = lock(&g.link);
                link.attempted = true;
                link.last_error = Some(e);
                g.changed.notify_all();
            }
        }
        std::thread::sleep(g.options.reconnect_interval);
    }
}

/// Connects, says hello, maps the region and registers every provider.
fn attach(g: &'static Global) -> Result<Conn, String> {
    let socket = &g.options.socket;
    // Only a daemon of this user or root is trusted with the process's
    // events; anyone else listening there is refused before hello.
    let mut conn = Conn::connect_to_daemon(socket).map_err(|e| match e {
        ferret_transport::ConnectError::Io(e) => {
            format!("no daemon at {}: {e}", socket.display())
        }
        ferret_transport::ConnectError::Untrusted(why) => why,
    })?;
    // Known to a forked child from now on; forgotten before the connection
    // closes (the guard drops before `conn` on every early return), so the
    // child never closes a descriptor number that was reused meanwhile.
    g.link_fd.store(conn.as_fd().as_raw_fd(), Ordering::Relaxed);
    let tracked = LinkFd(g);
    let handshake = Duration::from_secs(5);
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    conn.set_timeouts(Some(handshake), Some(handshake))
        .map_err(|e| fail("socket timeouts", &e))?;
    let hello = Request::Hello(Hello {
        magic: PROTO_MAGIC,
        major: ABI_MAJOR,
        minor: ABI_MINOR,
        role: Role::Provider,
        client: std::env::args().next().unwrap_or_default(),
    });
    conn.send(&hello, &[]).map_err(|e| fail("hello", &e))?;
    let (resp, mut fds) = conn
        .recv::<Response>()
        .map_err(|e| fail("hello answer", &e))?;
    let grant = match resp {
        Response::Region(grant) => grant,
        Response::Error(e) => return Err(format!("daemon refused: {e}")),
        _ => return Err("daemon sent an unexpected answer to hello".into()),
    };
    if fds.is_empty() {
        return Err("daemon sent no region".into());
    }
    let memfd = fds.remove(0);
    let eventfd = if grant.has_eventfd && !fds.is_empty() {
        Some(fds.remove(0))
    } else {
        None
    };
    let region = Region::map(&memfd, grant.region_size, eventfd).map_err(|e| e.0)?;
    let sender = conn.try_clone().map_err(|e| fail("dup", &e))?;
    conn.set_timeouts(None, Some(handshake))
        .map_err(|e| fail("socket timeouts", &e))?;
    // The last fallible step: until it succeeds nothing is published, so a
    // failed attach leaves the process detached.
    region
        .map_enable_table(&memfd, g.table as *mut u8)
        .map_err(|e| e.0)?;
    let generation = GENERATION.load(Ordering::Relaxed) + 1;
    let (addr, len) = region.mapping();
    crate::debug::set_region(addr, len);
    *lock(&g.region) = Some(Arc::new(region));
    GENERATION.store(generation, Ordering::Release);
    let mut link = lock(&g.link);
    link.sender = Some(sender);
    link.generation = generation;
    link.answered.resize(ferret_abi::shm::ENABLE_SLOTS, 0);
    link.pending.clear();
    link.unsent.clear();
    for p in g.providers() {
        if p.slot != u32::MAX {
            send_registration(&mut link, p);
        }
    }
    link.attempted = true;
    link.last_error = None;
    g.changed.notify_all();
    // `detach` forgets the descriptor once this connection is over.
    std::mem::forget(tracked);
    Ok(conn)
}

/// Forgets the link thread's descriptor when dropped.
struct LinkFd(&'static Global);

impl Drop for LinkFd {
    fn drop(&mut self) {
        self.0.link_fd.store(-1, Ordering::Relaxed);
    }
}

/// Receives answers until the connection closes.
fn serve(g: &'static Global, conn: &mut Conn) {
    while let Ok((resp, _fds)) = conn.recv::<Response>() {
        let mut link = lock(&g.link);
        // Answers come in the order registrations were sent; an error answer
        // also settles its registration (the provider stays disabled).
        if let Some(slot) = link.pending.pop_front() {
            let generation = link.generation;
            if let Some(a) = link.answered.get_mut(slot as usize) {
                *a = generation;
            }
        }
        if !matches!(
            resp,
            Response::ProviderRegistered { .. } | Response::Error(_)
        ) {
            break;
        }
        // The daemon has read more of the socket: room for what waited.
        flush_registrations(&mut link);
        g.changed.notify_all();
    }
}

/// Disables every provider and forgets the region and the connection's
/// descriptor (the caller closes the connection after this).
fn detach(g: &'static Global) {
    map_zero_table(g);
    g.link_fd.store(-1, Ordering::Relaxed);
    crate::debug::set_region(0, 0);
    *lock(&g.region) = None;
    GENERATION.fetch_add(1, Ordering::Release);
    let mut link = lock(&g.link);
    link.sender = None;
    link.generation = 0;
    link.pending.clear();
    link.unsent.clear();
    g.changed.notify_all();
}

/// The state of the process's link to the daemon.
///
/// ```
/// let status = ferret_provider::link_status();
/// if !status.connected {
///     eprintln!("not traced: {}", status.last_error.as_deref().unwrap_or("no daemon yet"));
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    /// True while attached to a daemon.
    pub connected: bool,
    /// Why the last attempt to attach failed, if it did.
    pub last_error: Option<String>,
}

/// The state of the process's link to the daemon.
///
/// ```
/// use ferret_provider::{Options, configure, link_status};
///
/// configure(Options {
///     socket: std::env::temp_dir().join("no-daemon-here.sock"),
///     ..Options::default()
/// });
/// ferret_provider::provider!(static APP = "Example.Status");
/// APP.get();
/// assert!(!link_status().connected);
/// ```
pub fn link_status() -> LinkStatus {
    match global() {
        Some(g) => {
            let link = lock(&g.link);
            LinkStatus {
                connected: link.generation != 0,
                last_error: link.last_error.clone(),
            }
        }
        None => LinkStatus {
            connected: false,
            last_error: Some("the enable table could not be reserved".into()),
        },
    }
}
