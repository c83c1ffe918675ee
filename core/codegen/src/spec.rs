//! Reading Kafka's JSON message definitions into a small model.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// A closed version range; `hi == i16::MAX` stands for "and later".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub lo: i16,
    pub hi: i16,
}

impl Range {
    pub fn new(lo: i16, hi: i16) -> Self {
        Range { lo, hi }
    }

    pub fn intersect(self, other: Range) -> Option<Range> {
        let lo = self.lo.max(other.lo);
        let hi = self.hi.min(other.hi);
        (lo <= hi).then_some(Range { lo, hi })
    }

    pub fn hull(self, other: Range) -> Range {
        Range {
            lo: self.lo.min(other.lo),
            hi: self.hi.max(other.hi),
        }
    }

    pub fn contains(self, v: i16) -> bool {
        self.lo <= v && v <= self.hi
    }

    /// The spec's own notation ("3+", "0-4", "2").
    pub fn text(self) -> String {
        if self.hi == i16::MAX {
            format!("{}+", self.lo)
        } else if self.lo == self.hi {
            format!("{}", self.lo)
        } else {
            format!("{}-{}", self.lo, self.hi)
        }
    }

    pub fn iter(self) -> impl Iterator<Item = i16> {
        self.lo..=self.hi
    }
}

/// Parses "none", "3+", "0-4" or "2".
pub fn parse_versions(s: &str) -> Result<Option<Range>, String> {
    let s = s.trim();
    if s == "none" {
        return Ok(None);
    }
    let num = |t: &str| {
        t.trim()
            .parse::<i16>()
            .map_err(|e| format!("bad version {t:?} in {s:?}: {e}"))
    };
    if let Some(lo) = s.strip_suffix('+') {
        return Ok(Some(Range::new(num(lo)?, i16::MAX)));
    }
    if let Some((lo, hi)) = s.split_once('-') {
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            return Err(format!("empty version range {s:?}"));
        }
        return Ok(Some(Range::new(lo, hi)));
    }
    let v = num(s)?;
    Ok(Some(Range::new(v, v)))
}

/// Intersection of an optional range with another optional range.
pub fn intersect(a: Option<Range>, b: Option<Range>) -> Option<Range> {
    match (a, b) {
        (Some(a), Some(b)) => a.intersect(b),
        _ => None,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Int64,
    Float64,
    Uuid,
    String,
    Bytes,
    Records,
    Array(Box<Ty>),
    Struct(String),
}

impl Ty {
    fn parse(s: &str) -> Result<Ty, String> {
        if let Some(inner) = s.strip_prefix("[]") {
            return Ok(Ty::Array(Box::new(Ty::parse(inner)?)));
        }
        Ok(match s {
            "bool" => Ty::Bool,
            "int8" => Ty::Int8,
            "int16" => Ty::Int16,
            "uint16" => Ty::Uint16,
            "int32" => Ty::Int32,
            "int64" => Ty::Int64,
            "float64" => Ty::Float64,
            "uuid" => Ty::Uuid,
            "string" => Ty::String,
            "bytes" => Ty::Bytes,
            "records" => Ty::Records,
            other if other.starts_with(|c: char| c.is_ascii_uppercase()) => {
                Ty::Struct(other.to_string())
            }
            other => return Err(format!("unknown type {other:?}")),
        })
    }

    /// The struct this type names, directly or as array elements.
    pub fn struct_name(&self) -> Option<&str> {
        match self {
            Ty::Struct(s) => Some(s),
            Ty::Array(inner) => inner.struct_name(),
            _ => None,
        }
    }

    /// The spec's spelling.
    pub fn spec_name(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::Int8 => "int8".into(),
            Ty::Int16 => "int16".into(),
            Ty::Uint16 => "uint16".into(),
            Ty::Int32 => "int32".into(),
            Ty::Int64 => "int64".into(),
            Ty::Float64 => "float64".into(),
            Ty::Uuid => "uuid".into(),
            Ty::String => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Records => "records".into(),
            Ty::Array(inner) => format!("[]{}", inner.spec_name()),
            Ty::Struct(s) => s.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub ty: Ty,
    pub versions: Option<Range>,
    pub nullable: Option<Range>,
    pub tagged: Option<Range>,
    pub tag: Option<u32>,
    pub ignorable: bool,
    pub default: Option<String>,
    /// A per-field `flexibleVersions` override (`Some(None)` is "none").
    pub flexible: Option<Option<Range>>,
    pub map_key: bool,
    pub entity_type: Option<String>,
}

impl Field {
    /// Whether the Rust type is an `Option`.
    pub fn is_option(&self) -> bool {
        self.nullable.is_some()
    }
}

#[derive(Clone, Debug)]
pub struct StructDef {
    pub name: String,
    pub fields: Vec<Field>,
    /// Hull of the versions in which this struct can appear on the wire.
    pub ctx: Option<Range>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Request,
    Response,
    Header,
    Data,
}

#[derive(Clone, Debug)]
pub struct MessageSpec {
    pub file: String,
    pub kind: Kind,
    pub api_key: Option<i16>,
    pub name: String,
    pub valid: Range,
    pub flexible: Option<Range>,
    pub latest_unstable: bool,
    pub deprecated: Option<Range>,
    /// `structs[0]` is the message itself; nested and common structs follow in first-use
    /// order.
    pub structs: Vec<StructDef>,
}

impl MessageSpec {
    pub fn get(&self, name: &str) -> &StructDef {
        self.structs
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{}: unknown struct {name}", self.name))
    }

    pub fn is_flexible(&self, v: i16) -> bool {
        self.flexible.is_some_and(|f| f.contains(v))
    }
}

/// Drops `//` comment lines (they also occur inside the JSON).
pub fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn parse_field(
    v: &Value,
    ctx: &str,
    defs: &mut BTreeMap<String, Vec<Field>>,
    order: &mut Vec<String>,
) -> Result<Field, String> {
    let name = str_of(v, "name").ok_or(format!("{ctx}: field without name"))?;
    let ctx = format!("{ctx}.{name}");
    let ty = Ty::parse(str_of(v, "type").ok_or(format!("{ctx}: no type"))?)?;
    let versions = parse_versions(str_of(v, "versions").ok_or(format!("{ctx}: no versions"))?)?;
    let opt_versions = |key: &str| -> Result<Option<Range>, String> {
        match str_of(v, key) {
            None => Ok(None),
            Some(s) => parse_versions(s),
        }
    };
    let nullable = opt_versions("nullableVersions")?;
    let tagged = opt_versions("taggedVersions")?;
    let tag = v.get("tag").and_then(Value::as_u64).map(|t| t as u32);
    if tagged.is_some() != tag.is_some() {
        return Err(format!("{ctx}: tag and taggedVersions must come together"));
    }
    let flexible = match str_of(v, "flexibleVersions") {
        None => None,
        Some(s) => Some(parse_versions(s)?),
    };
    let ignorable = v.get("ignorable").and_then(Value::as_bool).unwrap_or(false);
    let map_key = v.get("mapKey").and_then(Value::as_bool).unwrap_or(false);
    let default = match v.get("default") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let entity_type = str_of(v, "entityType").map(str::to_string);
    if let Some(sub) = v.get("fields").and_then(Value::as_array) {
        let sname = ty
            .struct_name()
            .ok_or(format!("{ctx}: inline fields on a non-struct type"))?
            .to_string();
        if defs.contains_key(&sname) {
            return Err(format!("{ctx}: struct {sname} defined twice"));
        }
        defs.insert(sname.clone(), Vec::new());
        order.push(sname.clone());
        let mut fields = Vec::new();
        for f in sub {
            fields.push(parse_field(f, &ctx, defs, order)?);
        }
        defs.insert(sname, fields);
    }
    Ok(Field {
        name: name.to_string(),
        ty,
        versions,
        nullable,
        tagged,
        tag,
        ignorable,
        default,
        flexible,
        map_key,
        entity_type,
    })
}

pub fn load(path: &Path) -> Result<MessageSpec, String> {
    let file = path.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    let v: Value =
        serde_json::from_str(&strip_comments(&text)).map_err(|e| format!("{file}: {e}"))?;
    let kind = match str_of(&v, "type") {
        Some("request") => Kind::Request,
        Some("response") => Kind::Response,
        Some("header") => Kind::Header,
        Some("data") => Kind::Data,
        other => return Err(format!("{file}: unknown message type {other:?}")),
    };
    let name = str_of(&v, "name")
        .ok_or(format!("{file}: no name"))?
        .to_string();
    let valid =
        parse_versions(str_of(&v, "validVersions").ok_or(format!("{file}: no validVersions"))?)?
            .ok_or(format!("{file}: validVersions none"))?;
    let flexible = parse_versions(str_of(&v, "flexibleVersions").unwrap_or("none"))?;
    let api_key = v.get("apiKey").and_then(Value::as_i64).map(|k| k as i16);
    let latest_unstable = v
        .get("latestVersionUnstable")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let deprecated = match str_of(&v, "deprecatedVersions") {
        Some(d) => parse_versions(d)?,
        None => None,
    };
    let mut defs: BTreeMap<String, Vec<Field>> = BTreeMap::new();
    let mut order = Vec::new();
    let mut common = Vec::new();
    for cs in v
        .get("commonStructs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let cname = str_of(cs, "name").ok_or(format!("{file}: common struct without name"))?;
        defs.insert(cname.to_string(), Vec::new());
        common.push((cname.to_string(), cs.clone()));
    }
    for (cname, cs) in &common {
        let mut fields = Vec::new();
        for f in cs
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            fields.push(parse_field(f, cname, &mut defs, &mut order)?);
        }
        defs.insert(cname.clone(), fields);
    }
    let mut top_fields = Vec::new();
    for f in v
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        top_fields.push(parse_field(f, &name, &mut defs, &mut order)?);
    }
    if defs.contains_key(&name) {
        return Err(format!("{file}: a nested struct is named like the message"));
    }

    // Walk from the top, in field order, to find each struct's version context and a
    // deterministic first-use order.
    let mut ctxs: BTreeMap<String, Range> = BTreeMap::new();
    let mut seen = vec![name.clone()];
    fn walk(
        fields: &[Field],
        ctx: Range,
        defs: &BTreeMap<String, Vec<Field>>,
        ctxs: &mut BTreeMap<String, Range>,
        seen: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 32 {
            return Err("struct nesting too deep (recursive types?)".into());
        }
        for f in fields {
            let Some(sname) = f.ty.struct_name() else {
                continue;
            };
            let sub = defs
                .get(sname)
                .ok_or(format!("field {} refers to unknown struct {sname}", f.name))?;
            if !seen.iter().any(|s| s == sname) {
                seen.push(sname.to_string());
            }
            let Some(fctx) = intersect(f.versions, Some(ctx)) else {
                continue;
            };
            let merged = match ctxs.get(sname) {
                Some(prev) => prev.hull(fctx),
                None => fctx,
            };
            ctxs.insert(sname.to_string(), merged);
            walk(sub, fctx, defs, ctxs, seen, depth + 1)?;
        }
        Ok(())
    }
    walk(&top_fields, valid, &defs, &mut ctxs, &mut seen, 0).map_err(|e| format!("{file}: {e}"))?;
    let mut structs = vec![StructDef {
        name: name.clone(),
        fields: top_fields,
        ctx: Some(valid),
    }];
    for sname in seen.iter().skip(1) {
        structs.push(StructDef {
            name: sname.clone(),
            fields: defs[sname].clone(),
            ctx: ctxs.get(sname).copied(),
        });
    }
    // Definitions never referenced (not expected) are still emitted, after the rest.
    for sname in &order {
        if !seen.contains(sname) {
            structs.push(StructDef {
                name: sname.clone(),
                fields: defs[sname].clone(),
                ctx: None,
            });
        }
    }
    for (cname, _) in &common {
        if !seen.contains(cname) && !order.contains(cname) {
            structs.push(StructDef {
                name: cname.clone(),
                fields: defs[cname].clone(),
                ctx: None,
            });
        }
    }
    for s in &structs {
        let mut tags = std::collections::BTreeSet::new();
        for f in &s.fields {
            if let Some(t) = f.tag {
                if !tags.insert(t) {
                    return Err(format!("{file}: {} has tag {t} twice", s.name));
                }
            }
        }
    }
    Ok(MessageSpec {
        file,
        kind,
        api_key,
        name,
        valid,
        flexible,
        latest_unstable,
        deprecated,
        structs,
    })
}

/// One row of the error-code table.
#[derive(Clone, Debug)]
pub struct ErrorRow {
    pub code: i16,
    pub name: String,
    pub retriable: bool,
    pub exception: Option<String>,
}

pub fn load_errors(path: &Path) -> Result<Vec<ErrorRow>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if i == 0 || line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if cols.len() != 4 {
            return Err(format!("error table line {}: expected 4 columns", i + 1));
        }
        let code = cols[0]
            .parse::<i16>()
            .map_err(|e| format!("error table line {}: {e}", i + 1))?;
        let name = cols[1].to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!("error table line {}: bad name {name:?}", i + 1));
        }
        let retriable = match cols[2] {
            "true" => true,
            "false" => false,
            other => {
                return Err(format!(
                    "error table line {}: bad retriable {other:?}",
                    i + 1
                ))
            }
        };
        let exception = match cols[3] {
            "" | "-" => None,
            e => Some(e.to_string()),
        };
        rows.push(ErrorRow {
            code,
            name,
            retriable,
            exception,
        });
    }
    rows.sort_by_key(|r| r.code);
    for w in rows.windows(2) {
        if w[0].code == w[1].code {
            return Err(format!("error code {} appears twice", w[0].code));
        }
    }
    Ok(rows)
}

/// `ProduceRequest` -> `produce_request`; `IsrUUID` -> `isr_uuid`.
pub fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = i + 1 < chars.len() && chars[i + 1].is_ascii_lowercase();
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A snake-case identifier, raw if it is a Rust keyword.
pub fn field_ident(name: &str) -> String {
    let s = snake(name);
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move",
        "mut", "pub", "ref", "return", "static", "struct", "super", "trait", "true", "type",
        "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
        "override", "priv", "try", "typeof", "unsized", "virtual", "yield", "gen",
    ];
    if KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}
