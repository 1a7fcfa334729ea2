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

/// Turns a serde error (with its path) into a field error: wrong JSON types, bad syntax.
pub fn from_json_error(e: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let (code, message) = match inner.classify() {
        serde_json::error::Category::Data => ("wrong_type", strip_position(&inner.to_string())),
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

    #[test]
    fn a_prefix_joins_the_field_path_the_way_json_paths_read() {
        let e = FieldError::new("x", "amount", "m").within("events[3]");
        assert_eq!(e.field.as_deref(), Some("events[3].amount"));
        let e = FieldError::body("x", "m").within("events[3]");
        assert_eq!(e.field.as_deref(), Some("events[3]"));
    }
}
