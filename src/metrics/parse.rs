//! A strict reader of the text exposition format 0.0.4, as far as cyrdeck
//! writes it: the tests read back what was rendered or served (every line
//! must be a `# HELP`/`# TYPE` comment or `name{label="value",...} value`),
//! get label values unescaped, and check that each family is contiguous
//! and typed before its samples.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut cs = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    cs.next().is_some_and(ok_first) && cs.all(|c| ok_first(c) || c.is_ascii_digit())
}

fn value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ if s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
            && !s.is_empty() =>
        {
            s.parse::<f64>().map_err(|e| format!("value {s:?}: {e}"))
        }
        _ => Err(format!("value {s:?}")),
    }
}

/// `label="value",...}` after the `{`; returns the labels and the rest.
fn labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut out = BTreeMap::new();
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((out, rest));
        }
        let (name, rest) = s.split_once("=\"").ok_or("label without =\"")?;
        if !is_name(name, false) {
            return Err(format!("label name {name:?}"));
        }
        let mut v = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => v.push('\\'),
                    Some((_, '"')) => v.push('"'),
                    Some((_, 'n')) => v.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, c)) => v.push(c),
            }
        };
        if out.insert(name.to_string(), v).is_some() {
            return Err(format!("label {name} twice"));
        }
        s = &rest[end + 1..];
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return Err(format!("expected , or }} at {s:?}"));
        }
    }
}

/// Every sample of `text`, or the first line that breaks the grammar.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("no newline at the end".into());
    }
    let mut out = Vec::new();
    let mut typed: BTreeSet<String> = BTreeSet::new();
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(c) = line.strip_prefix("# ") {
            let mut w = c.splitn(3, ' ');
            let (what, name) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            if what == "TYPE" || what == "HELP" {
                if !is_name(name, true) {
                    return Err(err("metric name".into()));
                }
                if current.as_deref() != Some(name) {
                    if let Some(c) = current.take() {
                        finished.insert(c);
                    }
                    if finished.contains(name) {
                        return Err(err("family not contiguous".into()));
                    }
                    current = Some(name.to_string());
                }
            }
            if what == "TYPE" {
                let t = w.next().unwrap_or("");
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                    return Err(err("type".into()));
                }
                if !typed.insert(name.to_string()) {
                    return Err(err("TYPE twice".into()));
                }
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(err("metric name".into()));
        }
        if current.as_deref() != Some(name) {
            return Err(err("sample outside its family (no TYPE before it)".into()));
        }
        let (labels, rest) = match line[name_end..].strip_prefix('{') {
            Some(r) => labels(r).map_err(&err)?,
            None => (BTreeMap::new(), &line[name_end..]),
        };
        let v = rest
            .strip_prefix(' ')
            .ok_or_else(|| err("no space before the value".into()))?;
        out.push(Sample {
            name: name.to_string(),
            labels,
            value: value(v).map_err(&err)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_grammar_allows() {
        let t = "# HELP a_b x\n# TYPE a_b gauge\na_b 1\na_b{k=\"v\\\\\\\"\\n\",j=\"\"} -0.5\n";
        let s = parse(t).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].labels["k"], "v\\\"\n");
        assert_eq!(s[1].value, -0.5);
    }

    #[test]
    fn rejects_what_it_does_not() {
        for bad in [
            "a 1\n",                                           // no TYPE
            "# TYPE a gauge\na{k=\"v} 1\n",                    // unterminated
            "# TYPE a gauge\na{k=\"\\x\"} 1\n",                // bad escape
            "# TYPE a gauge\na{1k=\"v\"} 1\n",                 // label name
            "# TYPE a gauge\na one\n",                         // value
            "# TYPE a gauge\na 1",                             // no final newline
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n", // not contiguous
            "# TYPE a gauge\n# TYPE a gauge\na 1\n",           // typed twice
            "# TYPE a gauge\na{k=\"v\"}1\n",                   // no space
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
