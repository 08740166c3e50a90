//! Typed bridge between `Value` and serde models, with attribute paths in every error.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::diag::{AttributePath, Diagnostics, PathStep};
use super::schema::HasType;
use super::value::{UnknownAs, Value};

/// Converts a value into a typed model. On failure adds an error diagnostic naming the attribute
/// (e.g. `spec.ports[0].number`) and returns `None`.
pub fn decode<T: DeserializeOwned>(
    value: &Value,
    unknown_as: UnknownAs,
    diags: &mut Diagnostics,
) -> Option<T> {
    let json = match value.to_json(unknown_as) {
        Ok(json) => json,
        Err(e) => {
            diags.from_error("Invalid value", &e);
            return None;
        }
    };
    match serde_path_to_error::deserialize::<_, T>(json) {
        Ok(typed) => Some(typed),
        Err(e) => {
            let path = attribute_path(value, e.path());
            let message = without_values(&e.into_inner().to_string(), value.at(&path));
            diags.error("Invalid value", message, path);
            None
        }
    }
}

/// serde echoes the offending value ("invalid type: string \"s3cr3t\", expected u16"); the
/// attribute may be sensitive, and the diagnostic already names it, so the value is dropped.
fn without_values(message: &str, leaf: Option<&Value>) -> String {
    static ECHOES: std::sync::LazyLock<[(regex::Regex, &str); 2]> =
        std::sync::LazyLock::new(|| {
            [
                (
                    regex::Regex::new(
                        r"(?s)^(invalid (?:type|value): [a-z ]+?) [`\x22].*(, expected .*)$",
                    )
                    .expect("valid regex"),
                    "$1 (value hidden)$2",
                ),
                (
                    regex::Regex::new(r"(?s)^unknown variant `.*`(, expected .*)$")
                        .expect("valid regex"),
                    "unknown variant (value hidden)$1",
                ),
            ]
        });
    let mut out = message.to_string();
    for (pattern, replacement) in ECHOES.iter() {
        out = pattern.replace(&out, *replacement).into_owned();
    }
    // Messages from custom deserializers may quote the value anywhere.
    match leaf {
        Some(Value::String(text)) if !text.is_empty() => {
            out.replace(text.as_str(), "(value hidden)")
        }
        _ => out,
    }
}

/// Converts a typed model into a value of the schema's type; attributes the model leaves out
/// become null. A model that does not fit its schema adds an error diagnostic.
pub fn encode<T: Serialize>(
    typed: &T,
    schema: &impl HasType,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let json = match serde_json::to_value(typed) {
        Ok(json) => json,
        Err(e) => {
            diags.root_error("Internal error: cannot serialise state", e.to_string());
            return None;
        }
    };
    match Value::from_json(&json, &schema.value_type()) {
        Ok(value) => Some(value),
        Err(e) => {
            diags.from_error("Internal error: state does not fit the schema", &e);
            None
        }
    }
}

/// Maps serde's path onto Terraform steps: a key is an attribute in an object, a key in a map.
fn attribute_path(root: &Value, serde_path: &serde_path_to_error::Path) -> AttributePath {
    use serde_path_to_error::Segment;
    let mut path = AttributePath::root();
    let mut current = Some(root);
    for segment in serde_path.iter() {
        let step = match segment {
            Segment::Map { key } => match current {
                Some(Value::Map(_)) => PathStep::ElementKeyString(key.clone()),
                _ => PathStep::AttributeName(key.clone()),
            },
            // Set elements have no index Terraform could point at: stop at the set.
            Segment::Seq { .. } if matches!(current, Some(Value::Set(_))) => break,
            Segment::Seq { index } => PathStep::ElementKeyInt(*index as i64),
            Segment::Enum { .. } | Segment::Unknown => break,
        };
        current = current.and_then(|v| {
            v.at(&AttributePath {
                steps: vec![step.clone()],
            })
        });
        path.steps.push(step);
    }
    path
}

/// `#[serde(deserialize_with = "tfplug::null_as_default")]` on a required model field: the
/// field stays required in the schema, and decodes to its default while Terraform does not
/// know the value yet (validation with `UnknownAs::Null`). Validators must then check that
/// the attribute is known before judging it.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    use serde::Deserialize;
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfplug::{Number, Type};
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Port {
        number: u16,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Model {
        name: String,
        labels: Option<BTreeMap<String, String>>,
        ports: Vec<Port>,
        ratio: Option<f64>,
        big: Option<Number>,
    }

    fn model_type() -> Type {
        Type::object([
            ("name", Type::String),
            ("labels", Type::map(Type::String)),
            (
                "ports",
                Type::list(Type::object([("number", Type::Number)])),
            ),
            ("ratio", Type::Number),
            ("big", Type::Number),
        ])
    }

    #[test]
    fn typed_round_trip_keeps_numbers() {
        let model = Model {
            name: "a".into(),
            labels: None,
            ports: vec![Port { number: 80 }],
            ratio: Some(0.1),
            big: Some(Number::Big("123456789012345678901234567890".into())),
        };
        let mut diags = Diagnostics::new();
        let value = encode(&model, &model_type(), &mut diags).unwrap();
        assert_eq!(value.get_attr("labels"), Some(&Value::Null));
        let back: Model = decode(&value, UnknownAs::Error, &mut diags).unwrap();
        assert_eq!(back, model);
        assert!(diags.is_empty());
    }

    #[test]
    fn decode_error_names_the_attribute_path() {
        let ty = model_type();
        let value = Value::from_json(
            &serde_json::json!({"name": "a", "labels": {"k": "v"}, "ports": [{"number": 80}, {"number": 70000}]}),
            &ty,
        )
        .unwrap();
        let mut diags = Diagnostics::new();
        let decoded: Option<Model> = decode(&value, UnknownAs::Error, &mut diags);
        assert!(decoded.is_none());
        let error = diags.errors().next().unwrap();
        assert_eq!(
            error.path,
            Some(AttributePath::new("ports").index(1).attr("number"))
        );
    }

    #[test]
    fn decode_errors_never_echo_the_value() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Secret {
            token: u16,
            mode: Option<Mode>,
        }
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Mode {
            Auto,
        }

        for (token, mode) in [("s3cr3t-token", None), ("80", Some("s3cr3t-mode"))] {
            let value = Value::object([
                ("token", Value::string(token)),
                ("mode", mode.map(Value::string).unwrap_or(Value::Null)),
            ]);
            let mut diags = Diagnostics::new();
            assert!(decode::<Secret>(&value, UnknownAs::Error, &mut diags).is_none());
            let error = diags.errors().next().unwrap();
            assert!(!error.detail.contains("s3cr3t"), "{}", error.detail);
            assert!(error.detail.contains("expected"), "{}", error.detail);
        }
    }

    #[test]
    fn decode_error_inside_a_set_points_at_the_set() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct WithSet {
            ports: Vec<u16>,
        }
        let value = Value::object([(
            "ports",
            Value::Set(vec![Value::Number(80.into()), Value::Number(70000.into())]),
        )]);
        let mut diags = Diagnostics::new();
        assert!(decode::<WithSet>(&value, UnknownAs::Error, &mut diags).is_none());
        assert_eq!(
            diags.errors().next().unwrap().path,
            Some(AttributePath::new("ports"))
        );
        // The wire codecs stop at the set too.
        let ty = Type::object([("ports", Type::set(Type::String))]);
        let wire = br#"{"ports":["a",{"no":1}]}"#;
        match Value::from_wire_json(wire, &ty).unwrap_err() {
            crate::tfplug::Error::Value { path, .. } => {
                assert_eq!(path, AttributePath::new("ports"))
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn unknown_policy_is_applied() {
        let mut value = Value::from_json(
            &serde_json::json!({"name": "a", "ports": []}),
            &model_type(),
        )
        .unwrap();
        value.set_attr("labels", Value::Unknown);
        let mut diags = Diagnostics::new();
        let lenient: Option<Model> = decode(&value, UnknownAs::Null, &mut diags);
        assert_eq!(lenient.unwrap().labels, None);
        let strict: Option<Model> = decode(&value, UnknownAs::Error, &mut diags);
        assert!(strict.is_none());
        assert_eq!(
            diags.errors().next().unwrap().path,
            Some(AttributePath::new("labels"))
        );
    }
}
