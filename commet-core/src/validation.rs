//! The error every validator returns: which field, and what is wrong with it.

use std::collections::BTreeMap;
use std::fmt;

/// A refused input value: the field it came in, and why. At an API edge this is a 400 whose
/// body names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct InvalidField {
    /// The field, as callers spell it (`interval_count`, `items[1].quantity`).
    pub field: String,
    /// What is wrong, in words.
    pub reason: String,
}

impl InvalidField {
    /// Refuse `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: impl fmt::Display) -> InvalidField {
        InvalidField {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    /// The same error, for a field nested under `parent` (`items[0]` + `quantity`).
    #[must_use]
    pub fn within(self, parent: &str) -> InvalidField {
        InvalidField {
            field: format!("{parent}.{}", self.field),
            reason: self.reason,
        }
    }
}

/// Cut user-supplied text for an error message so a huge input cannot bloat an error: at most
/// 64 characters, with `...` when cut.
pub(crate) fn excerpt(input: &str) -> String {
    const MAX: usize = 64;
    match input.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &input[..cut]),
        None => input.to_owned(),
    }
}

/// Check a free-text field: trimmed non-empty (if `required`) and at most `max_chars` long.
pub fn check_text(
    field: &str,
    value: &str,
    required: bool,
    max_chars: usize,
) -> Result<(), InvalidField> {
    if required && value.trim().is_empty() {
        return Err(InvalidField::new(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(InvalidField::new(
            field,
            format_args!("must be at most {max_chars} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(InvalidField::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// The most metadata entries an object may carry (as at Stripe).
pub const MAX_METADATA_ENTRIES: usize = 50;
/// The longest metadata key, in characters.
pub const MAX_METADATA_KEY_CHARS: usize = 40;
/// The longest metadata value, in characters.
pub const MAX_METADATA_VALUE_CHARS: usize = 500;

/// Check metadata, the integrator's key/value pairs on customers, subscriptions and invoices:
/// at most 50 entries, keys of 1 to 40 characters, values of up to 500.
pub(crate) fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), InvalidField> {
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(InvalidField::new(
            "metadata",
            format_args!("at most {MAX_METADATA_ENTRIES} entries"),
        ));
    }
    for (key, value) in metadata {
        check_text("metadata", key, true, MAX_METADATA_KEY_CHARS).map_err(|invalid| {
            InvalidField::new(
                "metadata",
                format_args!("key {:?}: {}", excerpt(key), invalid.reason),
            )
        })?;
        check_text(
            &format!("metadata.{}", excerpt(key)),
            value,
            false,
            MAX_METADATA_VALUE_CHARS,
        )?;
    }
    Ok(())
}
