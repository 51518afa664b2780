//! The start form: the fields of `ferret start`, its provider completion,
//! and the checks that say why it cannot be submitted yet. It builds the
//! session as a `StartPlan`, so it offers every mode the CLI does.

use ferret_abi::proto::FileMode;
use ferret_client::plan::StartPlan;

/// The start form: what `ferret start` takes, in fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartForm {
    pub name: String,
    /// Provider specs as `ferret start -p` takes them, separated by spaces
    /// or commas: `NAME[:LEVEL[:KEYWORDS[:ALL]]]`.
    pub providers: String,
    pub log_file: String,
    pub mode: FileMode,
    pub realtime: bool,
    /// The largest log file, as `--max-file-size` takes it (`64M`); empty
    /// for no limit. Circular mode needs one.
    pub max_size: String,
    /// The field being edited.
    pub focus: usize,
}

impl Default for StartForm {
    fn default() -> StartForm {
        StartForm {
            name: String::new(),
            providers: String::new(),
            log_file: String::new(),
            mode: FileMode::Sequential,
            // The viewer shows live messages only from real-time sessions,
            // so the form offers that by default.
            realtime: true,
            max_size: String::new(),
            focus: 0,
        }
    }
}

impl StartForm {
    pub const FIELDS: usize = 6;
    pub const LABELS: [&'static str; 6] = [
        "Name",
        "Providers",
        "Log file",
        "Mode",
        "Real time",
        "Max size",
    ];

    /// The text field in focus, if the focus is on one.
    pub fn text_mut(&mut self) -> Option<&mut String> {
        match self.focus {
            0 => Some(&mut self.name),
            1 => Some(&mut self.providers),
            2 => Some(&mut self.log_file),
            5 => Some(&mut self.max_size),
            _ => None,
        }
    }

    /// Cycles the mode through the file modes.
    pub fn next_mode(&mut self) {
        let i = FileMode::ALL
            .iter()
            .position(|m| *m == self.mode)
            .unwrap_or(0);
        self.mode = FileMode::ALL[(i + 1) % FileMode::ALL.len()];
    }

    /// Completes the provider name being typed (the last word of the
    /// providers field) from `registered`: to the only match, or to the
    /// longest common prefix of several. Returns the candidates.
    pub fn complete(&mut self, registered: &[String]) -> Vec<String> {
        let start = self.providers.rfind([' ', ',']).map(|i| i + 1).unwrap_or(0);
        let word = &self.providers[start..];
        if word.contains(':') {
            return Vec::new();
        }
        let mut matches: Vec<String> = registered
            .iter()
            .filter(|p| p.starts_with(word))
            .cloned()
            .collect();
        matches.sort();
        matches.dedup();
        if let Some(first) = matches.first() {
            let common = matches.iter().fold(first.clone(), |acc, m| {
                acc.chars()
                    .zip(m.chars())
                    .take_while(|(a, b)| a == b)
                    .map(|(a, _)| a)
                    .collect()
            });
            self.providers.truncate(start);
            self.providers.push_str(&common);
        }
        matches
    }

    /// Why the form cannot be submitted yet, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if let Err(e) = ferret_abi::proto::validate_session_name(self.name.trim()) {
            return Some(e);
        }
        if self.providers.trim().is_empty() {
            return Some("name at least one provider".into());
        }
        if self.mode.has_file() && self.log_file.trim().is_empty() {
            return Some(format!("{} mode needs a log file", self.mode.name()));
        }
        if !self.mode.has_file() && !self.log_file.trim().is_empty() {
            return Some(format!(
                "{} mode writes no log file; clear it",
                self.mode.name()
            ));
        }
        let size = self.max_size.trim();
        if !size.is_empty() {
            if !self.mode.has_file() {
                return Some(format!(
                    "{} mode writes no log file; clear the size",
                    self.mode.name()
                ));
            }
            if let Err(e) = ferret_client::plan::parse_size(size) {
                return Some(format!("max size: {e}"));
            }
        } else if matches!(self.mode, FileMode::Circular | FileMode::NewFile) {
            return Some(format!(
                "{} mode needs a max size (e.g. 64M)",
                self.mode.name()
            ));
        }
        // Whatever else a start would refuse, as 'ferret start' checks it.
        self.plan("")
            .and_then(|p| p.request().map_err(|e| e.0))
            .err()
    }

    /// The session the form describes; `controller` names the viewer.
    pub fn plan(&self, controller: &str) -> Result<StartPlan, String> {
        let mut plan = StartPlan::new(self.name.trim(), controller);
        plan.providers = self
            .provider_specs()
            .iter()
            .map(|p| ferret_client::plan::parse_provider(p))
            .collect::<Result<Vec<_>, String>>()?;
        plan.max_file_bytes = match self.max_size.trim() {
            "" => 0,
            size => ferret_client::plan::parse_size(size).map_err(|e| format!("max size: {e}"))?,
        };
        plan.mode = self.mode;
        if self.mode.has_file() {
            plan.file = Some(std::path::PathBuf::from(self.log_file.trim()));
        }
        plan.realtime = self.realtime;
        Ok(plan)
    }

    /// The provider specs, one per word.
    pub fn provider_specs(&self) -> Vec<String> {
        self.providers
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_form_completes_providers_and_checks_its_fields() {
        let registered = vec![
            "MyCompany.Web".to_string(),
            "MyCompany.Db".to_string(),
            "Other".to_string(),
        ];
        let mut f = StartForm {
            providers: "Other:5 My".into(),
            ..StartForm::default()
        };
        assert_eq!(f.complete(&registered).len(), 2);
        assert_eq!(f.providers, "Other:5 MyCompany.");
        f.providers.push('W');
        assert_eq!(f.complete(&registered), ["MyCompany.Web"]);
        assert_eq!(f.providers, "Other:5 MyCompany.Web");
        assert_eq!(f.provider_specs(), ["Other:5", "MyCompany.Web"]);

        assert!(f.problem().is_some(), "no name");
        f.name = "live".into();
        assert_eq!(
            f.problem().as_deref(),
            Some("sequential mode needs a log file")
        );
        f.log_file = "live.ferret".into();
        assert_eq!(f.problem(), None);
        f.next_mode();
        assert_eq!(f.mode, FileMode::Circular);
        assert!(f.problem().unwrap().contains("needs a max size"));
        f.max_size = "lots".into();
        assert!(f.problem().unwrap().starts_with("max size:"));
        f.max_size = "1M".into();
        assert_eq!(f.problem(), None);
        f.next_mode();
        f.next_mode();
        assert_eq!(f.mode, FileMode::NewFile);
        assert_eq!(
            f.problem(),
            None,
            "new-file mode takes the file as a pattern"
        );
        f.max_size.clear();
        assert_eq!(
            f.problem().as_deref(),
            Some("new-file mode needs a max size (e.g. 64M)")
        );
    }
}
