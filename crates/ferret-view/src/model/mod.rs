//! The viewer's state, with no terminal and no sockets. This module owns
//! the model itself: the session rows the watch feed describes, selection,
//! which sessions this viewer started and which actions a row allows, and
//! the cursor that follows or pauses; each other idea has a file below it.
//! Every input is a plain value, so the tests drive it directly.

mod filter;
mod form;
mod highlight;
mod messages;
mod overlay;
mod rates;

pub use filter::{Filter, contains_ci};
pub use form::StartForm;
pub use highlight::{Colour, Highlight};
pub use messages::{DEFAULT_CAPACITY, DEFAULT_MAX_STORES, Message, MessageStore};
pub use overlay::{Menu, Overlay, Prompt};
pub use rates::{RATE_SECONDS, RateHistory};

use std::collections::HashMap;

use ferret_abi::proto::{ChangeKind, SessionInfo, SessionState};

/// What identifies one session across the feed: LoggerIDs are reused after
/// a remove, but not together with the same start time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RowKey {
    pub logger_id: u32,
    pub started_unix_ns: u64,
}

impl RowKey {
    pub fn of(s: &SessionInfo) -> RowKey {
        RowKey {
            logger_id: s.logger_id,
            started_unix_ns: s.started_unix_ns,
        }
    }
}

/// One row of the Trace Session List.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRow {
    pub info: SessionInfo,
    pub rate: RateHistory,
}

/// Actions on a session row, from keys or the context menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Stop,
    Flush,
    Query,
    Remove,
    OpenLog,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Stop,
        Action::Flush,
        Action::Query,
        Action::Remove,
        Action::OpenLog,
    ];

    /// The menu label, with the key that does the same.
    pub fn label(self) -> &'static str {
        match self {
            Action::Stop => "Stop Trace      s",
            Action::Flush => "Flush           f",
            Action::Query => "Query           i",
            Action::Remove => "Remove          r",
            Action::OpenLog => "Open log        o",
        }
    }
}

/// What the I/O layer must do for an action or a form; the model never
/// talks to the daemon itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Stop with `stop_mine`, proving ownership with the token.
    Stop {
        name: String,
        token: u64,
    },
    Flush {
        name: String,
    },
    Query {
        name: String,
    },
    Remove {
        name: String,
    },
    /// Decode a log file into the message pane.
    OpenLog {
        path: String,
    },
    /// Start a session from the form's values.
    Start(StartForm),
}

/// Which pane keys move in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Focus {
    #[default]
    Sessions,
    Messages,
}

/// The whole viewer state.
#[derive(Debug)]
pub struct Model {
    /// Rows in LoggerID order.
    pub sessions: Vec<SessionRow>,
    /// The selected row's session.
    pub selected: Option<RowKey>,
    /// Tokens of the sessions this viewer started.
    tokens: HashMap<RowKey, u64>,
    /// The messages shown now: the shown session's store, or a file's.
    pub messages: MessageStore,
    /// The session whose store `messages` is; None for files or nothing.
    pub shown: Option<RowKey>,
    /// The stores of the other sessions still kept, with the cursor each
    /// had, so that switching back shows what was received meanwhile.
    parked: HashMap<RowKey, (MessageStore, Option<u64>)>,
    /// Sessions with a store, the one shown least recently first.
    recency: Vec<RowKey>,
    /// The most messages each store keeps.
    pub capacity: usize,
    /// The most sessions with a store at once.
    pub max_stores: usize,
    /// Sessions whose stores were dropped to stay within `max_stores`.
    pub stores_dropped: u64,
    /// What the message pane shows now, e.g. `live: web` or a file name.
    pub source: String,
    pub filter: Filter,
    /// The last text searched for.
    pub find: String,
    /// The user's highlight rules, oldest first.
    pub highlights: Vec<Highlight>,
    /// The message under the cursor while paused; None while following.
    pub cursor: Option<u64>,
    pub overlay: Overlay,
    pub focus: Focus,
    /// One line at the bottom: the last result, hint or error.
    pub status: String,
    /// Providers registered now, for the form's completion.
    pub registered: Vec<String>,
    /// Whether the session list is shown (not when viewing files only).
    pub live: bool,
}

impl Model {
    pub fn new(live: bool) -> Model {
        Model {
            sessions: Vec::new(),
            selected: None,
            tokens: HashMap::new(),
            messages: MessageStore::new(DEFAULT_CAPACITY),
            shown: None,
            parked: HashMap::new(),
            recency: Vec::new(),
            capacity: DEFAULT_CAPACITY,
            max_stores: DEFAULT_MAX_STORES,
            stores_dropped: 0,
            source: String::new(),
            filter: Filter::default(),
            find: String::new(),
            highlights: Vec::new(),
            cursor: None,
            overlay: Overlay::None,
            focus: if live {
                Focus::Sessions
            } else {
                Focus::Messages
            },
            status: String::new(),
            registered: Vec::new(),
            live,
        }
    }

    // ---- sessions ----

    /// Applies one change from the watch feed; `second` is the viewer's
    /// clock in seconds, for the rate history.
    pub fn apply(&mut self, kind: ChangeKind, info: SessionInfo, second: u64) {
        let key = RowKey::of(&info);
        let pos = self
            .sessions
            .iter()
            .position(|r| RowKey::of(&r.info) == key);
        if kind == ChangeKind::Removed {
            if let Some(i) = pos {
                self.sessions.remove(i);
                self.tokens.remove(&key);
                self.forget(&key);
                if self.selected.as_ref() == Some(&key) {
                    self.selected = self
                        .sessions
                        .get(i.min(self.sessions.len().saturating_sub(1)))
                        .map(|r| RowKey::of(&r.info));
                }
            }
            return;
        }
        let i = match pos {
            Some(i) => {
                self.sessions[i].info = info;
                i
            }
            None => {
                let at = self
                    .sessions
                    .iter()
                    .position(|r| r.info.logger_id > info.logger_id)
                    .unwrap_or(self.sessions.len());
                self.sessions.insert(
                    at,
                    SessionRow {
                        info,
                        rate: RateHistory::default(),
                    },
                );
                at
            }
        };
        let events = self.sessions[i].info.counters.events;
        self.sessions[i].rate.record(second, events);
        if self.selected.is_none() {
            self.selected = Some(key);
        }
    }

    /// Remembers that this viewer started the session, with its token.
    pub fn started(&mut self, info: &SessionInfo, token: u64) {
        self.tokens.insert(RowKey::of(info), token);
    }

    /// Whether this viewer started the session.
    pub fn is_mine(&self, info: &SessionInfo) -> bool {
        self.tokens.contains_key(&RowKey::of(info))
    }

    pub fn selected_index(&self) -> Option<usize> {
        let key = self.selected.as_ref()?;
        self.sessions
            .iter()
            .position(|r| RowKey::of(&r.info) == *key)
    }

    pub fn selected_row(&self) -> Option<&SessionRow> {
        self.selected_index().map(|i| &self.sessions[i])
    }

    /// Moves the selection by `delta` rows, staying in the list.
    pub fn select_by(&mut self, delta: isize) {
        if self.sessions.is_empty() {
            return;
        }
        let i = self.selected_index().unwrap_or(0) as isize + delta;
        let i = i.clamp(0, self.sessions.len() as isize - 1) as usize;
        self.selected = Some(RowKey::of(&self.sessions[i].info));
    }

    pub fn select_index(&mut self, i: usize) {
        if let Some(r) = self.sessions.get(i) {
            self.selected = Some(RowKey::of(&r.info));
        }
    }

    /// Each action and whether the row allows it.
    pub fn actions(&self, info: &SessionInfo) -> Vec<(Action, bool)> {
        Action::ALL
            .iter()
            .map(|&a| {
                let enabled = match a {
                    Action::Stop => self.is_mine(info) && info.state == SessionState::Running,
                    Action::Flush => info.state == SessionState::Running,
                    Action::Query => true,
                    Action::Remove => info.state == SessionState::Stopped,
                    Action::OpenLog => info.file_mode.has_file() && !info.log_file.is_empty(),
                };
                (a, enabled)
            })
            .collect()
    }

    /// Carries out `action` on the selected row: an effect for the I/O
    /// layer, or None with the reason in the status line.
    pub fn choose(&mut self, action: Action) -> Option<Effect> {
        let Some(row) = self.selected_row() else {
            self.status = "no session is selected".into();
            return None;
        };
        let info = row.info.clone();
        let enabled = self.actions(&info).iter().any(|&(a, on)| a == action && on);
        if !enabled {
            self.status = disabled_reason(action, &info, self.is_mine(&info));
            return None;
        }
        let name = info.name.clone();
        Some(match action {
            Action::Stop => Effect::Stop {
                name,
                token: self.tokens[&RowKey::of(&info)],
            },
            Action::Flush => Effect::Flush { name },
            Action::Query => Effect::Query { name },
            Action::Remove => Effect::Remove { name },
            Action::OpenLog => Effect::OpenLog {
                path: info.log_file.clone(),
            },
        })
    }

    /// Opens the context menu on row `i` at a cell.
    pub fn open_menu(&mut self, i: usize, x: u16, y: u16) {
        self.select_index(i);
        if let Some(key) = self.selected.clone() {
            self.overlay = Overlay::Menu(Menu {
                key,
                x,
                y,
                selected: 0,
            });
        }
    }

    // ---- follow and pause ----

    pub fn following(&self) -> bool {
        self.cursor.is_none()
    }

    /// The cursor's message: the chosen one while paused, else the newest.
    pub fn cursor_seq(&self, visible: &[u64]) -> Option<u64> {
        match self.cursor {
            Some(c) if self.messages.get(c).is_some() => {
                // The cursor's message may be filtered out now: take the
                // nearest visible one before it.
                match visible.binary_search(&c) {
                    Ok(_) => Some(c),
                    Err(0) => visible.first().copied(),
                    Err(i) => Some(visible[i - 1]),
                }
            }
            Some(_) => visible.first().copied(),
            None => visible.last().copied(),
        }
    }

    /// Pauses (the view stops moving) or follows the newest message again.
    pub fn toggle_follow(&mut self) {
        if self.cursor.is_some() {
            self.cursor = None;
        } else {
            let v = self.visible();
            self.cursor = v.last().copied();
        }
    }

    /// Moves the cursor by `delta` visible messages and pauses; moving past
    /// the newest follows again.
    pub fn scroll(&mut self, delta: isize) {
        let v = self.visible();
        if v.is_empty() {
            return;
        }
        let cur = self.cursor_seq(&v).unwrap_or(v[v.len() - 1]);
        let i = v.binary_search(&cur).unwrap_or_else(|i| i.min(v.len() - 1)) as isize;
        let j = i + delta;
        if j >= v.len() as isize {
            self.cursor = None;
        } else {
            self.cursor = Some(v[j.max(0) as usize]);
        }
    }

    pub fn scroll_home(&mut self) {
        self.cursor = self.visible().first().copied();
    }
}

/// Why an action is not available on a row, and for a session this viewer
/// did not start, the command that stops it.
pub fn disabled_reason(action: Action, info: &SessionInfo, mine: bool) -> String {
    let name = &info.name;
    match action {
        // The command comes first so that even an 80-column status line
        // shows it whole.
        Action::Stop if !mine => format!(
            "'{name}' was started elsewhere: stop it with 'ferret stop {name}' (this viewer stops only the sessions it started; this one: {})",
            if info.controller.is_empty() {
                "another controller"
            } else {
                &info.controller
            }
        ),
        Action::Stop => format!("'{name}' is {} already", info.state.name()),
        Action::Flush => format!(
            "'{name}' is {}; only running sessions flush",
            info.state.name()
        ),
        Action::Remove => format!(
            "'{name}' is {}; only STOPPED sessions can be removed",
            info.state.name()
        ),
        Action::OpenLog => format!("'{name}' has no log file ({} mode)", info.file_mode.name()),
        Action::Query => String::new(),
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use ferret_abi::proto::{Counters, FileMode};

    /// A session as the feed would describe it, with fixed times.
    pub fn session(id: u32, name: &str, state: SessionState) -> SessionInfo {
        SessionInfo {
            logger_id: id,
            name: name.into(),
            state,
            providers: Vec::new(),
            log_file: format!("/tmp/{name}.ferret"),
            buffer_kib: 64,
            max_buffers: 64,
            flush_timer_ms: 1000,
            clock: "tsc".into(),
            owner_uid: 1000,
            started_unix_ns: 1_796_136_357_000_000_000 + u64::from(id),
            stopped_unix_ns: 0,
            counters: Counters::default(),
            last_error: None,
            min_buffers: 64,
            file_mode: FileMode::Sequential,
            max_file_bytes: 0,
            realtime: true,
            consumers: 0,
            controller: format!("ferret start pid {}", 100 + id),
            provider_lost: Vec::new(),
            no_loss: false,
            no_loss_wait_ms: 1000,
            files_synced: 0,
        }
    }

    pub fn message(i: u64, provider: &str, level: u8, fields: &str) -> Message {
        Message {
            timestamp_ns: 1_796_136_357_910_000_000 + i * 1_000_000,
            provider: provider.into(),
            event: "Sample".into(),
            level,
            pid: 42,
            tid: 43,
            fields: fields.into(),
        }
    }

    #[test]
    fn rows_follow_the_feed_in_logger_id_order_and_go_on_remove() {
        let mut m = Model::new(true);
        m.apply(
            ChangeKind::Present,
            session(2, "b", SessionState::Running),
            0,
        );
        m.apply(
            ChangeKind::Created,
            session(1, "a", SessionState::Running),
            0,
        );
        let ids: Vec<u32> = m.sessions.iter().map(|r| r.info.logger_id).collect();
        assert_eq!(ids, [1, 2]);
        // The first session seen is selected, and stays so.
        assert_eq!(m.selected_row().unwrap().info.name, "b");

        m.apply(
            ChangeKind::State,
            session(2, "b", SessionState::Stopping),
            1,
        );
        assert_eq!(m.sessions[1].info.state, SessionState::Stopping);
        m.apply(ChangeKind::State, session(2, "b", SessionState::Stopped), 1);
        assert_eq!(m.sessions[1].info.state, SessionState::Stopped);

        m.apply(
            ChangeKind::Removed,
            session(2, "b", SessionState::Stopped),
            2,
        );
        assert_eq!(m.sessions.len(), 1);
        // The selection moves to a row that is still there.
        assert_eq!(m.selected_row().unwrap().info.name, "a");
    }

    #[test]
    fn a_reused_logger_id_is_a_new_row_not_an_update() {
        let mut m = Model::new(true);
        let old = session(1, "a", SessionState::Stopped);
        m.apply(ChangeKind::Present, old.clone(), 0);
        m.started(&old, 7);
        m.apply(ChangeKind::Removed, old, 1);
        let mut new = session(1, "c", SessionState::Running);
        new.started_unix_ns += 5;
        m.apply(ChangeKind::Created, new.clone(), 2);
        assert_eq!(m.sessions.len(), 1);
        // The token belonged to the removed session, not to the new one.
        assert!(!m.is_mine(&new));
    }

    #[test]
    fn counters_from_the_feed_fill_the_rate_history() {
        let mut m = Model::new(true);
        let mut s = session(1, "a", SessionState::Running);
        m.apply(ChangeKind::Present, s.clone(), 100);
        s.counters.events = 2000;
        m.apply(ChangeKind::Counters, s.clone(), 101);
        s.counters.events = 2500;
        m.apply(ChangeKind::Counters, s, 102);
        assert_eq!(
            m.sessions[0].rate.buckets().collect::<Vec<_>>(),
            [2000, 500]
        );
    }

    #[test]
    fn only_sessions_started_here_can_be_stopped_and_the_hint_names_the_command() {
        let mut m = Model::new(true);
        let theirs = session(1, "web", SessionState::Running);
        let mine = session(2, "mine", SessionState::Running);
        m.apply(ChangeKind::Present, theirs.clone(), 0);
        m.apply(ChangeKind::Created, mine.clone(), 0);
        m.started(&mine, 99);

        assert!(!m.actions(&theirs).contains(&(Action::Stop, true)));
        assert!(m.actions(&mine).contains(&(Action::Stop, true)));

        m.select_index(0);
        assert_eq!(m.choose(Action::Stop), None);
        assert!(m.status.contains("started elsewhere"), "{}", m.status);
        assert!(m.status.contains("ferret start pid 101"), "{}", m.status);
        assert!(
            m.status.contains("stop it with 'ferret stop web'"),
            "{}",
            m.status
        );

        m.select_index(1);
        assert_eq!(
            m.choose(Action::Stop),
            Some(Effect::Stop {
                name: "mine".into(),
                token: 99
            })
        );
    }

    #[test]
    fn remove_only_for_stopped_flush_only_for_running_open_log_only_with_a_file() {
        let mut m = Model::new(true);
        let running = session(1, "run", SessionState::Running);
        let mut stopped = session(2, "done", SessionState::Stopped);
        stopped.file_mode = FileMode::RealTime;
        stopped.log_file.clear();
        m.apply(ChangeKind::Present, running.clone(), 0);
        m.apply(ChangeKind::Present, stopped.clone(), 0);
        let on = |acts: Vec<(Action, bool)>| -> Vec<Action> {
            acts.into_iter().filter(|a| a.1).map(|a| a.0).collect()
        };
        assert_eq!(
            on(m.actions(&running)),
            [Action::Flush, Action::Query, Action::OpenLog]
        );
        assert_eq!(on(m.actions(&stopped)), [Action::Query, Action::Remove]);

        m.select_index(0);
        assert_eq!(m.choose(Action::Remove), None);
        assert!(m.status.contains("only STOPPED sessions"), "{}", m.status);
        assert_eq!(
            m.choose(Action::OpenLog),
            Some(Effect::OpenLog {
                path: "/tmp/run.ferret".into()
            })
        );
        m.select_index(1);
        assert_eq!(
            m.choose(Action::Remove),
            Some(Effect::Remove {
                name: "done".into()
            })
        );
    }

    #[test]
    fn the_context_menu_opens_on_the_clicked_row() {
        let mut m = Model::new(true);
        m.apply(
            ChangeKind::Present,
            session(1, "a", SessionState::Running),
            0,
        );
        m.apply(
            ChangeKind::Present,
            session(2, "b", SessionState::Running),
            0,
        );
        m.open_menu(1, 30, 4);
        assert_eq!(m.selected_row().unwrap().info.name, "b");
        match &m.overlay {
            Overlay::Menu(menu) => assert_eq!((menu.x, menu.y, menu.key.logger_id), (30, 4, 2)),
            o => panic!("no menu: {o:?}"),
        }
    }

    #[test]
    fn follow_pause_scroll_and_find() {
        let mut m = Model::new(false);
        for i in 0..10 {
            let p = if i % 3 == 0 { "Needle" } else { "Hay" };
            m.push_message(message(i, p, 4, &format!("seq={i}")));
        }
        assert!(m.following());
        assert_eq!(m.cursor_seq(&m.visible()), Some(9));
        m.scroll(-2);
        assert_eq!(m.cursor, Some(7));
        // New messages do not move a paused view.
        m.push_message(message(10, "Hay", 4, "seq=10"));
        assert_eq!(m.cursor_seq(&m.visible()), Some(7));
        m.scroll(100);
        assert!(m.following());

        m.find = "needle".into();
        m.scroll_home();
        assert!(m.find_next(true));
        assert_eq!(m.cursor, Some(3));
        assert!(m.find_next(true));
        assert_eq!(m.cursor, Some(6));
        assert!(m.find_next(false));
        assert_eq!(m.cursor, Some(3));
        assert!(m.find_next(false));
        assert_eq!(m.cursor, Some(0));
        assert!(!m.find_next(false));
        assert!(m.status.contains("not found"));

        m.toggle_follow();
        assert!(m.following());
        m.toggle_follow();
        assert_eq!(m.cursor, Some(10));
    }

    #[test]
    fn a_filtered_out_cursor_lands_on_the_nearest_visible_message() {
        let mut m = Model::new(false);
        for i in 0..5 {
            m.push_message(message(i, if i == 2 { "B" } else { "A" }, 4, ""));
        }
        m.cursor = Some(2);
        m.filter.provider = "a".into();
        assert_eq!(m.cursor_seq(&m.visible()), Some(1));
    }
}
