//! Which messages the pane shows and how they are searched: the filter by
//! provider, level and text, the case-insensitive match that highlights
//! share, and find, which moves the cursor to the next matching message.

use super::{Message, Model};

/// Which messages the pane shows. Empty parts accept everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// A substring of the provider name (case-insensitive).
    pub provider: String,
    /// The least severe level shown (1 critical ... 5 verbose); 0 for all.
    pub max_level: u8,
    /// A substring of the event name or fields (case-insensitive).
    pub text: String,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.provider.is_empty() && self.max_level == 0 && self.text.is_empty()
    }

    pub fn accepts(&self, m: &Message) -> bool {
        if self.max_level != 0 && m.level != 0 && m.level > self.max_level {
            return false;
        }
        if !self.provider.is_empty() && !contains_ci(&m.provider, &self.provider) {
            return false;
        }
        if !self.text.is_empty()
            && !contains_ci(&m.event, &self.text)
            && !contains_ci(&m.fields, &self.text)
        {
            return false;
        }
        true
    }

    /// A short description for the pane's title.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.provider.is_empty() {
            parts.push(format!("provider~{}", self.provider));
        }
        if self.max_level != 0 {
            parts.push(format!(
                "level<={}",
                ferret_decode::level_name(self.max_level)
            ));
        }
        if !self.text.is_empty() {
            parts.push(format!("text~{}", self.text));
        }
        parts.join(" ")
    }
}

/// Case-insensitive substring test; `needle` is short and typed by hand.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

// Find lives with the filter because it searches only what the filter lets
// through, with the same case-insensitive match.
impl Model {
    /// The sequence numbers the filter lets through, oldest first.
    pub fn visible(&self) -> Vec<u64> {
        self.messages
            .iter()
            .filter(|(_, m)| self.filter.accepts(m))
            .map(|(s, _)| s)
            .collect()
    }

    /// Finds the next (or previous) visible message after the cursor whose
    /// provider, event or fields contain the find text, and pauses there.
    /// Returns whether one was found.
    pub fn find_next(&mut self, forward: bool) -> bool {
        if self.find.is_empty() {
            self.status = "nothing to find: press / first".into();
            return false;
        }
        let v = self.visible();
        let cur = self.cursor_seq(&v);
        let hit = |s: &u64| {
            self.messages.get(*s).is_some_and(|m| {
                contains_ci(&m.provider, &self.find)
                    || contains_ci(&m.event, &self.find)
                    || contains_ci(&m.fields, &self.find)
            })
        };
        let found = if forward {
            v.iter()
                .copied()
                .find(|s| cur.is_none_or(|c| *s > c) && hit(s))
        } else {
            v.iter()
                .rev()
                .copied()
                .find(|s| cur.is_none_or(|c| *s < c) && hit(s))
        };
        match found {
            Some(s) => {
                self.cursor = Some(s);
                self.status.clear();
                true
            }
            None => {
                self.status = format!(
                    "'{}' not found {} the cursor",
                    self.find,
                    if forward { "after" } else { "before" }
                );
                false
            }
        }
    }

    /// Cycles the level filter: all, then verbose down to critical.
    pub fn cycle_level(&mut self) {
        self.filter.max_level = match self.filter.max_level {
            0 => 4,
            1 => 0,
            n => n - 1,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::message;

    #[test]
    fn filters_by_provider_level_and_text() {
        let mut m = Model::new(false);
        m.push_message(message(0, "MyCompany.Web", 4, "path=/a"));
        m.push_message(message(1, "MyCompany.Db", 2, "query=select"));
        m.push_message(message(2, "MyCompany.Web", 5, "path=/b"));
        assert_eq!(m.visible(), [0, 1, 2]);
        m.filter.provider = "web".into();
        assert_eq!(m.visible(), [0, 2]);
        m.filter.max_level = 4;
        assert_eq!(m.visible(), [0]);
        m.filter = Filter {
            text: "SELECT".into(),
            ..Filter::default()
        };
        assert_eq!(m.visible(), [1]);
        m.filter = Filter::default();
        m.cycle_level();
        assert_eq!(m.filter.max_level, 4);
        for _ in 0..4 {
            m.cycle_level();
        }
        assert_eq!(m.filter.max_level, 0);
    }
}
