//! kafkit-codegen: turns Kafka's JSON message definitions into the Rust code in
//! `core/src/protocol/generated`.
//!
//! ```text
//! cargo run -p kafkit-codegen -- [SPEC_DIR] [--out DIR]
//! ```
//!
//! `SPEC_DIR` defaults to `../shared/kafka-protocol-spec` next to the workspace root and the error
//! table is read from `SPEC_DIR/../kafka-error-codes.csv`; `--out` defaults to
//! `core/src/protocol/generated`. Every `*.rs` file in the output directory is replaced, and the
//! result is formatted with `rustfmt --edition 2021`, so regenerating into a temporary directory
//! and running `diff -r` against the committed tree tells whether the two agree. Output depends
//! only on the input files (sorted iteration, no timestamps).

mod gen;
mod spec;
mod tables;
mod typed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use spec::{Kind, MessageSpec};

/// `ProduceRequest` -> `Produce`.
pub fn api_variant(name: &str) -> String {
    name.strip_suffix("Request")
        .or_else(|| name.strip_suffix("Response"))
        .unwrap_or(name)
        .to_string()
}

/// The messages of one API key.
pub struct Api {
    pub key: i16,
    pub name: String,
    pub module: String,
    pub request: MessageSpec,
    pub response: MessageSpec,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run() -> Result<(), String> {
    let mut spec_dir: Option<PathBuf> = None;
    let mut out_dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out_dir = Some(args.next().ok_or("--out needs a directory")?.into()),
            "-h" | "--help" => {
                println!("usage: kafkit-codegen [SPEC_DIR] [--out DIR]");
                return Ok(());
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => {
                if spec_dir.is_some() {
                    return Err("more than one SPEC_DIR".into());
                }
                spec_dir = Some(s.into());
            }
        }
    }
    let root = workspace_root();
    let spec_dir = spec_dir.unwrap_or_else(|| root.join("../shared/kafka-protocol-spec"));
    let out_dir = out_dir.unwrap_or_else(|| root.join("core/src/protocol/generated"));
    let errors_csv = spec_dir.join("../kafka-error-codes.csv");

    let mut paths: Vec<PathBuf> = std::fs::read_dir(&spec_dir)
        .map_err(|e| format!("{}: {e}", spec_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no *.json definitions in {}", spec_dir.display()));
    }
    let mut requests: BTreeMap<i16, MessageSpec> = BTreeMap::new();
    let mut responses: BTreeMap<i16, MessageSpec> = BTreeMap::new();
    let mut others: Vec<MessageSpec> = Vec::new();
    for p in &paths {
        let m = spec::load(p)?;
        match m.kind {
            Kind::Request | Kind::Response => {
                let key = m.api_key.ok_or(format!("{}: no apiKey", m.file))?;
                let map = if m.kind == Kind::Request {
                    &mut requests
                } else {
                    &mut responses
                };
                if let Some(prev) = map.insert(key, m) {
                    return Err(format!("API key {key} defined twice ({})", prev.file));
                }
            }
            _ => others.push(m),
        }
    }
    let mut apis = Vec::new();
    for (key, request) in requests {
        let response = responses
            .remove(&key)
            .ok_or(format!("{}: no matching response", request.file))?;
        let name = api_variant(&request.name);
        if api_variant(&response.name) != name {
            return Err(format!(
                "API key {key}: {} vs {}",
                request.name, response.name
            ));
        }
        apis.push(Api {
            key,
            module: spec::snake(&name),
            name,
            request,
            response,
        });
    }
    if let Some((_, r)) = responses.into_iter().next() {
        return Err(format!("{}: no matching request", r.file));
    }
    others.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    let errors = spec::load_errors(&errors_csv)?;

    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for api in &apis {
        let req = gen::Gen::new(&api.request).module_body()?;
        let resp = gen::Gen::new(&api.response).module_body()?;
        let text = format!(
            "{}\n\npub use request::{};\npub use response::{};\n\n\
             /// The request of API key {} ({}) and its nested structs.\npub mod request {{\n{req}}}\n\n\
             /// The response of API key {} ({}) and its nested structs.\npub mod response {{\n{resp}}}\n",
            tables::file_header(&format!("{} and {}", api.request.file, api.response.file), &api.name),
            api.request.name,
            api.response.name,
            api.key,
            api.name,
            api.key,
            api.name,
        );
        files.insert(format!("{}.rs", api.module), text);
    }
    for m in &others {
        let body = gen::Gen::new(m).module_body()?;
        let text = format!("{}\n\n{body}", tables::file_header(&m.file, &m.name));
        files.insert(format!("{}.rs", spec::snake(&m.name)), text);
    }
    files.insert("api_key.rs".into(), tables::api_key(&apis));
    files.insert("error_code.rs".into(), tables::error_code(&errors));
    files.insert("dispatch.rs".into(), tables::dispatch(&apis));
    files.insert("visit.rs".into(), tables::visit(&apis, &others));
    files.insert("mod.rs".into(), tables::module(&apis, &others));

    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    for entry in std::fs::read_dir(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))? {
        let p = entry.map_err(|e| e.to_string())?.path();
        if p.extension().is_some_and(|x| x == "rs") {
            std::fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    let mut written = Vec::new();
    for (name, text) in &files {
        let p = out_dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        written.push(p);
    }
    // The workspace's rustfmt configuration, if it has one, applies wherever the output goes
    // (a temporary directory has no config of its own), so both trees format alike.
    let mut fmt = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into()));
    fmt.args(["--edition", "2021"]);
    if let Some(cfg) = ["rustfmt.toml", ".rustfmt.toml"]
        .iter()
        .map(|n| root.join(n))
        .find(|p| p.is_file())
    {
        fmt.arg("--config-path").arg(cfg);
    }
    let rustfmt = format!("{:?}", fmt.get_program());
    let status = fmt
        .args(&written)
        .status()
        .map_err(|e| format!("running {rustfmt}: {e}"))?;
    if !status.success() {
        return Err(format!("{rustfmt} failed on the generated code ({status})"));
    }
    eprintln!(
        "kafkit-codegen: {} APIs, {} other messages, {} error codes -> {} files in {}",
        apis.len(),
        others.len(),
        errors.len(),
        files.len(),
        out_dir.display()
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("kafkit-codegen: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use crate::gen::{uses_ident, Cond};
    use crate::spec::{field_ident, parse_versions, snake, strip_comments, Range};

    #[test]
    fn versions_parse() {
        assert_eq!(parse_versions("none").unwrap(), None);
        assert_eq!(parse_versions("3+").unwrap(), Some(Range::new(3, i16::MAX)));
        assert_eq!(parse_versions("0-4").unwrap(), Some(Range::new(0, 4)));
        assert_eq!(parse_versions("2").unwrap(), Some(Range::new(2, 2)));
        assert!(parse_versions("4-2").is_err());
        assert!(parse_versions("x").is_err());
    }

    #[test]
    fn conditions_simplify_against_context() {
        let ctx = Range::new(0, 11);
        assert_eq!(Cond::of(parse_versions("0+").unwrap(), ctx), Cond::True);
        assert_eq!(Cond::of(None, ctx), Cond::False);
        assert_eq!(Cond::of(parse_versions("12+").unwrap(), ctx), Cond::False);
        assert_eq!(
            Cond::of(parse_versions("3+").unwrap(), ctx),
            Cond::Expr("version >= 3".into())
        );
        assert_eq!(
            Cond::of(parse_versions("0-2").unwrap(), ctx),
            Cond::Expr("version <= 2".into())
        );
        assert_eq!(
            Cond::of(parse_versions("4").unwrap(), ctx),
            Cond::Expr("version == 4".into())
        );
        assert_eq!(
            Cond::of(parse_versions("3-5").unwrap(), ctx),
            Cond::Expr("(3..=5).contains(&version)".into())
        );
        assert_eq!(
            Cond::of(parse_versions("3+").unwrap(), Range::new(3, 11)),
            Cond::True
        );
        assert_eq!(
            Cond::not_of(parse_versions("3+").unwrap(), ctx),
            Cond::Expr("version < 3".into())
        );
        assert_eq!(
            Cond::not_of(parse_versions("3-5").unwrap(), ctx),
            Cond::Expr("!(3..=5).contains(&version)".into())
        );
    }

    #[test]
    fn names() {
        assert_eq!(snake("ProduceRequest"), "produce_request");
        assert_eq!(snake("ThrottleTimeMs"), "throttle_time_ms");
        assert_eq!(snake("IsrUUID"), "isr_uuid");
        assert_eq!(snake("V3AndBelowTopics"), "v3_and_below_topics");
        assert_eq!(field_ident("Match"), "r#match");
        assert_eq!(field_ident("Type"), "r#type");
        assert_eq!(field_ident("Name"), "name");
    }

    #[test]
    fn comments_are_stripped() {
        let text = "// header\n{\n  // inside\n  \"a\": 1 // not a comment line\n}\n";
        assert_eq!(
            strip_comments(text),
            "{\n  \"a\": 1 // not a comment line\n}"
        );
    }

    /// The typed-response items: `error()` on response structs with an `ErrorCode` field (with
    /// a note when the field is missing from some versions), none on requests, and a
    /// `TryFrom<ResponseBody>` per API that names both APIs when it fails.
    #[test]
    fn typed_response_items() {
        let dir = std::env::temp_dir().join(format!("kafkit-codegen-typed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let load = |name: &str, kind: &str| {
            let p = dir.join(format!("{name}.json"));
            let text = format!(
                r#"{{ "apiKey": 99, "type": "{kind}", "name": "{name}", "validVersions": "0-2",
                   "flexibleVersions": "2+", "fields": [
                     {{ "name": "ErrorCode", "type": "int16", "versions": "0+" }},
                     {{ "name": "Items", "type": "[]Item", "versions": "0+", "fields": [
                       {{ "name": "ErrorCode", "type": "int16", "versions": "1+" }} ] }} ] }}"#
            );
            std::fs::write(&p, text).unwrap();
            crate::spec::load(&p).unwrap()
        };
        let response = load("PingResponse", "response");
        let request = load("PingRequest", "request");
        std::fs::remove_dir_all(&dir).unwrap();

        let top = crate::typed::error_accessor(&response, &response.structs[0]);
        assert!(top.contains("impl PingResponse {"), "{top}");
        assert!(top.contains("pub fn error(&self) -> ErrorCode {\nErrorCode(self.error_code)"));
        assert!(!top.contains("The field exists in"), "{top}");
        let item = response.structs.iter().find(|s| s.name == "Item").unwrap();
        let nested = crate::typed::error_accessor(&response, item);
        assert!(nested.contains("impl Item {"), "{nested}");
        assert!(
            nested.contains("The field exists in versions 1+"),
            "{nested}"
        );
        assert_eq!(
            crate::typed::error_accessor(&request, &request.structs[0]),
            ""
        );

        let api = crate::Api {
            key: 99,
            name: "Ping".into(),
            module: "ping".into(),
            request,
            response,
        };
        let conv = crate::typed::response_try_from(std::slice::from_ref(&api));
        assert!(
            conv.contains("impl TryFrom<ResponseBody> for PingResponse {"),
            "{conv}"
        );
        assert!(conv.contains("ResponseBody::Ping(m) => Ok(m),"), "{conv}");
        assert!(conv.contains("expected: ApiKey::Ping"), "{conv}");
        assert!(conv.contains("got: other.api_key()"), "{conv}");
        // Ping has no ThrottleTimeMs: both accessors answer None for it.
        let throttle = crate::typed::response_throttle(std::slice::from_ref(&api));
        assert!(throttle.contains("pub fn throttle_time_ms(&self) -> Option<i32>"));
        assert!(!throttle.contains("Self::Ping(m)"), "{throttle}");
        assert!(throttle.contains("_ => None,"), "{throttle}");
    }

    #[test]
    fn identifier_use() {
        assert!(uses_ident("buf.put_i8(1)", "buf"));
        assert!(!uses_ident("self.buffer", "buf"));
        assert!(!uses_ident("this.min_version", "version"));
        assert!(!uses_ident("this.version", "version"));
        assert!(uses_ident("f(r, version)", "version"));
    }
}
