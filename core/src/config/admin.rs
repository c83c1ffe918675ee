use super::builder::{builder_methods, config_builder};
use super::common::COMMON_OPTIONS;
use super::options::{concat, opt, wrong_kind, Access, Configurable, OptionInfo, Rejection};
use super::values::I32_MAX;
use super::{CommonConfig, ConfigError};

/// Configuration of an admin client: [`CommonConfig`] plus the default timeout of admin
/// calls.
///
/// Java's admin client defaults `connections_max_idle_ms` to 300000; kafkit keeps one
/// default for every client kind (540000).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdminConfig {
    /// The options every client kind shares.
    pub common: CommonConfig,
    /// `default_api_timeout_ms` / `default.api.timeout.ms`: the timeout of an admin call that
    /// does not give one, retries included. Default 60000.
    pub default_api_timeout_ms: u32,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            common: CommonConfig::default(),
            default_api_timeout_ms: 60_000,
        }
    }
}

const ADMIN_ONLY: &[OptionInfo] = &[opt!(
    Admin,
    "default_api_timeout_ms",
    "default.api.timeout.ms",
    Java,
    "60000",
    "Timeout of an admin call that gives none, retries included.",
    int(default_api_timeout_ms, 0, I32_MAX)
)];

static ADMIN_OPTIONS: [OptionInfo; COMMON_OPTIONS.len() + ADMIN_ONLY.len()] =
    concat(COMMON_OPTIONS, ADMIN_ONLY);

impl Configurable for AdminConfig {
    fn table() -> &'static [OptionInfo] {
        &ADMIN_OPTIONS
    }
    fn apply(&mut self, access: Access, value: &str) -> Result<(), Rejection> {
        match access {
            Access::Common(set, _) => set(&mut self.common, value),
            Access::Admin(set, _) => set(self, value),
            _ => Err(wrong_kind()),
        }
    }
    fn render(&self, access: Access) -> String {
        match access {
            Access::Common(_, get) => get(&self.common),
            Access::Admin(_, get) => get(self),
            _ => String::new(),
        }
    }
    fn ignored(&self) -> &[String] {
        &self.common.ignored
    }
    fn ignored_mut(&mut self) -> &mut Vec<String> {
        &mut self.common.ignored
    }
    fn check(&self) -> Result<(), ConfigError> {
        self.common.check_common()
    }
}

super::options::config_api!(AdminConfig);

config_builder!(AdminConfigBuilder, AdminConfig);

impl AdminConfigBuilder {
    builder_methods! { AdminConfig, config;
        default_api_timeout_ms(ms: u32) => ms;
    }
}
