//! A strict checker of the Prometheus text format (0.0.4) as this appliance
//! writes it, for the host tests: every line is a `# HELP`, a `# TYPE` or a
//! sample; each family has HELP and TYPE once, before its samples, and its
//! samples together; names and label names are well formed; label values
//! use only the format's escapes; no series twice; counters end in
//! `_total`; a histogram's buckets have ascending `le` bounds with
//! non-decreasing counts, end in `+Inf`, and that bucket equals `_count`,
//! with a `_sum` beside it.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// One family as declared.
struct Family {
    name: String,
    kind: Option<String>,
    help: bool,
    samples: usize,
    /// For a histogram: the `le` bounds and counts seen, the count and
    /// whether the sum came.
    le: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: bool,
}

/// Checks `text`; says what is wrong, with the line, if anything is.
pub(crate) fn check(text: &str) -> Result<(), String> {
    if !text.ends_with('\n') {
        return Err("the text does not end with a line feed".into());
    }
    let mut families: Vec<Family> = Vec::new();
    let mut series = BTreeSet::new();
    for (number, line) in text.lines().enumerate() {
        let at = |problem: String| format!("line {}: {problem}: {line:?}", number + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let (keyword, rest) =
                rest.split_once(' ').ok_or_else(|| at("a comment that is not HELP or TYPE".into()))?;
            let (name, value) = rest.split_once(' ').ok_or_else(|| at("no text after the name".into()))?;
            check_name(name).map_err(at)?;
            let family = family(&mut families, name).map_err(at)?;
            if family.samples > 0 {
                return Err(at(format!("{keyword} after {name}'s samples")));
            }
            match keyword {
                "HELP" if family.help => return Err(at("HELP twice".into())),
                "HELP" => {
                    check_help(value).map_err(at)?;
                    family.help = true;
                }
                "TYPE" if family.kind.is_some() => return Err(at("TYPE twice".into())),
                "TYPE" => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&value) {
                        return Err(at(format!("unknown type {value}")));
                    }
                    if value == "counter" && !name.ends_with("_total") {
                        return Err(at("a counter whose name does not end in _total".into()));
                    }
                    family.kind = Some(value.to_string());
                }
                _ => return Err(at("a comment that is not HELP or TYPE".into())),
            }
            continue;
        }
        let (name, labels, value) = split_sample(line).map_err(at)?;
        check_name(name).map_err(at)?;
        let value = parse_value(value).ok_or_else(|| at("the value is not a number".into()))?;
        let last = families.last_mut().ok_or_else(|| at("a sample before any HELP or TYPE".into()))?;
        let kind = last.kind.clone().ok_or_else(|| at(format!("no TYPE for {}", last.name)))?;
        if !last.help {
            return Err(at(format!("no HELP for {}", last.name)));
        }
        let suffix = name.strip_prefix(last.name.as_str()).ok_or_else(|| {
            at(format!("a sample of another family than {} (or the family's samples are apart)", last.name))
        })?;
        if !series.insert(line.rsplit_once(' ').map_or(line, |(key, _)| key).to_string()) {
            return Err(at("the same series twice".into()));
        }
        last.samples += 1;
        match (kind.as_str(), suffix) {
            ("counter" | "gauge" | "untyped", "") => {
                if kind == "counter" && value < 0.0 {
                    return Err(at("a negative counter".into()));
                }
            }
            ("histogram", "_bucket") => {
                let le = labels.iter().find(|(key, _)| key == "le").ok_or_else(|| at("a bucket without le".into()))?;
                let bound = parse_value(&le.1).ok_or_else(|| at("le is not a number".into()))?;
                if let Some(&(previous_bound, previous_count)) = last.le.last() {
                    if bound <= previous_bound {
                        return Err(at("le bounds not ascending".into()));
                    }
                    if value < previous_count {
                        return Err(at("bucket counts not cumulative".into()));
                    }
                }
                if last.count.is_some() {
                    return Err(at("a bucket after the count".into()));
                }
                last.le.push((bound, value));
            }
            ("histogram", "_sum") => last.sum = true,
            ("histogram", "_count") => {
                match last.le.last() {
                    Some(&(bound, infinite)) if bound == f64::INFINITY && infinite == value => {}
                    Some(_) => return Err(at("the last bucket is not +Inf, or differs from the count".into())),
                    None => return Err(at("a count without buckets".into())),
                }
                last.count = Some(value);
            }
            _ => return Err(at(format!("{name} does not belong to {kind} {}", last.name))),
        }
    }
    for family in &families {
        if family.samples == 0 {
            return Err(format!("{} has no sample", family.name));
        }
        if family.kind.as_deref() == Some("histogram") && (family.count.is_none() || !family.sum) {
            return Err(format!("histogram {} lacks its _count or _sum", family.name));
        }
    }
    Ok(())
}

/// The family `name` if it is the latest one, or a new one; a family seen
/// before another began is an error (its lines must be together).
fn family<'f>(families: &'f mut Vec<Family>, name: &str) -> Result<&'f mut Family, String> {
    let latest = families.last().is_some_and(|family| family.name == name);
    if !latest {
        if families.iter().any(|family| family.name == name) {
            return Err(format!("{name} declared again after another family"));
        }
        families.push(Family {
            name: name.to_string(),
            kind: None,
            help: false,
            samples: 0,
            le: Vec::new(),
            count: None,
            sum: false,
        });
    }
    Ok(families.last_mut().expect("just pushed or found"))
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn check_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|byte| byte.is_ascii_alphabetic() || byte == b'_' || byte == b':');
    if first_ok && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b':') {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
fn check_label_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|byte| byte.is_ascii_alphabetic() || byte == b'_');
    if first_ok && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_') && !name.starts_with("__") {
        Ok(())
    } else {
        Err(format!("bad label name {name:?}"))
    }
}

/// HELP text may escape only `\\` and `\n`.
fn check_help(text: &str) -> Result<(), String> {
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        if character == '\\' && !matches!(characters.next(), Some('\\' | 'n')) {
            return Err("a bad escape in HELP".into());
        }
    }
    Ok(())
}

/// Label names and their values, unescaped.
type LabelPairs = Vec<(String, String)>;

/// A sample line's name, labels and value.
fn split_sample(line: &str) -> Result<(&str, LabelPairs, &str), String> {
    let Some(open) = line.find('{') else {
        let (name, value) = line.split_once(' ').ok_or("no value")?;
        return Ok((name, Vec::new(), value));
    };
    let name = &line[..open];
    let mut labels = Vec::new();
    let mut rest = &line[open + 1..];
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            let value = after.strip_prefix(' ').ok_or("no space before the value")?;
            return Ok((name, labels, value));
        }
        let (key, after) = rest.split_once("=\"").ok_or("a label without =\"")?;
        check_label_name(key)?;
        if labels.iter().any(|(seen, _)| seen == key) {
            return Err(format!("label {key} twice"));
        }
        let mut value = String::new();
        let mut characters = after.char_indices();
        let end = loop {
            match characters.next() {
                None => return Err("an unterminated label value".into()),
                Some((index, '"')) => break index,
                Some((_, '\\')) => match characters.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return Err("a bad escape in a label value".into()),
                },
                Some((_, character)) => value.push(character),
            }
        };
        labels.push((key.to_string(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// A sample value: a float, or `+Inf`, `-Inf`, `NaN`.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if text.bytes().all(|byte| byte.is_ascii_digit() || b".eE+-".contains(&byte)) => text.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    const GOOD: &str = "# HELP a_total A.\n# TYPE a_total counter\na_total{code=\"2\\\"00\"} 1\n\
                        # HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n\
                        h_sum 3.5\nh_count 2\n";

    #[test]
    fn accepts_a_well_formed_text() {
        assert_eq!(check(GOOD), Ok(()));
    }

    #[test]
    fn refuses_each_kind_of_mistake() {
        let bad = [
            ("a counter without _total", GOOD.replace("a_total", "a")),
            ("TYPE after a sample", GOOD.replacen("# HELP h H.\n# TYPE h histogram\n", "", 1) + "# TYPE h histogram\n"),
            ("a family apart", format!("{GOOD}# HELP a_total A.\n")),
            ("a bad name", GOOD.replace("h_sum", "h-sum")),
            ("le not ascending", GOOD.replace("le=\"1\"", "le=\"+Inf\"")),
            ("+Inf not the count", GOOD.replace("h_count 2", "h_count 3")),
            ("a bad escape", GOOD.replace("2\\\"00", "2\\x00")),
            ("a raw quote", GOOD.replace("2\\\"00", "2\"00")),
            ("no sum", GOOD.replace("h_sum 3.5\n", "")),
            ("no line feed at the end", GOOD.trim_end().into()),
            ("a series twice", GOOD.replace("a_total{code=\"2\\\"00\"} 1\n", "a_total 1\na_total 2\n")),
            ("no HELP", GOOD.replace("# HELP h H.\n", "")),
        ];
        for (what, text) in bad {
            assert!(check(&text).is_err(), "{what} passed:\n{text}");
        }
    }
}
