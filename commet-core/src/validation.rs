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

/// Check a URL given to commet: absolute, `http` or `https`, with a host and no user name or
/// password in it, at most 2,048 characters; with `query: false`, also without a query or
/// fragment (a base that commet appends paths to). Anything else (`javascript:...`, a relative
/// path, `ftp://...`) is refused naming the field.
pub fn check_url(field: &str, value: &str, query: bool) -> Result<(), InvalidField> {
    const MAX: usize = 2_048;
    if value.len() > MAX {
        return Err(InvalidField::new(
            field,
            format_args!("must be at most {MAX} characters"),
        ));
    }
    let expected = "expected an absolute http(s) URL such as https://app.example.com/welcome";
    let url = url::Url::parse(value).map_err(|error| {
        InvalidField::new(
            field,
            format_args!("{:?} is not a URL ({error}): {expected}", excerpt(value)),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(InvalidField::new(
            field,
            format_args!("{:?} is not an http(s) URL: {expected}", excerpt(value)),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InvalidField::new(
            field,
            "must not carry a user name or password",
        ));
    }
    if !query && (url.query().is_some() || url.fragment().is_some()) {
        return Err(InvalidField::new(
            field,
            "must be an http(s) URL without a query or fragment",
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn only_absolute_http_urls_are_accepted() {
        for good in [
            "https://app.example.com/welcome",
            "http://127.0.0.1:8080/done?from=checkout",
            "https://app.example.com/a#b",
        ] {
            assert_eq!(check_url("success_url", good, true), Ok(()), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "/welcome",
            "app.example.com/welcome",
            "ftp://example.com/file",
            "https://user:secret@example.com/",
            "https://",
            "",
        ] {
            let error = check_url("success_url", bad, true).unwrap_err();
            assert_eq!(error.field, "success_url", "{bad}");
        }
        assert!(
            check_url(
                "checkout_base_url",
                "https://billing.example.com/c?x=1",
                false
            )
            .is_err()
        );
        assert!(check_url("checkout_base_url", "https://billing.example.com/c", false).is_ok());
    }
}
