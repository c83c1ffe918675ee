//! From the global options (-b, -F, -X) to a client configuration.
//!
//! Options are applied in order: `-b` (or KAFKA_BOOTSTRAP, or the default), then the `-F`
//! properties file, then every `-X` as given, so that a later setting wins. Each goes through
//! the configuration's generic setter, which takes Java dotted names and kafka-python names
//! alike and whose errors name the option and what it accepts.

use kafkit_core::config::{parse_properties, CommonConfig, ConfigError};

use crate::args::GlobalArgs;
use crate::error::CliError;

/// The common client configuration of the global options, validated. Known options that
/// these commands do not use (`linger.ms`, `key.serializer`) get a warning on stderr.
pub fn common_config(global: &GlobalArgs) -> Result<CommonConfig, CliError> {
    let mut config = CommonConfig::default();
    config
        .set("bootstrap_servers", &global.bootstrap)
        .map_err(|e| CliError::Usage(format!("bootstrap servers (-b or KAFKA_BOOTSTRAP): {e}")))?;
    for (name, value) in file_options(global)? {
        config.set(&name, &value).map_err(with_hint)?;
    }
    for (name, value) in &global.options {
        config.set(name, value).map_err(with_hint)?;
    }
    config.validate()?;
    for name in config.ignored_options() {
        eprintln!("kafkit: warning: option `{name}` is not used by this command; ignored");
    }
    Ok(config)
}

/// An unknown option's error, pointing at the list of options.
pub fn with_hint(e: ConfigError) -> CliError {
    match e {
        ConfigError::UnknownOption { .. } => {
            CliError::Usage(format!("{e} (`kafkit options` lists every option)"))
        }
        e => e.into(),
    }
}

/// The `(name, value)` pairs of the `-F` file, if any.
pub fn file_options(global: &GlobalArgs) -> Result<Vec<(String, String)>, CliError> {
    let Some(path) = &global.config_file else {
        return Ok(Vec::new());
    };
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    parse_properties(&properties_text(bytes))
        .map_err(|e: ConfigError| CliError::Usage(format!("{}: {e}", path.display())))
}

/// The text of a properties file: UTF-8 when it is valid UTF-8, otherwise ISO-8859-1 (each
/// byte one character), the encoding Java's `Properties.load` reads.
fn properties_text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    }
}

/// Checks a topic name against Kafka's rules (1 to 249 of `a-z A-Z 0-9 . _ -`, not `.` or
/// `..`), so that a name no broker accepts is refused as such, not reported missing.
pub fn check_topic_name(name: &str) -> Result<(), CliError> {
    let why = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if name == "." || name == ".." {
        Some("`.` and `..` are reserved".to_owned())
    } else if name.len() > 249 {
        Some(format!("it is {} characters long, above 249", name.len()))
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .map(|c| format!("{c:?} is not allowed (only a-z, A-Z, 0-9, `.`, `_` and `-` are)"))
    };
    match why {
        None => Ok(()),
        Some(why) => Err(CliError::Usage(format!(
            "invalid topic name `{name}`: {why}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_files_in_latin_1_or_utf_8() {
        // `sasl.password=pässword` in ISO-8859-1 (ä is 0xE4) and in UTF-8.
        let latin1 = b"sasl.password=p\xe4ssword\n".to_vec();
        assert_eq!(properties_text(latin1), "sasl.password=pässword\n");
        let utf8 = "sasl.password=pässword\n".as_bytes().to_vec();
        assert_eq!(properties_text(utf8), "sasl.password=pässword\n");
    }

    #[test]
    fn topic_names() {
        for ok in ["orders", "a.b_c-D9", &"x".repeat(249)] {
            assert!(check_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "bad topic!", "é", &"x".repeat(250)] {
            let err = check_topic_name(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid topic name"), "{err}");
        }
    }
}
