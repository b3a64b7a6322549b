//! CSV fields as RFC 4180 has them, for every CSV file the program writes: a field holding
//! a comma, a double quote, CR or LF is quoted, with its quotes doubled.

use std::borrow::Cow;

/// `text` as one CSV field: as it is, or quoted where it holds a comma, a quote, CR or LF.
pub fn csv_field(text: &str) -> Cow<'_, str> {
    if text.contains([',', '"', '\r', '\n']) {
        Cow::Owned(csv_quoted(text))
    } else {
        Cow::Borrowed(text)
    }
}

/// `text` as one quoted CSV field (for columns of free text, quoted even when plain, so that
/// a reader takes them as text), its quotes doubled.
pub fn csv_quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_where_they_must_be() {
        assert_eq!(csv_field("0.5"), "0.5");
        assert_eq!(csv_field("metropolis"), "metropolis");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\r"), "\"cr\r\"");
        assert_eq!(csv_quoted("plain"), "\"plain\"");
        assert_eq!(csv_quoted("a\"b"), "\"a\"\"b\"");
    }
}
