//! Names with rules: static resource names (product.md §4, salesforce-api.md §5.4) and
//! connection names.

use crate::DomainError;

/// A static resource name: letters, digits and underscores; a letter first; no trailing
/// underscore; no two underscores in a row; at most 255 characters. Refused before any API
/// call, naming the rule that was broken.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceName(String);

impl ResourceName {
    pub const MAX_LEN: usize = 255;

    pub fn parse(text: &str) -> Result<Self, DomainError> {
        match Self::faults(text).into_iter().next() {
            Some(fault) => Err(DomainError::invalid("resource_name", fault)),
            None => Ok(ResourceName(text.to_string())),
        }
    }

    /// Every rule a name breaks, in words (empty when it is a good name).
    pub fn faults(text: &str) -> Vec<String> {
        if text.is_empty() {
            return vec!["a static resource name cannot be empty".into()];
        }
        let mut out = Vec::new();
        let mut bad = |rule: String| out.push(format!("{text:?} {rule}"));
        if text.chars().count() > Self::MAX_LEN {
            bad("is longer than 255 characters".into());
        }
        if !text.starts_with(|c: char| c.is_ascii_alphabetic()) {
            bad("must start with a letter".into());
        }
        let mut found: Vec<char> = text.chars().filter(|c| !(c.is_ascii_alphanumeric() || *c == '_')).collect();
        found.dedup();
        if !found.is_empty() {
            let shown: Vec<String> = found.iter().take(5).map(|c| format!("{c:?}")).collect();
            bad(format!("may contain only letters, digits and underscores (found {})", shown.join(", ")));
        }
        if text.ends_with('_') {
            bad("must not end with an underscore".into());
        }
        if text.contains("__") {
            bad("must not contain two underscores in a row".into());
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ResourceName {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ResourceName> for String {
    fn from(n: ResourceName) -> String {
        n.0
    }
}

/// A new connection's name: unique per account (checked by the store), 1–80 characters,
/// trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectionName(String);

impl ConnectionName {
    pub const MAX_LEN: usize = 80;

    pub fn parse(text: &str) -> Result<Self, DomainError> {
        label("name", "a connection", text, Self::MAX_LEN).map(ConnectionName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ConnectionName {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ConnectionName> for String {
    fn from(n: ConnectionName) -> String {
        n.0
    }
}

/// A display name (connection, system, environment): trimmed, 1 to `max` characters, no
/// control characters. `what` names the thing in messages ("a system").
pub fn label(field: &'static str, what: &str, text: &str, max: usize) -> Result<String, DomainError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(field, format!("{what} needs a name")));
    }
    if trimmed.chars().count() > max {
        return Err(DomainError::invalid(field, format!("{what} name has at most {max} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, format!("{what} name cannot contain control characters")));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_follow_salesforce_s_rules_and_say_which_one_broke() {
        for good in ["walkme", "WalkMe_Lightning_2", "a", &"a".repeat(255)] {
            assert!(ResourceName::parse(good).is_ok(), "{good}");
        }
        for (bad, rule) in [
            ("", "empty"),
            ("1abc", "start with a letter"),
            ("_abc", "start with a letter"),
            ("abc_", "end with an underscore"),
            ("a__b", "two underscores"),
            ("a b", "only letters"),
            ("a-b", "only letters"),
            (&"a".repeat(256), "longer than 255"),
        ] {
            let err = ResourceName::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(rule), "{bad:?}: {err}");
        }
    }

    #[test]
    fn connection_names_are_trimmed_and_bounded() {
        assert_eq!(ConnectionName::parse("  Acme prod  ").expect("ok").as_str(), "Acme prod");
        assert!(ConnectionName::parse("   ").is_err());
        assert!(ConnectionName::parse(&"x".repeat(81)).is_err());
        assert!(ConnectionName::parse("a\u{7}b").is_err());
    }
}
