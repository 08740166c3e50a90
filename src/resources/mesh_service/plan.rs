//! Plan refinement: the default namespace, the `hostname` and `id` known at plan time, and
//! endpoints re-counted on update.

use crate::istio::service::{DEFAULT_DOMAIN_SUFFIX, service_hostname};
use crate::resources::common::{DEFAULT_NAMESPACE, plan_default};
use crate::tfplug::{Plan, Value};

pub(super) fn refine(plan: &mut Plan) {
    if plan.planned.is_null() {
        return;
    }
    plan_default(plan, "namespace", Value::string(DEFAULT_NAMESPACE));
    let planned = plan.planned.clone();
    let text = |name: &str| {
        planned
            .get_attr(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let hostname = match (text("name"), text("namespace")) {
        (Some(name), Some(namespace)) => {
            let domain = match planned.get_attr("cluster_domain") {
                Some(Value::String(domain)) => Some(domain.clone()),
                Some(Value::Null) | None => Some(DEFAULT_DOMAIN_SUFFIX.to_string()),
                _ => None,
            };
            domain.map(|d| Value::string(service_hostname(&name, &namespace, &d)))
        }
        _ => None,
    };
    plan.planned
        .set_attr("hostname", hostname.unwrap_or(Value::Unknown));
    if plan.is_create() {
        let id = match (text("namespace"), text("name")) {
            (Some(ns), Some(name)) => Value::string(format!("{ns}/{name}")),
            _ => Value::Unknown,
        };
        plan.planned.set_attr("id", id);
    } else if plan.prior.as_ref() != Some(&plan.planned) {
        // An update re-counts the endpoints.
        plan.planned.set_attr("endpoints", Value::Unknown);
    }
}
