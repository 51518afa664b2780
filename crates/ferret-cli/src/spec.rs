//! Parsing `-p PROVIDER[:LEVEL[:KEYWORDS[:ALL]]]`.

use ferret_abi::proto::ProviderSpec;
use ferret_abi::{EnableFilter, Level};

fn parse_mask(s: &str, what: &str, spec: &str) -> Result<u64, String> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if digits.is_empty() {
        return Err(format!("provider spec '{spec}': the {what} mask is empty"));
    }
    u64::from_str_radix(digits, 16).map_err(|_| {
        format!("provider spec '{spec}': {what} mask '{s}' is not a hex number of at most 16 digits (e.g. 0x1f)")
    })
}

/// Parses `NAME[:LEVEL[:KEYWORDS[:ALL]]]`. LEVEL is 1-5 or a name (default
/// verbose); KEYWORDS is the hex match-any mask (default 0: every keyword);
/// ALL the hex match-all mask (default 0).
pub fn parse_provider(spec: &str) -> Result<ProviderSpec, String> {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default().trim();
    if name.is_empty() {
        return Err(format!(
            "provider spec '{spec}' has no name; use NAME[:LEVEL[:KEYWORDS]], e.g. MyCompany.Web:info:0x1"
        ));
    }
    ferret_abi::proto::validate_provider_name(name)
        .map_err(|e| format!("provider spec '{spec}': {e}"))?;
    let level = match parts.next() {
        None | Some("") => Level::Verbose,
        Some(l) => l
            .parse::<Level>()
            .map_err(|e| format!("provider spec '{spec}': {e}"))?,
    };
    let match_any = match parts.next() {
        None | Some("") => 0,
        Some(k) => parse_mask(k, "keyword", spec)?,
    };
    let match_all = match parts.next() {
        None | Some("") => 0,
        Some(k) => parse_mask(k, "match-all keyword", spec)?,
    };
    if parts.next().is_some() {
        return Err(format!(
            "provider spec '{spec}' has too many ':' parts; use NAME[:LEVEL[:KEYWORDS[:ALL]]]"
        ));
    }
    Ok(ProviderSpec {
        name: name.to_string(),
        filter: EnableFilter {
            level,
            match_any,
            match_all,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expected: Result<(&str, Level, u64, u64), &str>) {
        match (parse_provider(spec), expected) {
            (Ok(p), Ok((n, l, any, all))) => {
                assert_eq!(p.name, n);
                assert_eq!(p.filter.level, l);
                assert_eq!(p.filter.match_any, any);
                assert_eq!(p.filter.match_all, all);
            }
            (Err(e), Err(part)) => assert!(e.contains(part), "{e}"),
            (got, want) => panic!("{spec}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn provider_specs() {
        check("Web", Ok(("Web", Level::Verbose, 0, 0)));
        check("Web:4", Ok(("Web", Level::Information, 0, 0)));
        check("Web:warning:0x1f", Ok(("Web", Level::Warning, 0x1f, 0)));
        check("Web:error:ff:0x3", Ok(("Web", Level::Error, 0xff, 3)));
        check("Web::0x2", Ok(("Web", Level::Verbose, 2, 0)));
        check(":4", Err("has no name"));
        check("Web:9", Err("level '9' is not valid"));
        check("Web:4:xyz", Err("not a hex number"));
        check("Web:4:0x", Err("mask is empty"));
        check("Web:4:1:2:3", Err("too many"));
        check("Web:4:11112222333344445", Err("not a hex number"));
    }
}
