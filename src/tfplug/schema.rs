//! Terraform schemas, derived from one Rust model type per resource via schemars.
//!
//! Field markers go in `#[schemars(extend("x-tf" = { ... }))]`:
//! `"required"` (an `Option` field that Terraform requires; it decodes as `None` while the
//! value is unknown), `"computed"`, `"optional_computed"`, `"sensitive"`, `"requires_replace"` (all `true`),
//! `"deprecated": "message"`, `"set": true` (a `Vec` becomes a set),
//! `"block": "single" | "list" | "set"` with optional `"min_items"` / `"max_items"`.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

use super::Error;
use super::proto::tfplugin6 as pb;
use super::types::Type;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    pub attributes: Vec<Attribute>,
    pub block_types: Vec<NestedBlock>,
    pub description: String,
    pub deprecated: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub r#type: Type,
    pub description: String,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    pub deprecated: bool,
    /// Not sent to Terraform: tfplug's default plan asks for replacement when this changes.
    pub requires_replace: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
    Map,
    Group,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NestedBlock {
    pub type_name: String,
    pub block: Block,
    pub nesting: Nesting,
    pub min_items: i64,
    pub max_items: i64,
    pub requires_replace: bool,
}

impl Attribute {
    pub fn new(name: impl Into<String>, r#type: Type) -> Self {
        Attribute {
            name: name.into(),
            r#type,
            description: String::new(),
            required: false,
            optional: true,
            computed: false,
            sensitive: false,
            deprecated: false,
            requires_replace: false,
        }
    }
}

impl Schema {
    /// Derives the schema from a serde + schemars model: fields become attributes, doc comments
    /// descriptions, `Option`/`#[serde(default)]` optional (else required), `BTreeMap<String, _>`
    /// maps, `Vec` lists, nested structs object types (or nested blocks with the `block` marker).
    pub fn from_model<T: schemars::JsonSchema>(version: i64) -> Schema {
        match Self::try_from_model::<T>(version) {
            Ok(schema) => schema,
            // A model that cannot be a Terraform schema is a programming error caught by tests.
            Err(e) => panic!(
                "model {} cannot be a Terraform schema: {e}",
                T::schema_name()
            ),
        }
    }

    pub fn try_from_model<T: schemars::JsonSchema>(version: i64) -> Result<Schema, Error> {
        let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
        let root = generator.into_root_schema_for::<T>();
        let root = root.as_value();
        let defs = root
            .get("$defs")
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        let reader = ModelReader { defs };
        let block = reader.block(root)?;
        Ok(Schema { version, block })
    }

    /// The type of the values this schema describes.
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }

    pub(crate) fn to_proto(&self) -> pb::Schema {
        pb::Schema {
            version: self.version,
            block: Some(self.block.to_proto()),
        }
    }

    /// The shape `terraform providers schema -json` prints for one schema.
    pub fn to_terraform_json(&self) -> Json {
        json!({ "version": self.version, "block": self.block.to_terraform_json() })
    }
}

impl Block {
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    pub fn block_type(&self, name: &str) -> Option<&NestedBlock> {
        self.block_types.iter().find(|b| b.type_name == name)
    }

    pub fn value_type(&self) -> Type {
        let attrs = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.r#type.clone()));
        let blocks = self
            .block_types
            .iter()
            .map(|b| (b.type_name.clone(), b.value_type()));
        Type::Object(attrs.chain(blocks).collect())
    }

    fn to_proto(&self) -> pb::schema::Block {
        pb::schema::Block {
            version: 0,
            // `type` only, never `nested_type`: Terraform 1.0.3 panics when both are set.
            attributes: self
                .attributes
                .iter()
                .map(|a| pb::schema::Attribute {
                    name: a.name.clone(),
                    r#type: a.r#type.to_json_bytes(),
                    nested_type: None,
                    description: a.description.clone(),
                    required: a.required,
                    optional: a.optional,
                    computed: a.computed,
                    sensitive: a.sensitive,
                    description_kind: pb::StringKind::Plain as i32,
                    deprecated: a.deprecated,
                })
                .collect(),
            block_types: self
                .block_types
                .iter()
                .map(|b| pb::schema::NestedBlock {
                    type_name: b.type_name.clone(),
                    block: Some(b.block.to_proto()),
                    nesting: b.nesting.to_proto() as i32,
                    min_items: b.min_items,
                    max_items: b.max_items,
                })
                .collect(),
            description: self.description.clone(),
            description_kind: pb::StringKind::Plain as i32,
            deprecated: self.deprecated,
        }
    }

    fn to_terraform_json(&self) -> Json {
        let mut out = Map::new();
        if !self.attributes.is_empty() {
            let attrs: Map<String, Json> = self
                .attributes
                .iter()
                .map(|a| (a.name.clone(), attribute_json(a)))
                .collect();
            out.insert("attributes".into(), Json::Object(attrs));
        }
        if !self.block_types.is_empty() {
            let blocks: Map<String, Json> = self
                .block_types
                .iter()
                .map(|b| (b.type_name.clone(), nested_block_json(b)))
                .collect();
            out.insert("block_types".into(), Json::Object(blocks));
        }
        if !self.description.is_empty() {
            out.insert("description".into(), json!(self.description));
        }
        out.insert("description_kind".into(), json!("plain"));
        if self.deprecated {
            out.insert("deprecated".into(), json!(true));
        }
        Json::Object(out)
    }
}

fn attribute_json(a: &Attribute) -> Json {
    let mut out = Map::new();
    out.insert("type".into(), a.r#type.to_json());
    if !a.description.is_empty() {
        out.insert("description".into(), json!(a.description));
    }
    out.insert("description_kind".into(), json!("plain"));
    for (flag, set) in [
        ("deprecated", a.deprecated),
        ("required", a.required),
        ("optional", a.optional),
        ("computed", a.computed),
        ("sensitive", a.sensitive),
    ] {
        if set {
            out.insert(flag.into(), json!(true));
        }
    }
    Json::Object(out)
}

fn nested_block_json(b: &NestedBlock) -> Json {
    let mut out = Map::new();
    out.insert("nesting_mode".into(), json!(b.nesting.name()));
    out.insert("block".into(), b.block.to_terraform_json());
    if b.min_items > 0 {
        out.insert("min_items".into(), json!(b.min_items));
    }
    if b.max_items > 0 {
        out.insert("max_items".into(), json!(b.max_items));
    }
    Json::Object(out)
}

impl NestedBlock {
    pub fn value_type(&self) -> Type {
        let object = self.block.value_type();
        match self.nesting {
            Nesting::Single | Nesting::Group => object,
            Nesting::List => Type::list(object),
            Nesting::Set => Type::set(object),
            Nesting::Map => Type::map(object),
        }
    }
}

impl Nesting {
    fn to_proto(self) -> pb::schema::nested_block::NestingMode {
        use pb::schema::nested_block::NestingMode as M;
        match self {
            Nesting::Single => M::Single,
            Nesting::List => M::List,
            Nesting::Set => M::Set,
            Nesting::Map => M::Map,
            Nesting::Group => M::Group,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Nesting::Single => "single",
            Nesting::List => "list",
            Nesting::Set => "set",
            Nesting::Map => "map",
            Nesting::Group => "group",
        }
    }
}

/// Things that know the Terraform type of their values (for `encode`).
pub trait HasType {
    fn value_type(&self) -> Type;
}

impl HasType for Schema {
    fn value_type(&self) -> Type {
        self.block.value_type()
    }
}

impl HasType for Block {
    fn value_type(&self) -> Type {
        Block::value_type(self)
    }
}

impl HasType for Type {
    fn value_type(&self) -> Type {
        self.clone()
    }
}

/// The whole provider in the shape of `terraform providers schema -json`, for the snapshot in
/// `schemas/`.
pub fn provider_schema_json(
    source: &str,
    provider: &Schema,
    resources: &BTreeMap<String, Schema>,
    data_sources: &BTreeMap<String, Schema>,
) -> Json {
    let mut entry = Map::new();
    entry.insert("provider".into(), provider.to_terraform_json());
    let schemas = |m: &BTreeMap<String, Schema>| -> Json {
        Json::Object(
            m.iter()
                .map(|(k, s)| (k.clone(), s.to_terraform_json()))
                .collect(),
        )
    };
    if !resources.is_empty() {
        entry.insert("resource_schemas".into(), schemas(resources));
    }
    if !data_sources.is_empty() {
        entry.insert("data_source_schemas".into(), schemas(data_sources));
    }
    json!({ "format_version": "1.0", "provider_schemas": { source: entry } })
}

/// Field markers read from the `x-tf` extension.
#[derive(Default)]
struct Markers {
    required: bool,
    computed: bool,
    optional_computed: bool,
    sensitive: bool,
    requires_replace: bool,
    set: bool,
    deprecated: Option<String>,
    block: Option<Nesting>,
    min_items: i64,
    max_items: i64,
}

impl Markers {
    fn read(property: &Json, field: &str) -> Result<Markers, Error> {
        let Some(ext) = property.get("x-tf") else {
            return Ok(Markers::default());
        };
        let ext = ext
            .as_object()
            .ok_or_else(|| Error::Model(format!("{field}: x-tf must be an object")))?;
        let flag = |name: &str| ext.get(name).and_then(Json::as_bool).unwrap_or(false);
        let mut markers = Markers {
            required: flag("required"),
            computed: flag("computed"),
            optional_computed: flag("optional_computed"),
            sensitive: flag("sensitive"),
            requires_replace: flag("requires_replace"),
            set: flag("set"),
            deprecated: ext
                .get("deprecated")
                .and_then(Json::as_str)
                .map(str::to_string),
            block: None,
            min_items: ext.get("min_items").and_then(Json::as_i64).unwrap_or(0),
            max_items: ext.get("max_items").and_then(Json::as_i64).unwrap_or(0),
        };
        if let Some(mode) = ext.get("block") {
            markers.block = Some(match mode.as_str() {
                Some("single") => Nesting::Single,
                Some("list") => Nesting::List,
                Some("set") => Nesting::Set,
                Some("map") => Nesting::Map,
                _ => {
                    return Err(Error::Model(format!(
                        "{field}: block must be single, list, set or map"
                    )));
                }
            });
        }
        let known = [
            "required",
            "computed",
            "optional_computed",
            "sensitive",
            "requires_replace",
            "set",
            "deprecated",
            "block",
            "min_items",
            "max_items",
        ];
        if let Some(unknown) = ext.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Error::Model(format!(
                "{field}: unknown x-tf marker {unknown:?}"
            )));
        }
        Ok(markers)
    }
}

/// Walks a schemars JSON Schema (draft 2020-12) and builds Terraform schema pieces.
struct ModelReader {
    defs: Map<String, Json>,
}

impl ModelReader {
    fn resolve<'a>(&'a self, schema: &'a Json) -> Result<&'a Json, Error> {
        match schema.get("$ref").and_then(Json::as_str) {
            Some(reference) => {
                let name = reference.rsplit('/').next().unwrap_or(reference);
                let target = self
                    .defs
                    .get(name)
                    .ok_or_else(|| Error::Model(format!("unresolved {reference}")))?;
                self.resolve(target)
            }
            None => Ok(schema),
        }
    }

    /// Drops the `null` alternative schemars adds for `Option<T>`.
    fn non_null<'a>(&'a self, schema: &'a Json) -> Result<&'a Json, Error> {
        let schema = self.resolve(schema)?;
        for key in ["anyOf", "oneOf"] {
            if let Some(alternatives) = schema.get(key).and_then(Json::as_array) {
                let rest: Vec<&Json> = alternatives.iter().filter(|s| !is_null_schema(s)).collect();
                if rest.len() == 1 && rest.len() < alternatives.len() {
                    return self.non_null(rest[0]);
                }
            }
        }
        Ok(schema)
    }

    fn block(&self, schema: &Json) -> Result<Block, Error> {
        let schema = self.non_null(schema)?;
        if schema.get("type").and_then(Json::as_str) != Some("object") {
            return Err(Error::Model(
                "a block must be a struct with named fields".into(),
            ));
        }
        let no_properties = Map::new();
        let properties = schema
            .get("properties")
            .and_then(Json::as_object)
            .unwrap_or(&no_properties);
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Json::as_array)
            .map(|r| r.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        let mut block = Block {
            description: description_of(schema),
            ..Block::default()
        };
        for (name, property) in properties {
            let markers = Markers::read(property, name)?;
            // `"required": true` lets an `Option` field be required in Terraform while it still
            // decodes when the value is unknown during validation.
            let is_required = required.contains(&name.as_str()) || markers.required;
            match markers.block {
                Some(nesting) => block.block_types.push(self.nested_block(
                    name,
                    property,
                    &markers,
                    nesting,
                    is_required,
                )?),
                None => {
                    block
                        .attributes
                        .push(self.attribute(name, property, &markers, is_required)?)
                }
            }
        }
        Ok(block)
    }

    fn attribute(
        &self,
        name: &str,
        property: &Json,
        markers: &Markers,
        is_required: bool,
    ) -> Result<Attribute, Error> {
        let ty = self.type_of(property, markers.set)?;
        let mut description = description_of(property);
        if description.is_empty() {
            description = description_of(self.non_null(property)?);
        }
        if let Some(message) = &markers.deprecated {
            description = format!("{description}\n\nDeprecated: {message}")
                .trim()
                .to_string();
        }
        let (required, optional, computed) = if markers.computed {
            (false, false, true)
        } else if markers.optional_computed {
            (false, true, true)
        } else {
            (is_required, !is_required, false)
        };
        Ok(Attribute {
            name: name.to_string(),
            r#type: ty,
            description,
            required,
            optional,
            computed,
            sensitive: markers.sensitive,
            deprecated: markers.deprecated.is_some(),
            requires_replace: markers.requires_replace,
        })
    }

    fn nested_block(
        &self,
        name: &str,
        property: &Json,
        markers: &Markers,
        nesting: Nesting,
        is_required: bool,
    ) -> Result<NestedBlock, Error> {
        let inner = self.non_null(property)?;
        let object = match nesting {
            Nesting::Single | Nesting::Group => inner,
            Nesting::List | Nesting::Set => inner
                .get("items")
                .ok_or_else(|| Error::Model(format!("{name}: list/set block must be a Vec")))?,
            Nesting::Map => inner
                .get("additionalProperties")
                .ok_or_else(|| Error::Model(format!("{name}: map block must be a map")))?,
        };
        let mut block = self.block(object)?;
        let description = description_of(property);
        if !description.is_empty() {
            block.description = description;
        }
        block.deprecated = markers.deprecated.is_some();
        // Terraform allows only 0/0 or 1/1 for single blocks.
        let (min_items, max_items) = match nesting {
            Nesting::Single | Nesting::Group if is_required => (1, 1),
            Nesting::Single | Nesting::Group => (0, 0),
            _ => (markers.min_items, markers.max_items),
        };
        Ok(NestedBlock {
            type_name: name.to_string(),
            block,
            nesting,
            min_items,
            max_items,
            requires_replace: markers.requires_replace,
        })
    }

    fn type_of(&self, schema: &Json, as_set: bool) -> Result<Type, Error> {
        let schema = self.non_null(schema)?;
        if schema.as_bool() == Some(true) || schema.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(Type::Dynamic);
        }
        if schema.get("enum").is_some()
            || schema.get("const").is_some()
            || is_string_alternatives(schema)
        {
            return Ok(Type::String);
        }
        let type_name = match schema.get("type") {
            Some(Json::String(t)) => Some(t.as_str()),
            Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).find(|t| *t != "null"),
            _ => None,
        };
        Ok(match type_name {
            Some("string") => Type::String,
            Some("integer" | "number") => Type::Number,
            Some("boolean") => Type::Bool,
            Some("array") => {
                if let Some(prefix) = schema.get("prefixItems").and_then(Json::as_array) {
                    Type::Tuple(
                        prefix
                            .iter()
                            .map(|s| self.type_of(s, false))
                            .collect::<Result<_, _>>()?,
                    )
                } else {
                    let element = match schema.get("items") {
                        Some(items) => self.type_of(items, false)?,
                        None => Type::Dynamic,
                    };
                    let unique = schema
                        .get("uniqueItems")
                        .and_then(Json::as_bool)
                        .unwrap_or(false);
                    if as_set || unique {
                        Type::set(element)
                    } else {
                        Type::list(element)
                    }
                }
            }
            Some("object") => match schema.get("properties").and_then(Json::as_object) {
                Some(properties) => {
                    let attrs = properties
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), self.type_of(v, Markers::read(v, k)?.set)?)))
                        .collect::<Result<BTreeMap<_, _>, Error>>()?;
                    Type::Object(attrs)
                }
                None => match schema.get("additionalProperties") {
                    Some(Json::Bool(false)) | None => Type::map(Type::Dynamic),
                    Some(element) => Type::map(self.type_of(element, false)?),
                },
            },
            _ => Type::Dynamic,
        })
    }
}

fn is_null_schema(schema: &Json) -> bool {
    schema.get("type").and_then(Json::as_str) == Some("null")
        || schema.get("const").is_some_and(Json::is_null)
}

/// Unit-only enums with doc comments come out as `oneOf` of string consts.
fn is_string_alternatives(schema: &Json) -> bool {
    let Some(alternatives) = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Json::as_array)
    else {
        return false;
    };
    alternatives.iter().all(|alt| {
        alt.get("const").is_some_and(Json::is_string)
            || alt
                .get("enum")
                .and_then(Json::as_array)
                .is_some_and(|e| e.iter().all(Json::is_string))
    })
}

fn description_of(schema: &Json) -> String {
    schema
        .get("description")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    /// A rule.
    #[derive(Serialize, Deserialize, JsonSchema)]
    struct Rule {
        /// Port number.
        port: u16,
        #[schemars(extend("x-tf" = { "computed": true }))]
        uid: Option<String>,
    }

    #[derive(Serialize, Deserialize, JsonSchema)]
    struct Target {
        host: String,
        weight: Option<f64>,
    }

    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Strict,
        Permissive,
    }

    /// A thing.
    #[derive(Serialize, Deserialize, JsonSchema)]
    struct Thing {
        /// The name.
        #[schemars(extend("x-tf" = { "requires_replace": true }))]
        name: String,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        tags: Option<Vec<String>>,
        #[schemars(extend("x-tf" = { "set": true }))]
        hosts: Option<Vec<String>>,
        unique: Option<std::collections::BTreeSet<i64>>,
        target: Option<Target>,
        targets: Option<Vec<Target>>,
        mode: Option<Mode>,
        /// Identifier.
        #[schemars(extend("x-tf" = { "computed": true }))]
        id: Option<String>,
        #[schemars(extend("x-tf" = { "sensitive": true, "optional_computed": true }))]
        token: Option<String>,
        #[schemars(extend("x-tf" = { "deprecated": "use name" }))]
        old_name: Option<String>,
        #[schemars(extend("x-tf" = { "block": "list", "max_items": 3 }))]
        #[serde(default)]
        rule: Vec<Rule>,
        #[schemars(extend("x-tf" = { "block": "single" }))]
        settings: Option<Target>,
        anything: Option<serde_json::Value>,
    }

    fn attr<'a>(schema: &'a Schema, name: &str) -> &'a Attribute {
        schema
            .block
            .attribute(name)
            .unwrap_or_else(|| panic!("no attribute {name}"))
    }

    #[test]
    fn model_becomes_terraform_schema() {
        let schema = Schema::from_model::<Thing>(2);
        assert_eq!(schema.version, 2);
        assert_eq!(schema.block.description, "A thing.");
        let name = attr(&schema, "name");
        assert!(name.required && !name.optional && name.requires_replace);
        assert_eq!(name.description, "The name.");
        assert!(attr(&schema, "labels").optional);
        assert_eq!(attr(&schema, "labels").r#type, Type::map(Type::String));
        assert_eq!(attr(&schema, "tags").r#type, Type::list(Type::String));
        assert_eq!(attr(&schema, "hosts").r#type, Type::set(Type::String));
        assert_eq!(attr(&schema, "unique").r#type, Type::set(Type::Number));
        let target = Type::object([("host", Type::String), ("weight", Type::Number)]);
        assert_eq!(attr(&schema, "target").r#type, target);
        assert_eq!(attr(&schema, "targets").r#type, Type::list(target));
        assert_eq!(attr(&schema, "mode").r#type, Type::String);
        let id = attr(&schema, "id");
        assert!(id.computed && !id.optional && !id.required);
        assert_eq!(id.description, "Identifier.");
        let token = attr(&schema, "token");
        assert!(token.sensitive && token.optional && token.computed);
        assert!(attr(&schema, "old_name").deprecated);
        assert_eq!(attr(&schema, "anything").r#type, Type::Dynamic);

        let rule = schema.block.block_type("rule").unwrap();
        assert_eq!((rule.nesting, rule.max_items), (Nesting::List, 3));
        assert_eq!(rule.block.description, "A rule.");
        assert!(rule.block.attribute("port").unwrap().required);
        assert!(rule.block.attribute("uid").unwrap().computed);
        let settings = schema.block.block_type("settings").unwrap();
        assert_eq!(
            (settings.nesting, settings.min_items, settings.max_items),
            (Nesting::Single, 0, 0)
        );
        assert!(schema.block.attribute("rule").is_none());
    }

    #[test]
    fn unknown_marker_is_rejected() {
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Bad {
            #[schemars(extend("x-tf" = { "computd": true }))]
            a: String,
        }
        let err = Schema::try_from_model::<Bad>(0).unwrap_err();
        assert!(err.to_string().contains("computd"), "{err}");
    }

    #[test]
    fn proto_schema_never_sets_nested_type() {
        let schema = Schema::from_model::<Thing>(0).to_proto();
        let block = schema.block.unwrap();
        assert!(
            block
                .attributes
                .iter()
                .all(|a| a.nested_type.is_none() && !a.r#type.is_empty())
        );
        let target = block
            .attributes
            .iter()
            .find(|a| a.name == "target")
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Json>(&target.r#type).unwrap(),
            json!(["object", {"host": "string", "weight": "number"}])
        );
    }

    #[test]
    fn terraform_json_shape_matches_providers_schema_output() {
        let schema = Schema::from_model::<Rule>(0);
        let out = provider_schema_json(
            "registry.terraform.io/example/x",
            &Schema::default(),
            &BTreeMap::from([("x_rule".to_string(), schema)]),
            &BTreeMap::new(),
        );
        assert_eq!(
            out,
            json!({
                "format_version": "1.0",
                "provider_schemas": {
                    "registry.terraform.io/example/x": {
                        "provider": {"version": 0, "block": {"description_kind": "plain"}},
                        "resource_schemas": {
                            "x_rule": {"version": 0, "block": {
                                "attributes": {
                                    "port": {"type": "number", "description": "Port number.", "description_kind": "plain", "required": true},
                                    "uid": {"type": "string", "description_kind": "plain", "computed": true}
                                },
                                "description": "A rule.",
                                "description_kind": "plain"
                            }}
                        }
                    }
                }
            })
        );
    }
}
