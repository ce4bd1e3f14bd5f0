//! Errors: the [`Error`] an operator returns from its callbacks, and the [`StateError`] a
//! state call can fail with.

use std::fmt;

/// Which `operator-error` case an [`Error`] becomes at the component boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration given to `init` cannot be used (`operator-error::invalid-config`).
    InvalidConfig,
    /// Processing failed (`operator-error::failed`); the host dead-letters the record.
    Failed,
    /// The operation is not supported, e.g. a `migrate` the operator has no upgrade for
    /// (`operator-error::unsupported`).
    Unsupported,
}

/// An error returned by an operator callback or an SDK call.
///
/// Any `std::error::Error` converts into it with `?` (as [`ErrorKind::Failed`], the message
/// being the error and its sources joined by `": "`), so parsing a record with e.g.
/// `serde_json::from_slice(record.value())?` needs no mapping. For that blanket conversion to
/// exist, `Error` itself does not implement `std::error::Error` (the same trade-off `anyhow`
/// makes); it implements `Display` and `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Processing failed: the host sends the record to the dead-letter output.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// The configuration given to `init` cannot be used.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }

    /// The operation is not supported by this operator.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// The kind of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context` put in front of its message (`"{context}: {message}"`).
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::failed(message)
    }
}

/// An error the host returns from a state call (the WIT `state-error`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateError {
    /// The handle names no declared state, or one of another kind.
    BadHandle(u32),
    /// The key index names no key of the current batch, or the call came outside `process`
    /// and `on_timer`.
    BadKey(u32),
    /// A value, map key or page exceeds the host's limits (the size in bytes).
    TooLarge(u64),
    /// The state backend failed; the message says how.
    Backend(String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadHandle(handle) => write!(
                f,
                "state handle {handle} names no declared state of the kind this call needs"
            ),
            Self::BadKey(key) => write!(
                f,
                "key index {key} names no key of the current batch (keyed state is only \
                 reachable inside `process` and `on_timer`)"
            ),
            Self::TooLarge(size) => write!(f, "{size} bytes exceed the host's state limits"),
            Self::Backend(message) => write!(f, "state backend failed: {message}"),
        }
    }
}

impl std::error::Error for StateError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(StateError);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn std_errors_convert_with_their_sources() {
        let error = Error::from(Outer(StateError::TooLarge(9)));
        assert_eq!(error.kind(), ErrorKind::Failed);
        assert_eq!(
            error.message(),
            "outer: 9 bytes exceed the host's state limits"
        );
    }

    #[test]
    fn context_prefixes_the_message() {
        let error = Error::invalid_config("bad n").context("top-n");
        assert_eq!(error.to_string(), "top-n: bad n");
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(format!("{error:?}"), "InvalidConfig: top-n: bad n");
    }
}
