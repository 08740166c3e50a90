//! Plan refinement: the default mode, and what a change, a missing entry, outdated files or a
//! token due for renewal make unknown until apply.

use super::DEFAULT_RENEW_BEFORE;
use super::files;
use crate::resources::common::plan_default;
use crate::tfplug::{AttributePath, Diagnostics, Plan, Value};
use crate::validation;

/// Attributes that are derived from the bundle: unknown in a plan that changes the bundle.
const BUNDLE_ATTRIBUTES: [&str; 6] = [
    "cluster_env",
    "mesh_config",
    "hosts",
    "root_cert",
    "bundle_sha256",
    "workload_entry_name",
];
const TOKEN_ATTRIBUTES: [&str; 3] = ["istio_token", "token_expires_at", "bundle_sha256"];

pub(super) fn refine(plan: &mut Plan) {
    if plan.planned.is_null() {
        return;
    }
    plan_default(plan, "mode", Value::string("auto"));
    let issue_token = plan
        .planned
        .get_attr("issue_token")
        .and_then(Value::as_bool)
        != Some(false);
    if !issue_token {
        for name in ["istio_token", "token_expires_at"] {
            plan.planned.set_attr(name, Value::Null);
        }
    }
    let Some(prior) = plan.prior.clone() else {
        return;
    };
    let renew = issue_token && token_due(&prior, &plan.planned);
    let changed =
        plan.planned != prior || entry_missing(&prior) || files::outdated(&plan.planned) || renew;
    if changed {
        // Anything that changes makes the provider re-render the bundle and re-read health.
        for name in BUNDLE_ATTRIBUTES
            .iter()
            .chain(["healthy", "health_message"].iter())
        {
            plan.planned.set_attr(name, Value::Unknown);
        }
    }
    if renew {
        for name in TOKEN_ATTRIBUTES {
            plan.planned.set_attr(name, Value::Unknown);
        }
    }
}

/// In auto mode, warns that istiod will not apply a change of these to the existing entry.
pub(super) fn warn_auto_entry_changes(plan: &Plan, diags: &mut Diagnostics) {
    let Some(prior) = &plan.prior else {
        return;
    };
    let ignored = auto_entry_changes(prior, &plan.planned);
    if let Some(first) = ignored.first() {
        diags.warning(
            "istiod will not update the VM's WorkloadEntry",
            format!(
                "In auto mode istiod creates the entry when the VM connects and does not change an existing one (pilot/pkg/autoregistration): the new {} reach the entry only when istiod creates it again. Deliver the new files, stop the VM's istio agent for longer than istiod's PILOT_WORKLOAD_ENTRY_GRACE_PERIOD (default 10s), after which istiod deletes the entry, and start the agent again: istiod creates the entry from the new bundle. A quicker restart keeps the old entry. Or replace the registration.",
                ignored.join(", ")
            ),
            AttributePath::new(*first),
        );
    }
}

/// Attributes istiod copies into an auto-registered entry only when it creates it (on the VM's
/// connection, `workloadEntryFromGroup` in `pilot/pkg/autoregistration/controller.go`); a change
/// does not reach an entry that exists: istiod only marks it connected again when the VM
/// reconnects, until it deletes the entry after the VM stayed away longer than its grace period
/// (`PILOT_WORKLOAD_ENTRY_GRACE_PERIOD`, `registerWorkload` in the same file).
fn auto_entry_changes(prior: &Value, planned: &Value) -> Vec<&'static str> {
    if planned.get_attr("mode").and_then(Value::as_str) == Some("manual") {
        return Vec::new();
    }
    ["network", "locality", "labels"]
        .into_iter()
        .filter(|name| {
            let after = planned.get_attr(name);
            after.is_some_and(Value::is_known) && prior.get_attr(name) != after
        })
        .collect()
}

/// A manual registration whose entry was deleted outside Terraform (Read records it as an
/// empty name): the next apply re-creates it.
fn entry_missing(prior: &Value) -> bool {
    prior.get_attr("mode").and_then(Value::as_str) == Some("manual")
        && prior
            .get_attr("workload_entry_name")
            .and_then(Value::as_str)
            == Some("")
}

fn token_due(prior: &Value, planned: &Value) -> bool {
    let renew_before = planned
        .get_attr("renew_before")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_RENEW_BEFORE)
        .to_string();
    let Ok(renew_before) = validation::duration(&renew_before) else {
        return false;
    };
    let Some(expires_at) = prior.get_attr("token_expires_at").and_then(Value::as_str) else {
        return true;
    };
    let Ok(expires_at) =
        time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
    else {
        return true;
    };
    let now = time::OffsetDateTime::now_utc();
    expires_at - now < time::Duration::try_from(renew_before).unwrap_or(time::Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::vm_registration::tests::config;

    #[test]
    fn token_renewal_is_due_inside_renew_before() {
        let prior = |expires: time::OffsetDateTime| {
            config(serde_json::json!({
                "workload_group": "default/g",
                "token_expires_at": expires.format(&time::format_description::well_known::Rfc3339).unwrap(),
            }))
        };
        let now = time::OffsetDateTime::now_utc();
        let planned =
            config(serde_json::json!({"workload_group": "default/g", "renew_before": "15m"}));
        assert!(token_due(
            &prior(now + time::Duration::minutes(10)),
            &planned
        ));
        assert!(!token_due(
            &prior(now + time::Duration::minutes(50)),
            &planned
        ));
    }

    /// Issue "Field defects" item 7: istiod keeps an auto-registered entry as it was created.
    #[test]
    fn auto_mode_changes_istiod_does_not_apply_are_named() {
        let prior = config(serde_json::json!({
            "workload_group": "default/g", "mode": "auto", "network": "n1", "locality": "r1", "labels": {"a": "1"}
        }));
        let planned = config(serde_json::json!({
            "workload_group": "default/g", "mode": "auto", "network": "n2", "locality": "r1", "labels": {"a": "2"}
        }));
        assert_eq!(
            auto_entry_changes(&prior, &planned),
            vec!["network", "labels"]
        );
        assert!(auto_entry_changes(&prior, &prior).is_empty());
        let manual = config(serde_json::json!({
            "workload_group": "default/g", "mode": "manual", "address": "10.0.0.1", "network": "n2"
        }));
        let manual_prior = config(serde_json::json!({
            "workload_group": "default/g", "mode": "manual", "address": "10.0.0.1", "network": "n1"
        }));
        assert!(
            auto_entry_changes(&manual_prior, &manual).is_empty(),
            "manual entries are updated by the provider"
        );
    }

    /// With `issue_token = false` the VM's token comes from the ephemeral `istio_vm_bootstrap`:
    /// the plan keeps the token attributes null and never renews.
    #[test]
    fn without_issue_token_no_token_is_planned_or_renewed() {
        let prior = config(serde_json::json!({
            "workload_group": "default/g", "mode": "auto", "issue_token": false,
            "cluster_env": "A=1\n", "mesh_config": "m", "hosts": "", "root_cert": "pem",
            "bundle_sha256": "x", "workload_entry_name": "", "healthy": false, "health_message": "",
        }));
        let mut planned = prior.clone();
        planned.set_attr("istio_token", Value::Unknown);
        planned.set_attr("token_expires_at", Value::Unknown);
        let mut plan = Plan {
            prior: Some(prior.clone()),
            proposed: planned.clone(),
            config: planned.clone(),
            planned,
            requires_replace: Vec::new(),
            private: Vec::new(),
        };
        refine(&mut plan);
        assert_eq!(plan.planned, prior, "nothing to renew, nothing changes");
        plan.prior = None;
        plan.planned.set_attr("istio_token", Value::Unknown);
        refine(&mut plan);
        assert_eq!(plan.planned.get_attr("istio_token"), Some(&Value::Null));
    }
}
