//! `kafkit probe`: the broker's version guess and the API versions kafkit would use.

use kafkit_blocking::LowLevelClient;
use kafkit_core::config::CommonConfig;
use kafkit_core::network::{release_name, ApiVersionTable, BrokerVersion};
use kafkit_core::protocol::ApiKey;
use serde_json::{json, Value};

use crate::args::ProbeArgs;
use crate::error::{self, CliError};
use crate::output::{print_json, Output};

/// One API the broker lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRow {
    /// The API key.
    pub key: i16,
    /// kafkit's name for it, if this build knows the key.
    pub name: Option<&'static str>,
    /// The broker's lowest version.
    pub broker_min: i16,
    /// The broker's highest version.
    pub broker_max: i16,
    /// The version kafkit will use: the highest both support.
    pub kafkit: Option<i16>,
}

/// Every API in the table, by key, with the version kafkit negotiates.
pub fn api_rows(table: &ApiVersionTable) -> Vec<ApiRow> {
    table
        .iter()
        .map(|(key, broker_min, broker_max)| {
            let api = ApiKey::from_i16(key);
            ApiRow {
                key,
                name: api.map(ApiKey::name),
                broker_min,
                broker_max,
                kafkit: api.and_then(|api| table.negotiate(api, None)),
            }
        })
        .collect()
}

/// The address of the broker `node`: bootstrap entries have negative ids in the order given,
/// brokers named by metadata are looked up.
fn broker_address(config: &CommonConfig, client: &LowLevelClient, node: i32) -> String {
    if node < 0 {
        let idx = usize::try_from(-(node as i64) - 1).unwrap_or(usize::MAX);
        if let Some(addr) = config.bootstrap_servers.get(idx) {
            return addr.clone();
        }
    } else if let Ok(view) = client.metadata(Some(Vec::new())) {
        if let Some(b) = view.brokers.get(&node) {
            return b.address();
        }
    }
    format!("node {node}")
}

/// What an `api_version` pin did to the ranges shown.
pub fn pin_note(pin: BrokerVersion) -> String {
    if pin < BrokerVersion::new(0, 10, 0) {
        format!(
            "pinned by api_version {pin}: the ranges below are that release's fixed table, not \
             the broker's (ApiVersions is not asked)"
        )
    } else if pin < BrokerVersion::new(4, 0, 0) {
        format!(
            "pinned by api_version {pin}: the broker's ranges, capped to what Kafka {} had",
            release_name(pin)
        )
    } else {
        format!("api_version {pin}: the broker's own ranges (no release newer than 4.0 caps them)")
    }
}

/// Runs the command.
pub fn run(config: &CommonConfig, args: &ProbeArgs) -> Result<(), CliError> {
    let client = LowLevelClient::start(config)?;
    let (node, version, table) = client.check_version().map_err(|e| error::net(e, config))?;
    let address = broker_address(config, &client, node);
    let pinned = config.api_version;
    let release = release_name(version);
    let rows = api_rows(&table);
    if args.output.json {
        let apis: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "key": r.key,
                    "name": r.name,
                    "broker_min": r.broker_min,
                    "broker_max": r.broker_max,
                    "kafkit": r.kafkit,
                })
            })
            .collect();
        return print_json(&json!({
            "broker": {"node": node, "address": address},
            "version_guess": version.to_string(),
            "release": release,
            "api_version_pinned": pinned.is_some(),
            "apis": apis,
        }));
    }
    let mut out = Output::default();
    let role = if node < 0 { "bootstrap, node" } else { "node" };
    out.line(format!("Broker:         {address} ({role} {node})"));
    out.line(format!(
        "Kafka version:  {release} (inferred from the API versions)"
    ));
    if let Some(pin) = pinned {
        out.line(format!("                {}", pin_note(pin)));
    }
    let supported = rows.iter().filter(|r| r.kafkit.is_some()).count();
    out.line(format!(
        "APIs:           {} listed, {supported} usable by kafkit",
        rows.len()
    ));
    out.line("");
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.key.to_string(),
                r.name
                    .map_or_else(|| format!("(unknown API {})", r.key), str::to_owned),
                format!("{}..{}", r.broker_min, r.broker_max),
                r.kafkit
                    .map_or_else(|| "unsupported".to_owned(), |v| v.to_string()),
            ]
        })
        .collect();
    out.table(0, &["KEY", "API", "BROKER", "KAFKIT"], &table, &[0]);
    out.print()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_notes_say_what_the_pin_did() {
        assert!(pin_note(BrokerVersion::new(0, 9, 0)).contains("fixed table"));
        assert!(pin_note(BrokerVersion::new(0, 10, 1)).contains("capped to what Kafka 0.10.1 had"));
        assert!(pin_note(BrokerVersion::new(4, 0, 0)).contains("own ranges"));
    }

    #[test]
    fn rows_negotiate_and_name() {
        let table = ApiVersionTable::from_ranges([(0, 0, 9), (3, 100, 200), (9999, 0, 1)]);
        let rows = api_rows(&table);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].name, Some("Produce"));
        assert_eq!(rows[0].kafkit, Some(9));
        assert_eq!(rows[1].name, Some("Metadata"));
        assert_eq!(rows[1].kafkit, None);
        assert_eq!(rows[2].name, None);
        assert_eq!(rows[2].kafkit, None);
    }
}
