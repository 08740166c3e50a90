//! Whether istiod runs, as the cluster shows it: the leader-election Leases istiod renews while
//! it runs. A health wait that ends without a verdict uses this to say whether istiod itself is
//! gone (nobody is left to write the VM's `Healthy` condition) or the VM never reported.

use std::time::Duration;

use super::install::is_revisioned;

/// Elections every istiod of a revision joins, each on a Lease in istiod's namespace named
/// `<election>-<revision>` (`default` for the unrevisioned control plane): `GatewayStatusController`
/// and `GatewayDeploymentController` in `pilot/pkg/leaderelection/leaderelection.go`, started
/// by `NewPerRevisionLeaderElection` in `pilot/pkg/bootstrap/configcontroller.go` whenever
/// Gateway API support is on (`PILOT_ENABLE_GATEWAY_API`, on by default). Per revision, so the
/// holder is an istiod of this revision, never one of another.
const PER_REVISION_ELECTIONS: [&str; 2] =
    ["istio-gateway-status-leader", "istio-gateway-deployment"];

/// istiod holds its Leases for 30 s and renews them every 7.5 s (`ttl`, `RetryPeriod` in
/// `pilot/pkg/leaderelection/leaderelection.go`); the Lease's own `leaseDurationSeconds` is
/// used when present. On top of it, this much for the clocks of istiod and the provider apart.
const CLOCK_ALLOWANCE: Duration = Duration::from_secs(15);

/// The Leases of `revision`'s istiod.
pub fn istiod_lease_names(revision: &str) -> Vec<String> {
    let revision = if is_revisioned(revision) {
        revision
    } else {
        "default"
    };
    PER_REVISION_ELECTIONS
        .iter()
        .map(|election| format!("{election}-{revision}"))
        .collect()
}

/// One of istiod's Leases as read from the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IstiodLease {
    pub name: String,
    /// `spec.holderIdentity`: istiod's Pod name; empty once istiod released it on a clean exit.
    pub holder: String,
    /// `spec.renewTime`, in seconds since the Unix epoch.
    pub renewed_at: Option<i64>,
    /// `spec.leaseDurationSeconds`.
    pub duration_seconds: Option<i32>,
}

/// What istiod's Leases say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IstiodLiveness {
    /// A Lease was renewed in time: an istiod of the revision runs.
    Running,
    /// No Lease is held and renewed: the evidence, one sentence per Lease.
    NotRunning(String),
    /// No Lease could be read (another Istio version, Gateway API support off, or RBAC).
    Unknown,
}

/// Judges `leases` of `istio_namespace` at `now` (seconds since the Unix epoch).
pub fn istiod_liveness(leases: &[IstiodLease], istio_namespace: &str, now: i64) -> IstiodLiveness {
    if leases.is_empty() {
        return IstiodLiveness::Unknown;
    }
    let mut evidence = Vec::new();
    for lease in leases {
        let duration = lease.duration_seconds.map_or(30, i64::from);
        let late_after = duration + CLOCK_ALLOWANCE.as_secs() as i64;
        let name = format!("{istio_namespace}/{}", lease.name);
        match lease.renewed_at {
            _ if lease.holder.is_empty() => evidence.push(format!(
                "Lease {name} has no holder (istiod releases it when it exits)"
            )),
            Some(renewed) if now - renewed <= late_after => return IstiodLiveness::Running,
            Some(renewed) => evidence.push(format!(
                "Lease {name} was last renewed by {} {}s ago (istiod renews it every few seconds while it runs; it lasts {duration}s)",
                lease.holder,
                now - renewed
            )),
            None => evidence.push(format!("Lease {name} has never been renewed")),
        }
    }
    IstiodLiveness::NotRunning(evidence.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed_at: Option<i64>) -> IstiodLease {
        IstiodLease {
            name: "istio-gateway-status-leader-default".into(),
            holder: holder.into(),
            renewed_at,
            duration_seconds: Some(30),
        }
    }

    #[test]
    fn lease_names_follow_the_revision() {
        assert_eq!(
            istiod_lease_names(""),
            [
                "istio-gateway-status-leader-default",
                "istio-gateway-deployment-default"
            ]
        );
        assert_eq!(istiod_lease_names("default"), istiod_lease_names(""));
        assert_eq!(
            istiod_lease_names("canary"),
            [
                "istio-gateway-status-leader-canary",
                "istio-gateway-deployment-canary"
            ]
        );
    }

    #[test]
    fn one_lease_renewed_in_time_means_running() {
        let leases = [lease("istiod-a", Some(1000)), lease("istiod-b", Some(990))];
        assert_eq!(
            istiod_liveness(&leases, "istio-system", 1044),
            IstiodLiveness::Running
        );
        assert_eq!(
            istiod_liveness(&leases[1..], "istio-system", 1044),
            IstiodLiveness::NotRunning(
                "Lease istio-system/istio-gateway-status-leader-default was last renewed by istiod-b 54s ago (istiod renews it every few seconds while it runs; it lasts 30s)".into()
            )
        );
    }

    #[test]
    fn a_released_lease_is_not_running_and_no_lease_is_unknown() {
        let IstiodLiveness::NotRunning(evidence) =
            istiod_liveness(&[lease("", Some(1000))], "istio-system", 1001)
        else {
            panic!("a released lease counts as running");
        };
        assert!(evidence.contains("has no holder"), "{evidence}");
        assert_eq!(
            istiod_liveness(&[], "istio-system", 1),
            IstiodLiveness::Unknown
        );
    }
}
