//! A fresh bootstrap for an existing registration, for the ephemeral `istio_vm_bootstrap`: a
//! new token bound to the registration's Secret (so destroying the registration revokes it)
//! and the five files rendered with it by the same steps as create and update.

use super::cluster::Registration;
use super::{VmRegistrationModel, registration_label};
use crate::istio::{Bundle, render_bundle};
use crate::provider_data::Configured;
use crate::resources::error::ResourceError;

/// Issues a token for the registration `model.id` names and renders its bundle. `model` carries
/// the registration's bundle settings (network, labels, …); its mode and manual address are read
/// from the cluster as an import does. Fills `istio_token`, `token_expires_at` and
/// `token_secret_name`.
pub(crate) async fn mint_bootstrap(
    configured: &Configured,
    model: &mut VmRegistrationModel,
) -> Result<Bundle, ResourceError> {
    let label = registration_label(model).unwrap_or_default().to_string();
    let registration = Registration::new(configured, model);
    let group = registration.group().await?;
    let group_reference = model.workload_group.clone();
    let gone = || {
        ResourceError::missing(
            None,
            format!(
                "No token Secret in the namespace of {} belongs to registration {label:?}: the registration was destroyed or its Secret deleted (which revokes its tokens). Create the registration first.",
                group_reference
            ),
        )
    };
    if !registration.imported(model, &label).await? {
        return Err(gone());
    }
    let secret_name = model.token_secret_name.clone().unwrap_or_default();
    let secret = registration.secret(&secret_name).await?.ok_or_else(gone)?;
    let issued = registration.request_token(&group, &secret, model).await?;
    model.bundle.istio_token = Some(issued.token);
    model.bundle.token_expires_at = Some(issued.expires_at);
    let inputs = registration
        .bundle_inputs(model, &group.group, &label)
        .await?;
    Ok(render_bundle(&inputs)?)
}

/// The registration settings' plan-time rules (the same as the registration's), for the
/// attributes `config` has.
pub(crate) fn check_settings(
    model: &VmRegistrationModel,
    config: &crate::tfplug::Value,
    diags: &mut crate::tfplug::Diagnostics,
) {
    super::validate::check(model, config, diags);
}

/// The `<namespace>/<group>` of a registration's `id` (`<namespace>/<group>/<registration-id>`).
pub(crate) fn group_of_registration(id: &str) -> Option<String> {
    super::parse_registration_id(id).map(|(namespace, group, _)| format!("{namespace}/{group}"))
}
