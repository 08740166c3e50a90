//! Plan-time validation of the data source's configuration.

use super::MeshModel;
use crate::resources::common::validate_revision;
use crate::tfplug::Diagnostics;

pub(super) fn check(model: &MeshModel, diags: &mut Diagnostics) {
    validate_revision(&model.revision, diags);
}
