use std::fmt;

/// Why a configuration could not be built.
///
/// Every variant names the option concerned in the spelling the caller used (for
/// [`ConfigError::UnknownOption`] and [`ConfigError::InvalidValue`] raised by a generic setter)
/// or kafkit's snake_case name (for errors found by `validate()`). Secret values never appear in
/// an error: the value of a secret option is reported as `[redacted]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No option has this name, and it is not a known Java or kafka-python option kafkit ignores.
    UnknownOption {
        /// The name as given.
        name: String,
        /// The closest known option name, written in the same style (dotted or snake_case) as
        /// the name given, if one is close enough to be a likely typo.
        suggestion: Option<String>,
    },
    /// The value cannot be parsed, or is out of range, for the option.
    InvalidValue {
        /// The option, as named by the caller (or its snake_case name when found by
        /// `validate()`).
        option: String,
        /// The value given (`[redacted]` for a secret option).
        value: String,
        /// What the option accepts, for example `one of: all, -1, 1, 0` or
        /// `an integer in 0..=2147483647`.
        expected: String,
    },
    /// A known Java or kafka-python option that kafkit cannot honour and that would change
    /// behaviour if silently ignored (a JKS keystore, a SOCKS proxy, ...).
    Unsupported {
        /// The option as given.
        option: String,
        /// Why, and what to use instead.
        reason: String,
    },
    /// Options that are each valid but cannot be combined, such as an explicit
    /// `enable_idempotence=true` with `acks=1`.
    Conflict {
        /// The options involved (snake_case names).
        options: Vec<&'static str>,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Java properties text that cannot be parsed (the only such case is a malformed `\uXXXX`
    /// escape, as in `java.util.Properties`).
    Properties {
        /// The 1-based line the problem starts on.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownOption { name, suggestion } => {
                write!(f, "unknown option `{name}`")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean `{s}`?")?;
                }
                Ok(())
            }
            ConfigError::InvalidValue {
                option,
                value,
                expected,
            } => write!(
                f,
                "invalid value `{value}` for option `{option}`: expected {expected}"
            ),
            ConfigError::Unsupported { option, reason } => {
                write!(f, "option `{option}` is not supported by kafkit: {reason}")
            }
            ConfigError::Conflict { options, reason } => {
                write!(f, "conflicting options (")?;
                for (i, o) in options.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(o)?;
                }
                write!(f, "): {reason}")
            }
            ConfigError::Properties { line, message } => {
                write!(f, "properties line {line}: {message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}
