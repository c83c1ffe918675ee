//! How a command fails: a one-line message on stderr and an exit status.

use std::fmt;
use std::process::ExitCode;

use kafkit_core::config::{CommonConfig, ConfigError};
use kafkit_core::network::{NetError, SetupError};

/// A failed command.
#[derive(Debug)]
pub enum CliError {
    /// Bad usage or configuration (an unknown option, a bad value): exit status 2.
    Usage(String),
    /// The cluster could not be reached, refused, or answered with an error: exit status 1.
    Failed(String),
    /// Writing the output failed. A closed pipe (`kafkit metadata | head`) is not reported.
    Output(std::io::Error),
    /// The command stopped cleanly on this signal (already reported): exit status 128 + it.
    Interrupted(i32),
}

impl CliError {
    /// Prints the error as one line on stderr and returns the exit status.
    pub fn report(&self) -> ExitCode {
        let status = match self {
            CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                return ExitCode::SUCCESS
            }
            // The command already said why it stopped.
            CliError::Interrupted(signal) => {
                return ExitCode::from(u8::try_from(128 + signal).unwrap_or(130))
            }
            CliError::Usage(_) => 2,
            CliError::Failed(_) | CliError::Output(_) => 1,
        };
        eprintln!("kafkit: error: {}", one_line(&self.to_string()));
        ExitCode::from(status)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => f.write_str(m),
            CliError::Output(e) => write!(f, "writing the output failed: {e}"),
            CliError::Interrupted(s) => {
                write!(f, "interrupted by {}", crate::signals::name(*s))
            }
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Usage(e.to_string())
    }
}

impl From<SetupError> for CliError {
    fn from(e: SetupError) -> Self {
        match e {
            // Unreadable or invalid certificate and key files: the environment, not the
            // command line.
            SetupError::Tls(_) => CliError::Failed(e.to_string()),
            _ => CliError::Usage(e.to_string()),
        }
    }
}

impl From<NetError> for CliError {
    fn from(e: NetError) -> Self {
        CliError::Failed(e.to_string())
    }
}

/// A request's failure, with a hint when the broker never answered at all (a TLS listener
/// spoken to in plaintext, or the reverse, can look like that).
pub fn net(e: NetError, config: &CommonConfig) -> CliError {
    match &e {
        NetError::Timeout { detail: None, .. } => CliError::Failed(format!(
            "{e}: no answer; check the address and that security.protocol ({}) matches the \
             broker's listener",
            config.security_protocol
        )),
        _ => e.into(),
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e)
    }
}

/// Joins the lines of a message (errors from the OS or a broker may carry newlines) so that
/// every error is exactly one line.
pub fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for part in message
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(part);
    }
    out
}

/// Replaces the default panic message (and any backtrace) with one line on stderr: a panic
/// is a bug in kafkit, but the user still gets a single, readable error.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_owned());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "kafkit: error: internal error (a bug in kafkit, please report it): {}{location}",
            one_line(&payload)
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("a\nb\r\n\n c "), "a; b; c");
        assert_eq!(one_line("plain"), "plain");
    }
}
