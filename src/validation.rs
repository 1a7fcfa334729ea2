//! Field-level validation errors shared by every edge that parses caller input (HTTP bodies,
//! event files, the catalog). The HTTP layer turns them into `400` answers naming the field.

use std::fmt;

/// One thing wrong with the input, at one JSON path (`events[3].amount`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Stable snake_case code a program can match on.
    pub code: &'static str,
    /// A human sentence.
    pub message: String,
    /// The JSON path of the offending field, when there is one.
    pub field: Option<String>,
}

impl FieldError {
    pub fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// An error about the body as a whole (not valid JSON, empty batch).
    pub fn body(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Puts a path prefix in front of the field (`amount` -> `events[3].amount`).
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = Some(match self.field.take() {
            Some(f) if f.starts_with('[') => format!("{prefix}{f}"),
            Some(f) => format!("{prefix}.{f}"),
            None => prefix.to_owned(),
        });
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// All that is wrong with one input, first error first. Never empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    pub fn one(e: FieldError) -> Self {
        Self(vec![e])
    }

    pub fn first(&self) -> &FieldError {
        &self.0[0]
    }
}

impl From<FieldError> for Invalid {
    fn from(e: FieldError) -> Self {
        Self::one(e)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.first().fmt(f)?;
        if self.0.len() > 1 {
            write!(f, " (and {} more)", self.0.len() - 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// For an optional field: absent is `None`, a value is `Some`, and an explicit `null` is an
/// error (`wrong_type`), so a field is either given or left out, never both at once.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Reads one JSON value of type `T` from the whole of `bytes`. Tracking the JSON path costs
/// time on every field, so it is only done again, to name the field, when the fast read
/// fails. Anything after the value (a second event as JSON lines, trailing garbage) is an
/// error: a body is one value.
pub fn read_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldError> {
    serde_json::from_slice(bytes).map_err(|first| {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize::<_, T>(de) {
            // The value itself reads: what failed is what follows it.
            Ok(_) => FieldError::body(
                "trailing_data",
                format!(
                    "the body must be exactly one JSON value, with nothing after it ({})",
                    strip_position(&first.to_string())
                ),
            ),
            Err(e) => from_json_error(e),
        }
    })
}

/// Turns a serde error (with its path) into a field error: wrong JSON types, unknown
/// fields, bad syntax.
pub fn from_json_error(e: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let message = strip_position(&inner.to_string());
    if let Some(name) = unknown_field(&message) {
        // The path ends at the unknown field's name when serde got that far; otherwise it
        // is the object's path and the name is added.
        let field = match path.as_str() {
            "." | "" => name.to_owned(),
            p if p.ends_with(name) => p.to_owned(),
            p => format!("{p}.{name}"),
        };
        return FieldError::new(
            "unknown_field",
            field,
            format!(
                "{message}; free-form values go in `context` (decisions) or `attributes` (events)"
            ),
        );
    }
    let (code, message) = match inner.classify() {
        serde_json::error::Category::Data => ("wrong_type", message),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => (
            "malformed_json",
            format!("the body is not valid JSON: {inner}"),
        ),
        serde_json::error::Category::Io => ("malformed_json", inner.to_string()),
    };
    if path == "." || path.is_empty() || code == "malformed_json" {
        FieldError::body(code, message)
    } else {
        FieldError::new(code, path, message)
    }
}

/// The name in serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    message.strip_prefix("unknown field `")?.split('`').next()
}

/// serde_json appends "at line 1 column 57"; the field path says more than that.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: Option<String>,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: Option<u32>,
    }

    #[test]
    fn a_body_is_one_value_and_unknown_fields_are_named() {
        let read = |s: &str| read_json::<Body>(s.as_bytes()).map(|_| ());
        assert!(read(r#"{"name":"x"}"#).is_ok());
        assert!(read(" {\"name\":\"x\"}\n").is_ok());
        for trailing in [
            r#"{"name":"x"} {"name":"y"}"#,
            "{\"name\":\"x\"}\n{\"name\":\"y\"}",
            r#"{"name":"x"}xyz"#,
        ] {
            let e = read(trailing).unwrap_err();
            assert_eq!(e.code, "trailing_data", "{trailing}");
        }
        let e = read(r#"{"nmae":"x"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_field", Some("nmae"))
        );
        let e = read(r#"{"inner":{"m":1}}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_field", Some("inner.m"))
        );
        let e = read(r#"{"inner":{"n":"1"}}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("wrong_type", Some("inner.n"))
        );
    }

    #[test]
    fn a_prefix_joins_the_field_path_the_way_json_paths_read() {
        let e = FieldError::new("x", "amount", "m").within("events[3]");
        assert_eq!(e.field.as_deref(), Some("events[3].amount"));
        let e = FieldError::body("x", "m").within("events[3]");
        assert_eq!(e.field.as_deref(), Some("events[3]"));
    }
}
