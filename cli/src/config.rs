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
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    parse_properties(&text)
        .map_err(|e: ConfigError| CliError::Usage(format!("{}: {e}", path.display())))
}
