//! Log files as a start, an `update -f` or a snapshot finds them: checks of
//! the descriptor a controller passed, the first header, and what an
//! existing log to append to holds.
//!
//! None of this runs on the control thread. A file on a hung mount makes any
//! of these calls wait as long as the mount does, so the control thread
//! hands each of them to a thread of its own ([`spawn`]) and goes on serving
//! every other request; the result comes back as an event.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;

use ferret_abi::proto::{ErrorCode, ErrorReply, FileMode, StartRequest};
use ferret_format::{FileHeader, mode};
use ferret_session::MIN_FILE_SLOTS;

use crate::msg::{FileLayout, Peer, Series, SinkSetup};

/// A start's log file, ready for the writer.
#[derive(Debug)]
pub(crate) struct OpenedLog {
    pub(crate) setup: SinkSetup,
    /// How often buffers describe everything again (see `SessionSetup`).
    pub(crate) describe_every: Option<u64>,
    /// The buffer size in KiB: the request's, or for append the file's.
    pub(crate) buffer_kib: u32,
    /// The header the session's files start from.
    pub(crate) header: FileHeader,
}

/// Checks, without touching the file, that a start carries the descriptors
/// its mode needs.
pub(crate) fn check_start_descriptors(
    req: &StartRequest,
    fds: &[OwnedFd],
) -> Result<(), ErrorReply> {
    if !req.file_mode.has_file() {
        if !fds.is_empty() {
            return Err(ErrorReply {
                code: ErrorCode::BadRequest,
                message: format!("{} sessions take no log file", req.file_mode.name()),
            });
        }
    } else if fds.len() != 1 {
        return Err(ErrorReply {
            code: ErrorCode::BadRequest,
            message: "start must carry exactly one log file descriptor".into(),
        });
    }
    Ok(())
}

/// Opens a start's log file: checks the descriptor, reads an existing log
/// to append to, and writes the first header. `header` has the session's
/// names and clock; its buffer size is set here.
pub(crate) fn open_log(
    mut req: StartRequest,
    fds: Vec<OwnedFd>,
    peer: &Peer,
    clock_kind: u32,
    mut header: FileHeader,
) -> Result<OpenedLog, ErrorReply> {
    let target = open_target(&mut req, fds, peer, clock_kind)?;
    header.buffer_size = req.buffer_kib * 1024;
    let (setup, describe_every) = open_sink(&req, target, &mut header, peer)?;
    Ok(OpenedLog {
        setup,
        describe_every,
        buffer_kib: req.buffer_kib,
        header,
    })
}

/// Prepares the file an `update -f` switches to: checks it and writes the
/// session's header. Returns the file and where its buffers start.
pub(crate) fn open_switch(
    file: File,
    path: &str,
    header: &FileHeader,
) -> Result<(File, u64), ErrorReply> {
    let invalid = |message| ErrorReply {
        code: ErrorCode::Invalid,
        message,
    };
    check_log_file(&file).map_err(|e| invalid(format!("log file '{path}': {e}")))?;
    file.write_all_at(&header.encode(), 0)
        .map_err(|e| invalid(format!("cannot write the log file '{path}': {e}")))?;
    Ok((file, header.data_offset()))
}

/// Checks the file a snapshot goes to.
pub(crate) fn check_snapshot_file(file: File, path: &str) -> Result<File, ErrorReply> {
    check_log_file(&file).map_err(|e| ErrorReply {
        code: ErrorCode::Invalid,
        message: format!("snapshot file '{path}': {e}"),
    })?;
    Ok(file)
}

/// Runs `work` on a thread of its own and hands its result to `done`.
/// Fails (with the reason) only if no thread can be made.
pub(crate) fn spawn<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
    done: impl FnOnce(T) + Send + 'static,
) -> Result<(), ErrorReply> {
    std::thread::Builder::new()
        .name("ferretd-file".into())
        .spawn(move || done(work()))
        .map(drop)
        .map_err(|e| ErrorReply {
            code: ErrorCode::Resources,
            message: format!("cannot start a thread to open the log file: {e}"),
        })
}

/// Checks the descriptor a start carries against the mode; for append,
/// reads the existing file and adopts its buffer size.
fn open_target(
    req: &mut StartRequest,
    mut fds: Vec<OwnedFd>,
    peer: &Peer,
    clock_kind: u32,
) -> Result<Option<Target>, ErrorReply> {
    let bad = |m: String| ErrorReply {
        code: ErrorCode::Invalid,
        message: m,
    };
    // The control thread checked the descriptors against the mode
    // (`check_start_descriptors`) before it handed the start here.
    if fds.is_empty() {
        return Ok(None);
    }
    let fd = fds.remove(0);
    match req.file_mode {
        FileMode::NewFile => {
            let meta = rustix::fs::fstat(&fd).map_err(|e| bad(e.to_string()))?;
            if rustix::fs::FileType::from_raw_mode(meta.st_mode) != rustix::fs::FileType::Directory
            {
                return Err(bad(format!(
                    "new-file mode needs the log directory's descriptor; '{}' was not opened as a directory",
                    req.log_file
                )));
            }
            // The daemon creates the series' files in this directory
            // with its own privileges; it does so only where the
            // controller could have created them itself.
            if !peer.may_write_dir(meta.st_uid, meta.st_gid, meta.st_mode) {
                return Err(ErrorReply {
                    code: ErrorCode::Permission,
                    message: format!(
                        "uid {} may not create files in the directory of '{}'; choose a directory you may write",
                        peer.uid, req.log_file
                    ),
                });
            }
            Ok(Some(Target::Dir(fd)))
        }
        FileMode::Append => {
            let file = File::from(fd);
            let existing = read_existing_log(&file, &req.log_file, clock_kind)?;
            if let Some(e) = &existing {
                req.buffer_kib = e.buffer_size / 1024;
            }
            Ok(Some(Target::File(file, existing)))
        }
        _ => {
            let file = File::from(fd);
            check_log_file(&file).map_err(|e| bad(format!("log file '{}': {e}", req.log_file)))?;
            Ok(Some(Target::File(file, None)))
        }
    }
}

/// Writes the first header and decides how buffers map to the file.
/// Returns the sink and how often buffers describe everything again.
fn open_sink(
    req: &StartRequest,
    target: Option<Target>,
    header: &mut FileHeader,
    peer: &Peer,
) -> Result<(SinkSetup, Option<u64>), ErrorReply> {
    let io_err = |e: std::io::Error| ErrorReply {
        code: ErrorCode::Invalid,
        message: format!("cannot write the log file '{}': {e}", req.log_file),
    };
    let size = header.buffer_size as u64;
    let data_offset = header.data_offset();
    // Slots of a file of the maximum size, the trailer's included.
    let slots = (req.max_file_bytes.saturating_sub(data_offset) / size).max(MIN_FILE_SLOTS);
    match (req.file_mode, target) {
        (FileMode::RealTime, _) => Ok((SinkSetup::Discard, None)),
        (FileMode::InMemory, _) => Ok((
            SinkSetup::Memory {
                keep: (req.max_buffers as usize).saturating_sub(2).max(1),
            },
            Some(1),
        )),
        (FileMode::NewFile, Some(Target::Dir(dir))) => {
            let owner =
                (peer.uid != rustix::process::geteuid().as_raw()).then_some((peer.uid, peer.gid));
            let series = Series {
                dir,
                pattern: req.log_file.clone(),
                header: header.clone(),
                index: 1,
                owner,
                controller: peer.clone(),
            };
            let (file, data_offset) =
                crate::writer::open_series_file(&series).map_err(|e| ErrorReply {
                    code: ErrorCode::Invalid,
                    message: format!(
                        "cannot create log file '{}': {e}",
                        ferret_abi::proto::rotated_file_name(&req.log_file, 1)
                    ),
                })?;
            let data_slots = slots - 1;
            Ok((
                SinkSetup::File {
                    file,
                    data_offset,
                    buffer_size: size,
                    layout: FileLayout::Sequential {
                        data_slots: Some(data_slots),
                    },
                    first_seq: 0,
                    first_slot: 0,
                    series: Some(Box::new(series)),
                },
                Some(data_slots),
            ))
        }
        (FileMode::Append, Some(Target::File(file, Some(existing)))) => {
            let data_slots = (req.max_file_bytes > 0).then(|| {
                let total = req.max_file_bytes.saturating_sub(existing.data_offset) / size;
                total.saturating_sub(1 + existing.slots)
            });
            Ok((
                SinkSetup::File {
                    file,
                    data_offset: existing.data_offset,
                    buffer_size: size,
                    layout: FileLayout::Sequential { data_slots },
                    first_seq: existing.next_seq,
                    first_slot: existing.slots,
                    series: None,
                },
                None,
            ))
        }
        (mode, Some(Target::File(file, _))) => {
            let layout = if mode == FileMode::Circular {
                header.slot_count = slots as u32;
                FileLayout::Circular {
                    data_slots: slots - 1,
                }
            } else {
                FileLayout::Sequential {
                    data_slots: (req.max_file_bytes > 0).then_some(slots - 1),
                }
            };
            file.write_all_at(&header.encode(), 0).map_err(io_err)?;
            let every = (mode == FileMode::Circular).then_some(1);
            Ok((
                SinkSetup::File {
                    file,
                    data_offset,
                    buffer_size: size,
                    layout,
                    first_seq: 0,
                    first_slot: 0,
                    series: None,
                },
                every,
            ))
        }
        _ => Err(ErrorReply {
            code: ErrorCode::BadRequest,
            message: "the descriptor does not suit the log file mode".into(),
        }),
    }
}

fn check_log_file(file: &File) -> Result<(), String> {
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() != 0 {
        return Err("the file is not empty".into());
    }
    let flags = rustix::fs::fcntl_getfl(file).map_err(|e| e.to_string())?;
    let mode = flags & rustix::fs::OFlags::RWMODE;
    if mode != rustix::fs::OFlags::WRONLY && mode != rustix::fs::OFlags::RDWR {
        return Err("the descriptor is not open for writing".into());
    }
    Ok(())
}

/// The descriptor a start carries.
enum Target {
    /// A log file; for append mode, what it already holds.
    File(File, Option<ExistingLog>),
    /// The directory of a new-file series.
    Dir(OwnedFd),
}

/// An existing log that a session appends to.
struct ExistingLog {
    buffer_size: u32,
    data_offset: u64,
    /// Slots the file has (the last may be partly written).
    slots: u64,
    /// The sequence number the next buffer takes.
    next_seq: u64,
}

/// Reads the header of a log to append to. `None` if the file is empty (it
/// becomes a new sequential log).
fn read_existing_log(
    file: &File,
    path: &str,
    clock_kind: u32,
) -> Result<Option<ExistingLog>, ErrorReply> {
    let bad = |m: String| ErrorReply {
        code: ErrorCode::Invalid,
        message: format!("cannot append to '{path}': {m}"),
    };
    let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
    if !meta.file_type().is_file() {
        return Err(bad("not a regular file".into()));
    }
    let flags = rustix::fs::fcntl_getfl(file).map_err(|e| bad(e.to_string()))?;
    if flags & rustix::fs::OFlags::RWMODE != rustix::fs::OFlags::RDWR {
        return Err(bad(
            "the descriptor must be open for reading and writing".into()
        ));
    }
    let len = meta.len();
    if len == 0 {
        return Ok(None);
    }
    let mut head = vec![0u8; 8192.min(len as usize)];
    file.read_exact_at(&mut head, 0)
        .map_err(|e| bad(e.to_string()))?;
    let (header, data_offset) = FileHeader::decode_untrusted(&head).map_err(|e| {
        bad(format!(
            "{e}; append needs a Ferret log of format version {}",
            ferret_format::FORMAT_MAJOR
        ))
    })?;
    // Sessions size buffers in whole KiB: a log whose buffers are not
    // would have its buffers overwritten out of step.
    if header.buffer_size % 1024 != 0 {
        return Err(bad(format!(
            "its buffers are {} bytes, not a whole number of KiB as this daemon writes them; start a new file",
            header.buffer_size
        )));
    }
    if header.log_mode == mode::CIRCULAR {
        return Err(bad(
            "it is a circular log; append only to sequential logs".into()
        ));
    }
    if header.clock.kind != clock_kind {
        return Err(bad(format!(
            "it was written with the {} clock and this daemon uses another; start a new file",
            header.clock.name()
        )));
    }
    // The file's clock anchor times every session in it; ticks from before
    // a reboot do not continue after it.
    let mono_now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let mono_now = mono_now.tv_sec as u64 * 1_000_000_000 + mono_now.tv_nsec as u64;
    if header.clock.anchor_mono_ns > mono_now {
        return Err(bad(
            "it was written before this machine last booted, so its clock anchor does not fit new events; start a new file".into(),
        ));
    }
    let size = header.buffer_size as u64;
    let slots = len.saturating_sub(data_offset).div_ceil(size);
    // Sequence numbers go on from the last buffer's, so that readers keep
    // the order; a damaged last slot leaves the slot count as the floor.
    let mut next_seq = slots;
    if slots > 0 {
        let mut bh = [0u8; ferret_format::BUFFER_HEADER_LEN];
        if file
            .read_exact_at(&mut bh, data_offset + (slots - 1) * size)
            .is_ok()
        {
            if let Some(h) = ferret_format::BufferHeader::decode(&bh) {
                next_seq = next_seq.max(h.sequence.saturating_add(1));
            }
        }
    }
    Ok(Some(ExistingLog {
        buffer_size: header.buffer_size,
        data_offset,
        slots,
        next_seq,
    }))
}
