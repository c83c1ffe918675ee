//! Macros generating the builders.

/// Generates typed builder methods that set one field each.
macro_rules! builder_methods {
    ($owner:ident, config.common; $( $field:ident($arg:ident: $ty:ty) => $value:expr; )*) => {
        $(
            #[doc = concat!("Sets [`", stringify!($owner), "::", stringify!($field), "`].")]
            pub fn $field(mut self, $arg: $ty) -> Self {
                self.config.common.$field = $value;
                self
            }
        )*
    };
    ($owner:ident, config; $( $field:ident($arg:ident: $ty:ty) => $value:expr; )*) => {
        $(
            #[doc = concat!("Sets [`", stringify!($owner), "::", stringify!($field), "`].")]
            pub fn $field(mut self, $arg: $ty) -> Self {
                self.config.$field = $value;
                self
            }
        )*
    };
}
pub(crate) use builder_methods;

/// Generates a builder type for a config kind: the typed methods of the common options, a
/// string-keyed `set`, and `build`.
macro_rules! config_builder {
    ($builder:ident, $config:ident) => {
        #[doc = concat!("Builds a [`", stringify!($config), "`]: start from [`", stringify!($config),
            "::builder`], chain setters, finish with [`", stringify!($builder), "::build`], which validates.")]
        ///
        /// Typed methods set one field each; [`Self::set`] takes any option by name and string
        /// value. The first error from `set` is kept and returned by `build`.
        #[derive(Debug, Clone, Default)]
        #[must_use]
        pub struct $builder {
            config: $config,
            error: Option<$crate::config::ConfigError>,
        }

        impl $config {
            /// A builder starting from the defaults.
            pub fn builder() -> $builder {
                $builder::default()
            }
        }

        impl From<$config> for $builder {
            fn from(config: $config) -> Self {
                $builder { config, error: None }
            }
        }

        impl $builder {
            /// Sets any option by its kafka-python or Java name, from its string form (see
            /// the config's `set`). An error is reported by [`Self::build`].
            pub fn set(mut self, name: &str, value: &str) -> Self {
                if self.error.is_none() {
                    if let Err(e) = self.config.set(name, value) {
                        self.error = Some(e);
                    }
                }
                self
            }

            /// Validates and returns the configuration, or the first error.
            pub fn build(self) -> Result<$config, $crate::config::ConfigError> {
                if let Some(e) = self.error {
                    return Err(e);
                }
                self.config.validate()?;
                Ok(self.config)
            }

            $crate::config::builder::builder_methods! { CommonConfig, config.common;
                bootstrap_servers(servers: impl $crate::config::IntoBootstrapServers) => servers
                    .into_entries()
                    .iter()
                    .map(|s| $crate::config::values::normalize_server(s))
                    .collect();
                client_id(id: impl Into<String>) => id.into();
                request_timeout_ms(ms: u32) => ms;
                retry_backoff_ms(ms: u64) => ms;
                retry_backoff_max_ms(ms: u64) => ms;
                reconnect_backoff_ms(ms: u64) => ms;
                reconnect_backoff_max_ms(ms: u64) => ms;
                connections_max_idle_ms(ms: u64) => ms;
                metadata_max_age_ms(ms: u64) => ms;
                max_in_flight_requests_per_connection(n: u32) => n;
                send_buffer_bytes(bytes: Option<u32>) => bytes;
                receive_buffer_bytes(bytes: Option<u32>) => bytes;
                socket_connection_setup_timeout_ms(ms: u64) => ms;
                socket_connection_setup_timeout_max_ms(ms: u64) => ms;
                security_protocol(protocol: $crate::config::SecurityProtocol) => protocol;
                ssl_cafile(path: impl Into<std::path::PathBuf>) => Some(path.into());
                ssl_certfile(path: impl Into<std::path::PathBuf>) => Some(path.into());
                ssl_keyfile(path: impl Into<std::path::PathBuf>) => Some(path.into());
                ssl_password(password: impl Into<$crate::config::Secret>) => Some(password.into());
                ssl_check_hostname(check: bool) => check;
                sasl_mechanism(mechanism: $crate::config::SaslMechanism) => mechanism;
                sasl_plain_username(username: impl Into<String>) => Some(username.into());
                sasl_plain_password(password: impl Into<$crate::config::Secret>) => Some(password.into());
                sasl_oauth_token(token: impl Into<$crate::config::Secret>) => Some(token.into());
                api_version(version: impl Into<$crate::config::BrokerVersion>) => Some(version.into());
                api_version_auto_timeout_ms(ms: u32) => ms;
                client_rack(rack: impl Into<String>) => rack.into();
                max_response_size(bytes: u32) => bytes;
                random_seed(seed: u64) => Some(seed);
            }
        }
    };
}
pub(crate) use config_builder;
