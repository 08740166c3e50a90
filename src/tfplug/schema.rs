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
use super::diag::{AttributePath, Diagnostics};
use super::proto::tfplugin6 as pb;
use super::types::Type;
use super::value::Value;

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
    /// What to use instead; shown as a warning when a deprecated block is configured.
    pub deprecation: String,
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
    /// What to use instead; shown as a warning when a deprecated attribute is configured.
    pub deprecation: String,
    /// Terraform 1.11+ sends the value in the configuration only (read it with `Ctx::config`
    /// in create/update); tfplug keeps it null in plan and state.
    pub write_only: bool,
    /// Not sent to Terraform: tfplug's default plan asks for replacement when this changes.
    pub requires_replace: bool,
    /// Nested attributes (`nested_type`, Terraform 1.3+ / OpenTofu): `r#type` is still the
    /// value type they add up to.
    pub nested: Option<NestedAttributes>,
}

/// The attributes of a nested attribute, and how its objects nest (single, list, set, map).
#[derive(Clone, Debug, PartialEq)]
pub struct NestedAttributes {
    pub nesting: Nesting,
    pub attributes: Vec<Attribute>,
}

impl NestedAttributes {
    pub fn value_type(&self) -> Type {
        let object = Type::Object(
            self.attributes
                .iter()
                .map(|a| (a.name.clone(), a.r#type.clone()))
                .collect(),
        );
        match self.nesting {
            Nesting::Single | Nesting::Group => object,
            Nesting::List => Type::list(object),
            Nesting::Set => Type::set(object),
            Nesting::Map => Type::map(object),
        }
    }
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
            deprecation: String::new(),
            write_only: false,
            requires_replace: false,
            nested: None,
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

    /// Whether any attribute, at any depth, is write-only.
    pub fn has_write_only(&self) -> bool {
        self.attributes.iter().any(|a| a.write_only)
            || self.block_types.iter().any(|b| b.block.has_write_only())
    }

    /// Sets every write-only attribute to null: Terraform rejects plans and states that
    /// carry their values.
    pub fn null_write_only(&self, value: &mut Value) {
        let Value::Object(attrs) = value else { return };
        for attribute in self.attributes.iter().filter(|a| a.write_only) {
            if let Some(slot) = attrs.get_mut(&attribute.name) {
                *slot = Value::Null;
            }
        }
        for nested in self.block_types.iter().filter(|b| b.block.has_write_only()) {
            match attrs.get_mut(&nested.type_name) {
                Some(Value::List(items) | Value::Set(items)) => items
                    .iter_mut()
                    .for_each(|item| nested.block.null_write_only(item)),
                Some(Value::Map(items)) => items
                    .values_mut()
                    .for_each(|item| nested.block.null_write_only(item)),
                Some(object) => nested.block.null_write_only(object),
                None => {}
            }
        }
    }

    /// Errors for write-only attributes set in a configuration that the calling Terraform
    /// would store in state (it does not support write-only attributes).
    pub fn refuse_write_only(&self, config: &Value, diags: &mut Diagnostics) {
        let mut without = config.clone();
        self.null_write_only(&mut without);
        if without != *config {
            diags.root_error(
                "Write-only attributes need a newer Terraform",
                "This configuration sets a write-only attribute, which this Terraform would \
                 store in state. Use Terraform 1.11+ or OpenTofu 1.11+, or leave it out.",
            );
        }
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
            attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
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
            description_kind: pb::StringKind::Markdown as i32,
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
        out.insert("description_kind".into(), json!("markdown"));
        if self.deprecated {
            out.insert("deprecated".into(), json!(true));
        }
        Json::Object(out)
    }
}

impl Attribute {
    /// `type` or `nested_type`, never both: Terraform 1.0.3 panics on `nested_type` at all,
    /// so only models that ask for nested attributes send it (they need Terraform 1.3+).
    fn to_proto(&self) -> pb::schema::Attribute {
        let (r#type, nested_type) = match &self.nested {
            None => (self.r#type.to_json_bytes(), None),
            Some(nested) => (
                Vec::new(),
                Some(pb::schema::Object {
                    attributes: nested.attributes.iter().map(Attribute::to_proto).collect(),
                    nesting: nested.nesting.to_object_proto() as i32,
                    min_items: 0,
                    max_items: 0,
                }),
            ),
        };
        pb::schema::Attribute {
            name: self.name.clone(),
            r#type,
            nested_type,
            description: self.description.clone(),
            required: self.required,
            optional: self.optional,
            computed: self.computed,
            sensitive: self.sensitive,
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: self.deprecated,
            write_only: self.write_only,
        }
    }
}

fn attribute_json(a: &Attribute) -> Json {
    let mut out = Map::new();
    match &a.nested {
        None => {
            out.insert("type".into(), a.r#type.to_json());
        }
        Some(nested) => {
            let attributes: Map<String, Json> = nested
                .attributes
                .iter()
                .map(|inner| (inner.name.clone(), attribute_json(inner)))
                .collect();
            out.insert(
                "nested_type".into(),
                json!({"attributes": attributes, "nesting_mode": nested.nesting.name()}),
            );
        }
    }
    if !a.description.is_empty() {
        out.insert("description".into(), json!(a.description));
    }
    out.insert("description_kind".into(), json!("markdown"));
    for (flag, set) in [
        ("deprecated", a.deprecated),
        ("required", a.required),
        ("optional", a.optional),
        ("computed", a.computed),
        ("sensitive", a.sensitive),
        ("write_only", a.write_only),
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
    /// Whether this block or anything inside it asks for replacement when it changes.
    pub fn has_replace_marker(&self) -> bool {
        self.requires_replace
            || self.block.attributes.iter().any(|a| a.requires_replace)
            || self
                .block
                .block_types
                .iter()
                .any(NestedBlock::has_replace_marker)
    }

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

    fn to_object_proto(self) -> pb::schema::object::NestingMode {
        use pb::schema::object::NestingMode as M;
        match self {
            Nesting::Single | Nesting::Group => M::Single,
            Nesting::List => M::List,
            Nesting::Set => M::Set,
            Nesting::Map => M::Map,
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

/// Warns about every deprecated attribute or block the configuration sets, as the framework
/// does: Terraform itself does not (it only shows `deprecated` in `providers schema`).
pub fn deprecation_warnings(block: &Block, config: &Value, diags: &mut Diagnostics) {
    warn_deprecated(block, config, &AttributePath::root(), diags);
}

fn warn_deprecated(block: &Block, config: &Value, path: &AttributePath, diags: &mut Diagnostics) {
    let configured = |name: &str| config.get_attr(name).is_some_and(|v| !v.is_null());
    let warn = |diags: &mut Diagnostics, here: AttributePath, what: &str, advice: &str| {
        let detail = match advice {
            "" => format!("{here} is deprecated and will be removed."),
            advice => format!("{here} is deprecated: {advice}"),
        };
        diags.warning(format!("Deprecated {what}"), detail, here);
    };
    for attribute in block.attributes.iter().filter(|a| a.deprecated) {
        if configured(&attribute.name) {
            let here = path.clone().attr(&attribute.name);
            warn(diags, here, "attribute", &attribute.deprecation);
        }
    }
    for nested in &block.block_types {
        let Some(value) = config.get_attr(&nested.type_name).filter(|v| !v.is_null()) else {
            continue;
        };
        let here = path.clone().attr(&nested.type_name);
        let has_items =
            !matches!(value, Value::List(items) | Value::Set(items) if items.is_empty());
        if nested.block.deprecated && has_items {
            warn(diags, here.clone(), "block", &nested.block.deprecation);
        }
        match value {
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    warn_deprecated(&nested.block, item, &here.clone().index(i as i64), diags);
                }
            }
            // Set elements have no path of their own: warnings point at the set.
            Value::Set(items) => {
                for item in items {
                    warn_deprecated(&nested.block, item, &here, diags);
                }
            }
            Value::Map(items) => {
                for (key, item) in items {
                    warn_deprecated(&nested.block, item, &here.clone().key(key.clone()), diags);
                }
            }
            object => warn_deprecated(&nested.block, object, &here, diags),
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
    write_only: bool,
    set: bool,
    deprecated: Option<String>,
    block: Option<Nesting>,
    nested: Option<Nesting>,
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
            write_only: flag("write_only"),
            set: flag("set"),
            deprecated: ext
                .get("deprecated")
                .and_then(Json::as_str)
                .map(str::to_string),
            block: None,
            nested: None,
            min_items: ext.get("min_items").and_then(Json::as_i64).unwrap_or(0),
            max_items: ext.get("max_items").and_then(Json::as_i64).unwrap_or(0),
        };
        let nesting = |key: &str| match ext.get(key).map(|mode| mode.as_str()) {
            None => Ok(None),
            Some(Some("single")) => Ok(Some(Nesting::Single)),
            Some(Some("list")) => Ok(Some(Nesting::List)),
            Some(Some("set")) => Ok(Some(Nesting::Set)),
            Some(Some("map")) => Ok(Some(Nesting::Map)),
            Some(_) => Err(Error::Model(format!(
                "{field}: {key} must be single, list, set or map"
            ))),
        };
        markers.block = nesting("block")?;
        markers.nested = nesting("nested")?;
        if markers.block.is_some() && markers.nested.is_some() {
            return Err(Error::Model(format!(
                "{field}: a field is either a block or nested attributes, not both"
            )));
        }
        let known = [
            "required",
            "computed",
            "optional_computed",
            "sensitive",
            "requires_replace",
            "write_only",
            "set",
            "deprecated",
            "block",
            "nested",
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
                        .push(self.attribute(name, property, &markers, is_required)?);
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
        let nested = match markers.nested {
            Some(nesting) => Some(self.nested_attributes(name, property, nesting)?),
            None => None,
        };
        let ty = match &nested {
            Some(nested) => nested.value_type(),
            None => self.type_of(property, markers.set)?,
        };
        let mut description = description_of(property);
        if description.is_empty() {
            description = description_of(self.non_null(property)?);
        }
        if let Some(message) = &markers.deprecated {
            description = format!("{description}\n\nDeprecated: {message}")
                .trim()
                .to_string();
        }
        if markers.write_only && (markers.computed || markers.optional_computed) {
            return Err(Error::Model(format!(
                "{name}: a write_only attribute cannot be computed (its value is never stored)"
            )));
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
            deprecation: markers.deprecated.clone().unwrap_or_default(),
            write_only: markers.write_only,
            requires_replace: markers.requires_replace,
            nested,
        })
    }

    /// `"nested": "list"` etc.: the struct's fields become nested attributes. The value type
    /// stays what `type_of` derived (object, list/set/map of objects).
    fn nested_attributes(
        &self,
        name: &str,
        property: &Json,
        nesting: Nesting,
    ) -> Result<NestedAttributes, Error> {
        let inner = self.non_null(property)?;
        let object = match nesting {
            Nesting::Single | Nesting::Group => inner,
            Nesting::List | Nesting::Set => inner.get("items").ok_or_else(|| {
                Error::Model(format!("{name}: list/set nested attributes must be a Vec"))
            })?,
            Nesting::Map => inner.get("additionalProperties").ok_or_else(|| {
                Error::Model(format!("{name}: map nested attributes must be a map"))
            })?,
        };
        let block = self.block(object)?;
        if let Some(inner_block) = block.block_types.first() {
            return Err(Error::Model(format!(
                "{name}.{}: nested attributes cannot contain blocks",
                inner_block.type_name
            )));
        }
        if let Some(replaced) = block.attributes.iter().find(|a| a.requires_replace) {
            return Err(Error::Model(format!(
                "{name}.{}: requires_replace inside nested attributes is not supported; mark {name}",
                replaced.name
            )));
        }
        Ok(NestedAttributes {
            nesting,
            attributes: block.attributes,
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
        block.deprecation = markers.deprecated.clone().unwrap_or_default();
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
                        .map(|(k, v)| Ok((k.clone(), self.object_field_type(k, v)?)))
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

impl ModelReader {
    /// A field of an object-typed attribute. Terraform plans such an attribute as one value,
    /// so a replace marker inside it could never be honoured: refuse it rather than ignore it.
    fn object_field_type(&self, name: &str, property: &Json) -> Result<Type, Error> {
        let markers = Markers::read(property, name)?;
        if markers.requires_replace {
            return Err(Error::Model(format!(
                "{name}: requires_replace inside an object-typed attribute is not supported; \
                 make the parent a block (\"block\": \"single\" or \"list\") or mark the parent"
            )));
        }
        self.type_of(property, markers.set)
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
    fn requires_replace_inside_an_object_attribute_is_refused() {
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Inner {
            #[schemars(extend("x-tf" = { "requires_replace": true }))]
            port: i64,
        }
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Outer {
            inner: Option<Inner>,
        }
        let err = Schema::try_from_model::<Outer>(0).unwrap_err();
        assert!(err.to_string().contains("port: requires_replace"), "{err}");
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct AsBlock {
            #[schemars(extend("x-tf" = { "block": "list" }))]
            inner: Vec<Inner>,
        }
        let schema = Schema::try_from_model::<AsBlock>(0).unwrap();
        let inner = schema.block.block_type("inner").unwrap();
        assert!(inner.block.attribute("port").unwrap().requires_replace);
        assert!(inner.has_replace_marker());
    }

    #[test]
    fn configured_deprecated_attributes_and_blocks_warn() {
        /// Old settings.
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Old {
            #[schemars(extend("x-tf" = { "deprecated": "use port" }))]
            number: Option<i64>,
            port: Option<i64>,
        }
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Model {
            #[schemars(extend("x-tf" = { "deprecated": "use name" }))]
            old_name: Option<String>,
            name: Option<String>,
            #[schemars(extend("x-tf" = { "block": "list" }))]
            rule: Vec<Old>,
            #[schemars(extend("x-tf" = { "block": "single", "deprecated": "remove it" }))]
            legacy: Option<Old>,
        }
        let schema = Schema::from_model::<Model>(0);
        let config = Value::from_json(
            &json!({"old_name": "a", "rule": [{"port": 1}, {"number": 2}], "legacy": {"port": 3}}),
            &schema.value_type(),
        )
        .unwrap();
        let mut diags = Diagnostics::new();
        deprecation_warnings(&schema.block, &config, &mut diags);
        let mut paths: Vec<String> = diags
            .items
            .iter()
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect();
        paths.sort();
        assert_eq!(paths, ["legacy", "old_name", "rule[1].number"]);
        assert!(diags.items.iter().any(|d| d.detail.contains("use name")));
        assert!(!diags.has_errors());

        let quiet = Value::from_json(&json!({"name": "a"}), &schema.value_type()).unwrap();
        let mut diags = Diagnostics::new();
        deprecation_warnings(&schema.block, &quiet, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
    }

    #[test]
    fn write_only_attributes_are_marked_nulled_and_refused_for_old_clis() {
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Model {
            name: String,
            #[schemars(extend("x-tf" = { "write_only": true, "sensitive": true }))]
            token_wo: Option<String>,
        }
        let schema = Schema::from_model::<Model>(0);
        let token = schema.block.attribute("token_wo").unwrap();
        assert!(token.write_only && token.to_proto().write_only);
        assert!(schema.block.has_write_only());
        let mut value = Value::object([
            ("name", Value::string("n")),
            ("token_wo", Value::string("s")),
        ]);
        let mut diags = Diagnostics::new();
        schema.block.refuse_write_only(&value, &mut diags);
        assert!(diags.has_errors());
        schema.block.null_write_only(&mut value);
        assert_eq!(value.get_attr("token_wo"), Some(&Value::Null));
        let mut diags = Diagnostics::new();
        schema.block.refuse_write_only(&value, &mut diags);
        assert!(diags.is_empty());

        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Bad {
            #[schemars(extend("x-tf" = { "write_only": true, "optional_computed": true }))]
            token_wo: Option<String>,
        }
        assert!(Schema::try_from_model::<Bad>(0).is_err());
    }

    #[test]
    fn descriptions_are_sent_as_markdown() {
        let schema = Schema::from_model::<Thing>(0).to_proto();
        let block = schema.block.unwrap();
        let markdown = pb::StringKind::Markdown as i32;
        assert_eq!(block.description_kind, markdown);
        assert!(
            block
                .attributes
                .iter()
                .all(|a| a.description_kind == markdown)
        );
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
    fn nested_attributes_are_sent_as_nested_type_only_when_asked_for() {
        /// A target.
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Backend {
            host: String,
            #[schemars(extend("x-tf" = { "computed": true }))]
            uid: Option<String>,
        }
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Model {
            /// Backends.
            #[schemars(extend("x-tf" = { "nested": "set" }))]
            backends: Option<Vec<Backend>>,
            #[schemars(extend("x-tf" = { "nested": "single" }))]
            primary: Option<Backend>,
        }
        let schema = Schema::from_model::<Model>(0);
        let backend = Type::object([("host", Type::String), ("uid", Type::String)]);
        let backends = schema.block.attribute("backends").unwrap();
        assert_eq!(backends.r#type, Type::set(backend.clone()));
        assert_eq!(schema.block.attribute("primary").unwrap().r#type, backend);
        let proto = backends.to_proto();
        assert!(
            proto.r#type.is_empty(),
            "type and nested_type together crash Terraform"
        );
        let nested = proto.nested_type.unwrap();
        assert_eq!(nested.nesting, pb::schema::object::NestingMode::Set as i32);
        assert!(
            nested
                .attributes
                .iter()
                .any(|a| a.name == "uid" && a.computed)
        );
        let json = attribute_json(backends);
        assert_eq!(json["nested_type"]["nesting_mode"], "set");
        assert_eq!(json["nested_type"]["attributes"]["host"]["type"], "string");
        assert!(json.get("type").is_none());

        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Replacing {
            #[schemars(extend("x-tf" = { "requires_replace": true }))]
            host: String,
        }
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Bad {
            #[schemars(extend("x-tf" = { "nested": "list" }))]
            backends: Vec<Replacing>,
        }
        let err = Schema::try_from_model::<Bad>(0).unwrap_err();
        assert!(
            err.to_string().contains("requires_replace inside nested"),
            "{err}"
        );
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
                        "provider": {"version": 0, "block": {"description_kind": "markdown"}},
                        "resource_schemas": {
                            "x_rule": {"version": 0, "block": {
                                "attributes": {
                                    "port": {"type": "number", "description": "Port number.", "description_kind": "markdown", "required": true},
                                    "uid": {"type": "string", "description_kind": "markdown", "computed": true}
                                },
                                "description": "A rule.",
                                "description_kind": "markdown"
                            }}
                        }
                    }
                }
            })
        );
    }
}
