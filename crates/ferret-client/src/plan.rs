//! The controller's half of a start: what a session should be (a
//! [`StartPlan`], from the command line, the viewer or a test), the checks
//! of it that need no daemon, and the opening of its log file with the
//! rules that keep a log from going where its user could not write.
//!
//! The controller opens log files and passes their descriptors, so that the
//! daemon writes only where the user who asked could have written. A path
//! is walked one directory at a time, following only links this user or
//! root made; the last component is never a link.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use ferret_abi::limits::{
    DEFAULT_BUFFER_KIB, DEFAULT_FLUSH_TIMER_MS, DEFAULT_MAX_BUFFERS, DEFAULT_MIN_BUFFERS,
    DEFAULT_NO_LOSS_WAIT_MS, MAX_SIZE, size_unit, validate_start,
};
use ferret_abi::proto::{FileMode, ProviderSpec, StartRequest, rotated_file_name};
use ferret_abi::{EnableFilter, Level};

/// A start that cannot go ahead, or a log file that cannot be opened, in
/// one line that says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

macro_rules! plan_error {
    ($($t:tt)*) => { PlanError(format!($($t)*)) };
}

macro_rules! bail_plan {
    ($($t:tt)*) => { return Err(PlanError(format!($($t)*))) };
}

/// A session to start, as a controller describes it. [`StartPlan::new`]
/// gives the defaults; fields left `None` take the daemon's.
#[derive(Clone, Debug)]
pub struct StartPlan {
    pub name: String,
    pub providers: Vec<ProviderSpec>,
    /// The log file (new-file mode: the pattern of the series' names).
    pub file: Option<PathBuf>,
    pub mode: FileMode,
    /// Replace an existing log file (or series) instead of refusing.
    pub overwrite: bool,
    /// Real-time consumers may attach (always so in real-time mode).
    pub realtime: bool,
    pub buffer_kib: u32,
    pub max_buffers: u32,
    pub min_buffers: Option<u32>,
    pub flush_timer_ms: u32,
    /// The largest log file, bytes (0: none).
    pub max_file_bytes: u64,
    pub no_loss: bool,
    pub no_loss_wait_ms: Option<u32>,
    /// Who starts it, as `list` shows (e.g. "ferret start pid 42").
    pub controller: String,
}

impl StartPlan {
    /// A sequential session of `name` with every default.
    pub fn new(name: impl Into<String>, controller: impl Into<String>) -> StartPlan {
        StartPlan {
            name: name.into(),
            providers: Vec::new(),
            file: None,
            mode: FileMode::Sequential,
            overwrite: false,
            realtime: false,
            buffer_kib: DEFAULT_BUFFER_KIB,
            max_buffers: DEFAULT_MAX_BUFFERS,
            min_buffers: None,
            flush_timer_ms: DEFAULT_FLUSH_TIMER_MS,
            max_file_bytes: 0,
            no_loss: false,
            no_loss_wait_ms: None,
            controller: controller.into(),
        }
    }

    /// The request this plan sends, after every check that needs neither a
    /// file nor a daemon: so a bad plan is refused before a file is created
    /// or a daemon started.
    pub fn request(&self) -> Result<StartRequest, PlanError> {
        ferret_abi::proto::validate_session_name(&self.name).map_err(PlanError)?;
        let mode = self.mode;
        if mode.has_file() && self.file.is_none() {
            bail_plan!(
                "{} mode writes a log file; give one with -f FILE",
                mode.name()
            );
        }
        if !mode.has_file() {
            if let Some(f) = &self.file {
                bail_plan!(
                    "{} mode writes no log file, but -f {} was given; drop -f, or use --mode sequential --realtime for a file and live consumers",
                    mode.name(),
                    f.display()
                );
            }
            if self.overwrite {
                bail_plan!(
                    "--overwrite applies to log files; {} mode has none",
                    mode.name()
                );
            }
        }
        if mode == FileMode::Append && self.overwrite {
            bail_plan!(
                "--overwrite would discard the log that append mode adds to; drop one of them"
            );
        }
        if matches!(mode, FileMode::Circular | FileMode::NewFile) && self.max_file_bytes == 0 {
            bail_plan!(
                "{} mode needs a maximum file size; give --max-file-size (e.g. 64M)",
                mode.name()
            );
        }
        if !mode.has_file() && self.max_file_bytes != 0 {
            bail_plan!(
                "--max-file-size applies to log files; {} mode has none",
                mode.name()
            );
        }
        let req = StartRequest {
            name: self.name.clone(),
            providers: self.providers.clone(),
            log_file: self.file.as_deref().map(shown_path).unwrap_or_default(),
            buffer_kib: self.buffer_kib,
            max_buffers: self.max_buffers,
            flush_timer_ms: self.flush_timer_ms,
            min_buffers: self
                .min_buffers
                .unwrap_or(DEFAULT_MIN_BUFFERS.min(self.max_buffers)),
            file_mode: mode,
            max_file_bytes: self.max_file_bytes,
            // Real-time mode has no other destination, so it needs consumers.
            realtime: self.realtime || mode == FileMode::RealTime,
            controller: self.controller.clone(),
            no_loss: self.no_loss,
            no_loss_wait_ms: self.no_loss_wait_ms.unwrap_or(DEFAULT_NO_LOSS_WAIT_MS),
        };
        // Everything the daemon would refuse about the values themselves.
        validate_start(&req).map_err(|e| PlanError(e.message))?;
        Ok(req)
    }

    /// Opens what the plan's mode needs: the log file (created, or for
    /// append opened and created if absent) or the series' directory.
    pub fn open(&self) -> Result<Opened, PlanError> {
        Ok(match (self.mode, &self.file) {
            (FileMode::Append, Some(path)) => {
                let (file, created) = open_append(path)?;
                Opened::File {
                    file,
                    created: created.then(|| path.clone()),
                }
            }
            (FileMode::NewFile, Some(path)) => Opened::Dir(open_series_dir(path, self.overwrite)?),
            (_, Some(path)) => Opened::File {
                file: open_log(path, self.overwrite)?,
                created: (!self.overwrite).then(|| path.clone()),
            },
            (_, None) => Opened::None,
        })
    }
}

/// Reads a flush timer in seconds, as `--flush-timer` takes it.
pub fn flush_timer_ms(seconds: f64) -> Result<u32, PlanError> {
    if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
        bail_plan!("flush timer {seconds} s is out of range; use 0 (none) to 86400 seconds");
    }
    Ok((seconds * 1000.0).round() as u32)
}

/// Reads `--max-file-size`: a number, fractions allowed, in the units of
/// [`ferret_abi::limits::size_unit`] (no unit: MiB).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let scale = size_unit(unit).ok_or_else(|| {
        format!(
            "size '{s}' has an unknown unit; give MiB as a number, or use a K, M, G or T suffix (e.g. 512K, 64M, 1G)"
        )
    })?;
    let value: f64 = number
        .parse()
        .map_err(|_| format!("size '{s}' is not a number; use e.g. 512K, 64M or 1G"))?;
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes > MAX_SIZE as f64 {
        return Err(format!("size '{s}' is too large; the limit is 1024T"));
    }
    Ok(bytes as u64)
}

fn parse_mask(s: &str, what: &str, spec: &str) -> Result<u64, String> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if digits.is_empty() {
        return Err(format!("provider spec '{spec}': the {what} mask is empty"));
    }
    u64::from_str_radix(digits, 16).map_err(|_| {
        format!("provider spec '{spec}': {what} mask '{s}' is not a hex number of at most 16 digits (e.g. 0x1f)")
    })
}

/// Parses `NAME[:LEVEL[:KEYWORDS[:ALL]]]`. LEVEL is 1-5 or a name (default
/// verbose); KEYWORDS is the hex match-any mask (default 0: every keyword);
/// ALL the hex match-all mask (default 0).
pub fn parse_provider(spec: &str) -> Result<ProviderSpec, String> {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default().trim();
    if name.is_empty() {
        return Err(format!(
            "provider spec '{spec}' has no name; use NAME[:LEVEL[:KEYWORDS]], e.g. MyCompany.Web:info:0x1"
        ));
    }
    ferret_abi::proto::validate_provider_name(name)
        .map_err(|e| format!("provider spec '{spec}': {e}"))?;
    let level = match parts.next() {
        None | Some("") => Level::Verbose,
        Some(l) => l
            .parse::<Level>()
            .map_err(|e| format!("provider spec '{spec}': {e}"))?,
    };
    let match_any = match parts.next() {
        None | Some("") => 0,
        Some(k) => parse_mask(k, "keyword", spec)?,
    };
    let match_all = match parts.next() {
        None | Some("") => 0,
        Some(k) => parse_mask(k, "match-all keyword", spec)?,
    };
    if parts.next().is_some() {
        return Err(format!(
            "provider spec '{spec}' has too many ':' parts; use NAME[:LEVEL[:KEYWORDS[:ALL]]]"
        ));
    }
    Ok(ProviderSpec {
        name: name.to_string(),
        filter: EnableFilter {
            level,
            match_any,
            match_all,
        },
    })
}

fn open_error(path: &Path, e: std::io::Error) -> PlanError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return plan_error!(
            "cannot create log file '{}': it is a symbolic link, and Ferret never writes a log through one; give the real path",
            path.display()
        );
    }
    let hint = match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            "; choose another file or pass --overwrite to replace it".to_string()
        }
        std::io::ErrorKind::NotFound => "; create its directory first".to_string(),
        std::io::ErrorKind::PermissionDenied => "; choose a file you may write".to_string(),
        _ => String::new(),
    };
    plan_error!("cannot create log file '{}': {e}{hint}", path.display())
}

/// The most symbolic links one log path may pass through, as the kernel's
/// own limit for one lookup.
const MAX_LINKS: u32 = 40;

/// Opens the directory a log file goes in, without trusting links that
/// someone else made: the path's directory components are walked one at a
/// time with `O_NOFOLLOW`, and a link among them is followed only if it
/// belongs to this user or root, as `fs.protected_symlinks` decides for
/// links in sticky directories. So `~/logs` linked to another disk works,
/// and `/var/run` (root's link to `/run`) works, but a link that another
/// user planted in a shared directory cannot send a log, or root's
/// `--overwrite`, into a directory of that user's choosing. Returns an
/// `O_PATH` descriptor of the directory and the file's name in it.
fn open_log_dir(path: &Path) -> Result<(OwnedFd, std::ffi::OsString), PlanError> {
    let name = match path.file_name() {
        Some(n) if !path.as_os_str().as_encoded_bytes().ends_with(b"/") => n.to_os_string(),
        _ => bail_plan!(
            "log file '{}' names a directory; give a file name",
            path.display()
        ),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut links = 0;
    let fd = walk_dirs(path, None, dir, &mut links)?;
    Ok((fd, name))
}

/// Walks `dir` from `at` (the current directory when `None`; the root for
/// an absolute `dir`), following only links this user or root owns.
fn walk_dirs(
    shown: &Path,
    at: Option<&OwnedFd>,
    dir: &Path,
    links: &mut u32,
) -> Result<OwnedFd, PlanError> {
    use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
    use std::path::Component;
    let walk = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let refuse = |what: &str, e: &std::io::Error| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => "; create its directory first",
            std::io::ErrorKind::PermissionDenied => "; choose a file you may write",
            _ => "",
        };
        plan_error!(
            "cannot create log file '{}': its directory '{what}': {e}{hint}",
            shown.display()
        )
    };
    let mut cur: OwnedFd = match at {
        _ if dir.is_absolute() => rustix::fs::open("/", walk, Mode::empty())
            .map_err(|e| refuse("/", &std::io::Error::from(e)))?,
        Some(fd) => rustix::fs::openat(fd, ".", walk, Mode::empty())
            .map_err(|e| refuse(".", &std::io::Error::from(e)))?,
        None => rustix::fs::openat(CWD, ".", walk, Mode::empty())
            .map_err(|e| refuse(".", &std::io::Error::from(e)))?,
    };
    for comp in dir.components() {
        let part = match comp {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            Component::ParentDir => std::ffi::OsStr::new(".."),
            Component::Normal(p) => p,
        };
        let shown_part = Path::new(part).display().to_string();
        let err = match rustix::fs::openat(&cur, part, walk, Mode::empty()) {
            Ok(next) => {
                cur = next;
                continue;
            }
            Err(e) => e,
        };
        // ELOOP or ENOTDIR: a link (or not a directory at all). Anything
        // else (missing, no permission) is the answer.
        let stat = rustix::fs::statat(&cur, part, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|_| refuse(&shown_part, &std::io::Error::from(err)))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::Symlink {
            return Err(refuse(&shown_part, &std::io::Error::from(err)));
        }
        let me = rustix::process::geteuid().as_raw();
        if stat.st_uid != me && stat.st_uid != 0 {
            bail_plan!(
                "cannot create log file '{}': its directory '{shown_part}' is a symbolic link that uid {} made, neither this user nor root, and Ferret follows no one else's links; give the real path",
                shown.display(),
                stat.st_uid
            );
        }
        *links += 1;
        if *links > MAX_LINKS {
            return Err(refuse(
                &shown_part,
                &std::io::Error::from(rustix::io::Errno::LOOP),
            ));
        }
        let target = rustix::fs::readlinkat(&cur, part, Vec::new())
            .map_err(|e| refuse(&shown_part, &std::io::Error::from(e)))?;
        let target = PathBuf::from(
            <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(target.into_bytes()),
        );
        cur = walk_dirs(shown, Some(&cur), &target, links)?;
    }
    Ok(cur)
}

/// Opens (or creates) the log file `path` with `flags` added to read/write
/// flags, never through a link: the last component gets `O_NOFOLLOW`, the
/// directories are walked by [`open_log_dir`]. New files get mode 0640.
/// The outer error is the walk's, already worded; the inner one the file's.
fn open_log_file(
    path: &Path,
    flags: rustix::fs::OFlags,
) -> Result<std::io::Result<(File, OwnedFd)>, PlanError> {
    use rustix::fs::{Mode, OFlags};
    let (dir, name) = open_log_dir(path)?;
    Ok(rustix::fs::openat(
        &dir,
        &name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o640),
    )
    .map(|fd| (File::from(fd), dir))
    .map_err(std::io::Error::from))
}

/// Creates a new log file (or truncates one with `overwrite`).
pub fn open_log(path: &Path, overwrite: bool) -> Result<File, PlanError> {
    create_log(path, overwrite, false)
}

/// Creates a new log file open for reading as well as writing.
fn open_log_rw(path: &Path, overwrite: bool) -> Result<File, PlanError> {
    create_log(path, overwrite, true)
}

fn create_log(path: &Path, overwrite: bool, read: bool) -> Result<File, PlanError> {
    use rustix::fs::OFlags;
    let mut flags = if read { OFlags::RDWR } else { OFlags::WRONLY };
    flags |= OFlags::CREATE;
    flags |= if overwrite {
        OFlags::TRUNC
    } else {
        OFlags::EXCL
    };
    let (file, dir) = open_log_file(path, flags)?.map_err(|e| open_error(path, e))?;
    sync_dir(&dir);
    Ok(file)
}

/// Makes a newly created file's name durable: the daemon fsyncs the file's
/// data at stop, but after a power loss a file whose directory entry never
/// reached the disk would be gone with it. A directory that cannot be
/// synced (some file systems refuse) leaves the file as durable as the
/// file system makes it anyway, so a failure here is not an error.
fn sync_dir(dir: &OwnedFd) {
    use rustix::fs::{Mode, OFlags};
    // An `O_PATH` descriptor cannot be synced; the directory itself,
    // reopened through it, can.
    if let Ok(d) = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        let _ = rustix::fs::fsync(&d);
    }
}

/// Opens a log to append to, creating it if absent. Returns the file and
/// whether it was created, so that a failed start can take it away again.
/// The daemon reads the existing header and buffers, hence read and write.
pub fn open_append(path: &Path) -> Result<(File, bool), PlanError> {
    use rustix::fs::OFlags;
    match open_log_file(path, OFlags::RDWR | OFlags::CREATE | OFlags::EXCL)? {
        Ok((f, dir)) => {
            sync_dir(&dir);
            Ok((f, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            open_log_file(path, OFlags::RDWR)?
                .map(|(f, _)| (f, false))
                .map_err(|e| {
                    if e.raw_os_error() == Some(libc::ELOOP) {
                        return open_error(path, e);
                    }
                    plan_error!(
                        "cannot open log file '{}' to append to it: {e}",
                        path.display()
                    )
                })
        }
        Err(e) => Err(open_error(path, e)),
    }
}

/// Opens the directory a new-file series goes into, for the daemon to
/// create the files in with `openat`.
fn open_series_dir(pattern: &Path, overwrite: bool) -> Result<OwnedFd, PlanError> {
    let text = pattern.to_str().ok_or_else(|| {
        plan_error!(
            "log file pattern '{}' is not valid UTF-8; use a plain name",
            pattern.display()
        )
    })?;
    if text.ends_with('/') || pattern.file_name().is_none() {
        bail_plan!(
            "log file pattern '{text}' names a directory; give a file name such as {}trace.ferret",
            if text.ends_with('/') { text } else { "" }
        );
    }
    let (dir, _) = open_log_dir(pattern)?;
    let first = PathBuf::from(rotated_file_name(text, 1));
    let first_name = first.file_name().unwrap_or_default();
    if !overwrite
        && rustix::fs::statat(&dir, first_name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok()
    {
        bail_plan!(
            "log file '{}' exists; choose another pattern or pass --overwrite to replace the series",
            first.display()
        );
    }
    use rustix::fs::{Mode, OFlags};
    // The daemon creates files in it with `openat`, which needs a real
    // directory descriptor rather than the walk's `O_PATH` one.
    rustix::fs::openat(
        &dir,
        ".",
        OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::RDONLY,
        Mode::empty(),
    )
    .map_err(|e| {
        plan_error!(
            "cannot open the directory of '{}' for the log files: {}",
            pattern.display(),
            std::io::Error::from(e)
        )
    })
}

/// A log file a request carries, described so that it can be opened here
/// or, over a target, by the target's bridge: the same rules either way.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FileRequest {
    /// A start's log file (or a new-file series' directory), as
    /// [`StartPlan::open`] opens it.
    Start {
        /// The session's mode.
        mode: FileMode,
        /// The path.
        path: PathBuf,
        /// Whether an existing file may be replaced.
        overwrite: bool,
    },
    /// The new file of an `update -f`, as [`Opened::for_switch`] opens it.
    Switch {
        /// The session's mode.
        mode: FileMode,
        /// The path.
        path: PathBuf,
        /// Whether an existing file may be replaced.
        overwrite: bool,
    },
    /// The file a snapshot is saved to: a new, empty log file.
    Snapshot {
        /// The path.
        path: PathBuf,
        /// Whether an existing file may be replaced.
        overwrite: bool,
    },
}

impl FileRequest {
    /// The path it opens.
    pub fn path(&self) -> &Path {
        match self {
            FileRequest::Start { path, .. }
            | FileRequest::Switch { path, .. }
            | FileRequest::Snapshot { path, .. } => path,
        }
    }

    /// Opens it here, as this process's user.
    pub fn open(&self) -> Result<Opened, PlanError> {
        match self {
            FileRequest::Start {
                mode,
                path,
                overwrite,
            } => {
                let mut plan = StartPlan::new("opening", "");
                plan.mode = *mode;
                plan.file = Some(path.clone());
                plan.overwrite = *overwrite;
                plan.open()
            }
            FileRequest::Switch {
                mode,
                path,
                overwrite,
            } => Opened::for_switch(*mode, path, *overwrite),
            FileRequest::Snapshot { path, overwrite } => Ok(Opened::File {
                file: open_log(path, *overwrite)?,
                created: (!overwrite).then(|| path.clone()),
            }),
        }
    }
}

/// What `start` opened for the daemon, and what to undo if the start fails.
#[derive(Debug)]
pub enum Opened {
    None,
    File {
        file: File,
        created: Option<PathBuf>,
    },
    Dir(OwnedFd),
}

impl Opened {
    /// Opens the new log file of an `update -f` for a session in `mode`:
    /// a new file (open for reading too in append mode, where the daemon
    /// may read what it writes to), or the series' directory.
    pub fn for_switch(mode: FileMode, path: &Path, overwrite: bool) -> Result<Opened, PlanError> {
        let created = (!overwrite).then(|| path.to_path_buf());
        Ok(match mode {
            FileMode::NewFile => Opened::Dir(open_series_dir(path, overwrite)?),
            FileMode::Append => Opened::File {
                file: open_log_rw(path, overwrite)?,
                created,
            },
            _ => Opened::File {
                file: open_log(path, overwrite)?,
                created,
            },
        })
    }

    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Opened::None => None,
            Opened::File { file, .. } => Some(file.as_fd()),
            Opened::Dir(d) => Some(d.as_fd()),
        }
    }

    /// Leaves no empty file behind for a start that did not happen.
    pub fn undo(self) {
        if let Opened::File {
            created: Some(path),
            ..
        } = self
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The path the daemon keeps for display: an absolute one is unambiguous.
pub fn shown_path(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expected: Result<(&str, Level, u64, u64), &str>) {
        match (parse_provider(spec), expected) {
            (Ok(p), Ok((n, l, any, all))) => {
                assert_eq!(p.name, n);
                assert_eq!(p.filter.level, l);
                assert_eq!(p.filter.match_any, any);
                assert_eq!(p.filter.match_all, all);
            }
            (Err(e), Err(part)) => assert!(e.contains(part), "{e}"),
            (got, want) => panic!("{spec}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn provider_specs() {
        check("Web", Ok(("Web", Level::Verbose, 0, 0)));
        check("Web:4", Ok(("Web", Level::Information, 0, 0)));
        check("Web:warning:0x1f", Ok(("Web", Level::Warning, 0x1f, 0)));
        check("Web:error:ff:0x3", Ok(("Web", Level::Error, 0xff, 3)));
        check("Web::0x2", Ok(("Web", Level::Verbose, 2, 0)));
        check(":4", Err("has no name"));
        check("Web:9", Err("level '9' is not valid"));
        check("Web:4:xyz", Err("not a hex number"));
        check("Web:4:0x", Err("mask is empty"));
        check("Web:4:1:2:3", Err("too many"));
        check("Web:4:11112222333344445", Err("not a hex number"));
    }

    #[test]
    fn sizes_are_mib_unless_suffixed() {
        assert_eq!(parse_size("64").unwrap(), 64 << 20);
        assert_eq!(parse_size("512K").unwrap(), 512 << 10);
        assert_eq!(parse_size("512kib").unwrap(), 512 << 10);
        assert_eq!(parse_size("2M").unwrap(), 2 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5M").unwrap(), 3 << 19);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert!(parse_size("12X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("K").unwrap_err().contains("not a number"));
        assert!(parse_size("-1M").is_err());
    }

    #[test]
    fn a_plan_is_checked_before_any_file_or_daemon() {
        let mut p = StartPlan::new("net", "test");
        p.providers = vec![parse_provider("Web").unwrap()];
        assert!(
            p.request()
                .unwrap_err()
                .0
                .contains("sequential mode writes a log file")
        );
        p.file = Some(PathBuf::from("/nonexistent/dir/net.ferret"));
        let req = p.request().unwrap();
        assert_eq!(req.min_buffers, DEFAULT_MIN_BUFFERS);
        assert!(req.log_file.ends_with("net.ferret"));
        p.mode = FileMode::NewFile;
        assert!(
            p.request()
                .unwrap_err()
                .0
                .contains("needs a maximum file size")
        );
        p.max_file_bytes = 1 << 20;
        assert!(p.request().is_ok());
        p.mode = FileMode::Append;
        p.overwrite = true;
        assert!(
            p.request()
                .unwrap_err()
                .0
                .contains("--overwrite would discard")
        );
        p.mode = FileMode::RealTime;
        p.overwrite = false;
        p.max_file_bytes = 0;
        assert!(p.request().unwrap_err().0.contains("writes no log file"));
        p.file = None;
        assert!(
            p.request().unwrap().realtime,
            "real-time mode needs consumers"
        );
        p.name = "1234".into();
        assert!(p.request().is_err(), "an all-digit name is a LoggerID");
    }
}
