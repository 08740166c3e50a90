//! The msgpack wire encoding of values (Terraform's `DynamicValue.msgpack`), driven by the type.

use std::collections::BTreeMap;

use rmpv::Value as Mp;

use super::Error;
use super::diag::{AttributePath, PathStep};
use super::types::Type;
use super::value::{Number, Value, check_tuple_len, decode_elements};

/// Terraform accepts any extension type as "unknown"; cty writes extension 0 with one zero byte.
const UNKNOWN_EXT_TYPE: i8 = 0;

pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, Error> {
    let mut reader = bytes;
    let raw = rmpv::decode::read_value(&mut reader).map_err(|e| Error::Msgpack(e.to_string()))?;
    from_msgpack(raw, ty, &mut AttributePath::root())
}

pub fn encode_msgpack(value: &Value, ty: &Type) -> Result<Vec<u8>, Error> {
    let raw = to_msgpack(value, ty, &mut AttributePath::root())?;
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &raw).map_err(|e| Error::Msgpack(e.to_string()))?;
    Ok(out)
}

fn from_msgpack(raw: Mp, ty: &Type, path: &mut AttributePath) -> Result<Value, Error> {
    match raw {
        Mp::Nil => return Ok(Value::Null),
        // Any extension is unknown, including refined unknowns (extension 12, Terraform 1.6+).
        Mp::Ext(..) => return Ok(Value::Unknown),
        _ => {}
    }
    let kind = kind_of(&raw);
    let mismatch = |path: &AttributePath| {
        Error::value(
            path,
            format!("expected {}, got msgpack {kind}", ty.to_json()),
        )
    };
    Ok(match (ty, raw) {
        (Type::String, Mp::String(s)) => Value::String(
            s.into_str()
                .ok_or_else(|| Error::value(path, "string is not valid UTF-8"))?,
        ),
        (Type::Number, Mp::Integer(i)) => Value::Number(match i.as_i64() {
            Some(i) => Number::Int(i),
            None => Number::UInt(i.as_u64().ok_or_else(|| mismatch(path))?),
        }),
        (Type::Number, Mp::F64(f)) => Value::Number(Number::from_wire_float(f)),
        (Type::Number, Mp::F32(f)) => Value::Number(Number::Float(f as f64)),
        (Type::Number, Mp::String(s)) => {
            let text = s.into_str().ok_or_else(|| mismatch(path))?;
            Value::Number(
                Number::parse(&text)
                    .ok_or_else(|| Error::value(path, format!("{text:?} is not a number")))?,
            )
        }
        (Type::Bool, Mp::Boolean(b)) => Value::Bool(b),
        (Type::List(elem), Mp::Array(items)) => Value::List(array_from_msgpack(items, elem, path)?),
        (Type::Set(elem), Mp::Array(items)) => {
            let depth = path.steps.len();
            Value::Set(array_from_msgpack(items, elem, path).map_err(|e| e.at_set(depth))?)
        }
        (Type::Tuple(elems), Mp::Array(items)) => {
            check_tuple_len(elems, items.len(), path)?;
            Value::Tuple(decode_elements(
                items.into_iter().zip(elems),
                path,
                |(item, elem), path| from_msgpack(item, elem, path),
            )?)
        }
        (Type::Map(elem), Mp::Map(entries)) => {
            let mut out = BTreeMap::new();
            for (key, item) in entries {
                let key = key_string(key, path)?;
                path.steps.push(PathStep::ElementKeyString(key.clone()));
                out.insert(key, from_msgpack(item, elem, path)?);
                path.steps.pop();
            }
            Value::Map(out)
        }
        (Type::Object(attrs), Mp::Map(entries)) => {
            let mut received = BTreeMap::new();
            for (key, item) in entries {
                received.insert(key_string(key, path)?, item);
            }
            let mut out = BTreeMap::new();
            for (name, attr_ty) in attrs {
                path.steps.push(PathStep::AttributeName(name.clone()));
                let value = match received.remove(name) {
                    Some(item) => from_msgpack(item, attr_ty, path)?,
                    None => Value::Null,
                };
                out.insert(name.clone(), value);
                path.steps.pop();
            }
            Value::Object(out)
        }
        (Type::Dynamic, Mp::Array(mut pair)) if pair.len() == 2 => {
            let value = pair.pop().expect("length checked");
            let type_json = match pair.pop().expect("length checked") {
                Mp::Binary(bytes) => bytes,
                Mp::String(s) => s.into_bytes(),
                _ => {
                    return Err(Error::value(
                        path,
                        "dynamic value must start with its type JSON",
                    ));
                }
            };
            let concrete =
                Type::from_json_bytes(&type_json).map_err(|e| Error::value(path, e.to_string()))?;
            let inner = from_msgpack(value, &concrete, path)?;
            Value::Dynamic(concrete, Box::new(inner))
        }
        _ => return Err(mismatch(path)),
    })
}

fn array_from_msgpack(
    items: Vec<Mp>,
    elem: &Type,
    path: &mut AttributePath,
) -> Result<Vec<Value>, Error> {
    decode_elements(items, path, |item, path| from_msgpack(item, elem, path))
}

fn key_string(key: Mp, path: &AttributePath) -> Result<String, Error> {
    match key {
        Mp::String(s) => s
            .into_str()
            .ok_or_else(|| Error::value(path, "map key is not valid UTF-8")),
        other => Err(Error::value(
            path,
            format!("map key must be a string, got msgpack {}", kind_of(&other)),
        )),
    }
}

fn kind_of(raw: &Mp) -> &'static str {
    match raw {
        Mp::Nil => "nil",
        Mp::Boolean(_) => "bool",
        Mp::Integer(_) => "integer",
        Mp::F32(_) | Mp::F64(_) => "float",
        Mp::String(_) => "string",
        Mp::Binary(_) => "binary",
        Mp::Array(_) => "array",
        Mp::Map(_) => "map",
        Mp::Ext(..) => "extension",
    }
}

fn to_msgpack(value: &Value, ty: &Type, path: &mut AttributePath) -> Result<Mp, Error> {
    match value {
        Value::Null => return Ok(Mp::Nil),
        Value::Unknown => return Ok(Mp::Ext(UNKNOWN_EXT_TYPE, vec![0])),
        _ => {}
    }
    if *ty == Type::Dynamic {
        return dynamic_to_msgpack(value, path);
    }
    let value = match value {
        // A wrapped value in a typed position: the position's type wins.
        Value::Dynamic(_, inner) => inner.as_ref(),
        other => other,
    };
    let mismatch = |path: &AttributePath| {
        Error::value(
            path,
            format!(
                "value {} does not fit type {}",
                describe(value),
                ty.to_json()
            ),
        )
    };
    Ok(match (ty, value) {
        (_, Value::Null) => Mp::Nil,
        (_, Value::Unknown) => Mp::Ext(UNKNOWN_EXT_TYPE, vec![0]),
        (Type::String, Value::String(s)) => Mp::from(s.as_str()),
        (Type::Number, Value::Number(n)) => number_to_msgpack(n),
        (Type::Number, Value::String(s)) => number_to_msgpack(
            &Number::parse(s)
                .ok_or_else(|| Error::value(path, format!("{s:?} is not a number")))?,
        ),
        (Type::Bool, Value::Bool(b)) => Mp::Boolean(*b),
        (Type::List(elem), Value::List(items) | Value::Set(items) | Value::Tuple(items))
        | (Type::Set(elem), Value::List(items) | Value::Set(items) | Value::Tuple(items)) => {
            let depth = path.steps.len();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.steps.push(PathStep::ElementKeyInt(i as i64));
                let encoded = to_msgpack(item, elem, path);
                path.steps.pop();
                out.push(match ty {
                    Type::Set(_) => encoded.map_err(|e| e.at_set(depth))?,
                    _ => encoded?,
                });
            }
            Mp::Array(out)
        }
        (Type::Tuple(elems), Value::Tuple(items) | Value::List(items))
            if elems.len() == items.len() =>
        {
            let mut out = Vec::with_capacity(items.len());
            for (i, (item, elem)) in items.iter().zip(elems).enumerate() {
                path.steps.push(PathStep::ElementKeyInt(i as i64));
                out.push(to_msgpack(item, elem, path)?);
                path.steps.pop();
            }
            Mp::Array(out)
        }
        (Type::Map(elem), Value::Map(items) | Value::Object(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (k, item) in items {
                path.steps.push(PathStep::ElementKeyString(k.clone()));
                out.push((Mp::from(k.as_str()), to_msgpack(item, elem, path)?));
                path.steps.pop();
            }
            Mp::Map(out)
        }
        // Terraform requires every attribute of an object type to be present.
        (Type::Object(attrs), Value::Object(items)) => {
            let mut out = Vec::with_capacity(attrs.len());
            for (name, attr_ty) in attrs {
                path.steps.push(PathStep::AttributeName(name.clone()));
                let item = items.get(name).unwrap_or(&Value::Null);
                out.push((Mp::from(name.as_str()), to_msgpack(item, attr_ty, path)?));
                path.steps.pop();
            }
            Mp::Map(out)
        }
        _ => return Err(mismatch(path)),
    })
}

fn dynamic_to_msgpack(value: &Value, path: &mut AttributePath) -> Result<Mp, Error> {
    let (concrete, inner) = match value {
        Value::Dynamic(ty, inner) => (ty.clone(), inner.as_ref()),
        other => (other.infer_type(), other),
    };
    if concrete == Type::Dynamic {
        // Only null or unknown have no concrete type; both are written bare.
        return to_msgpack(inner, &Type::String, path);
    }
    let encoded = to_msgpack(inner, &concrete, path)?;
    Ok(Mp::Array(vec![
        Mp::Binary(concrete.to_json_bytes()),
        encoded,
    ]))
}

/// Integers go as integers; anything else as the shortest exact decimal text, because a float64
/// such as 0.1 is not the decimal 0.1 Terraform compares configuration values against.
fn number_to_msgpack(n: &Number) -> Mp {
    match n {
        Number::Int(i) => Mp::from(*i),
        Number::UInt(u) => Mp::from(*u),
        Number::Float(f) if !f.is_finite() => Mp::F64(*f),
        Number::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Mp::from(*f as i64),
        other => Mp::from(other.canonical().as_str()),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Unknown => "unknown",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::List(_) => "list",
        Value::Set(_) => "set",
        Value::Map(_) => "map",
        Value::Object(_) => "object",
        Value::Tuple(_) => "tuple",
        Value::Dynamic(..) => "dynamic",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfplug::UnknownAs;
    use serde_json::json;

    fn round_trip(value: &Value, ty: &Type) -> Value {
        let bytes = encode_msgpack(value, ty).expect("encode");
        decode_msgpack(&bytes, ty).expect("decode")
    }

    fn rich_type() -> Type {
        Type::object([
            ("name", Type::String),
            ("count", Type::Number),
            ("enabled", Type::Bool),
            ("tags", Type::list(Type::String)),
            ("ports", Type::set(Type::Number)),
            ("labels", Type::map(Type::String)),
            (
                "nested",
                Type::list(Type::object([
                    ("a", Type::String),
                    ("b", Type::map(Type::Number)),
                ])),
            ),
            ("pair", Type::Tuple(vec![Type::String, Type::Bool])),
            ("any", Type::Dynamic),
        ])
    }

    #[test]
    fn unknown_is_written_as_cty_fixext1() {
        let bytes = encode_msgpack(&Value::Unknown, &Type::String).unwrap();
        assert_eq!(bytes, vec![0xd4, 0x00, 0x00]);
    }

    #[test]
    fn unknowns_survive_at_every_nesting_level() {
        let ty = rich_type();
        let value = Value::object([
            ("name", Value::Unknown),
            ("count", Value::Number(7.into())),
            ("enabled", Value::Unknown),
            (
                "tags",
                Value::List(vec![Value::string("a"), Value::Unknown]),
            ),
            ("ports", Value::Unknown),
            (
                "labels",
                Value::Map(BTreeMap::from([("k".to_string(), Value::Unknown)])),
            ),
            (
                "nested",
                Value::List(vec![Value::object([
                    ("a", Value::Unknown),
                    (
                        "b",
                        Value::Map(BTreeMap::from([("x".to_string(), Value::Unknown)])),
                    ),
                ])]),
            ),
            (
                "pair",
                Value::Tuple(vec![Value::Unknown, Value::Bool(true)]),
            ),
            ("any", Value::Unknown),
        ]);
        let back = round_trip(&value, &ty);
        assert_eq!(back, value);
        assert!(!back.is_fully_known());
        assert!(back.get_attr("nested").unwrap().is_known());
        let deep = back
            .at(&AttributePath::new("nested").index(0).attr("b").key("x"))
            .unwrap();
        assert_eq!(*deep, Value::Unknown);
        assert_eq!(round_trip(&Value::Unknown, &ty), Value::Unknown);
    }

    #[test]
    fn refined_unknown_extension_12_reads_as_unknown() {
        // ext 12 carrying a refinement map {1: true} ("not null"), as Terraform 1.6+ sends.
        let bytes = [0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc3];
        assert_eq!(
            decode_msgpack(&bytes, &Type::String).unwrap(),
            Value::Unknown
        );
        let object = [0x81, 0xa1, b'a', 0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc3];
        let ty = Type::object([("a", Type::list(Type::String))]);
        assert_eq!(
            decode_msgpack(&object, &ty).unwrap(),
            Value::object([("a", Value::Unknown)])
        );
    }

    #[test]
    fn numbers_keep_their_exact_value() {
        let cases = [
            (Mp::from(42i64), Number::Int(42)),
            (Mp::from(u64::MAX), Number::UInt(u64::MAX)),
            (Mp::F64(2.5), Number::Float(2.5)),
            (Mp::from("0.1"), Number::Float(0.1)),
            (
                Mp::from("123456789012345678901234567890.000000000000000000001"),
                Number::Big("123456789012345678901234567890.000000000000000000001".into()),
            ),
        ];
        for (raw, expected) in cases {
            let mut bytes = Vec::new();
            rmpv::encode::write_value(&mut bytes, &raw).unwrap();
            let decoded = decode_msgpack(&bytes, &Type::Number).unwrap();
            assert_eq!(decoded, Value::Number(expected.clone()), "decoding {raw}");
            assert_eq!(
                decoded.as_number().unwrap().canonical(),
                expected.canonical()
            );
            assert_eq!(round_trip(&decoded, &Type::Number), decoded);
        }
    }

    #[test]
    fn integers_beyond_i64_sent_as_float64_stay_exact_integers() {
        let decode_f64 = |f: f64| {
            let mut bytes = Vec::new();
            rmpv::encode::write_value(&mut bytes, &Mp::F64(f)).unwrap();
            decode_msgpack(&bytes, &Type::Number).unwrap()
        };
        let two_pow_63 = decode_f64(9_223_372_036_854_775_808.0);
        let as_u64: u64 =
            serde_json::from_value(two_pow_63.to_json(crate::tfplug::UnknownAs::Error).unwrap())
                .expect("2^63 decodes into a u64");
        assert_eq!(as_u64, 1u64 << 63);
        let near_max = decode_f64(18_446_744_073_709_549_568.0);
        assert_eq!(
            near_max.as_number().unwrap().canonical(),
            "18446744073709549568"
        );
        let huge = decode_f64(1e30);
        assert!(
            matches!(huge.as_number(), Some(Number::Big(text)) if text == "1000000000000000019884624838656"),
            "{huge:?}"
        );
        assert!(matches!(
            decode_f64(2.5).as_number(),
            Some(Number::Float(_))
        ));
    }

    #[test]
    fn big_numbers_are_written_as_decimal_strings() {
        let big = Value::Number(Number::Big(
            "1234567890123456789012345678901234567890".into(),
        ));
        let bytes = encode_msgpack(&big, &Type::Number).unwrap();
        let raw = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
        assert_eq!(raw, Mp::from("1234567890123456789012345678901234567890"));
        // Non-integral floats go as their shortest decimal, integral ones as integers.
        let bytes = encode_msgpack(&Value::Number(Number::Float(0.1)), &Type::Number).unwrap();
        assert_eq!(
            rmpv::decode::read_value(&mut &bytes[..]).unwrap(),
            Mp::from("0.1")
        );
        let bytes = encode_msgpack(&Value::Number(Number::Float(3.0)), &Type::Number).unwrap();
        assert_eq!(
            rmpv::decode::read_value(&mut &bytes[..]).unwrap(),
            Mp::from(3i64)
        );
    }

    #[test]
    fn number_equality_ignores_representation() {
        assert_eq!(Number::Int(1), Number::Float(1.0));
        assert_eq!(Number::Big("0.10".into()), Number::Float(0.1));
        assert_eq!(Number::Big("-000.500".into()), Number::Float(-0.5));
        assert_ne!(Number::Int(1), Number::Float(1.5));
    }

    #[test]
    fn objects_with_missing_attributes_are_written_with_nulls() {
        let ty = Type::object([("a", Type::String), ("b", Type::Number)]);
        let bytes = encode_msgpack(&Value::object([("a", Value::string("x"))]), &ty).unwrap();
        let raw = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
        assert_eq!(
            raw,
            Mp::Map(vec![
                (Mp::from("a"), Mp::from("x")),
                (Mp::from("b"), Mp::Nil)
            ])
        );
        let back = decode_msgpack(&bytes, &ty).unwrap();
        assert_eq!(
            back,
            Value::object([("a", Value::string("x")), ("b", Value::Null)])
        );
    }

    #[test]
    fn null_and_empty_collections_stay_distinct() {
        let ty = Type::object([
            ("l", Type::list(Type::String)),
            ("s", Type::set(Type::String)),
            ("m", Type::map(Type::String)),
            ("n", Type::list(Type::String)),
            ("e", Type::String),
        ]);
        let value = Value::object([
            ("l", Value::List(vec![])),
            ("s", Value::Set(vec![])),
            ("m", Value::Map(BTreeMap::new())),
            ("n", Value::Null),
            ("e", Value::string("")),
        ]);
        let back = round_trip(&value, &ty);
        assert_eq!(back, value);
        assert_ne!(back.get_attr("l"), back.get_attr("n"));
        assert!(back.get_attr("n").unwrap().is_null());
    }

    #[test]
    fn sets_maps_and_tuples_round_trip() {
        let ty = rich_type();
        let value = Value::object([
            ("name", Value::string("n")),
            ("count", Value::Number(Number::Float(1.25))),
            ("enabled", Value::Bool(false)),
            ("tags", Value::List(vec![Value::string("a")])),
            (
                "ports",
                Value::Set(vec![Value::Number(80.into()), Value::Number(443.into())]),
            ),
            (
                "labels",
                Value::Map(BTreeMap::from([
                    ("a".into(), Value::string("1")),
                    ("b".into(), Value::Null),
                ])),
            ),
            ("nested", Value::Null),
            (
                "pair",
                Value::Tuple(vec![Value::string("x"), Value::Bool(true)]),
            ),
            ("any", Value::Null),
        ]);
        assert_eq!(round_trip(&value, &ty), value);
        // Set order carries no meaning.
        let reordered = Value::Set(vec![Value::Number(443.into()), Value::Number(80.into())]);
        assert_eq!(value.get_attr("ports").unwrap(), &reordered);
    }

    #[test]
    fn dynamic_values_carry_their_type_on_the_wire() {
        let inner_ty = Type::object([("x", Type::list(Type::Number))]);
        let inner = Value::object([("x", Value::List(vec![Value::Number(1.into())]))]);
        let value = Value::Dynamic(inner_ty.clone(), Box::new(inner.clone()));
        let bytes = encode_msgpack(&value, &Type::Dynamic).unwrap();
        let raw = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
        let Mp::Array(pair) = &raw else {
            panic!("dynamic must be an array, got {raw}")
        };
        assert_eq!(
            pair[0],
            Mp::Binary(br#"["object",{"x":["list","number"]}]"#.to_vec())
        );
        let back = decode_msgpack(&bytes, &Type::Dynamic).unwrap();
        assert_eq!(back, value);
        assert!(matches!(&back, Value::Dynamic(t, _) if *t == inner_ty));
        // A plain value in a dynamic slot is wrapped with its inferred type.
        let plain = encode_msgpack(&Value::string("s"), &Type::Dynamic).unwrap();
        assert_eq!(
            rmpv::decode::read_value(&mut &plain[..]).unwrap(),
            Mp::Array(vec![Mp::Binary(b"\"string\"".to_vec()), Mp::from("s")])
        );
    }

    #[test]
    fn decode_error_names_the_attribute_path() {
        let ty = Type::object([("nested", Type::list(Type::object([("port", Type::Number)])))]);
        let raw = Mp::Map(vec![(
            Mp::from("nested"),
            Mp::Array(vec![Mp::Map(vec![(Mp::from("port"), Mp::Boolean(true))])]),
        )]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &raw).unwrap();
        let err = decode_msgpack(&bytes, &ty).unwrap_err();
        let Error::Value { path, message } = err else {
            panic!("expected a value error")
        };
        assert_eq!(path, AttributePath::new("nested").index(0).attr("port"));
        assert!(message.contains("number"), "{message}");
    }

    #[test]
    fn wire_json_decodes_state_with_exact_numbers_and_dynamic() {
        let ty = Type::object([
            ("id", Type::String),
            ("big", Type::Number),
            ("ratio", Type::Number),
            ("labels", Type::map(Type::String)),
            ("any", Type::Dynamic),
            ("gone", Type::String),
        ]);
        let json = br#"{"id":"x","big":123456789012345678901234567890,"ratio":0.1,
            "labels":{"a":"b"},"any":{"type":["list","string"],"value":["v"]},"removed_attr":1}"#;
        let value = Value::from_wire_json(json, &ty).unwrap();
        assert_eq!(
            value
                .get_attr("big")
                .unwrap()
                .as_number()
                .unwrap()
                .canonical(),
            "123456789012345678901234567890"
        );
        assert_eq!(
            value.get_attr("ratio").unwrap().as_number().unwrap(),
            &Number::Float(0.1)
        );
        assert_eq!(value.get_attr("gone"), Some(&Value::Null));
        assert_eq!(
            value.get_attr("any").unwrap(),
            &Value::Dynamic(
                Type::list(Type::String),
                Box::new(Value::List(vec![Value::string("v")]))
            )
        );
        let err = Value::from_wire_json(br#"{"labels":{"a":[1]}}"#, &ty).unwrap_err();
        assert!(
            matches!(err, Error::Value { ref path, .. } if *path == AttributePath::new("labels").key("a")),
            "{err}"
        );
    }

    #[test]
    fn plain_json_round_trip_and_unknown_policy() {
        let ty = Type::object([("a", Type::String), ("n", Type::list(Type::Number))]);
        let value = Value::from_json(&json!({"a": "x", "n": [1, 2.5]}), &ty).unwrap();
        assert_eq!(
            value.to_json(UnknownAs::Error).unwrap(),
            json!({"a": "x", "n": [1, 2.5]})
        );
        let with_unknown = Value::object([("a", Value::Unknown), ("n", Value::Null)]);
        assert_eq!(
            with_unknown.to_json(UnknownAs::Null).unwrap(),
            json!({"a": null, "n": null})
        );
        let err = with_unknown.to_json(UnknownAs::Error).unwrap_err();
        assert!(matches!(err, Error::Value { ref path, .. } if *path == AttributePath::new("a")));
    }

    #[test]
    fn type_mismatch_on_encode_names_the_path() {
        let ty = Type::object([("m", Type::map(Type::Bool))]);
        let value = Value::object([(
            "m",
            Value::Map(BTreeMap::from([("k".into(), Value::string("no"))])),
        )]);
        let err = encode_msgpack(&value, &ty).unwrap_err();
        assert!(
            matches!(err, Error::Value { ref path, .. } if *path == AttributePath::new("m").key("k")),
            "{err}"
        );
    }
}
