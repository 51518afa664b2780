//! Highlight rules, as TraceView has them: a colour for the messages whose
//! text or provider contains a needle, read from `TEXT=COLOUR` or
//! `provider:NAME=COLOUR`, and the model's list of them, newest winning.

use super::{Message, Model, contains_ci};

/// A colour a highlight rule paints its messages' background with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    Red,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
}

impl Colour {
    pub const ALL: [Colour; 6] = [
        Colour::Red,
        Colour::Green,
        Colour::Yellow,
        Colour::Blue,
        Colour::Magenta,
        Colour::Cyan,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Yellow => "yellow",
            Colour::Blue => "blue",
            Colour::Magenta => "magenta",
            Colour::Cyan => "cyan",
        }
    }

    pub fn parse(name: &str) -> Option<Colour> {
        Colour::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

/// A user's highlight rule, as TraceView's: messages whose text (provider,
/// event name or fields) contains `needle`, or with `provider_only` whose
/// provider does, case-insensitively, are painted with `colour`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Highlight {
    pub provider_only: bool,
    pub needle: String,
    pub colour: Colour,
}

impl Highlight {
    /// Reads `TEXT=COLOUR` or `provider:NAME=COLOUR`.
    pub fn parse(spec: &str) -> Result<Highlight, String> {
        let (what, colour) = spec
            .rsplit_once('=')
            .ok_or("a highlight is TEXT=COLOUR or provider:NAME=COLOUR")?;
        let colour = Colour::parse(colour.trim()).ok_or_else(|| {
            let names: Vec<_> = Colour::ALL.iter().map(|c| c.name()).collect();
            format!("no colour '{}': one of {}", colour.trim(), names.join(", "))
        })?;
        let what = what.trim();
        let (provider_only, needle) = match what.strip_prefix("provider:") {
            Some(name) => (true, name.trim()),
            None => (false, what),
        };
        if needle.is_empty() {
            return Err("a highlight needs text to match before '='".into());
        }
        Ok(Highlight {
            provider_only,
            needle: needle.to_string(),
            colour,
        })
    }

    pub fn matches(&self, m: &Message) -> bool {
        contains_ci(&m.provider, &self.needle)
            || (!self.provider_only
                && (contains_ci(&m.event, &self.needle) || contains_ci(&m.fields, &self.needle)))
    }

    /// The rule as it is typed.
    pub fn describe(&self) -> String {
        let prefix = if self.provider_only { "provider:" } else { "" };
        format!("{prefix}{}={}", self.needle, self.colour.name())
    }
}

// The rules are kept in the model, oldest first, so that the newest match
// can win and a rule for the same text can be replaced in place.
impl Model {
    /// Adds the rule the highlight prompt read; an empty one clears them
    /// all. A rule for the same text replaces the old one, so that a
    /// colour can be changed without clearing the others.
    pub fn add_highlight(&mut self, spec: &str) -> Result<(), String> {
        if spec.trim().is_empty() {
            self.highlights.clear();
            return Ok(());
        }
        let rule = Highlight::parse(spec)?;
        self.highlights.retain(|h| {
            (h.provider_only, h.needle.to_lowercase())
                != (rule.provider_only, rule.needle.to_lowercase())
        });
        self.highlights.push(rule);
        Ok(())
    }

    /// The colour a message is painted with: the newest matching rule's,
    /// so that a specific rule added after a broad one wins.
    pub fn highlight(&self, m: &Message) -> Option<Colour> {
        self.highlights
            .iter()
            .rev()
            .find(|h| h.matches(m))
            .map(|h| h.colour)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::message;

    #[test]
    fn highlight_rules_match_text_or_provider_and_the_newest_wins() {
        let mut m = Model::new(false);
        let web = message(0, "MyCompany.Web", 4, "path=/a status=500");
        let db = message(1, "MyCompany.Db", 4, "query=web_users");
        assert_eq!(m.highlight(&web), None);
        m.add_highlight("status=500 = red").unwrap();
        assert_eq!(m.highlight(&web), Some(Colour::Red));
        assert_eq!(m.highlight(&db), None);
        // A provider rule looks at the provider only: db's fields say
        // "web" but its provider does not.
        m.add_highlight("provider:web=cyan").unwrap();
        assert_eq!(m.highlight(&web), Some(Colour::Cyan));
        assert_eq!(m.highlight(&db), None);
        m.add_highlight("WEB=Green").unwrap();
        assert_eq!(m.highlight(&db), Some(Colour::Green));
        // The same text again changes its colour in place.
        m.add_highlight("provider:WEB=yellow").unwrap();
        assert_eq!(m.highlights.len(), 3);
        let rules: Vec<_> = m.highlights.iter().map(Highlight::describe).collect();
        assert_eq!(
            rules,
            ["status=500=red", "WEB=green", "provider:WEB=yellow"]
        );
        assert_eq!(m.highlight(&web), Some(Colour::Yellow));
        assert!(
            m.add_highlight("x=plaid")
                .unwrap_err()
                .contains("one of red")
        );
        assert!(m.add_highlight("provider:=red").is_err());
        assert!(m.add_highlight("no colour").is_err());
        assert_eq!(m.highlights.len(), 3, "a bad rule changes nothing");
        m.add_highlight("  ").unwrap();
        assert!(m.highlights.is_empty());
    }
}
