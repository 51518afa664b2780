//! The live trace viewer (`ferret view`), in the manner of Windows'
//! TraceView: the Trace Session List on top, the selected session's
//! messages below.
//!
//! - `model`: the state, with no terminal and no sockets, tested alone.
//! - `render`: drawing it with ratatui, snapshot-tested on TestBackend.
//! - `input`: keys and mouse events to model changes and effects.
//! - this file: the I/O. Threads read the watch feed, the real-time
//!   streams of the sessions whose messages are kept and log files, and
//!   send what they get over one channel to the main thread, which alone
//!   owns the model, the control connection and the terminal.

mod input;
mod model;
mod render;

use std::collections::HashMap;
use std::io::{self, Stdout};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ferret_abi::proto::{ChangeKind, SessionInfo, SessionRef};
use ferret_client::{Client, TailCloser, TailItem, WatchEvent};
use ferret_decode::{Entry, FileDecoder, StreamDecoder, details_text};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;

use input::Outcome;
use model::{Effect, Message, Model, Overlay, RowKey, StartForm};

/// Opens a control connection to the daemon the viewer shows (the CLI's
/// starts one if none answers).
pub type Connect = Arc<dyn Fn() -> Result<Client> + Send + Sync>;

/// What the reader threads send to the main thread.
enum Input {
    Term(Event),
    Change(ChangeKind, Box<SessionInfo>),
    WatchEnded(String),
    /// The watch fell behind or caught up again; the text says which.
    WatchStatus(String),
    /// Messages of the source numbered `source`, with the source's
    /// running total of missed events.
    Messages {
        source: u64,
        batch: Vec<Message>,
        missed: u64,
    },
    /// A source ended; the text says how.
    SourceEnded {
        source: u64,
        text: String,
    },
}

/// One entry of a stream or file as a message line, if it is one.
pub fn to_message(e: &Entry<'_>) -> Option<Message> {
    Some(match e {
        Entry::Event(ev) => Message {
            timestamp_ns: ev.timestamp_ns,
            provider: ev.ty.provider.name.clone(),
            event: ev.ty.name.clone(),
            level: ev.ty.level,
            pid: ev.pid,
            tid: ev.tid,
            fields: details_text(ev),
        },
        Entry::Lost {
            timestamp_ns,
            pid,
            provider,
            reason,
            count,
        } => Message {
            timestamp_ns: *timestamp_ns,
            provider: if provider.is_empty() { "?" } else { provider }.to_string(),
            event: "LOST".into(),
            level: 0,
            pid: *pid,
            tid: 0,
            fields: format!("{count} events lost ({})", reason.name()),
        },
        Entry::ProcessEnd {
            timestamp_ns,
            pid,
            process,
        } => Message {
            timestamp_ns: *timestamp_ns,
            provider: "-".into(),
            event: "ENDED".into(),
            level: 0,
            pid: *pid,
            tid: 0,
            fields: format!("process {process}"),
        },
        Entry::Corrupt(c) => note(c.to_string()),
        Entry::BadRecord {
            buffer_offset,
            error,
        } => note(format!("buffer at offset {buffer_offset}: {error}")),
        Entry::Note(n) => note(n.clone()),
        // The trailer's totals are the session's counters, shown in the
        // properties panel rather than as a line.
        _ => return None,
    })
}

fn note(text: String) -> Message {
    Message {
        timestamp_ns: 0,
        provider: "-".into(),
        event: "NOTE".into(),
        level: 0,
        pid: 0,
        tid: 0,
        fields: text,
    }
}

/// How many messages a reader thread gathers before sending, so that a
/// large file does not cost one channel message per event.
const BATCH: usize = 4096;

/// Decodes log files in a thread, sending their messages as `source`.
fn spawn_files(files: Vec<PathBuf>, source: u64, tx: Sender<Input>) {
    std::thread::spawn(move || {
        let mut text = String::new();
        for path in &files {
            let result = (|| -> Result<u64> {
                let mut dec = FileDecoder::open(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let mut batch = Vec::with_capacity(BATCH);
                let mut n = 0u64;
                dec.for_each(|e| {
                    if let Some(m) = to_message(&e) {
                        batch.push(m);
                        n += 1;
                    }
                    if batch.len() >= BATCH {
                        let b = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        tx.send(Input::Messages {
                            source,
                            batch: b,
                            missed: 0,
                        })
                        .map_err(|_| io::Error::other("viewer closed"))?;
                    }
                    Ok(())
                })?;
                let _ = tx.send(Input::Messages {
                    source,
                    batch,
                    missed: 0,
                });
                Ok(n)
            })();
            match result {
                Ok(n) => text.push_str(&format!("{}: {n} messages. ", path.display())),
                Err(e) => text.push_str(&format!("{e:#}. ")),
            }
        }
        let _ = tx.send(Input::SourceEnded {
            source,
            text: text.trim_end().to_string(),
        });
    });
}

/// How the main thread ends a stream's thread: the flag stops one that
/// has not connected yet, the closer wakes one waiting on a quiet session.
#[derive(Default)]
struct StreamEnd {
    closed: bool,
    closer: Option<TailCloser>,
}

/// A real-time stream the viewer keeps for one session.
struct Stream {
    key: RowKey,
    end: Arc<Mutex<StreamEnd>>,
}

impl Stream {
    /// Ends the stream now, even while its thread waits for a buffer.
    fn close(&self) {
        let mut end = self.end.lock().unwrap_or_else(|p| p.into_inner());
        end.closed = true;
        if let Some(c) = &end.closer {
            c.close();
        }
    }
}

/// Follows a real-time session in a thread until it ends or the main
/// thread closes it (see [`Stream::close`]).
fn spawn_tail(
    connect: Connect,
    name: String,
    source: u64,
    end: Arc<Mutex<StreamEnd>>,
    tx: Sender<Input>,
) {
    std::thread::spawn(move || {
        let result = (|| -> Result<String> {
            let client = connect()?;
            let mut tail = client.tail(&SessionRef::Name(name.clone()))?;
            {
                let mut end = end.lock().unwrap_or_else(|p| p.into_inner());
                if end.closed {
                    return Ok(String::new());
                }
                end.closer = Some(tail.closer()?);
            }
            let mut dec = StreamDecoder::from_header_bytes(&tail.header)
                .with_context(|| format!("bad stream header for '{name}'"))?;
            loop {
                match tail.next()? {
                    Some(TailItem::Data {
                        buffer,
                        missed_events,
                        ..
                    }) => {
                        let mut batch = Vec::new();
                        dec.feed(&buffer, |e| {
                            batch.extend(to_message(&e));
                            Ok(())
                        })?;
                        if tx
                            .send(Input::Messages {
                                source,
                                batch,
                                missed: missed_events,
                            })
                            .is_err()
                        {
                            return Ok(String::new());
                        }
                    }
                    Some(TailItem::End {
                        session,
                        missed_events,
                        ..
                    }) => {
                        let _ = tx.send(Input::Messages {
                            source,
                            batch: Vec::new(),
                            missed: missed_events,
                        });
                        return Ok(format!(
                            "'{}' is {}: its live stream ended",
                            session.name,
                            session.state.name()
                        ));
                    }
                    None => return Ok(format!("the live stream of '{name}' ended")),
                }
            }
        })();
        let text = result.unwrap_or_else(|e| format!("live messages of '{name}': {e:#}"));
        let _ = tx.send(Input::SourceEnded { source, text });
    });
}

fn spawn_watch(connect: Connect, tx: Sender<Input>) {
    std::thread::spawn(move || {
        let result = (|| -> Result<()> {
            let mut watch = connect()?.watch()?;
            loop {
                let input = match watch.next()? {
                    WatchEvent::Change(kind, info) => Input::Change(kind, info),
                    WatchEvent::Lagged { skipped } => Input::WatchStatus(format!(
                        "the session list fell behind: {skipped} changes skipped; catching up"
                    )),
                    WatchEvent::Resynced => {
                        Input::WatchStatus("the session list caught up".to_string())
                    }
                };
                if tx.send(input).is_err() {
                    return Ok(());
                }
            }
        })();
        let text = match result {
            Ok(()) => return,
            Err(e) => format!("the session list stopped updating: {e:#}"),
        };
        let _ = tx.send(Input::WatchEnded(text));
    });
}

/// Puts the terminal back as it was; safe to call more than once.
fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Restores the terminal when the viewer returns or unwinds.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Everything the main thread owns.
struct App {
    connect: Connect,
    model: Model,
    control: Option<Client>,
    tx: Sender<Input>,
    /// The number the next message source gets.
    next_source: u64,
    /// Live streams by source number, one per session with a store at
    /// most; the model's store cap bounds how many run at once.
    streams: HashMap<u64, Stream>,
    /// The log file source shown, if any; messages of files left behind
    /// are dropped.
    file_source: Option<u64>,
    /// The session whose live messages are shown, if any.
    tailing: Option<RowKey>,
    epoch: Instant,
}

impl App {
    fn client(&mut self) -> Result<&mut Client> {
        if self.control.is_none() {
            self.control = Some((self.connect)()?);
        }
        Ok(self.control.as_mut().expect("connected above"))
    }

    /// Runs a control call; a broken connection is dropped so that the
    /// next call connects afresh.
    fn call<T>(&mut self, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let r = self.client().and_then(f);
        if r.is_err() {
            self.control = None;
        }
        r
    }

    fn new_source(&mut self) -> u64 {
        self.next_source += 1;
        self.next_source
    }

    fn streaming(&self, key: &RowKey) -> bool {
        self.streams.values().any(|s| &s.key == key)
    }

    /// Closes the stream of a session whose store is gone.
    fn close_stream_of(&mut self, key: &RowKey) {
        self.streams.retain(|_, s| {
            if &s.key == key {
                s.close();
                false
            } else {
                true
            }
        });
    }

    /// Shows the selected session's live messages, or says why it cannot.
    fn tail_selected(&mut self) {
        let Some(row) = self.model.selected_row() else {
            return;
        };
        let info = row.info.clone();
        // The last result was about the row left behind.
        self.model.status.clear();
        let key = RowKey::of(&info);
        self.tailing = Some(key.clone());
        self.file_source = None;
        let streamable = info.realtime && info.state == ferret_abi::proto::SessionState::Running;
        // A session with no live messages and none kept gets no store of
        // its own, so that looking at it does not push a live session's
        // messages out of the cap.
        if !streamable && !self.model.has_store(&key) {
            self.model.set_source(format!("live: {}", info.name));
        } else {
            for gone in self
                .model
                .show_session(key.clone(), format!("live: {}", info.name))
            {
                self.close_stream_of(&gone);
            }
        }
        // A session switched away from kept its stream: its messages went
        // on into its store, so there is nothing to start.
        if self.streaming(&key) {
            return;
        }
        if !info.realtime {
            self.model.status = format!(
                "'{}' is not a real-time session, so it has no live messages; o opens its log",
                info.name
            );
            return;
        }
        if info.state != ferret_abi::proto::SessionState::Running {
            self.model.status =
                format!("'{}' is {}; o opens its log", info.name, info.state.name());
            return;
        }
        let source = self.new_source();
        let end = Arc::new(Mutex::new(StreamEnd::default()));
        self.streams.insert(
            source,
            Stream {
                key,
                end: end.clone(),
            },
        );
        spawn_tail(
            self.connect.clone(),
            info.name,
            source,
            end,
            self.tx.clone(),
        );
    }

    fn open_files(&mut self, files: Vec<PathBuf>) {
        let source = self.new_source();
        self.file_source = Some(source);
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        self.model.set_source(names.join(", "));
        self.model.cursor = None;
        // The file is shown until the user picks a session again.
        self.tailing = self.model.selected.clone();
        spawn_files(files, source, self.tx.clone());
    }

    fn effect(&mut self, e: Effect) {
        let result = match e {
            Effect::Stop { name, token } => self
                .call(|c| Ok(c.stop_mine(&SessionRef::Name(name.clone()), token, false)?))
                .map(|s| format!("stopping '{}' (LoggerID {})", s.name, s.logger_id)),
            Effect::Flush { name } => {
                self.call(|c| Ok(c.flush(&SessionRef::Name(name))?))
                    .map(|s| {
                        format!(
                            "flushed '{}': {} buffers written",
                            s.name, s.counters.buffers_written
                        )
                    })
            }
            Effect::Query { name } => {
                self.call(|c| Ok(c.query(&SessionRef::Name(name))?))
                    .map(|s| {
                        self.model.overlay = Overlay::Properties(Box::new(s), 0);
                        String::new()
                    })
            }
            Effect::Remove { name } => {
                self.call(|c| Ok(c.remove(&SessionRef::Name(name))?))
                    .map(|s| {
                        if s.file_mode.has_file() {
                            format!(
                                "removed '{}' from the list; its log stays at {}",
                                s.name, s.log_file
                            )
                        } else {
                            format!("removed '{}' from the list", s.name)
                        }
                    })
            }
            Effect::OpenLog { path } => {
                self.open_files(vec![PathBuf::from(&path)]);
                Ok(format!("reading {path}"))
            }
            Effect::Start(form) => self.start(form),
        };
        self.model.status = match result {
            Ok(text) => text,
            Err(e) => format!("{e:#}"),
        };
    }

    fn start(&mut self, form: StartForm) -> Result<String> {
        let plan = form
            .plan(&format!("ferret view pid {}", std::process::id()))
            .map_err(|e| anyhow!(e))?;
        let started = self.call(|c| Ok(c.start_plan(&plan)?))?;
        let info = started.session;
        self.model.started(&info, started.token);
        // The feed reports the session too; applying it now selects it at
        // once, and the feed's copy updates the same row.
        let second = self.epoch.elapsed().as_secs();
        self.model.apply(ChangeKind::Created, info.clone(), second);
        self.model.selected = Some(RowKey::of(&info));
        self.tail_selected();
        Ok(format!(
            "started '{}' as LoggerID {}; s stops it",
            info.name, info.logger_id
        ))
    }

    fn handle(&mut self, input: Input, screen: Rect) -> bool {
        match input {
            Input::Term(Event::Key(k)) => {
                let o = input::key(&mut self.model, k);
                return self.outcome(o);
            }
            Input::Term(Event::Mouse(e)) => {
                let o = input::mouse(&mut self.model, e, screen);
                return self.outcome(o);
            }
            Input::Term(_) => {}
            Input::Change(kind, info) => {
                let second = self.epoch.elapsed().as_secs();
                let key = RowKey::of(&info);
                self.model.apply(kind, *info, second);
                // The model dropped a removed session's store; its stream
                // goes too.
                if kind == ChangeKind::Removed {
                    self.close_stream_of(&key);
                }
                // The first session listed is shown without a key press.
                if self.tailing.is_none() && self.model.selected.is_some() {
                    self.tail_selected();
                }
            }
            Input::WatchEnded(text) | Input::WatchStatus(text) => self.model.status = text,
            Input::Messages {
                source,
                batch,
                missed,
            } => {
                if let Some(s) = self.streams.get(&source) {
                    let key = s.key.clone();
                    self.model.push_to(&key, batch, missed);
                } else if self.file_source == Some(source) {
                    for m in batch {
                        self.model.push_message(m);
                    }
                    self.model.set_missed(missed);
                }
            }
            Input::SourceEnded { source, text } => {
                let shown = match self.streams.remove(&source) {
                    Some(s) => self.model.shown.as_ref() == Some(&s.key),
                    None => self.file_source == Some(source),
                };
                if shown && !text.is_empty() {
                    self.model.status = text;
                }
            }
        }
        true
    }

    /// Carries out an input's outcome; false to quit.
    fn outcome(&mut self, o: Outcome) -> bool {
        match o {
            Outcome::Nothing => {}
            Outcome::Quit => return false,
            Outcome::Do(e) => self.effect(e),
            Outcome::Tail => {
                // Moving onto the row already shown keeps its messages; a
                // log file opened meanwhile gives way to live messages.
                if self.model.live
                    && (self.model.selected != self.tailing
                        || !self.model.source.starts_with("live: "))
                {
                    self.tail_selected();
                }
            }
            Outcome::Providers => match self.call(|c| Ok(c.providers()?)) {
                Ok(list) => {
                    let mut names: Vec<String> = list.into_iter().map(|p| p.name).collect();
                    names.sort();
                    names.dedup();
                    self.model.registered = names;
                }
                Err(e) => self.model.status = format!("cannot list providers: {e:#}"),
            },
        }
        true
    }
}

/// Runs the viewer until the user quits: over the live session list that
/// `connect` reaches, or over `files` when some are given.
pub fn run(connect: Connect, files: Vec<PathBuf>) -> Result<ExitCode> {
    let (tx, rx) = mpsc::channel();
    let live = files.is_empty();
    let mut app = App {
        connect: connect.clone(),
        model: Model::new(live),
        control: None,
        tx: tx.clone(),
        next_source: 0,
        streams: HashMap::new(),
        file_source: None,
        tailing: None,
        epoch: Instant::now(),
    };
    if live {
        // Connect before taking over the terminal, so that a missing
        // daemon is reported as every other command reports it.
        app.client()?;
        spawn_watch(connect, tx.clone());
    } else {
        app.open_files(files);
    }

    let prev_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev_hook(info);
    }));
    enable_raw_mode().context("the terminal does not support raw mode")?;
    let _guard = TerminalGuard;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;

    std::thread::spawn(move || {
        while let Ok(e) = crossterm::event::read() {
            if tx.send(Input::Term(e)).is_err() {
                break;
            }
        }
    });
    main_loop(&mut app, &mut terminal, &rx)?;
    Ok(ExitCode::SUCCESS)
}

fn main_loop(
    app: &mut App,
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    rx: &Receiver<Input>,
) -> Result<()> {
    loop {
        terminal.draw(|f| render::draw(f, &app.model))?;
        let size = terminal.size()?;
        let screen = Rect::new(0, 0, size.width, size.height);
        // Redraw at least twice a second so that the clock-driven parts
        // move even when nothing arrives.
        let first = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(i) => i,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        if !app.handle(first, screen) {
            return Ok(());
        }
        // Take what else is waiting before drawing again, so that a busy
        // session costs one frame per batch of buffers, not per buffer.
        for _ in 0..256 {
            match rx.try_recv() {
                Ok(i) => {
                    if !app.handle(i, screen) {
                        return Ok(());
                    }
                }
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferret_abi::record::LostReason;

    #[test]
    fn losses_and_process_ends_are_lines_of_their_own() {
        let lost = to_message(&Entry::Lost {
            timestamp_ns: 5,
            pid: 7,
            provider: "",
            reason: LostReason::RingFull,
            count: 12,
        })
        .expect("a line");
        assert_eq!(
            (lost.event.as_str(), lost.provider.as_str(), lost.level),
            ("LOST", "?", 0)
        );
        assert!(lost.fields.starts_with("12 events lost"), "{}", lost.fields);

        let end = to_message(&Entry::ProcessEnd {
            timestamp_ns: 6,
            pid: 7,
            process: "worker",
        })
        .expect("a line");
        assert_eq!((end.event.as_str(), end.tid), ("ENDED", 0));
        assert_eq!(end.fields, "process worker");
    }
}
