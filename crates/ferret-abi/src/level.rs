//! Levels and keyword filters, with ETW's numbering and matching rules.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

/// The severity of an event, numbered as ETW numbers it.
///
/// A session that enables a provider at level `L` receives every event whose
/// level is `L` or more severe (numerically lower or equal).
///
/// ```
/// use ferret_abi::Level;
///
/// assert_eq!(Level::Warning.as_u8(), 3);
/// assert_eq!("information".parse::<Level>(), Ok(Level::Information));
/// assert!(Level::Error < Level::Verbose);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Level {
    /// 1: the program cannot go on.
    Critical = 1,
    /// 2: an operation failed.
    Error = 2,
    /// 3: something unexpected that the program survived.
    Warning = 3,
    /// 4: normal progress worth recording.
    Information = 4,
    /// 5: detail for debugging.
    Verbose = 5,
}

impl Level {
    /// Every level, from most to least severe.
    pub const ALL: [Level; 5] = [
        Level::Critical,
        Level::Error,
        Level::Warning,
        Level::Information,
        Level::Verbose,
    ];

    /// The level with ETW number `n`, if `n` is 1 to 5.
    pub const fn from_u8(n: u8) -> Option<Level> {
        match n {
            1 => Some(Level::Critical),
            2 => Some(Level::Error),
            3 => Some(Level::Warning),
            4 => Some(Level::Information),
            5 => Some(Level::Verbose),
            _ => None,
        }
    }

    /// The ETW number of this level (1 to 5).
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The lower-case name used in the CLI and in decoded output.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Critical => "critical",
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Information => "information",
            Level::Verbose => "verbose",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a level that is neither a number 1 to 5 nor a level name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "level '{0}' is not valid; use 1-5 or critical, error, warning, information (info), verbose"
)]
pub struct ParseLevelError(pub String);

impl FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Level, ParseLevelError> {
        let lower = s.trim().to_ascii_lowercase();
        let level = match lower.as_str() {
            "1" | "critical" | "crit" => Level::Critical,
            "2" | "error" | "err" => Level::Error,
            "3" | "warning" | "warn" => Level::Warning,
            "4" | "information" | "info" => Level::Information,
            "5" | "verbose" | "debug" | "trace" => Level::Verbose,
            _ => return Err(ParseLevelError(s.to_string())),
        };
        Ok(level)
    }
}

/// What a session asks of one provider: a level and ETW's two keyword masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnableFilter {
    /// Events at this level or more severe pass.
    pub level: Level,
    /// Events pass if they share a bit with this mask; 0 means every keyword.
    pub match_any: u64,
    /// Events must also carry every bit of this mask; 0 means no requirement.
    pub match_all: u64,
}

impl EnableFilter {
    /// A filter that takes everything at `level` or more severe.
    pub const fn level(level: Level) -> EnableFilter {
        EnableFilter {
            level,
            match_any: 0,
            match_all: 0,
        }
    }

    /// ETW's rule: an event passes if its level is at most the session's and
    /// its keywords are 0 or match the masks.
    pub const fn accepts(&self, level: u8, keywords: u64) -> bool {
        if level > self.level.as_u8() {
            return false;
        }
        if keywords == 0 {
            return true;
        }
        let any = self.effective_any();
        keywords & any != 0 && keywords & self.match_all == self.match_all
    }

    /// The match-any mask with ETW's "0 means all" rule applied.
    pub const fn effective_any(&self) -> u64 {
        if self.match_any == 0 {
            u64::MAX
        } else {
            self.match_any
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_from_numbers_and_names() {
        assert_eq!("1".parse::<Level>().unwrap(), Level::Critical);
        assert_eq!("Info".parse::<Level>().unwrap(), Level::Information);
        assert_eq!("verbose".parse::<Level>().unwrap(), Level::Verbose);
        assert!("6".parse::<Level>().is_err());
        assert!("loud".parse::<Level>().is_err());
    }

    #[test]
    fn filter_follows_etw_keyword_rules() {
        let f = EnableFilter {
            level: Level::Warning,
            match_any: 0b0110,
            match_all: 0b0100,
        };
        assert!(f.accepts(3, 0), "keyword 0 always passes");
        assert!(f.accepts(2, 0b0100));
        assert!(!f.accepts(2, 0b0010), "misses match_all");
        assert!(!f.accepts(2, 0b1000), "misses match_any");
        assert!(!f.accepts(4, 0b0100), "too verbose");
        let all = EnableFilter::level(Level::Verbose);
        assert!(all.accepts(5, 0xdead_beef));
    }
}
