//! Terraform values: a schema-typed tree that can be null or unknown at any level.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

use super::Error;
use super::diag::{AttributePath, PathStep};
use super::types::Type;

/// A Terraform number kept exactly as received: Terraform sends integers, float64s, or decimal
/// strings for values neither can hold (e.g. `0.1` or 40-digit integers).
#[derive(Clone, Debug)]
pub enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
    /// A decimal string (optionally with exponent) that no machine type holds exactly.
    Big(String),
}

impl Number {
    /// Parses decimal text, keeping it as `Big` unless a machine type represents it exactly.
    pub fn parse(text: &str) -> Option<Number> {
        let text = text.trim().trim_start_matches('+');
        if let Ok(i) = text.parse::<i64>() {
            return Some(Number::Int(i));
        }
        if let Ok(u) = text.parse::<u64>() {
            return Some(Number::UInt(u));
        }
        let f = text.parse::<f64>().ok()?;
        if f.is_finite() && format_float(f) == canonical_decimal(text) {
            Some(Number::Float(f))
        } else {
            Some(Number::Big(text.to_string()))
        }
    }

    /// Terraform sends an integer as float64 when no int64 holds it but a float64 does exactly
    /// (e.g. 2^63 or 10^30): keep it an exact integer so it decodes into `u64` and prints
    /// every digit.
    pub fn from_wire_float(f: f64) -> Number {
        const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
        if !f.is_finite() || f.fract() != 0.0 || f.abs() < TWO_POW_63 {
            return Number::Float(f);
        }
        if f > 0.0 && f < 2.0 * TWO_POW_63 {
            Number::UInt(f as u64)
        } else {
            Number::Big(exact_integer_text(f))
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(*i),
            Number::UInt(u) => i64::try_from(*u).ok(),
            Number::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(*f as i64),
            _ => None,
        }
    }

    /// The nearest f64 (lossy for `Big`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Number::Int(i) => Some(*i as f64),
            Number::UInt(u) => Some(*u as f64),
            Number::Float(f) => Some(*f),
            Number::Big(s) => s.parse().ok(),
        }
    }

    /// Decimal text without exponent, sign noise or trailing zeros; equal numbers give equal text.
    pub fn canonical(&self) -> String {
        match self {
            Number::Int(i) => i.to_string(),
            Number::UInt(u) => u.to_string(),
            Number::Float(f) => format_float(*f),
            Number::Big(s) => canonical_decimal(s),
        }
    }
}

/// Every digit of an integral f64 of magnitude ≥ 2^63 (Rust's `{}` prints the shortest text
/// that round-trips, e.g. 1e30 as 10^30, which is not the float's value 2^99·…).
fn exact_integer_text(f: f64) -> String {
    let bits = f.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1075;
    let mantissa = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
    // Little-endian base-10^9 limbs of mantissa · 2^exponent (exponent > 0 at this magnitude).
    let mut limbs: Vec<u64> = vec![mantissa % 1_000_000_000, mantissa / 1_000_000_000];
    for _ in 0..exponent.max(0) {
        let mut carry = 0;
        for limb in limbs.iter_mut() {
            let doubled = *limb * 2 + carry;
            *limb = doubled % 1_000_000_000;
            carry = doubled / 1_000_000_000;
        }
        if carry > 0 {
            limbs.push(carry);
        }
    }
    while limbs.len() > 1 && limbs.last() == Some(&0) {
        limbs.pop();
    }
    let mut text = if f < 0.0 {
        "-".to_string()
    } else {
        String::new()
    };
    text.push_str(&limbs.last().copied().unwrap_or(0).to_string());
    for limb in limbs.iter().rev().skip(1) {
        text.push_str(&format!("{limb:09}"));
    }
    text
}

/// Rust prints the shortest text that round-trips, and never uses an exponent.
fn format_float(f: f64) -> String {
    if f == 0.0 {
        "0".to_string()
    } else {
        format!("{f}")
    }
}

fn canonical_decimal(text: &str) -> String {
    let text = text.trim().trim_start_matches('+');
    if text.contains(['e', 'E']) {
        // Exponent forms are rare on the wire; compare them through f64.
        return text
            .parse::<f64>()
            .map(format_float)
            .unwrap_or_else(|_| text.to_string());
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let int_part = int_part.trim_start_matches('0');
    let frac_part = frac_part.trim_end_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let magnitude = if frac_part.is_empty() {
        int_part.to_string()
    } else {
        format!("{int_part}.{frac_part}")
    };
    if negative && magnitude != "0" {
        format!("-{magnitude}")
    } else {
        magnitude
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Self {
        Number::Int(i)
    }
}

impl From<f64> for Number {
    fn from(f: f64) -> Self {
        Number::Float(f)
    }
}

impl serde::Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Number::Int(i) => s.serialize_i64(*i),
            Number::UInt(u) => s.serialize_u64(*u),
            Number::Float(f) => s.serialize_f64(*f),
            Number::Big(text) => s.serialize_str(text),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl serde::de::Visitor<'_> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a decimal string")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number::parse(&v.to_string()).unwrap_or(Number::UInt(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number::Float(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Number, E> {
                Number::parse(v).ok_or_else(|| E::custom(format!("{v:?} is not a number")))
            }
        }
        d.deserialize_any(NumberVisitor)
    }
}

impl schemars::JsonSchema for Number {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Number".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "number" })
    }
    fn inline_schema() -> bool {
        true
    }
}

/// What to do with unknown values when converting to plain JSON or typed structs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownAs {
    /// Treat unknown as null (useful at plan time, where unknowns are expected).
    Null,
    /// Fail with the attribute path of the first unknown.
    Error,
}

#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
    /// A value of an attribute typed `dynamic`, with the concrete type it travelled with.
    Dynamic(Type, Box<Value>),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) | (Unknown, Unknown) => true,
            (Bool(a), Bool(b)) => a == b,
            (Number(a), Number(b)) => a == b,
            (String(a), String(b)) => a == b,
            (List(a), List(b)) | (Tuple(a), Tuple(b)) => a == b,
            // Sets compare by content; the wire order is not meaningful.
            (Set(a), Set(b)) => a.len() == b.len() && a.iter().all(|x| b.contains(x)),
            (Map(a), Map(b)) | (Object(a), Object(b)) => a == b,
            (Dynamic(ta, a), Dynamic(tb, b)) => ta == tb && a == b,
            (Dynamic(_, a), b) => a.as_ref() == b,
            (a, Dynamic(_, b)) => a == b.as_ref(),
            _ => false,
        }
    }
}

impl Value {
    pub fn string(s: impl Into<String>) -> Self {
        Value::String(s.into())
    }

    pub fn object<K: Into<String>>(attrs: impl IntoIterator<Item = (K, Value)>) -> Self {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn is_null(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Dynamic(_, v) => v.is_null(),
            _ => false,
        }
    }

    /// False only for a value that is itself unknown (its parts may still be unknown).
    pub fn is_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::Dynamic(_, v) => v.is_known(),
            _ => true,
        }
    }

    pub fn is_fully_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                items.iter().all(Value::is_fully_known)
            }
            Value::Map(items) | Value::Object(items) => items.values().all(Value::is_fully_known),
            Value::Dynamic(_, v) => v.is_fully_known(),
            _ => true,
        }
    }

    fn unwrap_dynamic(&self) -> &Value {
        match self {
            Value::Dynamic(_, v) => v.unwrap_dynamic(),
            other => other,
        }
    }

    /// An object attribute; `None` when this is not an object or has no such attribute.
    pub fn get_attr(&self, name: &str) -> Option<&Value> {
        match self.unwrap_dynamic() {
            Value::Object(attrs) => attrs.get(name),
            _ => None,
        }
    }

    /// The same value with every unknown, at any depth, replaced by null (what Terraform
    /// stores when an apply answers with unknowns).
    pub fn unknowns_as_null(&self) -> Value {
        let each = |items: &Vec<Value>| items.iter().map(Value::unknowns_as_null).collect();
        let each_entry = |items: &BTreeMap<String, Value>| {
            items
                .iter()
                .map(|(k, v)| (k.clone(), v.unknowns_as_null()))
                .collect()
        };
        match self {
            Value::Unknown => Value::Null,
            Value::List(items) => Value::List(each(items)),
            Value::Set(items) => Value::Set(each(items)),
            Value::Tuple(items) => Value::Tuple(each(items)),
            Value::Map(items) => Value::Map(each_entry(items)),
            Value::Object(items) => Value::Object(each_entry(items)),
            Value::Dynamic(ty, inner) => {
                Value::Dynamic(ty.clone(), Box::new(inner.unknowns_as_null()))
            }
            other => other.clone(),
        }
    }

    /// The element under `key` of a map value.
    pub fn get_map_entry(&self, key: &str) -> Option<&Value> {
        match self.unwrap_dynamic() {
            Value::Map(items) => items.get(key),
            _ => None,
        }
    }

    pub fn get_attr_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Value::Object(attrs) => attrs.get_mut(name),
            Value::Dynamic(_, v) => v.get_attr_mut(name),
            _ => None,
        }
    }

    /// Sets an object attribute; does nothing when this is not an object.
    pub fn set_attr(&mut self, name: &str, value: Value) {
        if let Some(slot) = self.get_attr_mut(name) {
            *slot = value;
        } else if let Value::Object(attrs) = self {
            attrs.insert(name.to_string(), value);
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self.unwrap_dynamic() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.unwrap_dynamic() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self.unwrap_dynamic() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The value at `path`, or `None` when the path leads nowhere (including through null).
    pub fn at(&self, path: &AttributePath) -> Option<&Value> {
        path.steps
            .iter()
            .try_fold(self, |value, step| value.step(step))
    }

    pub fn at_mut(&mut self, path: &AttributePath) -> Option<&mut Value> {
        let mut value = self;
        for step in &path.steps {
            value = value.step_mut(step)?;
        }
        Some(value)
    }

    fn step(&self, step: &PathStep) -> Option<&Value> {
        match (self.unwrap_dynamic(), step) {
            (Value::Object(attrs), PathStep::AttributeName(name)) => attrs.get(name),
            (Value::Map(items), PathStep::ElementKeyString(key)) => items.get(key),
            (
                Value::List(items) | Value::Tuple(items) | Value::Set(items),
                PathStep::ElementKeyInt(i),
            ) => usize::try_from(*i).ok().and_then(|i| items.get(i)),
            _ => None,
        }
    }

    fn step_mut(&mut self, step: &PathStep) -> Option<&mut Value> {
        match (self, step) {
            (Value::Dynamic(_, v), step) => v.step_mut(step),
            (Value::Object(attrs), PathStep::AttributeName(name)) => attrs.get_mut(name),
            (Value::Map(items), PathStep::ElementKeyString(key)) => items.get_mut(key),
            (
                Value::List(items) | Value::Tuple(items) | Value::Set(items),
                PathStep::ElementKeyInt(i),
            ) => usize::try_from(*i).ok().and_then(|i| items.get_mut(i)),
            _ => None,
        }
    }

    /// The type Terraform would infer for this value (used for `dynamic` attributes).
    pub fn infer_type(&self) -> Type {
        match self {
            Value::Null | Value::Unknown => Type::Dynamic,
            Value::Bool(_) => Type::Bool,
            Value::Number(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::List(items) => Type::list(common_type(items)),
            Value::Set(items) => Type::set(common_type(items)),
            Value::Map(items) => Type::map(common_type(items.values())),
            Value::Object(attrs) => Type::Object(
                attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.infer_type()))
                    .collect(),
            ),
            Value::Tuple(items) => Type::Tuple(items.iter().map(Value::infer_type).collect()),
            Value::Dynamic(ty, _) => ty.clone(),
        }
    }

    /// Plain JSON (sets become arrays, dynamic values lose their wrapper).
    pub fn to_json(&self, unknown_as: UnknownAs) -> Result<Json, Error> {
        self.to_json_at(unknown_as, &mut AttributePath::root())
    }

    fn to_json_at(&self, unknown_as: UnknownAs, path: &mut AttributePath) -> Result<Json, Error> {
        Ok(match self {
            Value::Null => Json::Null,
            Value::Unknown => match unknown_as {
                UnknownAs::Null => Json::Null,
                UnknownAs::Error => return Err(Error::value(path, "value is not known yet")),
            },
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => number_to_json(n),
            Value::String(s) => Json::String(s.clone()),
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                let depth = path.steps.len();
                let in_set = matches!(self, Value::Set(_));
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.steps.push(PathStep::ElementKeyInt(i as i64));
                    let json = item.to_json_at(unknown_as, path);
                    path.steps.pop();
                    out.push(match json {
                        Err(e) if in_set => return Err(e.at_set(depth)),
                        other => other?,
                    });
                }
                Json::Array(out)
            }
            Value::Map(items) => map_to_json(items, unknown_as, path, PathStep::ElementKeyString)?,
            Value::Object(items) => map_to_json(items, unknown_as, path, PathStep::AttributeName)?,
            Value::Dynamic(_, v) => v.to_json_at(unknown_as, path)?,
        })
    }

    /// Builds a value of type `ty` from plain JSON (as produced by serde for typed models).
    /// Missing object attributes become null; keys the type does not know are dropped.
    pub fn from_json(json: &Json, ty: &Type) -> Result<Value, Error> {
        let exact = ExactJson::from_json(json);
        exact.to_value(ty, JsonMode::Plain, &mut AttributePath::root())
    }

    /// Decodes Terraform's wire JSON (state files, `DynamicValue.json`), where dynamic values are
    /// wrapped as `{"type":..,"value":..}`. Numbers keep their exact decimal text.
    pub fn from_wire_json(bytes: &[u8], ty: &Type) -> Result<Value, Error> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::Msgpack(format!("JSON is not UTF-8: {e}")))?;
        let raw: &serde_json::value::RawValue = serde_json::from_str(text)?;
        let exact = ExactJson::parse(raw)?;
        exact.to_value(ty, JsonMode::Wire, &mut AttributePath::root())
    }
}

/// Parses stored state JSON for a schema upgrade without rounding any number (see
/// `ExactJson::to_exact_plain_json`).
pub(crate) fn exact_state_json(bytes: &[u8]) -> Result<Json, Error> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::Msgpack(format!("JSON is not UTF-8: {e}")))?;
    let raw: &serde_json::value::RawValue = serde_json::from_str(text)?;
    Ok(ExactJson::parse(raw)?.to_exact_plain_json())
}

fn common_type<'a>(items: impl IntoIterator<Item = &'a Value>) -> Type {
    items
        .into_iter()
        .map(Value::infer_type)
        .find(|t| *t != Type::Dynamic)
        .unwrap_or(Type::Dynamic)
}

fn map_to_json(
    items: &BTreeMap<String, Value>,
    unknown_as: UnknownAs,
    path: &mut AttributePath,
    step: fn(String) -> PathStep,
) -> Result<Json, Error> {
    let mut out = serde_json::Map::new();
    for (k, v) in items {
        path.steps.push(step(k.clone()));
        out.insert(k.clone(), v.to_json_at(unknown_as, path)?);
        path.steps.pop();
    }
    Ok(Json::Object(out))
}

/// Big numbers that an f64 cannot hold become strings, so nothing is silently rounded;
/// `Number` fields accept both forms.
fn number_to_json(n: &Number) -> Json {
    match n {
        Number::Int(i) => Json::from(*i),
        Number::UInt(u) => Json::from(*u),
        Number::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Number::Big(text) => match Number::parse(text) {
            Some(Number::Float(f)) => Json::from(f),
            Some(Number::Int(i)) => Json::from(i),
            _ => Json::String(text.clone()),
        },
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JsonMode {
    Plain,
    Wire,
}

/// JSON whose numbers are kept as their source text.
enum ExactJson {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<ExactJson>),
    Object(BTreeMap<String, ExactJson>),
}

impl ExactJson {
    fn from_json(json: &Json) -> ExactJson {
        match json {
            Json::Null => ExactJson::Null,
            Json::Bool(b) => ExactJson::Bool(*b),
            Json::Number(n) => ExactJson::Number(n.to_string()),
            Json::String(s) => ExactJson::String(s.clone()),
            Json::Array(items) => {
                ExactJson::Array(items.iter().map(ExactJson::from_json).collect())
            }
            Json::Object(items) => ExactJson::Object(
                items
                    .iter()
                    .map(|(k, v)| (k.clone(), ExactJson::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// serde_json without `arbitrary_precision` rounds numbers to f64, so each level is re-read
    /// as raw text and numbers are taken verbatim. Nesting depth of state is small.
    fn parse(raw: &serde_json::value::RawValue) -> Result<ExactJson, Error> {
        let text = raw.get().trim();
        Ok(match text.as_bytes().first() {
            Some(b'{') => {
                let items: BTreeMap<String, &serde_json::value::RawValue> =
                    serde_json::from_str(text)?;
                ExactJson::Object(
                    items
                        .into_iter()
                        .map(|(k, v)| Ok((k, ExactJson::parse(v)?)))
                        .collect::<Result<_, Error>>()?,
                )
            }
            Some(b'[') => {
                let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(text)?;
                ExactJson::Array(
                    items
                        .into_iter()
                        .map(ExactJson::parse)
                        .collect::<Result<_, _>>()?,
                )
            }
            Some(b'"') => ExactJson::String(serde_json::from_str(text)?),
            Some(b't') => ExactJson::Bool(true),
            Some(b'f') => ExactJson::Bool(false),
            Some(b'n') => ExactJson::Null,
            _ => ExactJson::Number(text.to_string()),
        })
    }

    /// Plain JSON in which every number is exact: those serde_json would round (beyond
    /// u64/i64 and not an exact f64) become decimal strings, which `Number` and
    /// `Value::from_json` read back exactly.
    fn to_exact_plain_json(&self) -> Json {
        match self {
            ExactJson::Null => Json::Null,
            ExactJson::Bool(b) => Json::Bool(*b),
            ExactJson::Number(text) => match Number::parse(text) {
                Some(n @ (Number::Int(_) | Number::UInt(_) | Number::Float(_))) => {
                    number_to_json(&n)
                }
                _ => Json::String(text.clone()),
            },
            ExactJson::String(s) => Json::String(s.clone()),
            ExactJson::Array(items) => {
                Json::Array(items.iter().map(ExactJson::to_exact_plain_json).collect())
            }
            ExactJson::Object(items) => Json::Object(
                items
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_exact_plain_json()))
                    .collect(),
            ),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ExactJson::Null => "null",
            ExactJson::Bool(_) => "bool",
            ExactJson::Number(_) => "number",
            ExactJson::String(_) => "string",
            ExactJson::Array(_) => "array",
            ExactJson::Object(_) => "object",
        }
    }

    fn to_value(
        &self,
        ty: &Type,
        mode: JsonMode,
        path: &mut AttributePath,
    ) -> Result<Value, Error> {
        let mismatch = |path: &AttributePath| {
            Error::value(
                path,
                format!("expected {}, got JSON {}", ty.to_json(), self.kind()),
            )
        };
        if let ExactJson::Null = self {
            return Ok(Value::Null);
        }
        Ok(match (ty, self) {
            (Type::String, ExactJson::String(s)) => Value::String(s.clone()),
            // Terraform converts primitives to string freely; accept the same in JSON.
            (Type::String, ExactJson::Number(n)) => Value::String(n.clone()),
            (Type::String, ExactJson::Bool(b)) => Value::String(b.to_string()),
            (Type::Number, ExactJson::Number(n) | ExactJson::String(n)) => Value::Number(
                Number::parse(n)
                    .ok_or_else(|| Error::value(path, format!("{n:?} is not a number")))?,
            ),
            (Type::Bool, ExactJson::Bool(b)) => Value::Bool(*b),
            (Type::List(elem), ExactJson::Array(items)) => {
                Value::List(array_to_values(items, elem, mode, path)?)
            }
            (Type::Set(elem), ExactJson::Array(items)) => {
                let depth = path.steps.len();
                Value::Set(array_to_values(items, elem, mode, path).map_err(|e| e.at_set(depth))?)
            }
            (Type::Tuple(elems), ExactJson::Array(items)) => {
                check_tuple_len(elems, items.len(), path)?;
                Value::Tuple(decode_elements(
                    items.iter().zip(elems),
                    path,
                    |(item, elem), path| item.to_value(elem, mode, path),
                )?)
            }
            (Type::Map(elem), ExactJson::Object(items)) => {
                let mut out = BTreeMap::new();
                for (k, item) in items {
                    path.steps.push(PathStep::ElementKeyString(k.clone()));
                    out.insert(k.clone(), item.to_value(elem, mode, path)?);
                    path.steps.pop();
                }
                Value::Map(out)
            }
            (Type::Object(attrs), ExactJson::Object(items)) => {
                let mut out = BTreeMap::new();
                for (name, attr_ty) in attrs {
                    path.steps.push(PathStep::AttributeName(name.clone()));
                    let value = match items.get(name) {
                        Some(item) => item.to_value(attr_ty, mode, path)?,
                        None => Value::Null,
                    };
                    out.insert(name.clone(), value);
                    path.steps.pop();
                }
                Value::Object(out)
            }
            (Type::Dynamic, _) if mode == JsonMode::Wire => self.wrapped_dynamic_to_value(path)?,
            (Type::Dynamic, _) => {
                let inferred = self.infer_type();
                Value::Dynamic(
                    inferred.clone(),
                    Box::new(self.to_value(&inferred, mode, path)?),
                )
            }
            _ => return Err(mismatch(path)),
        })
    }

    fn wrapped_dynamic_to_value(&self, path: &mut AttributePath) -> Result<Value, Error> {
        let ExactJson::Object(items) = self else {
            return Err(Error::value(
                path,
                "dynamic value must be {\"type\":..,\"value\":..}",
            ));
        };
        let ty_json = items
            .get("type")
            .map(ExactJson::to_plain_json)
            .unwrap_or(Json::Null);
        let ty = Type::from_json(&ty_json).map_err(|e| Error::value(path, e.to_string()))?;
        let value = match items.get("value") {
            Some(v) => v.to_value(&ty, JsonMode::Wire, path)?,
            None => Value::Null,
        };
        Ok(Value::Dynamic(ty, Box::new(value)))
    }

    fn infer_type(&self) -> Type {
        match self {
            ExactJson::Null => Type::Dynamic,
            ExactJson::Bool(_) => Type::Bool,
            ExactJson::Number(_) => Type::Number,
            ExactJson::String(_) => Type::String,
            ExactJson::Array(items) => {
                Type::Tuple(items.iter().map(ExactJson::infer_type).collect())
            }
            ExactJson::Object(items) => Type::Object(
                items
                    .iter()
                    .map(|(k, v)| (k.clone(), v.infer_type()))
                    .collect(),
            ),
        }
    }

    fn to_plain_json(&self) -> Json {
        match self {
            ExactJson::Null => Json::Null,
            ExactJson::Bool(b) => Json::Bool(*b),
            ExactJson::Number(n) => serde_json::from_str(n).unwrap_or(Json::Null),
            ExactJson::String(s) => Json::String(s.clone()),
            ExactJson::Array(items) => {
                Json::Array(items.iter().map(ExactJson::to_plain_json).collect())
            }
            ExactJson::Object(items) => Json::Object(
                items
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_plain_json()))
                    .collect(),
            ),
        }
    }
}

fn array_to_values(
    items: &[ExactJson],
    elem: &Type,
    mode: JsonMode,
    path: &mut AttributePath,
) -> Result<Vec<Value>, Error> {
    decode_elements(items, path, |item, path| item.to_value(elem, mode, path))
}

/// Decodes the elements of a list, set or tuple, each at its index in `path` (JSON and
/// msgpack alike).
pub(super) fn decode_elements<I>(
    items: impl IntoIterator<Item = I>,
    path: &mut AttributePath,
    mut decode: impl FnMut(I, &mut AttributePath) -> Result<Value, Error>,
) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        path.steps.push(PathStep::ElementKeyInt(i as i64));
        out.push(decode(item, path)?);
        path.steps.pop();
    }
    Ok(out)
}

/// A tuple value must have as many elements as its type.
pub(super) fn check_tuple_len(
    elems: &[Type],
    items: usize,
    path: &AttributePath,
) -> Result<(), Error> {
    if elems.len() == items {
        return Ok(());
    }
    Err(Error::value(
        path,
        format!("expected {} tuple elements, got {items}", elems.len()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_json_for_upgrades_keeps_every_digit() {
        let raw = br#"{"big":123456789012345678901234567890,"dec":0.1000000000000000000001,"port":8080,"ratio":0.5,"u":18446744073709551615}"#;
        let json = exact_state_json(raw).unwrap();
        assert_eq!(json["port"], 8080);
        assert_eq!(json["ratio"], 0.5);
        assert_eq!(json["u"], u64::MAX);
        let ty = Type::object([("big", Type::Number), ("dec", Type::Number)]);
        let value = Value::from_json(&json, &ty).unwrap();
        assert_eq!(
            value
                .get_attr("big")
                .and_then(Value::as_number)
                .unwrap()
                .canonical(),
            "123456789012345678901234567890"
        );
        assert_eq!(
            value
                .get_attr("dec")
                .and_then(Value::as_number)
                .unwrap()
                .canonical(),
            "0.1000000000000000000001"
        );
    }
}
