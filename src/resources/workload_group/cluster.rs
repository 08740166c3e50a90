//! Every call of the WorkloadGroup resource to the API server.

use kube::api::{Api, DynamicObject};

use super::WorkloadGroupModel;
use super::convert::object_from_model;
use crate::cluster::KubeError;
use crate::cluster::apply::server_side_apply;
use crate::cluster::wait::{Deadline, delete_and_wait};
use crate::istio::crd::{IstioApiVersion, WorkloadGroup, from_dynamic, to_dynamic};
use crate::provider_data::Configured;
use crate::resources::error::ResourceError;

/// The WorkloadGroups of one namespace, addressed at one served API version. Writes update the
/// provider's shared copy that registrations read (`ClusterCache::workload_group`).
pub(super) struct Groups<'a> {
    configured: &'a Configured,
    api: Api<DynamicObject>,
    pub namespace: String,
    pub version: IstioApiVersion,
}

impl<'a> Groups<'a> {
    /// At the version the cluster serves now (create, import).
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %namespace))]
    pub async fn discover(
        configured: &'a Configured,
        namespace: String,
    ) -> Result<Self, ResourceError> {
        let version = configured.cache.served_version().await?;
        Ok(Groups::at(configured, namespace, version))
    }

    /// At the version the state recorded (read, update, delete).
    pub fn at(configured: &'a Configured, namespace: String, version: IstioApiVersion) -> Self {
        let resource = version.api_resource(WorkloadGroup::KIND);
        let api = Api::namespaced_with(configured.client.clone(), &namespace, &resource);
        Groups {
            configured,
            api,
            namespace,
            version,
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, name))]
    pub async fn exists(&self, name: &str) -> Result<bool, ResourceError> {
        Ok(self.api.get_opt(name).await?.is_some())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, name))]
    pub async fn get(&self, name: &str) -> Result<Option<WorkloadGroup>, ResourceError> {
        // Through the process's cache: a refresh reads the group once for itself and for every
        // registration made from it.
        let cache = &self.configured.cache;
        match cache
            .workload_group(self.version, &self.namespace, name)
            .await?
        {
            Some(object) => Ok(Some(from_dynamic(object)?)),
            None => Ok(None),
        }
    }

    /// Server-side apply of the fields the model sets; returns the group as stored.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, name = %model.name))]
    pub async fn apply(
        &self,
        model: &WorkloadGroupModel,
        field_manager: &str,
    ) -> Result<WorkloadGroup, ResourceError> {
        let object = to_dynamic(&object_from_model(model, &self.namespace), self.version)?;
        let force = model.apply.force_conflicts.unwrap_or(false);
        let applied = server_side_apply(&self.api, &model.name, &object, field_manager, force)
            .await
            .map_err(|error| self.naming_the_group(error))?;
        let cache = &self.configured.cache;
        cache.remember_workload_group(self.version, &applied);
        Ok(from_dynamic(applied)?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, name))]
    pub async fn delete(&self, name: &str, deadline: Deadline<'_>) -> Result<(), ResourceError> {
        let kind = WorkloadGroup::KIND;
        let deleted = delete_and_wait(&self.api, kind, name, deadline).await;
        self.configured
            .cache
            .forget_workload_group(&self.namespace, name);
        Ok(deleted?)
    }

    /// A conflict names the kind and namespace of the object, which the apply call cannot know.
    fn naming_the_group(&self, error: KubeError) -> KubeError {
        match error {
            KubeError::Conflict {
                name,
                managers,
                detail,
                ..
            } => KubeError::Conflict {
                kind: WorkloadGroup::KIND.into(),
                namespace: self.namespace.clone(),
                name,
                managers,
                detail,
            },
            other => other,
        }
    }
}
