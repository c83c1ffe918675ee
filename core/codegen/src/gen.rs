//! Rust code for one message definition: its structs, their `Default`, encoders, decoders and
//! (behind the `fuzzing` feature) random builders.

use std::fmt::Write as _;

use crate::spec::{field_ident, intersect, Field, Kind, MessageSpec, Range, StructDef, Ty};

/// A version condition, simplified against what the surrounding code already knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    True,
    False,
    Expr(String),
}

impl Cond {
    /// `set` as a test on `version`, knowing that `version` lies in `ctx`.
    pub fn of(set: Option<Range>, ctx: Range) -> Cond {
        let Some(i) = intersect(set, Some(ctx)) else {
            return Cond::False;
        };
        let lo_matters = i.lo > ctx.lo;
        let hi_matters = i.hi < ctx.hi;
        match (lo_matters, hi_matters) {
            (false, false) => Cond::True,
            (true, false) => Cond::Expr(format!("version >= {}", i.lo)),
            (false, true) => Cond::Expr(format!("version <= {}", i.hi)),
            (true, true) if i.lo == i.hi => Cond::Expr(format!("version == {}", i.lo)),
            (true, true) => Cond::Expr(format!("({}..={}).contains(&version)", i.lo, i.hi)),
        }
    }

    /// As a boolean expression.
    pub fn expr(&self) -> String {
        match self {
            Cond::True => "true".into(),
            Cond::False => "false".into(),
            Cond::Expr(e) => e.clone(),
        }
    }

    /// `version` is NOT in `set`, knowing that it lies in `ctx` (a condition that can be
    /// joined with `&&`).
    pub fn not_of(set: Option<Range>, ctx: Range) -> Cond {
        let Some(i) = intersect(set, Some(ctx)) else {
            return Cond::True;
        };
        let lo_matters = i.lo > ctx.lo;
        let hi_matters = i.hi < ctx.hi;
        match (lo_matters, hi_matters) {
            (false, false) => Cond::False,
            (true, false) => Cond::Expr(format!("version < {}", i.lo)),
            (false, true) => Cond::Expr(format!("version > {}", i.hi)),
            (true, true) => Cond::Expr(format!("!({}..={}).contains(&version)", i.lo, i.hi)),
        }
    }
}

/// Whether `ident` occurs in `text` as a whole identifier (not after a `.`).
pub fn uses_ident(text: &str, ident: &str) -> bool {
    let bytes = text.as_bytes();
    let is_id = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut start = 0;
    while let Some(pos) = text[start..].find(ident) {
        let at = start + pos;
        let end = at + ident.len();
        let before_ok = at == 0 || (!is_id(bytes[at - 1]) && bytes[at - 1] != b'.');
        let after_ok = end >= bytes.len() || !is_id(bytes[end]);
        if before_ok && after_ok {
            return true;
        }
        start = at + 1;
    }
    false
}

fn escape(s: &str) -> String {
    s.escape_default().to_string()
}

fn parse_int(s: &str) -> Result<i128, String> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let v = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i128::from_str_radix(hex, 16)
    } else {
        t.parse::<i128>()
    }
    .map_err(|e| format!("bad integer default {s:?}: {e}"))?;
    Ok(if neg { -v } else { v })
}

/// A field's versions within a context: (present, untagged part, tagged part).
type Split = (Option<Range>, Option<Range>, Option<Range>);

/// Statements grouped under version conditions; adjacent groups with the same condition are
/// merged so the output reads `if version >= 3 { a; b; }` rather than one `if` per field.
#[derive(Default)]
struct Blocks {
    /// (condition, statements when it holds, checks when it does not)
    items: Vec<(Cond, String, Vec<Check>)>,
}

/// A check for a field missing from a version: `(value differs from default, error statement)`.
type Check = (String, String);

impl Blocks {
    fn push(&mut self, cond: Cond, then: String, otherwise: Vec<Check>) {
        if cond == Cond::False {
            // Never true: only the `otherwise` checks remain, unconditionally.
            let mut stmts = String::new();
            for (nd, err) in otherwise {
                let _ = write!(stmts, "if {nd} {{\n{err}}}\n");
            }
            return self.push(Cond::True, stmts, Vec::new());
        }
        if let Some(last) = self.items.last_mut() {
            if last.0 == cond {
                last.1.push_str(&then);
                last.2.extend(otherwise);
                return;
            }
        }
        self.items.push((cond, then, otherwise));
    }

    fn render(self) -> String {
        let mut out = String::new();
        for (cond, then, otherwise) in self.items {
            if cond == Cond::True {
                out.push_str(&then);
                continue;
            }
            let _ = write!(out, "if {} {{\n{then}}}", cond.expr());
            match otherwise.len() {
                0 => out.push('\n'),
                1 => {
                    let (nd, err) = &otherwise[0];
                    let _ = writeln!(out, " else if {nd} {{\n{err}}}");
                }
                _ => {
                    out.push_str(" else {\n");
                    for (nd, err) in &otherwise {
                        let _ = write!(out, "if {nd} {{\n{err}}}\n");
                    }
                    out.push_str("}\n");
                }
            }
        }
        out
    }
}

pub struct Gen<'a> {
    pub msg: &'a MessageSpec,
}

/// The field's value as code can reach it: a place (`self.x`) or a reference binding (`v`).
struct Val {
    expr: String,
    is_ref: bool,
}

impl Val {
    fn place(e: impl Into<String>) -> Val {
        Val {
            expr: e.into(),
            is_ref: false,
        }
    }
    fn by_ref(e: impl Into<String>) -> Val {
        Val {
            expr: e.into(),
            is_ref: true,
        }
    }
    /// The value of a `Copy` type.
    fn copy(&self) -> String {
        if self.is_ref {
            format!("*{}", self.expr)
        } else {
            self.expr.clone()
        }
    }
    /// A reference to the value.
    fn rf(&self) -> String {
        if self.is_ref {
            self.expr.clone()
        } else {
            format!("&{}", self.expr)
        }
    }
    /// For method calls (auto-ref).
    fn method(&self) -> &str {
        &self.expr
    }
}

impl<'a> Gen<'a> {
    pub fn new(msg: &'a MessageSpec) -> Self {
        Gen { msg }
    }

    fn ctx_of(&self, s: &StructDef) -> Range {
        s.ctx.unwrap_or(self.msg.valid)
    }

    fn compact_set(&self, f: &Field) -> Option<Range> {
        match f.flexible {
            Some(over) => over,
            None => self.msg.flexible,
        }
    }

    fn is_compact(&self, f: &Field, v: i16) -> bool {
        self.compact_set(f).is_some_and(|r| r.contains(v))
    }

    pub fn base_type(ty: &Ty) -> String {
        match ty {
            Ty::Bool => "bool".into(),
            Ty::Int8 => "i8".into(),
            Ty::Int16 => "i16".into(),
            Ty::Uint16 => "u16".into(),
            Ty::Int32 => "i32".into(),
            Ty::Int64 => "i64".into(),
            Ty::Float64 => "f64".into(),
            Ty::Uuid => "Uuid".into(),
            Ty::String => "String".into(),
            Ty::Bytes | Ty::Records => "Bytes".into(),
            Ty::Array(inner) => format!("Vec<{}>", Self::base_type(inner)),
            Ty::Struct(n) => n.clone(),
        }
    }

    fn rust_type(f: &Field) -> String {
        let b = Self::base_type(&f.ty);
        if f.is_option() {
            format!("Option<{b}>")
        } else {
            b
        }
    }

    /// The Rust expression of the base (non-`Option`) default, and whether it equals the type's
    /// own `Default`.
    fn base_default(&self, f: &Field) -> Result<(String, bool), String> {
        let d = f.default.as_deref().filter(|d| *d != "null");
        let int = |min: i128, max: i128| -> Result<(String, bool), String> {
            let v = match d {
                Some(s) => parse_int(s)?,
                None => 0,
            };
            if v < min || v > max {
                return Err(format!("default {v} out of range for {}", f.name));
            }
            Ok((v.to_string(), v == 0))
        };
        Ok(match &f.ty {
            Ty::Bool => match d.map(str::to_ascii_lowercase).as_deref() {
                None | Some("false") => ("false".into(), true),
                Some("true") => ("true".into(), false),
                Some(other) => return Err(format!("bad bool default {other:?}")),
            },
            Ty::Int8 => int(i8::MIN as i128, i8::MAX as i128)?,
            Ty::Int16 => int(i16::MIN as i128, i16::MAX as i128)?,
            Ty::Uint16 => int(0, u16::MAX as i128)?,
            Ty::Int32 => int(i32::MIN as i128, i32::MAX as i128)?,
            Ty::Int64 => int(i64::MIN as i128, i64::MAX as i128)?,
            Ty::Float64 => {
                let v: f64 = match d {
                    Some(s) => s
                        .parse()
                        .map_err(|e| format!("bad float default {s:?}: {e}"))?,
                    None => 0.0,
                };
                (format!("{v:?}"), v.to_bits() == 0)
            }
            Ty::Uuid => match d {
                None => ("Uuid::ZERO".into(), true),
                Some(s) => return Err(format!("uuid default {s:?} not supported")),
            },
            Ty::String => match d {
                None | Some("") => ("String::new()".into(), true),
                Some(s) => (format!("String::from(\"{}\")", escape(s)), false),
            },
            Ty::Bytes | Ty::Records => match d {
                None => ("Bytes::new()".into(), true),
                Some(s) => return Err(format!("bytes default {s:?} not supported")),
            },
            Ty::Array(_) => match d {
                None => ("Vec::new()".into(), true),
                Some(s) => return Err(format!("array default {s:?} not supported")),
            },
            Ty::Struct(n) => match d {
                None => (format!("{n}::default()"), true),
                Some(s) => return Err(format!("struct default {s:?} not supported")),
            },
        })
    }

    fn default_is_null(f: &Field) -> bool {
        f.default.as_deref() == Some("null")
    }

    /// The field's default expression and whether it is the type's own `Default`.
    fn default_expr(&self, f: &Field) -> Result<(String, bool), String> {
        if Self::default_is_null(f) && !f.is_option() {
            return Err(format!("{}: default null on a non-nullable field", f.name));
        }
        if f.is_option() {
            if Self::default_is_null(f) {
                return Ok(("None".into(), true));
            }
            let (b, _) = self.base_default(f)?;
            return Ok((format!("Some({b})"), false));
        }
        self.base_default(f)
    }

    /// A boolean expression: does `place` (of the field's Rust type) differ from its default?
    fn non_default(&self, f: &Field, place: &str) -> Result<String, String> {
        let (bd, _) = self.base_default(f)?;
        if f.is_option() {
            if Self::default_is_null(f) {
                return Ok(format!("{place}.is_some()"));
            }
            return Ok(match &f.ty {
                Ty::String if bd == "String::new()" => {
                    format!("{place}.as_deref() != Some(\"\")")
                }
                Ty::String => {
                    let lit = f.default.as_deref().unwrap_or("");
                    format!("{place}.as_deref() != Some(\"{}\")", escape(lit))
                }
                Ty::Array(_) | Ty::Bytes | Ty::Records => {
                    format!("{place}.as_ref().is_none_or(|v| !v.is_empty())")
                }
                _ => format!("{place} != Some({bd})"),
            });
        }
        Ok(match &f.ty {
            Ty::Bool if bd == "false" => place.to_string(),
            Ty::Bool => format!("!{place}"),
            Ty::Float64 => format!("{place}.to_bits() != {bd}f64.to_bits()"),
            Ty::String if bd == "String::new()" => format!("!{place}.is_empty()"),
            Ty::String => format!(
                "{place} != \"{}\"",
                escape(f.default.as_deref().unwrap_or(""))
            ),
            Ty::Bytes | Ty::Records | Ty::Array(_) => format!("!{place}.is_empty()"),
            _ => format!("{place} != {bd}"),
        })
    }

    // ----- sizes -----------------------------------------------------------------------------

    /// The fewest bytes a value of `ty` can take at version `v`.
    fn min_size(&self, ty: &Ty, nullable: bool, compact: bool, v: i16) -> usize {
        match ty {
            Ty::Bool | Ty::Int8 => 1,
            Ty::Int16 | Ty::Uint16 => 2,
            Ty::Int32 => 4,
            Ty::Int64 | Ty::Float64 => 8,
            Ty::Uuid => 16,
            Ty::String => {
                if compact {
                    1
                } else {
                    2
                }
            }
            Ty::Bytes | Ty::Records | Ty::Array(_) => {
                if compact {
                    1
                } else {
                    4
                }
            }
            Ty::Struct(n) => {
                if nullable {
                    1
                } else {
                    self.struct_min(n, v)
                }
            }
        }
    }

    fn struct_min(&self, name: &str, v: i16) -> usize {
        let s = self.msg.get(name);
        let mut total = if self.msg.is_flexible(v) { 1 } else { 0 };
        for f in &s.fields {
            let present = f.versions.is_some_and(|r| r.contains(v));
            let tagged = f.tagged.is_some_and(|r| r.contains(v));
            if present && !tagged {
                let nullable = f.nullable.is_some_and(|r| r.contains(v));
                total += self.min_size(&f.ty, nullable, self.is_compact(f, v), v);
            }
        }
        total
    }

    /// Minimum encoded size of one element of an array field over the versions in `range`.
    fn elem_min(&self, f: &Field, elem: &Ty, range: Range) -> usize {
        range
            .iter()
            .map(|v| self.min_size(elem, false, self.is_compact(f, v), v))
            .min()
            .unwrap_or(1)
            .max(1)
    }

    // ----- encoding --------------------------------------------------------------------------

    /// Statements writing a non-null value `val` of type `ty` into `buf`.
    fn enc_value(&self, ty: &Ty, val: &Val, compact: &str, buf: &str) -> String {
        match ty {
            Ty::Bool => format!("{buf}.put_bool({});\n", val.copy()),
            Ty::Int8 => format!("{buf}.put_i8({});\n", val.copy()),
            Ty::Int16 => format!("{buf}.put_i16({});\n", val.copy()),
            Ty::Uint16 => format!("{buf}.put_u16({});\n", val.copy()),
            Ty::Int32 => format!("{buf}.put_i32({});\n", val.copy()),
            Ty::Int64 => format!("{buf}.put_i64({});\n", val.copy()),
            Ty::Float64 => format!("{buf}.put_f64({});\n", val.copy()),
            Ty::Uuid => format!("{buf}.put_uuid({});\n", val.rf()),
            Ty::String => format!("{buf}.put_string({}, {compact})?;\n", val.rf()),
            Ty::Bytes | Ty::Records => format!("{buf}.put_byte_field({}, {compact})?;\n", val.rf()),
            Ty::Struct(_) => format!("{}.encode({buf}, version)?;\n", val.method()),
            Ty::Array(inner) => {
                let closure = match &**inner {
                    Ty::Struct(_) => "|buf, e| e.encode(buf, version)".to_string(),
                    Ty::String => format!("|buf, e| buf.put_string(e, {compact})"),
                    Ty::Bytes | Ty::Records => {
                        format!("|buf, e| buf.put_byte_field(e, {compact})")
                    }
                    other => {
                        let body = self.enc_value(other, &Val::by_ref("e"), compact, "buf");
                        format!("|buf, e| {{ {body} Ok(()) }}")
                    }
                };
                format!("write_array({buf}, {}, {compact}, {closure})?;\n", val.rf())
            }
        }
    }

    /// Statements writing null for a type at a version where it is nullable.
    fn enc_null(ty: &Ty, compact: &str, buf: &str, tagged: bool) -> String {
        match ty {
            Ty::String => format!("{buf}.put_nullable_string(None, {compact})?;\n"),
            Ty::Bytes | Ty::Records => {
                format!("{buf}.put_nullable_byte_field(None, {compact})?;\n")
            }
            Ty::Array(_) => format!("{buf}.put_array_len(None, {compact})?;\n"),
            Ty::Struct(_) if tagged => format!("{buf}.put_unsigned_varint(0);\n"),
            Ty::Struct(_) => format!("{buf}.put_i8(-1);\n"),
            _ => unreachable!("only strings, bytes, arrays and structs are nullable"),
        }
    }

    /// Statements writing field `f` (of struct `sname`) into `buf` at versions `ctx`, handling
    /// null.
    fn enc_field(&self, sname: &str, f: &Field, ctx: Range, buf: &str, tagged: bool) -> String {
        let id = field_ident(&f.name);
        let compact = if tagged {
            Cond::True
        } else {
            Cond::of(self.compact_set(f), ctx)
        };
        let compact = compact.expr();
        if !f.is_option() {
            return self.enc_value(&f.ty, &Val::place(format!("self.{id}")), &compact, buf);
        }
        let nullable = Cond::of(f.nullable, ctx);
        if nullable == Cond::True {
            match f.ty {
                Ty::String => {
                    return format!(
                        "{buf}.put_nullable_string(self.{id}.as_deref(), {compact})?;\n"
                    )
                }
                Ty::Bytes | Ty::Records => {
                    return format!(
                        "{buf}.put_nullable_byte_field(self.{id}.as_deref(), {compact})?;\n"
                    )
                }
                _ => {}
            }
        }
        let is_struct = matches!(f.ty, Ty::Struct(_));
        let mut some = String::new();
        if is_struct {
            let marker = if tagged {
                format!("{buf}.put_unsigned_varint(1);\n")
            } else {
                format!("{buf}.put_i8(1);\n")
            };
            match &nullable {
                Cond::True => some.push_str(&marker),
                Cond::False => {}
                Cond::Expr(e) => {
                    let _ = writeln!(some, "if {e} {{ {marker} }}");
                }
            }
        }
        some.push_str(&self.enc_value(&f.ty, &Val::by_ref("v"), &compact, buf));
        let null = Self::enc_null(&f.ty, &compact, buf, tagged);
        let err = format!(
            "return Err(EncodeError::NullNotAllowed {{ message: \"{sname}\", field: \"{}\", version }})",
            f.name
        );
        let mut out = format!("match &self.{id} {{\nSome(v) => {{\n{some}}}\n");
        match &nullable {
            Cond::True => {
                let _ = write!(out, "None => {{\n{null}}}\n");
            }
            Cond::False => {
                let _ = writeln!(out, "None => {err},");
            }
            Cond::Expr(e) => {
                let _ = write!(out, "None if {e} => {{\n{null}}}\nNone => {err},\n");
            }
        }
        out.push_str("}\n");
        out
    }

    fn field_not_in_version(sname: &str, fname: &str) -> String {
        format!(
            "return Err(EncodeError::FieldNotInVersion {{ message: \"{sname}\", field: \"{fname}\", version }});\n"
        )
    }

    /// (present range within ctx, untagged part, tagged part)
    fn split(&self, f: &Field, ctx: Range) -> Result<Split, String> {
        let present = intersect(f.versions, Some(ctx));
        let tagged = intersect(f.tagged, present);
        let untagged = match (present, tagged) {
            (None, _) => None,
            (Some(p), None) => Some(p),
            (Some(p), Some(t)) => {
                if t.hi < p.hi {
                    return Err(format!(
                        "{}: tagged versions {} must be a suffix of versions {}",
                        f.name,
                        t.text(),
                        p.text()
                    ));
                }
                if t.lo > p.lo {
                    Some(Range::new(p.lo, t.lo - 1))
                } else {
                    None
                }
            }
        };
        Ok((present, untagged, tagged))
    }

    fn encode_body(&self, s: &StructDef) -> Result<String, String> {
        let ctx = self.ctx_of(s);
        let mut blocks = Blocks::default();
        for f in &s.fields {
            let id = field_ident(&f.name);
            let (present, untagged, _) = self.split(f, ctx)?;
            let present_c = Cond::of(present, ctx);
            let check_missing = !f.ignorable && present_c != Cond::True;
            let nd = self.non_default(f, &format!("self.{id}"))?;
            let missing = Self::field_not_in_version(&s.name, &f.name);
            let body = match untagged {
                Some(u) => self.enc_field(&s.name, f, u, "buf", false),
                None => String::new(),
            };
            if untagged == present {
                let otherwise = if check_missing {
                    vec![(nd, missing)]
                } else {
                    Vec::new()
                };
                blocks.push(present_c, body, otherwise);
                continue;
            }
            // Tagged in some versions: written in the tagged section there.
            if untagged.is_some() {
                blocks.push(Cond::of(untagged, ctx), body, Vec::new());
            }
            if check_missing {
                let check = match Cond::not_of(present, ctx) {
                    Cond::False => continue,
                    Cond::True => format!("if {nd} {{\n{missing}}}\n"),
                    Cond::Expr(c) => format!("if {c} && {nd} {{\n{missing}}}\n"),
                };
                blocks.push(Cond::True, check, Vec::new());
            }
        }
        let mut out = blocks.render();
        // The tagged section.
        let flex = Cond::of(self.msg.flexible, ctx);
        let no_tags_err = format!(
            "if !self.unknown_tagged_fields.is_empty() {{\n{}}}\n",
            Self::field_not_in_version(&s.name, "unknown_tagged_fields")
        );
        if let Some(fctx) = intersect(self.msg.flexible, Some(ctx)) {
            let mut tagged_fields: Vec<&Field> = s
                .fields
                .iter()
                .filter(|f| intersect(f.tagged, intersect(f.versions, Some(fctx))).is_some())
                .collect();
            tagged_fields.sort_by_key(|f| f.tag);
            let mut sec = String::new();
            if tagged_fields.is_empty() {
                sec.push_str("buf.put_tagged_fields(&[], &self.unknown_tagged_fields);\n");
            } else {
                sec.push_str("let mut tagged: Vec<(u32, Vec<u8>)> = Vec::new();\n");
                for f in tagged_fields {
                    let id = field_ident(&f.name);
                    let t = intersect(f.tagged, intersect(f.versions, Some(fctx))).unwrap();
                    let tc = Cond::of(Some(t), fctx);
                    let nd = self.non_default(f, &format!("self.{id}"))?;
                    let cond = match &tc {
                        Cond::True => nd,
                        c => format!("{} && {nd}", c.expr()),
                    };
                    let body = self.enc_field(&s.name, f, t, "w", true);
                    let _ = write!(
                        sec,
                        "if {cond} {{\nlet mut b = Vec::new();\nlet w = &mut b;\n{body}tagged.push(({}, b));\n}}\n",
                        f.tag.unwrap()
                    );
                }
                sec.push_str("buf.put_tagged_fields(&tagged, &self.unknown_tagged_fields);\n");
            }
            match &flex {
                Cond::True => out.push_str(&sec),
                c => {
                    let _ = write!(out, "if {} {{\n{sec}}} else {no_tags_err}", c.expr());
                }
            }
        } else {
            out.push_str(&no_tags_err);
        }
        Ok(out)
    }

    // ----- decoding --------------------------------------------------------------------------

    /// An expression reading a non-null value of `ty` (with `?`).
    fn dec_value(&self, f: &Field, ty: &Ty, compact: &str, range: Range) -> String {
        match ty {
            Ty::Bool => "r.read_bool()?".into(),
            Ty::Int8 => "r.read_i8()?".into(),
            Ty::Int16 => "r.read_i16()?".into(),
            Ty::Uint16 => "r.read_u16()?".into(),
            Ty::Int32 => "r.read_i32()?".into(),
            Ty::Int64 => "r.read_i64()?".into(),
            Ty::Float64 => "r.read_f64()?".into(),
            Ty::Uuid => "r.read_uuid()?".into(),
            Ty::String => format!("r.read_string({compact})?"),
            Ty::Bytes | Ty::Records => format!("r.read_bytes({compact})?"),
            Ty::Struct(n) => format!("{n}::decode(r, version)?"),
            Ty::Array(inner) => {
                let min = self.elem_min(f, inner, range);
                if self.msg.kind == Kind::Response {
                    // Some brokers send null for an empty array a response declares
                    // non-nullable; it is read as empty (with a debug log), as librdkafka does.
                    format!(
                        "read_response_array(r, {compact}, {min}, {}, {:?})?",
                        self.elem_reader(inner, compact),
                        f.name
                    )
                } else {
                    format!(
                        "read_array(r, {compact}, {min}, {})?",
                        self.elem_reader(inner, compact)
                    )
                }
            }
        }
    }

    fn elem_reader(&self, inner: &Ty, compact: &str) -> String {
        match inner {
            Ty::Struct(n) => format!("|r| {n}::decode(r, version)"),
            Ty::Bool => "Reader::read_bool".into(),
            Ty::Int8 => "Reader::read_i8".into(),
            Ty::Int16 => "Reader::read_i16".into(),
            Ty::Uint16 => "Reader::read_u16".into(),
            Ty::Int32 => "Reader::read_i32".into(),
            Ty::Int64 => "Reader::read_i64".into(),
            Ty::Float64 => "Reader::read_f64".into(),
            Ty::Uuid => "Reader::read_uuid".into(),
            Ty::String => format!("|r| r.read_string({compact})"),
            Ty::Bytes | Ty::Records => format!("|r| r.read_bytes({compact})"),
            Ty::Array(_) => panic!("arrays of arrays are not in the spec"),
        }
    }

    /// An expression reading a null value of `ty` (nullable version).
    fn dec_nullable(
        &self,
        f: &Field,
        ty: &Ty,
        compact: &str,
        range: Range,
        tagged: bool,
    ) -> String {
        match ty {
            Ty::String => format!("r.read_nullable_string({compact})?"),
            Ty::Bytes | Ty::Records => format!("r.read_nullable_bytes({compact})?"),
            Ty::Array(inner) => {
                let min = self.elem_min(f, inner, range);
                format!(
                    "read_nullable_array(r, {compact}, {min}, {})?",
                    self.elem_reader(inner, compact)
                )
            }
            Ty::Struct(n) if tagged => format!(
                "if r.read_unsigned_varint()? == 0 {{ None }} else {{ Some({n}::decode(r, version)?) }}"
            ),
            Ty::Struct(n) => {
                format!("if r.read_i8()? < 0 {{ None }} else {{ Some({n}::decode(r, version)?) }}")
            }
            _ => unreachable!("only strings, bytes, arrays and structs are nullable"),
        }
    }

    /// An expression reading field `f` at versions `range`.
    fn dec_field(&self, f: &Field, range: Range, tagged: bool) -> String {
        let compact = if tagged {
            Cond::True
        } else {
            Cond::of(self.compact_set(f), range)
        }
        .expr();
        if !f.is_option() {
            return self.dec_value(f, &f.ty, &compact, range);
        }
        let some = format!("Some({})", self.dec_value(f, &f.ty, &compact, range));
        match Cond::of(f.nullable, range) {
            Cond::True => self.dec_nullable(f, &f.ty, &compact, range, tagged),
            Cond::False => some,
            Cond::Expr(e) => format!(
                "if {e} {{ {} }} else {{ {some} }}",
                self.dec_nullable(f, &f.ty, &compact, range, tagged)
            ),
        }
    }

    fn decode_body(&self, s: &StructDef) -> Result<String, String> {
        let ctx = self.ctx_of(s);
        let mut blocks = Blocks::default();
        for f in &s.fields {
            let id = field_ident(&f.name);
            let (_, untagged, _) = self.split(f, ctx)?;
            if let Some(u) = untagged {
                let e = self.dec_field(f, u, false);
                blocks.push(
                    Cond::of(Some(u), ctx),
                    format!("this.{id} = {e};\n"),
                    Vec::new(),
                );
            }
        }
        let mut out = blocks.render();
        if let Some(fctx) = intersect(self.msg.flexible, Some(ctx)) {
            let mut tagged_fields: Vec<&Field> = s
                .fields
                .iter()
                .filter(|f| intersect(f.tagged, intersect(f.versions, Some(fctx))).is_some())
                .collect();
            tagged_fields.sort_by_key(|f| f.tag);
            let sec = if tagged_fields.is_empty() {
                "this.unknown_tagged_fields = r.read_tagged_fields(|_, _| Ok(false))?;\n"
                    .to_string()
            } else {
                let mut arms = String::new();
                for f in tagged_fields {
                    let id = field_ident(&f.name);
                    let t = intersect(f.tagged, intersect(f.versions, Some(fctx))).unwrap();
                    let guard = match Cond::of(Some(t), fctx) {
                        Cond::True => String::new(),
                        c => format!(" if {}", c.expr()),
                    };
                    let e = self.dec_field(f, t, true);
                    let _ = writeln!(arms, "{}{guard} => this.{id} = {e},", f.tag.unwrap());
                }
                format!(
                    "this.unknown_tagged_fields = r.read_tagged_fields(|tag, r| {{\nmatch tag {{\n{arms}_ => return Ok(false),\n}}\nOk(true)\n}})?;\n"
                )
            };
            match Cond::of(self.msg.flexible, ctx) {
                Cond::True => out.push_str(&sec),
                c => {
                    let _ = write!(out, "if {} {{\n{sec}}}\n", c.expr());
                }
            }
        }
        Ok(if out.is_empty() {
            "Ok(Self::default())\n".to_string()
        } else {
            format!("let mut this = Self::default();\n{out}Ok(this)\n")
        })
    }

    // ----- random values ---------------------------------------------------------------------

    fn rand_value(ty: &Ty) -> String {
        match ty {
            Ty::Bool => "rng.bool()".into(),
            Ty::Int8 => "rng.i8()".into(),
            Ty::Int16 => "rng.i16()".into(),
            Ty::Uint16 => "rng.u16()".into(),
            Ty::Int32 => "rng.i32()".into(),
            Ty::Int64 => "rng.i64()".into(),
            Ty::Float64 => "rng.f64()".into(),
            Ty::Uuid => "rng.uuid()".into(),
            Ty::String => "rng.string()".into(),
            Ty::Bytes | Ty::Records => "rng.bytes()".into(),
            Ty::Struct(n) => format!("{n}::random(rng, version)"),
            Ty::Array(inner) => match &**inner {
                Ty::Struct(n) => format!("rng.vec(|rng| {n}::random(rng, version))"),
                other => format!("rng.vec(|rng| {})", Self::rand_value(other)),
            },
        }
    }

    fn random_body(&self, s: &StructDef) -> String {
        let ctx = self.ctx_of(s);
        let mut blocks = Blocks::default();
        for f in &s.fields {
            let id = field_ident(&f.name);
            let Some(p) = intersect(f.versions, Some(ctx)) else {
                continue;
            };
            let v = Self::rand_value(&f.ty);
            let e = if f.is_option() {
                match Cond::of(f.nullable, p) {
                    Cond::True => format!("rng.option(|rng| {v})"),
                    Cond::False => format!("Some({v})"),
                    Cond::Expr(c) => {
                        format!("if {c} {{ rng.option(|rng| {v}) }} else {{ Some({v}) }}")
                    }
                }
            } else {
                v
            };
            blocks.push(
                Cond::of(Some(p), ctx),
                format!("this.{id} = {e};\n"),
                Vec::new(),
            );
        }
        let mut out = blocks.render();
        if intersect(self.msg.flexible, Some(ctx)).is_some() {
            let first_free = s
                .fields
                .iter()
                .filter_map(|f| f.tag)
                .max()
                .map_or(0, |t| t + 1);
            let sec =
                format!("this.unknown_tagged_fields = rng.unknown_tagged_fields({first_free});\n");
            match Cond::of(self.msg.flexible, ctx) {
                Cond::True => out.push_str(&sec),
                c => {
                    let _ = write!(out, "if {} {{\n{sec}}}\n", c.expr());
                }
            }
        }
        if out.is_empty() {
            "Self::default()\n".into()
        } else {
            format!("let mut this = Self::default();\n{out}this\n")
        }
    }

    // ----- whole structs ---------------------------------------------------------------------

    fn field_doc(&self, f: &Field) -> String {
        let mut parts = Vec::new();
        match f.versions {
            Some(v) => parts.push(format!("versions {}", v.text())),
            None => parts.push("in no version".into()),
        }
        if let Some(n) = f.nullable {
            parts.push(format!("nullable {}", n.text()));
        }
        if let (Some(t), Some(tag)) = (f.tagged, f.tag) {
            parts.push(format!("tag {tag} in {}", t.text()));
        }
        if let Some(d) = &f.default {
            parts.push(format!(
                "default `{}`",
                if d.is_empty() { "\"\"" } else { d }
            ));
        }
        if f.ignorable {
            parts.push("ignorable".into());
        }
        if f.map_key {
            parts.push("map key".into());
        }
        if let Some(e) = &f.entity_type {
            parts.push(format!("entity type {e}"));
        }
        format!(
            "`{}` (`{}`): {}.",
            f.name,
            f.ty.spec_name(),
            parts.join(", ")
        )
    }

    fn message_doc(&self) -> String {
        let m = self.msg;
        let flex = match m.flexible {
            Some(r) if r.hi == i16::MAX => format!("flexible from {}", r.lo),
            Some(r) => format!("flexible in {}", r.text()),
            None => "never flexible".into(),
        };
        let api = match m.api_key {
            Some(k) => format!("API key {k}, "),
            None => String::new(),
        };
        format!("{}: {api}versions {}, {flex}.", m.name, m.valid.text())
    }

    fn gen_struct(&self, s: &StructDef, top: bool, out: &mut String) -> Result<(), String> {
        let m = self.msg;
        let ctx = self.ctx_of(s);
        // Definition.
        let mut all_type_defaults = true;
        let mut defaults = Vec::new();
        for f in &s.fields {
            let (d, is_td) = self
                .default_expr(f)
                .map_err(|e| format!("{}.{}: {e}", s.name, f.name))?;
            all_type_defaults &= is_td;
            defaults.push(d);
        }
        if top {
            let _ = writeln!(out, "/// {}", self.message_doc());
        } else {
            let seen = match s.ctx {
                Some(c) => format!("in versions {}", c.text()),
                None => "unused".into(),
            };
            let _ = writeln!(out, "/// `{}`, part of {} ({seen}).", s.name, m.name);
        }
        let derive = if all_type_defaults {
            "Debug, Clone, PartialEq, Default"
        } else {
            "Debug, Clone, PartialEq"
        };
        let _ = writeln!(out, "#[derive({derive})]\npub struct {} {{", s.name);
        for f in &s.fields {
            let _ = writeln!(
                out,
                "/// {}\npub {}: {},",
                self.field_doc(f),
                field_ident(&f.name),
                Self::rust_type(f)
            );
        }
        out.push_str(
            "/// Tagged fields this build does not know, kept to be written back unchanged.\npub unknown_tagged_fields: Vec<RawTaggedField>,\n}\n\n",
        );
        if !all_type_defaults {
            let _ = writeln!(
                out,
                "impl Default for {} {{\nfn default() -> Self {{\n{} {{",
                s.name, s.name
            );
            for (f, d) in s.fields.iter().zip(&defaults) {
                let _ = writeln!(out, "{}: {d},", field_ident(&f.name));
            }
            out.push_str("unknown_tagged_fields: Vec::new(),\n}\n}\n}\n\n");
        }

        let enc = self.encode_body(s)?;
        let dec = self.decode_body(s)?;
        let p = |body: &str, name: &str| {
            if uses_ident(body, name) {
                name.to_string()
            } else {
                format!("_{name}")
            }
        };
        if top {
            let (lo, hi) = (m.valid.lo, m.valid.hi);
            let check = |err: &str| {
                let cond = if lo == hi {
                    format!("version != {lo}")
                } else {
                    format!("!({lo}..={hi}).contains(&version)")
                };
                format!(
                    "if {cond} {{\nreturn Err({err}::UnsupportedVersion {{ message: Self::NAME, version }});\n}}\n"
                )
            };
            let flex_from = match m.flexible {
                Some(r) => format!("Some({})", r.lo),
                None => "None".into(),
            };
            let _ = write!(
                out,
                "impl Message for {name} {{\nconst NAME: &'static str = \"{name}\";\nconst VERSIONS: (i16, i16) = ({lo}, {hi});\nconst FLEXIBLE_FROM: Option<i16> = {flex_from};\n\n\
                 fn encode<B: BufMut>(&self, buf: &mut B, version: i16) -> Result<(), EncodeError> {{\n{}{enc}Ok(())\n}}\n\n\
                 fn decode(r: &mut Reader, version: i16) -> Result<Self, DecodeError> {{\n{}{dec}}}\n}}\n\n",
                check("EncodeError"),
                check("DecodeError"),
                name = s.name,
            );
        } else {
            let _ = write!(
                out,
                "impl {name} {{\n\
                 /// Writes this struct as part of its message at `version` (not checked here).\n\
                 pub fn encode<B: BufMut>(&self, {buf}: &mut B, {ver}: i16) -> Result<(), EncodeError> {{\n{enc}Ok(())\n}}\n\n\
                 /// Reads this struct as part of its message at `version` (not checked here).\n\
                 pub fn decode({r}: &mut Reader, {ver2}: i16) -> Result<Self, DecodeError> {{\n{dec}}}\n}}\n\n",
                name = s.name,
                buf = p(&enc, "buf"),
                ver = p(&enc, "version"),
                r = p(&dec, "r"),
                ver2 = p(&dec, "version"),
            );
        }
        out.push_str(&crate::typed::error_accessor(m, s));
        let rnd = self.random_body(s);
        let _ = write!(
            out,
            "#[cfg(feature = \"fuzzing\")]\nimpl {name} {{\n\
             /// A random value that is valid at `version` (round-trip tests and fuzzing).\n\
             pub fn random({rng}: &mut crate::protocol::testing::Rng, {ver}: i16) -> Self {{\n{rnd}}}\n}}\n\n",
            name = s.name,
            rng = p(&rnd, "rng"),
            ver = p(&rnd, "version"),
        );
        let _ = ctx;
        Ok(())
    }

    /// The code of one module holding this message's structs (without the `mod` wrapper).
    pub fn module_body(&self) -> Result<String, String> {
        let m = self.msg;
        const RESERVED: &[&str] = &[
            "Bytes",
            "BufMut",
            "Reader",
            "Writer",
            "Uuid",
            "RawTaggedField",
            "DecodeError",
            "EncodeError",
            "Message",
            "Request",
            "Response",
            "ApiKey",
            "ErrorCode",
            "Option",
            "Result",
            "Vec",
            "String",
            "Some",
            "None",
            "Ok",
            "Err",
            "Default",
            "Self",
        ];
        for s in &m.structs {
            if RESERVED.contains(&s.name.as_str()) {
                return Err(format!(
                    "{}: struct name {} collides with an import",
                    m.file, s.name
                ));
            }
        }
        let mut body = String::new();
        for (i, s) in m.structs.iter().enumerate() {
            self.gen_struct(s, i == 0, &mut body)
                .map_err(|e| format!("{}: {e}", m.file))?;
        }
        match m.kind {
            Kind::Request => {
                let api = crate::api_variant(&m.name);
                let _ = write!(
                    body,
                    "impl crate::protocol::Request for {} {{\nconst API_KEY: ApiKey = ApiKey::{api};\ntype Response = super::response::{api}Response;\n}}\n",
                    m.name
                );
            }
            Kind::Response => {
                let api = crate::api_variant(&m.name);
                let _ = write!(
                    body,
                    "impl crate::protocol::Response for {} {{\nconst API_KEY: ApiKey = ApiKey::{api};\n}}\n",
                    m.name
                );
            }
            _ => {}
        }
        let mut uses = vec![];
        let bytes: Vec<&str> = ["BufMut", "Bytes"]
            .into_iter()
            .filter(|n| uses_ident(&body, n))
            .collect();
        uses.push(format!("use bytes::{{{}}};", bytes.join(", ")));
        let mut codec: Vec<&str> = [
            "DecodeError",
            "EncodeError",
            "RawTaggedField",
            "Reader",
            "Uuid",
        ]
        .into_iter()
        .filter(|n| uses_ident(&body, n))
        .collect();
        const WRITER_METHODS: &[&str] = &[
            ".put_bool(",
            ".put_uuid(",
            ".put_unsigned_varint(",
            ".put_string(",
            ".put_nullable_string(",
            ".put_byte_field(",
            ".put_nullable_byte_field(",
            ".put_array_len(",
            ".put_tagged_fields(",
        ];
        if WRITER_METHODS.iter().any(|w| body.contains(w)) {
            codec.push("Writer");
        }
        codec.sort_unstable();
        uses.push(format!("use crate::codec::{{{}}};", codec.join(", ")));
        let mut proto = vec!["Message"];
        // Not `uses_ident`: field docs name the `ErrorCode` field in backticks.
        if body.contains("-> ErrorCode") {
            proto.insert(0, "ErrorCode");
        }
        if uses_ident(&body, "ApiKey") {
            proto.insert(0, "ApiKey");
        }
        uses.push(format!("use crate::protocol::{{{}}};", proto.join(", ")));
        let support: Vec<&str> = [
            "read_array",
            "read_nullable_array",
            "read_response_array",
            "write_array",
        ]
        .into_iter()
        .filter(|n| uses_ident(&body, n))
        .collect();
        if !support.is_empty() {
            uses.push(format!(
                "use crate::protocol::support::{{{}}};",
                support.join(", ")
            ));
        }
        Ok(format!("{}\n\n{body}", uses.join("\n")))
    }
}
