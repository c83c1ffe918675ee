//! The generated tables cover exactly the definitions in the spec directory: every message, with
//! the same versions, every API key, every error code.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kafkit_core::protocol::{ApiKey, ErrorCode, ALL_MESSAGES};

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// The string value of the first `"key": "value"` (top-level keys precede the fields).
fn string_value(json: &str, key: &str) -> Option<String> {
    let at = json.find(&format!("\"{key}\""))?;
    let rest = &json[at + key.len() + 2..];
    let rest = &rest[rest.find(':')? + 1..];
    let start = rest.find('"')? + 1;
    let len = rest[start..].find('"')?;
    Some(rest[start..start + len].to_string())
}

fn number_value(json: &str, key: &str) -> Option<i16> {
    let at = json.find(&format!("\"{key}\""))?;
    let rest = &json[at + key.len() + 2..];
    let rest = rest[rest.find(':')? + 1..].trim_start();
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

fn versions(s: &str) -> (i16, i16) {
    match s.split_once('-') {
        Some((lo, hi)) => (lo.parse().unwrap(), hi.parse().unwrap()),
        None => (s.parse().unwrap(), s.parse().unwrap()),
    }
}

struct Def {
    kind: String,
    api_key: Option<i16>,
    versions: (i16, i16),
}

fn definitions() -> BTreeMap<String, Def> {
    let dir = shared().join("kafka-protocol-spec");
    let mut defs = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let name = string_value(&text, "name").unwrap();
        let def = Def {
            kind: string_value(&text, "type").unwrap(),
            api_key: number_value(&text, "apiKey"),
            versions: versions(&string_value(&text, "validVersions").unwrap()),
        };
        assert!(defs.insert(name, def).is_none());
    }
    defs
}

#[test]
fn every_message_and_version_is_generated() {
    let defs = definitions();
    let generated: BTreeMap<&str, (i16, i16)> = ALL_MESSAGES
        .iter()
        .map(|&(n, lo, hi)| (n, (lo, hi)))
        .collect();
    assert_eq!(
        generated.len(),
        ALL_MESSAGES.len(),
        "duplicate names in ALL_MESSAGES"
    );
    let spec: BTreeMap<&str, (i16, i16)> =
        defs.iter().map(|(n, d)| (n.as_str(), d.versions)).collect();
    assert_eq!(generated, spec);
    let pairs: i32 = spec.values().map(|(lo, hi)| i32::from(hi - lo + 1)).sum();
    eprintln!("{} messages, {pairs} (message, version) pairs", spec.len());
    assert!(spec.len() >= 148);
}

#[test]
fn every_api_key_is_generated() {
    let defs = definitions();
    let mut keys: BTreeMap<i16, (&str, (i16, i16))> = BTreeMap::new();
    for (name, d) in &defs {
        if d.kind == "request" {
            keys.insert(
                d.api_key.unwrap(),
                (name.strip_suffix("Request").unwrap(), d.versions),
            );
        }
    }
    assert_eq!(ApiKey::ALL.len(), keys.len());
    for &api in ApiKey::ALL {
        let (name, versions) = keys[&api.as_i16()];
        assert_eq!(api.name(), name);
        assert_eq!(api.to_string(), name);
        assert_eq!(api.request_versions(), versions);
        assert_eq!(ApiKey::from_i16(api.as_i16()), Some(api));
        let resp = &defs[&format!("{name}Response")];
        assert_eq!(resp.api_key, Some(api.as_i16()));
        assert_eq!(api.response_versions(), resp.versions);
    }
    assert_eq!(ApiKey::from_i16(-1), None);
    assert_eq!(ApiKey::Produce as i16, 0);
    assert_eq!(ApiKey::ApiVersions.as_i16(), 18);
}

#[test]
fn every_error_code_is_generated() {
    let csv = std::fs::read_to_string(shared().join("kafka-error-codes.csv")).unwrap();
    let mut rows = 0;
    for line in csv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split(',').collect();
        let code = ErrorCode(cols[0].parse().unwrap());
        assert_eq!(code.name(), cols[1]);
        assert_eq!(code.is_retriable(), cols[2] == "true", "{code}");
        assert_eq!(
            code.exception_name(),
            Some(cols[3]).filter(|e| *e != "-" && !e.is_empty())
        );
        rows += 1;
    }
    assert_eq!(ErrorCode::all().count(), rows);
    assert_eq!(ErrorCode::NONE, ErrorCode(0));
    assert!(ErrorCode::NONE.is_ok());
    assert_eq!(
        ErrorCode::OFFSET_OUT_OF_RANGE.to_string(),
        "OFFSET_OUT_OF_RANGE (1)"
    );
    assert_eq!(
        format!("{:?}", ErrorCode::NOT_LEADER_OR_FOLLOWER),
        "NOT_LEADER_OR_FOLLOWER (6)"
    );
    assert!(ErrorCode::NOT_LEADER_OR_FOLLOWER.is_retriable());
    assert!(!ErrorCode(12345).is_known());
    assert!(!ErrorCode(12345).is_retriable());
    assert_eq!(ErrorCode(12345).to_string(), "UNKNOWN_ERROR_CODE (12345)");
}
