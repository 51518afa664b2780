//! Keys and mouse events turned into model changes and effects. No
//! terminal I/O here either: the events are crossterm's plain values, so
//! the tests build them by hand.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

use super::model::{Action, Effect, Focus, Model, Overlay, Prompt, StartForm};
use super::render;

/// What the I/O loop does after an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Nothing,
    Quit,
    Do(Effect),
    /// Show the selected session's live messages (again).
    Tail,
    /// Fetch the registered providers, for the start form's completion.
    Providers,
}

pub fn key(m: &mut Model, k: KeyEvent) -> Outcome {
    if k.kind == KeyEventKind::Release {
        return Outcome::Nothing;
    }
    if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
        return Outcome::Quit;
    }
    match std::mem::take(&mut m.overlay) {
        Overlay::None => {}
        Overlay::Help => return Outcome::Nothing,
        Overlay::Properties(info, scroll) => {
            // Arrows scroll the panel; any other key closes it.
            let scroll = match k.code {
                KeyCode::Up => scroll.saturating_sub(1),
                KeyCode::Down => scroll.saturating_add(1).min(40),
                KeyCode::PageUp => scroll.saturating_sub(10),
                KeyCode::PageDown => scroll.saturating_add(10).min(40),
                _ => return Outcome::Nothing,
            };
            m.overlay = Overlay::Properties(info, scroll);
            return Outcome::Nothing;
        }
        Overlay::Menu(mut menu) => {
            let n = Action::ALL.len();
            match k.code {
                KeyCode::Up => menu.selected = (menu.selected + n - 1) % n,
                KeyCode::Down => menu.selected = (menu.selected + 1) % n,
                KeyCode::Enter => return choose(m, Action::ALL[menu.selected]),
                KeyCode::Esc => return Outcome::Nothing,
                _ => {}
            }
            m.overlay = Overlay::Menu(menu);
            return Outcome::Nothing;
        }
        Overlay::Form(form) => return form_key(m, form, k),
        Overlay::Prompt(p, text) => return prompt_key(m, p, text, k),
    }
    let messages = m.focus == Focus::Messages || !m.live;
    match k.code {
        // Esc alone does not quit: it closes overlays, and a lone Esc is
        // also what a mouse report split across reads looks like.
        KeyCode::Char('q') => return Outcome::Quit,
        KeyCode::Char('?') => m.overlay = Overlay::Help,
        KeyCode::Tab if m.live => {
            m.focus = if m.focus == Focus::Sessions {
                Focus::Messages
            } else {
                Focus::Sessions
            }
        }
        KeyCode::Char(' ') => m.toggle_follow(),
        KeyCode::Char('/') => m.overlay = Overlay::Prompt(Prompt::Find, m.find.clone()),
        KeyCode::Char('p') => {
            m.overlay = Overlay::Prompt(Prompt::FilterProvider, m.filter.provider.clone())
        }
        KeyCode::Char('t') => {
            m.overlay = Overlay::Prompt(Prompt::FilterText, m.filter.text.clone())
        }
        KeyCode::Char('l') => m.cycle_level(),
        KeyCode::Char('h') => m.overlay = Overlay::Prompt(Prompt::Highlight, String::new()),
        KeyCode::Char('c') => m.filter = Default::default(),
        KeyCode::Home => m.scroll_home(),
        KeyCode::End => m.cursor = None,
        KeyCode::PageUp => m.scroll(-10),
        KeyCode::PageDown => m.scroll(10),
        KeyCode::Char('n') if messages => {
            m.find_next(true);
        }
        KeyCode::Char('N') if messages => {
            m.find_next(false);
        }
        KeyCode::Up if messages => m.scroll(-1),
        KeyCode::Down if messages => m.scroll(1),
        KeyCode::Up => {
            m.select_by(-1);
            return Outcome::Tail;
        }
        KeyCode::Down => {
            m.select_by(1);
            return Outcome::Tail;
        }
        KeyCode::Enter if m.live => return Outcome::Tail,
        KeyCode::Char('n') if m.live => {
            m.overlay = Overlay::Form(StartForm::default());
            return Outcome::Providers;
        }
        KeyCode::Char('s') if m.live => return choose(m, Action::Stop),
        KeyCode::Char('f') if m.live => return choose(m, Action::Flush),
        KeyCode::Char('i') if m.live => return choose(m, Action::Query),
        KeyCode::Char('r') if m.live => return choose(m, Action::Remove),
        KeyCode::Char('o') if m.live => return choose(m, Action::OpenLog),
        _ => {}
    }
    Outcome::Nothing
}

fn choose(m: &mut Model, a: Action) -> Outcome {
    match m.choose(a) {
        Some(e) => Outcome::Do(e),
        None => Outcome::Nothing,
    }
}

fn form_key(m: &mut Model, mut form: StartForm, k: KeyEvent) -> Outcome {
    match k.code {
        KeyCode::Esc => return Outcome::Nothing,
        KeyCode::Enter => match form.problem() {
            None => return Outcome::Do(Effect::Start(form)),
            Some(p) => m.status = p,
        },
        KeyCode::Tab | KeyCode::Down => form.focus = (form.focus + 1) % StartForm::FIELDS,
        KeyCode::BackTab | KeyCode::Up => {
            form.focus = (form.focus + StartForm::FIELDS - 1) % StartForm::FIELDS
        }
        KeyCode::Right if form.focus == 1 => {
            let found = form.complete(&m.registered);
            m.status = match found.len() {
                0 => "no registered provider starts so".into(),
                1 => String::new(),
                _ => found.join("  "),
            };
        }
        KeyCode::Char(' ') if form.focus == 3 => form.next_mode(),
        KeyCode::Char(' ') if form.focus == 4 => form.realtime = !form.realtime,
        KeyCode::Backspace => {
            if let Some(t) = form.text_mut() {
                t.pop();
            }
        }
        KeyCode::Char(c) => {
            if let Some(t) = form.text_mut() {
                t.push(c);
            }
        }
        _ => {}
    }
    m.overlay = Overlay::Form(form);
    Outcome::Nothing
}

fn prompt_key(m: &mut Model, p: Prompt, mut text: String, k: KeyEvent) -> Outcome {
    match k.code {
        KeyCode::Esc => return Outcome::Nothing,
        KeyCode::Enter => {
            match p {
                Prompt::FilterProvider => m.filter.provider = text,
                Prompt::FilterText => m.filter.text = text,
                Prompt::Highlight => {
                    m.status = match m.add_highlight(&text) {
                        Ok(()) if m.highlights.is_empty() => "no highlight rules".into(),
                        Ok(()) => {
                            let rules: Vec<_> = m.highlights.iter().map(|h| h.describe()).collect();
                            format!("highlighting {}", rules.join(", "))
                        }
                        Err(e) => e,
                    };
                }
                Prompt::Find => {
                    m.find = text;
                    m.focus = Focus::Messages;
                    // While following, the newest match is the one wanted.
                    let forward = !m.following();
                    m.find_next(forward);
                }
            }
            return Outcome::Nothing;
        }
        KeyCode::Backspace => {
            text.pop();
        }
        KeyCode::Char(c) => text.push(c),
        _ => {}
    }
    m.overlay = Overlay::Prompt(p, text);
    Outcome::Nothing
}

/// A mouse event on a screen of `screen` size.
pub fn mouse(m: &mut Model, e: MouseEvent, screen: Rect) -> Outcome {
    let areas = render::layout(screen, m);
    let at = Position::new(e.column, e.row);
    match e.kind {
        MouseEventKind::Down(button) => {
            if let Overlay::Menu(menu) = &m.overlay {
                let area = render::menu_area(screen, Action::ALL.len(), menu.x, menu.y);
                // A click inside the menu's border chooses that item; any
                // other click closes it.
                if button == MouseButton::Left
                    && area.contains(at)
                    && e.row > area.y
                    && e.row < area.bottom() - 1
                {
                    let i = (e.row - area.y - 1) as usize;
                    m.overlay = Overlay::None;
                    return choose(m, Action::ALL[i]);
                }
                m.overlay = Overlay::None;
                return Outcome::Nothing;
            }
            if m.overlay != Overlay::None {
                m.overlay = Overlay::None;
                return Outcome::Nothing;
            }
            if m.live && areas.sessions.contains(at) {
                m.focus = Focus::Sessions;
                if let Some(i) = render::row_at(m, areas.sessions, e.row) {
                    let before = m.selected.clone();
                    if button == MouseButton::Right {
                        m.open_menu(i, e.column, e.row + 1);
                    } else {
                        m.select_index(i);
                    }
                    if m.selected != before {
                        return Outcome::Tail;
                    }
                }
            } else if areas.messages.contains(at) {
                m.focus = Focus::Messages;
            }
        }
        MouseEventKind::ScrollUp if areas.messages.contains(at) => m.scroll(-3),
        MouseEventKind::ScrollDown if areas.messages.contains(at) => m.scroll(3),
        _ => {}
    }
    Outcome::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{message, session};
    use ferret_abi::proto::{ChangeKind, SessionState};

    fn press(m: &mut Model, code: KeyCode) -> Outcome {
        key(m, KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn two() -> Model {
        let mut m = Model::new(true);
        m.apply(
            ChangeKind::Present,
            session(1, "theirs", SessionState::Running),
            0,
        );
        let mine = session(2, "mine", SessionState::Running);
        m.apply(ChangeKind::Present, mine.clone(), 0);
        m.started(&mine, 8);
        m
    }

    #[test]
    fn right_click_opens_the_menu_and_enter_on_stop_explains_for_other_sessions() {
        let mut m = two();
        let screen = Rect::new(0, 0, 80, 24);
        let a = render::layout(screen, &m);
        let click = MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Right),
            column: 30,
            row: a.sessions.y + 2,
            modifiers: KeyModifiers::NONE,
        };
        assert_eq!(mouse(&mut m, click, screen), Outcome::Nothing);
        assert!(matches!(m.overlay, Overlay::Menu(_)));
        assert_eq!(press(&mut m, KeyCode::Enter), Outcome::Nothing);
        assert!(m.status.contains("'ferret stop theirs'"), "{}", m.status);
        assert_eq!(m.overlay, Overlay::None);

        // On the session started here, the menu's Stop Trace stops it.
        let click = MouseEvent {
            row: a.sessions.y + 3,
            ..click
        };
        assert_eq!(mouse(&mut m, click, screen), Outcome::Tail);
        let area = render::menu_area(screen, Action::ALL.len(), 30, a.sessions.y + 4);
        let left = MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: area.x + 2,
            row: area.y + 1,
            modifiers: KeyModifiers::NONE,
        };
        assert_eq!(
            mouse(&mut m, left, screen),
            Outcome::Do(Effect::Stop {
                name: "mine".into(),
                token: 8
            })
        );
    }

    #[test]
    fn keys_act_on_the_selected_session_and_move_the_selection() {
        let mut m = two();
        assert_eq!(
            press(&mut m, KeyCode::Char('f')),
            Outcome::Do(Effect::Flush {
                name: "theirs".into()
            })
        );
        assert_eq!(press(&mut m, KeyCode::Down), Outcome::Tail);
        assert_eq!(
            press(&mut m, KeyCode::Char('s')),
            Outcome::Do(Effect::Stop {
                name: "mine".into(),
                token: 8
            })
        );
        assert_eq!(
            press(&mut m, KeyCode::Char('i')),
            Outcome::Do(Effect::Query {
                name: "mine".into()
            })
        );
        assert_eq!(press(&mut m, KeyCode::Char('q')), Outcome::Quit);
    }

    #[test]
    fn the_form_is_typed_completed_and_submitted() {
        let mut m = two();
        m.registered = vec!["MyCompany.Web".into()];
        assert_eq!(press(&mut m, KeyCode::Char('n')), Outcome::Providers);
        for c in "net".chars() {
            press(&mut m, KeyCode::Char(c));
        }
        press(&mut m, KeyCode::Tab);
        press(&mut m, KeyCode::Char('M'));
        press(&mut m, KeyCode::Right);
        press(&mut m, KeyCode::Tab);
        press(&mut m, KeyCode::Tab);
        press(&mut m, KeyCode::Char(' ')); // circular
        press(&mut m, KeyCode::Char(' ')); // append
        press(&mut m, KeyCode::Char(' ')); // new-file
        press(&mut m, KeyCode::Char(' ')); // real-time
        match press(&mut m, KeyCode::Enter) {
            Outcome::Do(Effect::Start(f)) => {
                assert_eq!(f.name, "net");
                assert_eq!(f.providers, "MyCompany.Web");
                assert_eq!(f.mode, ferret_abi::proto::FileMode::RealTime);
            }
            o => panic!("not started: {o:?} {}", m.status),
        }
    }

    #[test]
    fn find_and_filter_prompts() {
        let mut m = Model::new(false);
        for i in 0..4 {
            m.push_message(message(i, "P", 4, &format!("seq={i}")));
        }
        press(&mut m, KeyCode::Char('/'));
        for c in "seq=1".chars() {
            press(&mut m, KeyCode::Char(c));
        }
        press(&mut m, KeyCode::Enter);
        assert_eq!(m.cursor, Some(1));
        press(&mut m, KeyCode::Home);
        press(&mut m, KeyCode::Char('n'));
        assert_eq!(m.cursor, Some(1));
        press(&mut m, KeyCode::Char('t'));
        press(&mut m, KeyCode::Char('3'));
        press(&mut m, KeyCode::Enter);
        assert_eq!(m.visible(), [3]);
        press(&mut m, KeyCode::Char('c'));
        assert_eq!(m.visible().len(), 4);
    }

    #[test]
    fn the_highlight_prompt_adds_rules_and_says_what_is_wrong() {
        let mut m = Model::new(false);
        let typed = |m: &mut Model, text: &str| {
            press(m, KeyCode::Char('h'));
            for c in text.chars() {
                press(m, KeyCode::Char(c));
            }
            press(m, KeyCode::Enter);
        };
        typed(&mut m, "timeout=red");
        assert_eq!(m.status, "highlighting timeout=red");
        typed(&mut m, "timeout=plaid");
        assert!(m.status.starts_with("no colour 'plaid'"), "{}", m.status);
        assert_eq!(m.highlights.len(), 1);
        typed(&mut m, "");
        assert!(m.highlights.is_empty());
        assert_eq!(m.status, "no highlight rules");
    }
}
