//! `/` filters: a regex (case-insensitive unless it has a capital letter);
//! a leading `!` keeps the rows that do NOT match.

use regex::{Regex, RegexBuilder};

#[derive(Clone, Debug)]
pub struct Filter {
    pub text: String,
    invert: bool,
    re: Regex,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, String> {
        let (invert, pattern) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let smart_case = !pattern.chars().any(char::is_uppercase);
        let re = RegexBuilder::new(pattern)
            .case_insensitive(smart_case)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                format!(
                    "filter {text:?}: {}",
                    e.to_string().lines().last().unwrap_or("bad regex")
                )
            })?;
        Ok(Filter {
            text: text.to_string(),
            invert,
            re,
        })
    }

    pub fn matches(&self, row: &str) -> bool {
        self.re.is_match(row) != self.invert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_invert_and_case() {
        let f = Filter::parse("ali").unwrap();
        assert!(f.matches("user/Alice/Sent"));
        let f = Filter::parse("!^user/bob").unwrap();
        assert!(f.matches("user/alice"));
        assert!(!f.matches("user/bob/x"));
        let f = Filter::parse("Alice").unwrap();
        assert!(!f.matches("alice"));
        assert!(Filter::parse("(").is_err());
        assert!(!Filter::parse("!").unwrap().matches("anything"));
    }
}
