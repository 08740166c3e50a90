//! The contracts resources and data sources implement, and tfplug's default plan logic.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::diag::{AttributePath, Diagnostics};
use super::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use super::value::Value;

/// Per-call context. `cancelled` fires when Terraform sends StopProvider (e.g. on Ctrl-C):
/// long waits should stop early and return what exists so it is saved.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    pub cancelled: CancellationToken,
    /// The resource's private state bytes as Terraform stored them (empty when none).
    pub private: Vec<u8>,
    /// What read, apply or import wrote with [`Ctx::set_private`].
    new_private: Arc<Mutex<Option<Vec<u8>>>>,
    /// The configuration, in create and update of resources with write-only attributes.
    config: Option<Value>,
}

impl Ctx {
    pub(crate) fn new(cancelled: CancellationToken, private: Vec<u8>) -> Ctx {
        Ctx {
            cancelled,
            private,
            new_private: Arc::default(),
            config: None,
        }
    }

    pub(crate) fn with_config(mut self, config: Value) -> Ctx {
        self.config = Some(config);
        self
    }

    /// The configuration during create and update, for resources with write-only attributes
    /// (their values are null in `planned`; Terraform sends them only here).
    pub fn config(&self) -> Option<&Value> {
        self.config.as_ref()
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_cancelled()
    }

    /// Replaces the resource's private state (opaque bytes Terraform stores next to the state
    /// and hands back on the next call). Honoured in read, apply (create/update/delete) and
    /// import; in plan write `Plan::private` instead.
    pub fn set_private(&self, bytes: Vec<u8>) {
        *self.new_private.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
    }

    /// The private state to answer with: what the call wrote, else what it was given.
    pub(crate) fn private_to_return(&self) -> Vec<u8> {
        self.new_private
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| self.private.clone())
    }
}

/// One planning step. `planned` starts as tfplug's default (see [`default_plan`]); the resource
/// may refine it and `requires_replace`.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `None` when the resource is being created.
    pub prior: Option<Value>,
    pub proposed: Value,
    pub config: Value,
    pub planned: Value,
    pub requires_replace: Vec<AttributePath>,
    pub private: Vec<u8>,
}

impl Plan {
    pub fn is_create(&self) -> bool {
        self.prior.is_none()
    }

    /// Marks a planned attribute "known after apply".
    pub fn set_unknown(&mut self, path: &AttributePath) {
        if let Some(slot) = self.planned.at_mut(path) {
            *slot = Value::Unknown;
        }
    }
}

#[async_trait]
pub trait Resource: Send + Sync + 'static {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;

    async fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    async fn plan(&self, _ctx: &Ctx, _plan: &mut Plan, _diags: &mut Diagnostics) {}

    /// Returning `Some(state)` with error diagnostics saves that state (Terraform taints it).
    async fn create(&self, ctx: &Ctx, planned: Value, diags: &mut Diagnostics) -> Option<Value>;

    /// `None` without errors means the object is gone and Terraform plans to recreate it.
    async fn read(&self, ctx: &Ctx, state: Value, diags: &mut Diagnostics) -> Option<Value>;

    /// Returning `Some(state)` with error diagnostics saves that state.
    async fn update(
        &self,
        ctx: &Ctx,
        prior: Value,
        planned: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value>;

    async fn delete(&self, ctx: &Ctx, prior: Value, diags: &mut Diagnostics);

    async fn import(&self, _ctx: &Ctx, _id: &str, diags: &mut Diagnostics) -> Option<Value> {
        diags.root_error(
            "Import is not supported",
            format!("{} cannot be imported.", self.type_name()),
        );
        None
    }

    /// Called with the stored JSON state when its schema version differs from the current one.
    async fn upgrade(
        &self,
        version: i64,
        _raw: serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        diags.root_error(
            "Cannot upgrade state",
            format!(
                "{} has no upgrade from schema version {version} to {}.",
                self.type_name(),
                self.schema().version
            ),
        );
        None
    }
}

#[async_trait]
pub trait DataSource: Send + Sync + 'static {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    async fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}
    async fn read(&self, ctx: &Ctx, config: Value, diags: &mut Diagnostics) -> Option<Value>;
}

/// tfplug's default plan, before the resource's own `plan`: planned = proposed; computed
/// attributes left null become unknown on create, and on update inside nested block items
/// that are new (Terraform has no prior value to carry into them).
pub fn default_plan(schema: &Schema, plan: &mut Plan) {
    plan.planned = plan.proposed.clone();
    if plan.planned.is_null() {
        return;
    }
    drop_single_blocks_absent_from_config(&schema.block, &plan.config, &mut plan.planned);
    match &plan.prior {
        None => mark_unset_computed_unknown(&schema.block, &mut plan.planned),
        Some(prior) => mark_new_nested_items_unknown(&schema.block, prior, &mut plan.planned),
    }
}

/// After the resource's own `plan`: lists every `requires_replace` attribute or block whose
/// final planned value differs from the prior state, so provider defaults (e.g. a namespace
/// left out of the configuration) replace the object instead of moving it in place.
pub fn plan_replacements(schema: &Schema, plan: &mut Plan) {
    let Some(prior) = &plan.prior else { return };
    if plan.planned.is_null() {
        return;
    }
    let mut changed = Vec::new();
    replacement_paths(
        &schema.block,
        prior,
        &plan.planned,
        &AttributePath::root(),
        &mut changed,
    );
    for path in changed {
        if !plan.requires_replace.contains(&path) {
            plan.requires_replace.push(path);
        }
    }
}

fn mark_unset_computed_unknown(block: &Block, object: &mut Value) {
    mark_attributes_unknown(&block.attributes, object);
    let Value::Object(attrs) = object else { return };
    for nested in &block.block_types {
        let Some(value) = attrs.get_mut(&nested.type_name) else {
            continue;
        };
        match (nested.nesting, value) {
            (Nesting::Single | Nesting::Group, object) => {
                mark_unset_computed_unknown(&nested.block, object)
            }
            (Nesting::List | Nesting::Set, Value::List(items) | Value::Set(items)) => items
                .iter_mut()
                .for_each(|item| mark_unset_computed_unknown(&nested.block, item)),
            (Nesting::Map, Value::Map(items)) => items
                .values_mut()
                .for_each(|item| mark_unset_computed_unknown(&nested.block, item)),
            _ => {}
        }
    }
}

/// Terraform (1.0 at least) proposes the prior value for a single block removed from the
/// configuration, but rejects a plan that keeps it ("planned for existence but config wants
/// absence"): a block the configuration leaves out is planned null, at any depth.
fn drop_single_blocks_absent_from_config(block: &Block, config: &Value, planned: &mut Value) {
    for_each_nested_block(block, planned, config, |nested, value, wanted| {
        let inner = &nested.block;
        match (nested.nesting, value) {
            (Nesting::Single | Nesting::Group, value) if wanted.is_null() => *value = Value::Null,
            (Nesting::Single | Nesting::Group, object) => {
                drop_single_blocks_absent_from_config(inner, &wanted, object)
            }
            (nesting, items) => {
                for (item, wanted) in matched_items(nesting, items, &wanted) {
                    if let Some(wanted) = wanted {
                        drop_single_blocks_absent_from_config(inner, wanted, item);
                    }
                }
            }
        }
    });
}

/// Computed attributes left null become unknown, also inside nested attributes' objects.
fn mark_attributes_unknown(attributes: &[Attribute], object: &mut Value) {
    let Value::Object(attrs) = object else { return };
    for attribute in attributes {
        let Some(slot) = attrs.get_mut(&attribute.name) else {
            continue;
        };
        if attribute.computed && slot.is_null() {
            *slot = Value::Unknown;
            continue;
        }
        let Some(nested) = &attribute.nested else {
            continue;
        };
        match slot {
            Value::List(items) | Value::Set(items) => items
                .iter_mut()
                .for_each(|item| mark_attributes_unknown(&nested.attributes, item)),
            Value::Map(items) => items
                .values_mut()
                .for_each(|item| mark_attributes_unknown(&nested.attributes, item)),
            object => mark_attributes_unknown(&nested.attributes, object),
        }
    }
}

/// Items are matched as Terraform matches them when it builds the proposed state: lists by
/// index, maps by key, sets by equal value. An item without a prior match is planned as on
/// create.
fn mark_new_nested_items_unknown(block: &Block, prior: &Value, planned: &mut Value) {
    mark_new_attribute_items_unknown(&block.attributes, prior, planned);
    for_each_nested_block(block, planned, prior, |nested, value, before| {
        let inner = &nested.block;
        match (nested.nesting, value) {
            (Nesting::Single | Nesting::Group, object) => match before.is_null() {
                true => mark_unset_computed_unknown(inner, object),
                false => mark_new_nested_items_unknown(inner, &before, object),
            },
            (Nesting::Set, Value::Set(items)) => {
                let prior_items = match &before {
                    Value::Set(items) => items.as_slice(),
                    _ => &[],
                };
                for item in items.iter_mut() {
                    if !prior_items.contains(item) {
                        mark_unset_computed_unknown(inner, item);
                    }
                }
            }
            (nesting, items) => {
                for (item, prior_item) in matched_items(nesting, items, &before) {
                    match prior_item.filter(|p| !p.is_null()) {
                        Some(prior_item) => mark_new_nested_items_unknown(inner, prior_item, item),
                        None => mark_unset_computed_unknown(inner, item),
                    }
                }
            }
        }
    });
}

/// The same for nested attributes (`nested_type`): an item without a prior match (lists by
/// index, maps by key, sets by equal value) gets its unset computed attributes unknown.
fn mark_new_attribute_items_unknown(attributes: &[Attribute], prior: &Value, planned: &mut Value) {
    let Value::Object(attrs) = planned else {
        return;
    };
    for attribute in attributes {
        let (Some(nested), Some(value)) = (&attribute.nested, attrs.get_mut(&attribute.name))
        else {
            continue;
        };
        let before = attribute_of(prior, &attribute.name);
        let inner = &nested.attributes;
        match (nested.nesting, value) {
            (Nesting::Single | Nesting::Group, object) if before.is_null() => {
                mark_attributes_unknown(inner, object)
            }
            (Nesting::Single | Nesting::Group, object) => {
                mark_new_attribute_items_unknown(inner, &before, object)
            }
            (Nesting::Set, Value::Set(items)) => {
                let prior_items = items_of(&before).to_vec();
                for item in items.iter_mut().filter(|item| !prior_items.contains(item)) {
                    mark_attributes_unknown(inner, item);
                }
            }
            (nesting, items) => {
                for (item, prior_item) in matched_items(nesting, items, &before) {
                    match prior_item.filter(|p| !p.is_null()) {
                        Some(prior_item) => {
                            mark_new_attribute_items_unknown(inner, prior_item, item)
                        }
                        None => mark_attributes_unknown(inner, item),
                    }
                }
            }
        }
    }
}

/// Each nested block's value in `object`, with the same block's value in `other` (the
/// configuration, or the prior state).
fn for_each_nested_block(
    block: &Block,
    object: &mut Value,
    other: &Value,
    mut visit: impl FnMut(&NestedBlock, &mut Value, Value),
) {
    let Value::Object(attrs) = object else {
        return;
    };
    for nested in &block.block_types {
        if let Some(value) = attrs.get_mut(&nested.type_name) {
            visit(nested, value, attribute_of(other, &nested.type_name));
        }
    }
}

/// The items of a list or a map, each with the item at the same index or key of `other`, as
/// Terraform matches them when it builds the proposed state. Sets match by equal value, so
/// they have no matched items here.
fn matched_items<'v>(
    nesting: Nesting,
    items: &'v mut Value,
    other: &'v Value,
) -> Vec<(&'v mut Value, Option<&'v Value>)> {
    match (nesting, items) {
        (Nesting::List, Value::List(items)) => {
            let others = items_of(other);
            items
                .iter_mut()
                .enumerate()
                .map(|(i, item)| (item, others.get(i)))
                .collect()
        }
        (Nesting::Map, Value::Map(items)) => items
            .iter_mut()
            .map(|(key, item)| (item, other.get_map_entry(key)))
            .collect(),
        _ => Vec::new(),
    }
}

/// The attribute of an object value; unknown inside an unknown object, else null when absent.
fn attribute_of(object: &Value, name: &str) -> Value {
    match object {
        Value::Unknown => Value::Unknown,
        _ => object.get_attr(name).cloned().unwrap_or(Value::Null),
    }
}

fn replacement_paths(
    block: &Block,
    prior: &Value,
    planned: &Value,
    path: &AttributePath,
    out: &mut Vec<AttributePath>,
) {
    for attribute in block.attributes.iter().filter(|a| a.requires_replace) {
        if attribute_of(prior, &attribute.name) != attribute_of(planned, &attribute.name) {
            out.push(path.clone().attr(&attribute.name));
        }
    }
    for nested in &block.block_types {
        let here = path.clone().attr(&nested.type_name);
        let (before, after) = (
            attribute_of(prior, &nested.type_name),
            attribute_of(planned, &nested.type_name),
        );
        if before == after || !nested.has_replace_marker() {
            continue;
        }
        let inner = &nested.block;
        match (nested.nesting, &before, &after) {
            _ if nested.requires_replace => out.push(here),
            (Nesting::Single | Nesting::Group, _, _) => {
                replacement_paths(inner, &before, &after, &here, out)
            }
            (Nesting::List, _, _) => {
                let (b, a) = (items_of(&before), items_of(&after));
                for i in 0..b.len().max(a.len()) {
                    let item = |items: &[Value]| items.get(i).cloned().unwrap_or(Value::Null);
                    replacement_paths(
                        inner,
                        &item(b),
                        &item(a),
                        &here.clone().index(i as i64),
                        out,
                    );
                }
            }
            (Nesting::Map, _, _) => {
                let keys: std::collections::BTreeSet<&String> =
                    map_keys(&before).chain(map_keys(&after)).collect();
                for key in keys {
                    let item = |v: &Value| v.get_map_entry(key).cloned().unwrap_or(Value::Null);
                    replacement_paths(
                        inner,
                        &item(&before),
                        &item(&after),
                        &here.clone().key(key.clone()),
                        out,
                    );
                }
            }
            // Set elements have no identity: a changed set with a replace marker inside
            // replaces the object, pointing at the set.
            (Nesting::Set, _, _) => out.push(here),
        }
    }
}

fn items_of(value: &Value) -> &[Value] {
    match value {
        Value::List(items) | Value::Set(items) => items,
        _ => &[],
    }
}

fn map_keys(value: &Value) -> impl Iterator<Item = &String> {
    match value {
        Value::Map(items) => Some(items.keys()),
        _ => None,
    }
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfplug::Type;

    /// A computed, not configurable, string attribute.
    fn computed(name: &str) -> Attribute {
        let mut attribute = Attribute::new(name, Type::String);
        attribute.computed = true;
        attribute.optional = false;
        attribute
    }

    /// A nested block of `attributes`, without item limits.
    fn nested_block(name: &str, nesting: Nesting, attributes: Vec<Attribute>) -> NestedBlock {
        NestedBlock {
            type_name: name.into(),
            block: Block {
                attributes,
                ..Block::default()
            },
            nesting,
            min_items: 0,
            max_items: 0,
            requires_replace: false,
        }
    }

    fn schema() -> Schema {
        let mut name = Attribute::new("name", Type::String);
        name.required = true;
        name.optional = false;
        name.requires_replace = true;
        Schema {
            version: 0,
            block: Block {
                attributes: vec![
                    name,
                    computed("id"),
                    Attribute::new("content", Type::String),
                ],
                block_types: vec![nested_block("rule", Nesting::List, vec![computed("uid")])],
                ..Block::default()
            },
        }
    }

    fn plan(prior: Option<Value>, proposed: Value) -> Plan {
        Plan {
            prior,
            config: proposed.clone(),
            proposed,
            planned: Value::Null,
            requires_replace: vec![],
            private: vec![],
        }
    }

    #[test]
    fn create_marks_unset_computed_unknown_recursively() {
        let proposed = Value::object([
            ("name", Value::string("a")),
            ("id", Value::Null),
            ("content", Value::Null),
            (
                "rule",
                Value::List(vec![Value::object([("uid", Value::Null)])]),
            ),
        ]);
        let mut p = plan(None, proposed);
        default_plan(&schema(), &mut p);
        assert_eq!(p.planned.get_attr("id"), Some(&Value::Unknown));
        assert_eq!(p.planned.get_attr("content"), Some(&Value::Null));
        assert_eq!(
            p.planned
                .at(&AttributePath::new("rule").index(0).attr("uid")),
            Some(&Value::Unknown)
        );
        assert!(p.requires_replace.is_empty());
    }

    /// A stored object of [`schema`] named `name`.
    fn stored(name: &str) -> Value {
        Value::object([
            ("name", Value::string(name)),
            ("id", Value::string("1")),
            ("content", Value::Null),
        ])
    }

    /// tfplug's plan of an update of `prior`, around the resource's own plan (`own_plan`).
    fn plan_update(prior: &Value, proposed: Value, own_plan: impl FnOnce(&mut Plan)) -> Plan {
        let mut p = plan(Some(prior.clone()), proposed);
        default_plan(&schema(), &mut p);
        own_plan(&mut p);
        plan_replacements(&schema(), &mut p);
        p
    }

    #[test]
    fn update_lists_changed_requires_replace_attributes() {
        let prior = stored("a");
        let mut proposed = prior.clone();
        proposed.set_attr("name", Value::string("b"));
        proposed.set_attr("content", Value::string("new"));
        let p = plan_update(&prior, proposed, |_| {});
        assert_eq!(p.requires_replace, vec![AttributePath::new("name")]);
        assert_eq!(p.planned.get_attr("id"), Some(&Value::string("1")));
        let unchanged = plan_update(&prior, prior.clone(), |_| {});
        assert!(unchanged.requires_replace.is_empty());
    }

    #[test]
    fn replacement_compares_the_final_plan_with_prior_state() {
        // An optional+computed replace attribute left out of the configuration: Terraform
        // proposes the prior value, the resource plans its default. The default must replace.
        let prior = stored("foo");
        let p = plan_update(&prior, prior.clone(), |p| {
            p.planned.set_attr("name", Value::string("default")); // the resource's own plan
        });
        assert_eq!(p.requires_replace, vec![AttributePath::new("name")]);

        // And the other way round: a proposed change the resource plans away is no replacement.
        let mut proposed = prior.clone();
        proposed.set_attr("name", Value::string("bar"));
        let p = plan_update(&prior, proposed, |p| p.planned = prior.clone());
        assert!(p.requires_replace.is_empty(), "{:?}", p.requires_replace);
    }

    fn nested_schema(nesting: Nesting) -> Schema {
        let mut port = Attribute::new("port", Type::Number);
        port.requires_replace = true;
        let note = Attribute::new("note", Type::String);
        Schema {
            version: 0,
            block: Block {
                attributes: vec![Attribute::new("content", Type::String)],
                block_types: vec![nested_block(
                    "rule",
                    nesting,
                    vec![port, computed("uid"), note],
                )],
                ..Block::default()
            },
        }
    }

    fn rule(port: i64, uid: Option<&str>, note: &str) -> Value {
        Value::object([
            ("port", Value::Number(port.into())),
            ("uid", uid.map(Value::string).unwrap_or(Value::Null)),
            ("note", Value::string(note)),
        ])
    }

    #[test]
    fn requires_replace_inside_nested_blocks_is_honoured() {
        let schema = nested_schema(Nesting::List);
        let prior = Value::object([
            ("content", Value::Null),
            (
                "rule",
                Value::List(vec![rule(80, Some("u0"), "a"), rule(443, Some("u1"), "b")]),
            ),
        ]);
        let mut note_only = prior.clone();
        note_only.set_attr(
            "rule",
            Value::List(vec![
                rule(80, Some("u0"), "changed"),
                rule(443, Some("u1"), "b"),
            ]),
        );
        let mut p = plan(Some(prior.clone()), note_only);
        default_plan(&schema, &mut p);
        plan_replacements(&schema, &mut p);
        assert!(p.requires_replace.is_empty(), "{:?}", p.requires_replace);

        let mut port_changed = prior.clone();
        port_changed.set_attr(
            "rule",
            Value::List(vec![rule(80, Some("u0"), "a"), rule(8443, Some("u1"), "b")]),
        );
        let mut p = plan(Some(prior.clone()), port_changed);
        default_plan(&schema, &mut p);
        plan_replacements(&schema, &mut p);
        assert_eq!(
            p.requires_replace,
            vec![AttributePath::new("rule").index(1).attr("port")]
        );

        let set_schema = nested_schema(Nesting::Set);
        let as_set = |v: &Value| {
            let mut v = v.clone();
            let items = items_of(v.get_attr("rule").unwrap()).to_vec();
            v.set_attr("rule", Value::Set(items));
            v
        };
        let mut p = plan(Some(as_set(&prior)), as_set(&p.proposed));
        default_plan(&set_schema, &mut p);
        plan_replacements(&set_schema, &mut p);
        assert_eq!(p.requires_replace, vec![AttributePath::new("rule")]);
    }

    #[test]
    fn update_marks_computed_unknown_in_new_nested_items_only() {
        for nesting in [Nesting::List, Nesting::Set] {
            let schema = nested_schema(nesting);
            let wrap = |items: Vec<Value>| match nesting {
                Nesting::Set => Value::Set(items),
                _ => Value::List(items),
            };
            let prior = Value::object([
                ("content", Value::Null),
                ("rule", wrap(vec![rule(80, Some("u0"), "a")])),
            ]);
            let proposed = Value::object([
                ("content", Value::string("x")),
                (
                    "rule",
                    wrap(vec![rule(80, Some("u0"), "a"), rule(443, None, "b")]),
                ),
            ]);
            let mut p = plan(Some(prior), proposed);
            default_plan(&schema, &mut p);
            let items = items_of(p.planned.get_attr("rule").unwrap());
            assert_eq!(
                items[0].get_attr("uid"),
                Some(&Value::string("u0")),
                "{nesting:?}"
            );
            assert_eq!(
                items[1].get_attr("uid"),
                Some(&Value::Unknown),
                "{nesting:?}"
            );
        }
    }

    /// A nested attribute `backends` whose items have a `host` and a computed `uid`.
    fn backends(nesting: Nesting) -> Attribute {
        let nested = crate::tfplug::schema::NestedAttributes {
            nesting,
            attributes: vec![Attribute::new("host", Type::String), computed("uid")],
        };
        let mut backends = Attribute::new("backends", nested.value_type());
        backends.nested = Some(nested);
        backends
    }

    #[test]
    fn create_marks_computed_unknown_inside_nested_attributes() {
        let schema = Schema {
            version: 0,
            block: Block {
                attributes: vec![backends(Nesting::List)],
                ..Block::default()
            },
        };
        let proposed = Value::object([(
            "backends",
            Value::List(vec![Value::object([
                ("host", Value::string("a")),
                ("uid", Value::Null),
            ])]),
        )]);
        let mut p = plan(None, proposed);
        default_plan(&schema, &mut p);
        assert_eq!(
            p.planned
                .at(&AttributePath::new("backends").index(0).attr("uid")),
            Some(&Value::Unknown)
        );
    }

    /// Issue 14, item 1: computed attributes of items added on update to a nested attribute
    /// are unknown (Terraform rejects a provider that leaves them null and sets them at apply);
    /// items that were there keep their values.
    #[test]
    fn update_marks_computed_unknown_in_new_nested_attribute_items_only() {
        for nesting in [Nesting::List, Nesting::Set, Nesting::Map, Nesting::Single] {
            let content = Attribute::new("content", Type::String);
            let schema = Schema {
                version: 0,
                block: Block {
                    attributes: vec![content, backends(nesting)],
                    ..Block::default()
                },
            };
            let item = |host: &str, uid: Option<&str>| {
                Value::object([
                    ("host", Value::string(host)),
                    ("uid", uid.map_or(Value::Null, Value::string)),
                ])
            };
            let (old, new) = (item("a", Some("u0")), item("b", None));
            let (prior_items, planned_items) = match nesting {
                Nesting::List => (
                    Value::List(vec![old.clone()]),
                    Value::List(vec![old.clone(), new]),
                ),
                Nesting::Set => (
                    Value::Set(vec![old.clone()]),
                    Value::Set(vec![old.clone(), new]),
                ),
                Nesting::Map => (
                    Value::Map([("old".to_string(), old.clone())].into()),
                    Value::Map([("old".to_string(), old.clone()), ("new".to_string(), new)].into()),
                ),
                _ => (Value::Null, new),
            };
            let prior = Value::object([("content", Value::Null), ("backends", prior_items)]);
            let proposed =
                Value::object([("content", Value::string("x")), ("backends", planned_items)]);
            let mut p = plan(Some(prior), proposed);
            default_plan(&schema, &mut p);
            let uids: Vec<Value> = match p.planned.get_attr("backends").unwrap() {
                Value::Map(items) => items
                    .values()
                    .map(|i| i.get_attr("uid").unwrap().clone())
                    .collect(),
                Value::Object(_) => vec![
                    Value::string("u0"),
                    p.planned
                        .at(&AttributePath::new("backends").attr("uid"))
                        .unwrap()
                        .clone(),
                ],
                items => items_of(items)
                    .iter()
                    .map(|i| i.get_attr("uid").unwrap().clone())
                    .collect(),
            };
            let sorted = |mut v: Vec<Value>| {
                v.sort_by_key(|v| format!("{v:?}"));
                v
            };
            assert_eq!(
                sorted(uids),
                sorted(vec![Value::string("u0"), Value::Unknown]),
                "{nesting:?}"
            );
        }
    }

    #[test]
    fn a_single_block_removed_from_the_configuration_is_planned_null() {
        let mut schema = schema();
        let port = Attribute::new("port", Type::Number);
        schema
            .block
            .block_types
            .push(nested_block("probe", Nesting::Single, vec![port]));
        let probe = Value::object([("port", Value::Number(80.into()))]);
        let prior = Value::object([
            ("name", Value::string("a")),
            ("id", Value::string("1")),
            ("content", Value::Null),
            ("rule", Value::List(vec![])),
            ("probe", probe.clone()),
        ]);
        let mut config = prior.clone();
        config.set_attr("id", Value::Null);
        config.set_attr("probe", Value::Null);
        // What Terraform 1.0.3 proposes: the prior block.
        let mut p = plan(Some(prior.clone()), prior.clone());
        p.config = config;
        default_plan(&schema, &mut p);
        assert_eq!(p.planned.get_attr("probe"), Some(&Value::Null));
        assert_eq!(p.planned.get_attr("id"), Some(&Value::string("1")));
        // Kept while configured.
        let mut p = plan(Some(prior.clone()), prior);
        default_plan(&schema, &mut p);
        assert_eq!(p.planned.get_attr("probe"), Some(&probe));
    }
}
