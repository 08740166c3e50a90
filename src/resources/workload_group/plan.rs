//! Plan refinement: the provider default of `namespace` and the `id` known at plan time.

use super::DEFAULT_NAMESPACE;
use crate::resources::common::plan_default;
use crate::tfplug::{Plan, Value};

pub(super) fn refine(plan: &mut Plan) {
    if plan.planned.is_null() {
        return;
    }
    plan_default(plan, "namespace", Value::string(DEFAULT_NAMESPACE));
    if plan.is_create() {
        let id = match (
            plan.planned.get_attr("namespace"),
            plan.planned.get_attr("name"),
        ) {
            (Some(Value::String(ns)), Some(Value::String(name))) => {
                Value::string(format!("{ns}/{name}"))
            }
            _ => Value::Unknown,
        };
        plan.planned.set_attr("id", id);
    }
}
