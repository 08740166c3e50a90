//! The contracts resources and data sources implement, and tfplug's default plan logic.

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::diag::{AttributePath, Diagnostics, PathStep};
use super::schema::{Block, Nesting, Schema};
use super::value::Value;

/// Per-call context. `cancelled` fires when Terraform sends StopProvider (e.g. on Ctrl-C):
/// long waits should stop early and return what exists so it is saved.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    pub cancelled: CancellationToken,
    /// The resource's private state bytes as Terraform stored them (empty when none).
    pub private: Vec<u8>,
}

impl Ctx {
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_cancelled()
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

/// tfplug's default plan: planned = proposed; on create, computed attributes left null in the
/// configuration become unknown (also inside nested blocks); on update, attributes and blocks
/// marked `requires_replace` that changed are listed for replacement.
pub fn default_plan(schema: &Schema, plan: &mut Plan) {
    plan.planned = plan.proposed.clone();
    if plan.planned.is_null() {
        return;
    }
    match &plan.prior {
        None => mark_unset_computed_unknown(&schema.block, &mut plan.planned),
        Some(prior) => {
            let changed = replacement_paths(&schema.block, prior, &plan.planned);
            for path in changed {
                if !plan.requires_replace.contains(&path) {
                    plan.requires_replace.push(path);
                }
            }
        }
    }
}

fn mark_unset_computed_unknown(block: &Block, object: &mut Value) {
    let Value::Object(attrs) = object else { return };
    for attribute in block.attributes.iter().filter(|a| a.computed) {
        if let Some(slot) = attrs.get_mut(&attribute.name).filter(|v| v.is_null()) {
            *slot = Value::Unknown;
        }
    }
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

fn replacement_paths(block: &Block, prior: &Value, planned: &Value) -> Vec<AttributePath> {
    let differs = |name: &str| prior.get_attr(name) != planned.get_attr(name);
    let attributes = block
        .attributes
        .iter()
        .filter(|a| a.requires_replace)
        .map(|a| a.name.as_str());
    let blocks = block
        .block_types
        .iter()
        .filter(|b| b.requires_replace)
        .map(|b| b.type_name.as_str());
    attributes
        .chain(blocks)
        .filter(|name| differs(name))
        .map(|name| AttributePath {
            steps: vec![PathStep::AttributeName(name.to_string())],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfplug::Type;
    use crate::tfplug::schema::{Attribute, NestedBlock};

    fn schema() -> Schema {
        let mut name = Attribute::new("name", Type::String);
        name.required = true;
        name.optional = false;
        name.requires_replace = true;
        let mut id = Attribute::new("id", Type::String);
        id.computed = true;
        id.optional = false;
        let mut inner_id = Attribute::new("uid", Type::String);
        inner_id.computed = true;
        inner_id.optional = false;
        Schema {
            version: 0,
            block: Block {
                attributes: vec![name, id, Attribute::new("content", Type::String)],
                block_types: vec![NestedBlock {
                    type_name: "rule".into(),
                    block: Block {
                        attributes: vec![inner_id],
                        ..Block::default()
                    },
                    nesting: Nesting::List,
                    min_items: 0,
                    max_items: 0,
                    requires_replace: false,
                }],
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

    #[test]
    fn update_lists_changed_requires_replace_attributes() {
        let prior = Value::object([
            ("name", Value::string("a")),
            ("id", Value::string("1")),
            ("content", Value::Null),
        ]);
        let mut proposed = prior.clone();
        proposed.set_attr("name", Value::string("b"));
        proposed.set_attr("content", Value::string("new"));
        let mut p = plan(Some(prior.clone()), proposed);
        default_plan(&schema(), &mut p);
        assert_eq!(p.requires_replace, vec![AttributePath::new("name")]);
        assert_eq!(p.planned.get_attr("id"), Some(&Value::string("1")));
        let mut unchanged = plan(Some(prior.clone()), prior);
        default_plan(&schema(), &mut unchanged);
        assert!(unchanged.requires_replace.is_empty());
    }
}
