//! Terraform (cty) types and their JSON description, as used in schemas and dynamic values.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    String,
    Number,
    Bool,
    /// Any type; the concrete type travels with the value.
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    Tuple(Vec<Type>),
}

impl Type {
    pub fn list(element: Type) -> Self {
        Type::List(Box::new(element))
    }

    pub fn set(element: Type) -> Self {
        Type::Set(Box::new(element))
    }

    pub fn map(element: Type) -> Self {
        Type::Map(Box::new(element))
    }

    pub fn object<K: Into<String>>(attributes: impl IntoIterator<Item = (K, Type)>) -> Self {
        Type::Object(attributes.into_iter().map(|(k, t)| (k.into(), t)).collect())
    }

    /// The cty type JSON: `"string"`, `["list","string"]`, `["object",{"a":"bool"}]`, `"dynamic"`.
    pub fn to_json(&self) -> Json {
        match self {
            Type::String => json!("string"),
            Type::Number => json!("number"),
            Type::Bool => json!("bool"),
            Type::Dynamic => json!("dynamic"),
            Type::List(e) => json!(["list", e.to_json()]),
            Type::Set(e) => json!(["set", e.to_json()]),
            Type::Map(e) => json!(["map", e.to_json()]),
            Type::Object(attrs) => {
                let attrs: serde_json::Map<String, Json> = attrs
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_json()))
                    .collect();
                json!(["object", attrs])
            }
            Type::Tuple(elems) => {
                json!(["tuple", elems.iter().map(Type::to_json).collect::<Vec<_>>()])
            }
        }
    }

    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_json()).expect("type JSON always serialises")
    }

    pub fn from_json(json: &Json) -> Result<Type, Error> {
        let bad = || Error::TypeJson(json.to_string());
        match json {
            Json::String(name) => match name.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "dynamic" => Ok(Type::Dynamic),
                _ => Err(bad()),
            },
            Json::Array(parts) => {
                let kind = parts.first().and_then(Json::as_str).ok_or_else(bad)?;
                let arg = parts.get(1).ok_or_else(bad)?;
                match kind {
                    "list" => Ok(Type::list(Type::from_json(arg)?)),
                    "set" => Ok(Type::set(Type::from_json(arg)?)),
                    "map" => Ok(Type::map(Type::from_json(arg)?)),
                    // A third element lists optional attributes (Terraform 1.3+); the type is the same.
                    "object" => {
                        let attrs = arg.as_object().ok_or_else(bad)?;
                        let attrs = attrs
                            .iter()
                            .map(|(k, v)| Ok((k.clone(), Type::from_json(v)?)))
                            .collect::<Result<BTreeMap<_, _>, Error>>()?;
                        Ok(Type::Object(attrs))
                    }
                    "tuple" => {
                        let elems = arg.as_array().ok_or_else(bad)?;
                        Ok(Type::Tuple(
                            elems
                                .iter()
                                .map(Type::from_json)
                                .collect::<Result<_, _>>()?,
                        ))
                    }
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }

    pub fn from_json_bytes(bytes: &[u8]) -> Result<Type, Error> {
        Type::from_json(&serde_json::from_slice(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_json_round_trips() {
        let ty = Type::object([
            ("a", Type::list(Type::String)),
            ("b", Type::map(Type::set(Type::Number))),
            ("c", Type::Tuple(vec![Type::Bool, Type::Dynamic])),
        ]);
        let json = ty.to_json();
        assert_eq!(
            json,
            json!(["object", {"a": ["list", "string"], "b": ["map", ["set", "number"]], "c": ["tuple", ["bool", "dynamic"]]}])
        );
        assert_eq!(Type::from_json(&json).unwrap(), ty);
    }

    #[test]
    fn object_with_optional_attribute_list_is_accepted() {
        let json = json!(["object", {"a": "string"}, ["a"]]);
        assert_eq!(
            Type::from_json(&json).unwrap(),
            Type::object([("a", Type::String)])
        );
    }

    #[test]
    fn unknown_type_name_is_an_error() {
        assert!(Type::from_json(&json!("strng")).is_err());
        assert!(Type::from_json(&json!(["list"])).is_err());
    }
}
