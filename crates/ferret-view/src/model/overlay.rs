//! What covers the panes: help, the Query panel, a row's context menu, the
//! start form, and the prompt line in which filter parts, find text and
//! highlight rules are typed.

use ferret_abi::proto::SessionInfo;

use super::{RowKey, StartForm};

/// A line of text being typed at the bottom: filter parts, find and
/// highlight rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    FilterProvider,
    FilterText,
    Find,
    Highlight,
}

impl Prompt {
    pub fn label(self) -> &'static str {
        match self {
            Prompt::FilterProvider => "Filter by provider: ",
            Prompt::FilterText => "Filter by text: ",
            Prompt::Find => "Find: ",
            Prompt::Highlight => "Highlight TEXT=COLOUR or provider:NAME=COLOUR (empty: none): ",
        }
    }
}

/// The context menu of a session row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Menu {
    pub key: RowKey,
    /// Where it opens (the clicked cell), in terminal cells.
    pub x: u16,
    pub y: u16,
    pub selected: usize,
}

/// What covers the panes.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Overlay {
    #[default]
    None,
    Help,
    /// The Query panel, scrolled down by that many lines (it is taller
    /// than an 80×24 screen).
    Properties(Box<SessionInfo>, u16),
    Menu(Menu),
    Form(StartForm),
    Prompt(Prompt, String),
}
