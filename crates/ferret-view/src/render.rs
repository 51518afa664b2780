//! Drawing the model with ratatui. Pure functions of the model and the
//! frame size, so that TestBackend snapshots show exactly what a terminal
//! shows. `layout` is shared with mouse handling, so that a click maps to
//! the row that was drawn under it.

use ferret_abi::proto::{FileMode, SessionState};
use ferret_decode::{format_timestamp, level_name};
use std::path::Path;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table};

use super::model::{Colour, Focus, Message, Model, Overlay, RATE_SECONDS, StartForm};

/// Where each part of the screen goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    /// The session table with its border; zero height when viewing files.
    pub sessions: Rect,
    pub messages: Rect,
    pub status: Rect,
    pub footer: Rect,
}

/// Width from which the table shows every column.
const WIDE: u16 = 120;

pub fn layout(area: Rect, m: &Model) -> Areas {
    let body = area.height.saturating_sub(2);
    let sessions_h = if m.live {
        // Two border lines, the header and one line a row; at most 40% of
        // the body so that messages always have most of the screen.
        let wanted = m.sessions.len() as u16 + 3;
        wanted.clamp(4, (body * 2 / 5).max(4))
    } else {
        0
    };
    // A status longer than the screen is wide (the hint for a session
    // started elsewhere, on 80 columns) gets a second line rather than
    // losing its end.
    let status_h = if m.status.chars().count() > area.width as usize {
        2
    } else {
        1
    };
    let [sessions, messages, status, footer] = Layout::vertical([
        Constraint::Length(sessions_h),
        Constraint::Min(3),
        Constraint::Length(status_h),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas {
        sessions,
        messages,
        status,
        footer,
    }
}

/// The first row the table shows, keeping the selected row in view.
pub fn table_offset(m: &Model, area: Rect) -> usize {
    let rows = area.height.saturating_sub(3).max(1) as usize;
    m.selected_index().unwrap_or(0).saturating_sub(rows - 1)
}

/// The session row drawn at terminal row `y`, if any.
pub fn row_at(m: &Model, area: Rect, y: u16) -> Option<usize> {
    let first = area.y + 2;
    if y < first || y >= area.y + area.height.saturating_sub(1) {
        return None;
    }
    let i = table_offset(m, area) + (y - first) as usize;
    (i < m.sessions.len()).then_some(i)
}

pub fn draw(f: &mut Frame<'_>, m: &Model) {
    let a = layout(f.area(), m);
    if m.live {
        sessions(f, m, a.sessions);
    }
    messages(f, m, a.messages);
    status(f, m, a.status);
    footer(f, m, a.footer);
    match &m.overlay {
        Overlay::None | Overlay::Prompt(..) => {}
        Overlay::Help => help(f),
        Overlay::Properties(info, scroll) => properties(f, info, *scroll),
        Overlay::Menu(menu) => {
            if let Some(row) = m.sessions.iter().find(|r| {
                r.info.logger_id == menu.key.logger_id
                    && r.info.started_unix_ns == menu.key.started_unix_ns
            }) {
                let items: Vec<(String, bool)> = m
                    .actions(&row.info)
                    .into_iter()
                    .map(|(a, on)| (a.label().to_string(), on))
                    .collect();
                context_menu(f, &items, menu.selected, menu.x, menu.y);
            }
        }
        Overlay::Form(form) => start_form(f, form),
    }
}

fn focused_block(title: String, focused: bool) -> Block<'static> {
    let b = Block::bordered().title(title);
    if focused {
        b.border_style(Style::new().fg(Color::Cyan))
    } else {
        b
    }
}

fn state_style(s: SessionState) -> Style {
    match s {
        SessionState::Running => Style::new().fg(Color::Green),
        SessionState::Stopping => Style::new().fg(Color::Yellow),
        SessionState::Stopped => Style::new().fg(Color::DarkGray),
    }
}

fn sessions(f: &mut Frame<'_>, m: &Model, area: Rect) {
    let wide = area.width >= WIDE;
    // The sparkline gets the whole minute of history when there is room.
    let spark_w = if area.width >= 180 {
        RATE_SECONDS
    } else if wide {
        30
    } else {
        8
    };
    let spark_title = format!("LAST {spark_w}s");
    let mut header = vec![
        "ID",
        "NAME",
        "STATE",
        "   EVENTS",
        " LOST",
        " BUFS",
        "RATE/s",
    ];
    header.push(&spark_title);
    header.push("MINE");
    if wide {
        header.extend(["PROVIDERS", "OWNER"]);
    }
    header.push("LOG FILE");
    let offset = table_offset(m, area);
    let selected = m.selected_index();
    let rows: Vec<Row<'_>> = m
        .sessions
        .iter()
        .enumerate()
        .skip(offset)
        .map(|(i, r)| {
            let s = &r.info;
            let c = &s.counters;
            let mut cells = vec![
                Cell::from(format!("{:>3}", s.logger_id)),
                Cell::from(s.name.clone()),
                Cell::from(s.state.name()).style(state_style(s.state)),
                Cell::from(format!("{:>9}", c.events)),
                Cell::from(format!("{:>5}", c.events_lost)).style(if c.events_lost > 0 {
                    Style::new().fg(Color::Red)
                } else {
                    Style::new()
                }),
                Cell::from(format!("{:>5}", c.buffers_written)),
                Cell::from(format!("{:>6}", r.rate.rate())),
                Cell::from(r.rate.sparkline(spark_w)).style(Style::new().fg(Color::Cyan)),
                Cell::from(if m.is_mine(s) { "yes" } else { " -" }),
            ];
            if wide {
                let providers: Vec<&str> = s.providers.iter().map(|p| p.name.as_str()).collect();
                cells.push(Cell::from(providers.join(",")));
                cells.push(Cell::from(s.owner_uid.to_string()));
            }
            cells.push(Cell::from(match s.file_mode {
                FileMode::RealTime => "(real-time)".to_string(),
                FileMode::InMemory => "(in memory)".to_string(),
                // A narrow screen has room for the file's name only; the
                // properties panel has the whole path.
                _ if !wide => Path::new(&s.log_file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| s.log_file.clone()),
                _ => s.log_file.clone(),
            }));
            let row = Row::new(cells);
            if Some(i) == selected {
                row.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                row
            }
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(3),
        Constraint::Length(if wide { 16 } else { 10 }),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(spark_w as u16),
        Constraint::Length(4),
    ];
    if wide {
        widths.extend([Constraint::Length(24), Constraint::Length(6)]);
    }
    widths.push(Constraint::Fill(1));
    let title = format!(" Trace Sessions ({}) ", m.sessions.len());
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .column_spacing(1)
        .block(focused_block(title, m.focus == Focus::Sessions));
    f.render_widget(table, area);
}

/// The style of a message line: highlight rules by level.
pub fn level_style(level: u8) -> Style {
    match level {
        0 => Style::new().fg(Color::Magenta),
        1 => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        2 => Style::new().fg(Color::Red),
        3 => Style::new().fg(Color::Yellow),
        5 => Style::new().fg(Color::DarkGray),
        _ => Style::new(),
    }
}

fn message_line(msg: &Message, wide: bool) -> Line<'static> {
    let ts = format_timestamp(msg.timestamp_ns);
    // The time of day to the microsecond; a wide terminal gets the date too.
    let time = if wide {
        ts.get(..26).unwrap_or(&ts).to_string()
    } else {
        ts.get(11..26).unwrap_or(&ts).to_string()
    };
    let level = if msg.level == 0 {
        "-"
    } else {
        level_name(msg.level)
    };
    let style = level_style(msg.level);
    Line::from(vec![
        Span::raw(time).dark_gray(),
        Span::raw(" "),
        Span::styled(format!("{level:<7}"), style),
        // Lines that are not events (a process end, a loss, a note) have
        // no thread and, for some, no provider: show only what they have.
        Span::raw(format!(
            " {:<11} ",
            if msg.tid == 0 {
                msg.pid.to_string()
            } else {
                format!("{}.{}", msg.pid, msg.tid)
            }
        )),
        Span::styled(
            if msg.provider == "-" {
                msg.event.clone()
            } else {
                format!("{}/{}", msg.provider, msg.event)
            },
            style.add_modifier(Modifier::BOLD),
        ),
        Span::raw(" "),
        Span::styled(msg.fields.clone(), style),
    ])
}

fn colour(c: Colour) -> Color {
    match c {
        Colour::Red => Color::Red,
        Colour::Green => Color::Green,
        Colour::Yellow => Color::Yellow,
        Colour::Blue => Color::Blue,
        Colour::Magenta => Color::Magenta,
        Colour::Cyan => Color::Cyan,
    }
}

fn messages(f: &mut Frame<'_>, m: &Model, area: Rect) {
    let visible = m.visible();
    let cursor = m.cursor_seq(&visible);
    let h = area.height.saturating_sub(2) as usize;
    let end = match cursor {
        Some(c) => visible
            .binary_search(&c)
            .map(|i| i + 1)
            .unwrap_or(visible.len()),
        None => visible.len(),
    };
    // Keep the cursor on the last line unless it is near the start.
    let start = end.saturating_sub(h);
    let end = (start + h).min(visible.len());
    let wide = area.width >= WIDE;
    let lines: Vec<Line<'_>> = visible[start..end]
        .iter()
        .filter_map(|&s| {
            let msg = m.messages.get(s)?;
            let mut line = message_line(msg, wide);
            // The background only, so that the level's colour still shows.
            if let Some(c) = m.highlight(msg) {
                line = line.patch_style(Style::new().bg(colour(c)));
            }
            Some(if !m.following() && Some(s) == cursor {
                line.patch_style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                line
            })
        })
        .collect();
    let mode = if m.following() { "FOLLOW" } else { "PAUSED" };
    let source = if m.source.is_empty() {
        "no session".to_string()
    } else {
        m.source.clone()
    };
    let mut title = format!(
        " Messages: {source} | {mode} | {}/{} shown | missed {} ",
        visible.len(),
        m.messages.len(),
        m.messages.missed
    );
    // Messages dropped to keep the store bounded are said, so that a gap
    // at the top of a long-running session is not taken for silence.
    if m.messages.evicted > 0 {
        title.push_str(&format!("| dropped {} ", m.messages.evicted));
    }
    if !m.filter.is_empty() {
        title.push_str(&format!("| filter {} ", m.filter.describe()));
    }
    if !m.highlights.is_empty() {
        title.push_str(&format!("| {} highlights ", m.highlights.len()));
    }
    let block = focused_block(title, m.focus == Focus::Messages);
    let block = if m.messages.missed > 0 {
        block.title_bottom(
            Line::from(format!(
                " {} events missed: this viewer fell behind ",
                m.messages.missed
            ))
            .red(),
        )
    } else {
        block
    };
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn status(f: &mut Frame<'_>, m: &Model, area: Rect) {
    let line = match &m.overlay {
        Overlay::Prompt(p, text) => Line::from(vec![
            Span::raw(p.label()).bold(),
            Span::raw(text.clone()),
            Span::raw("█"),
        ]),
        _ => Line::from(m.status.clone()).yellow(),
    };
    f.render_widget(
        Paragraph::new(line).wrap(ratatui::widgets::Wrap { trim: true }),
        area,
    );
}

/// The keys that apply now, most useful first; what does not fit is on `?`.
fn footer(f: &mut Frame<'_>, m: &Model, area: Rect) {
    let keys: &[(&str, &str)] = match &m.overlay {
        Overlay::Menu(_) => &[("↑↓", "choose"), ("Enter", "do"), ("Esc", "close")],
        Overlay::Form(_) => &[
            ("Tab", "next field"),
            ("→", "complete"),
            ("Space", "mode/rt"),
            ("Enter", "start"),
            ("Esc", "cancel"),
        ],
        Overlay::Prompt(..) => &[("Enter", "apply"), ("Esc", "cancel")],
        Overlay::Help => &[("Esc", "close")],
        Overlay::Properties(..) => &[("↑↓ PgUp PgDn", "scroll"), ("Esc", "close")],
        // Each footer fits 80 columns; the rest is on the help screen.
        Overlay::None if m.live && m.focus == Focus::Sessions => &[
            ("q", "quit"),
            ("Tab", "pane"),
            ("s", "stop"),
            ("f", "flush"),
            ("i", "query"),
            ("r", "remove"),
            ("o", "log"),
            ("n", "new"),
            ("Enter", "live"),
            ("?", "help"),
        ],
        Overlay::None => &[
            ("q", "quit"),
            ("Tab", "pane"),
            ("Spc", "pause"),
            ("/", "find"),
            ("n/N", "next"),
            ("p", "prov"),
            ("t", "text"),
            ("l", "level"),
            ("c", "clear"),
            ("?", "help"),
        ],
    };
    let mut spans = Vec::new();
    for (k, what) in keys {
        spans.push(Span::raw(*k).black().on_cyan());
        spans.push(Span::raw(format!(" {what} ")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A rectangle of at most `w`×`h` in the middle of `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub const HELP: &[(&str, &str)] = &[
    ("Tab", "switch between sessions and messages"),
    ("↑ ↓ PgUp PgDn", "select a session / scroll messages"),
    ("Home End", "first message / follow the newest"),
    ("Space", "pause or follow the messages"),
    ("s", "Stop Trace (sessions this viewer started)"),
    ("f  i", "Flush / Query (every property and counter)"),
    ("r", "Remove a STOPPED session (the log stays)"),
    ("o", "open the session's log in the message pane"),
    ("Enter", "show the session's live messages again"),
    ("n", "start a new session (sessions pane)"),
    ("right click", "the row's context menu"),
    ("/  n  N", "find; next; previous (messages pane)"),
    ("p  t  l", "filter by provider, text; cycle level"),
    ("c  h", "clear the filter; highlight TEXT=COLOUR"),
    ("q  Ctrl-C", "quit"),
];

fn help(f: &mut Frame<'_>) {
    let area = centered(f.area(), 64, HELP.len() as u16 + 4);
    let mut lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::raw(format!(" {k:<15}")).bold(),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(
        Line::from(" Lines: red error, bold red critical, yellow warning, grey verbose")
            .dark_gray(),
    );
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Help: ferret view ")),
        area,
    );
}

fn properties(f: &mut Frame<'_>, info: &ferret_abi::proto::SessionInfo, scroll: u16) {
    let rows = ferret_client::output::properties(info);
    // The panel covers everything but the footer, which says how to scroll.
    let screen = f.area();
    let above_footer = Rect::new(0, 0, screen.width, screen.height.saturating_sub(1));
    let area = centered(above_footer, 100, rows.len() as u16 + 2);
    let scroll = scroll.min((rows.len() as u16 + 2).saturating_sub(area.height));
    let lines: Vec<Line<'_>> = rows
        .into_iter()
        .map(|(k, v)| Line::from(vec![Span::raw(format!("{k:<22}: ")).bold(), Span::raw(v)]))
        .collect();
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            .block(Block::bordered().title(format!(" Query: {} ", info.name))),
        area,
    );
}

/// Where the menu of `n` items opened at (x, y) is drawn, kept on screen.
pub fn menu_area(screen: Rect, n: usize, x: u16, y: u16) -> Rect {
    let w = 22.min(screen.width);
    let h = (n as u16 + 2).min(screen.height);
    let x = x.min(screen.right().saturating_sub(w));
    let y = y.min(screen.bottom().saturating_sub(h));
    Rect::new(x, y, w, h)
}

fn context_menu(f: &mut Frame<'_>, items: &[(String, bool)], selected: usize, x: u16, y: u16) {
    let area = menu_area(f.area(), items.len(), x, y);
    let lines: Vec<Line<'_>> = items
        .iter()
        .enumerate()
        .map(|(i, (label, on))| {
            let mut style = if *on {
                Style::new()
            } else {
                Style::new().fg(Color::DarkGray)
            };
            if i == selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Line::styled(format!(" {label}"), style)
        })
        .collect();
    f.render_widget(Clear, area);
    f.render_widget(Paragraph::new(lines).block(Block::bordered()), area);
}

fn start_form(f: &mut Frame<'_>, form: &StartForm) {
    let area = centered(f.area(), 70, 11);
    let values = [
        form.name.clone(),
        form.providers.clone(),
        form.log_file.clone(),
        format!("{} (Space cycles)", form.mode.name()),
        if form.realtime { "on" } else { "off" }.to_string(),
        if form.max_size.is_empty() {
            "none".to_string()
        } else {
            form.max_size.clone()
        },
    ];
    let mut lines: Vec<Line<'_>> = StartForm::LABELS
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (label, value))| {
            let v = if i == form.focus {
                Span::raw(format!("{value}_")).reversed()
            } else {
                Span::raw(value)
            };
            Line::from(vec![Span::raw(format!(" {label:<10}: ")).bold(), v])
        })
        .collect();
    lines
        .push(Line::from(" Providers: NAME[:LEVEL[:KEYWORDS]] ..., → completes names").dark_gray());
    lines.push(Line::from(match form.problem() {
        Some(p) => Span::raw(format!(" {p}")).yellow(),
        None => Span::raw(" Enter starts the session").green(),
    }));
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Start a trace session ")),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{message, session};
    use crate::model::{Menu, Prompt, RowKey};
    use ferret_abi::EnableFilter;
    use ferret_abi::proto::{ChangeKind, ProviderSpec};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(m: &Model, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, m)).unwrap();
        t.backend().to_string()
    }

    /// Three sessions, one started here, with counters and messages; every
    /// value is fixed so that snapshots hold no volatile fields.
    fn sample() -> Model {
        let mut m = Model::new(true);
        let mut web = session(1, "web", SessionState::Running);
        web.providers = vec![ProviderSpec {
            name: "MyCompany.Web".into(),
            filter: EnableFilter::level(ferret_abi::Level::Information),
        }];
        let mut live = session(2, "live", SessionState::Running);
        live.file_mode = FileMode::RealTime;
        live.log_file.clear();
        let old = session(3, "old", SessionState::Stopped);
        for s in [&web, &live, &old] {
            m.apply(ChangeKind::Present, s.clone(), 0);
        }
        m.started(&live, 5);
        for sec in 1..=12u64 {
            web.counters.events = sec * sec * 100;
            web.counters.buffers_written = sec;
            m.apply(ChangeKind::Counters, web.clone(), sec);
        }
        m.select_index(1);
        m.set_source("live: live".into());
        for i in 0..30 {
            let (p, level) = match i % 5 {
                0 => ("MyCompany.Db", 2),
                1 => ("MyCompany.Web", 3),
                2 => ("MyCompany.Web", 5),
                _ => ("MyCompany.Web", 4),
            };
            m.push_message(message(i, p, level, &format!("seq={i} msg=\"hello\"")));
        }
        m
    }

    #[test]
    fn snapshot_main_screen_80x24() {
        insta::assert_snapshot!(screen(&sample(), 80, 24));
    }

    #[test]
    fn snapshot_main_screen_160x40() {
        insta::assert_snapshot!(screen(&sample(), 160, 40));
    }

    #[test]
    fn snapshot_paused_filtered_with_missed_events() {
        let mut m = sample();
        m.focus = Focus::Messages;
        m.filter.provider = "web".into();
        m.set_missed(17);
        m.scroll(-3);
        insta::assert_snapshot!(screen(&m, 80, 24));
    }

    #[test]
    fn snapshot_help() {
        let mut m = sample();
        m.overlay = Overlay::Help;
        insta::assert_snapshot!(screen(&m, 80, 24));
    }

    #[test]
    fn snapshot_properties() {
        let mut m = sample();
        m.overlay = Overlay::Properties(Box::new(m.sessions[0].info.clone()), 0);
        insta::assert_snapshot!(screen(&m, 80, 40));
    }

    #[test]
    fn snapshot_properties_scrolled_on_80x24() {
        let mut m = sample();
        m.overlay = Overlay::Properties(Box::new(m.sessions[0].info.clone()), 0);
        for _ in 0..100 {
            let _ = crate::input::key(
                &mut m,
                crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Down),
            );
        }
        insta::assert_snapshot!(screen(&m, 80, 24));
    }

    #[test]
    fn snapshot_context_menu_with_stop_disabled_and_the_hint() {
        let mut m = sample();
        m.select_index(0);
        let _ = m.choose(crate::model::Action::Stop);
        m.overlay = Overlay::Menu(Menu {
            key: RowKey::of(&m.sessions[0].info),
            x: 20,
            y: 2,
            selected: 0,
        });
        insta::assert_snapshot!(screen(&m, 80, 24));
    }

    #[test]
    fn snapshot_start_form() {
        let mut m = sample();
        m.overlay = Overlay::Form(StartForm {
            name: "net".into(),
            providers: "MyCompany.Web:5".into(),
            focus: 1,
            ..StartForm::default()
        });
        insta::assert_snapshot!(screen(&m, 80, 24));
    }

    #[test]
    fn snapshot_highlight_rules_paint_their_messages() {
        let mut m = sample();
        m.add_highlight("provider:db=cyan").unwrap();
        m.add_highlight("seq=27 =red").unwrap();
        m.overlay = Overlay::Prompt(Prompt::Highlight, "status=500=yellow".into());
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        t.draw(|f| draw(f, &m)).unwrap();
        // The text snapshot cannot show colours, so the backgrounds are
        // checked cell by cell: the rule's rows and no others.
        let buf = t.backend().buffer();
        let mut painted = Vec::new();
        for y in 0..24 {
            let row: String = (0..80).map(|x| buf[(x, y)].symbol()).collect();
            if !row.contains("seq=") {
                continue;
            }
            let bg = buf[(1, y)].bg;
            if row.contains("seq=27 ") {
                assert_eq!(bg, Color::Red, "{row}");
            } else if row.contains("MyCompany.Db") {
                assert_eq!(bg, Color::Cyan, "{row}");
            } else {
                assert_eq!(bg, Color::Reset, "{row}");
            }
            painted.push(bg);
        }
        assert!(painted.contains(&Color::Red) && painted.contains(&Color::Cyan));
        insta::assert_snapshot!(t.backend().to_string());
    }

    #[test]
    fn snapshot_find_prompt_and_files_only() {
        let mut m = Model::new(false);
        m.set_source("web.ferret".into());
        for i in 0..5 {
            m.push_message(message(i, "MyCompany.Web", 4, &format!("seq={i}")));
        }
        m.overlay = Overlay::Prompt(Prompt::Find, "seq=3".into());
        insta::assert_snapshot!(screen(&m, 80, 24));
    }

    #[test]
    fn clicks_map_to_the_rows_drawn() {
        let m = sample();
        let a = layout(Rect::new(0, 0, 80, 24), &m);
        assert_eq!(row_at(&m, a.sessions, a.sessions.y + 1), None, "header");
        assert_eq!(row_at(&m, a.sessions, a.sessions.y + 2), Some(0));
        assert_eq!(row_at(&m, a.sessions, a.sessions.y + 4), Some(2));
        assert_eq!(row_at(&m, a.sessions, a.sessions.y + 5), None, "border");
    }
}
