//! Phase 3: build the desired worker objects, in the order they are applied (pure: the
//! objects themselves are made by [`desired`]).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use pek_crds::Realm;

use super::desired;
use crate::config::Config;
use crate::db::DbCredentials;
use crate::Error;

/// The worker objects a Realm should have.
pub(crate) struct WorkerObjects {
    pub service_account: ServiceAccount,
    pub service: Service,
    /// The `<name>-hub-token` Secret; None when the operator has no federation secret.
    pub hub_token: Option<Secret>,
    pub deployment: Deployment,
    pub network_policy: NetworkPolicy,
    /// None with at most one replica (an existing one of ours is then deleted).
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
    /// The scheduled backups of `spec.backup`; None without it (or without a place for
    /// backups): an existing one of ours is then deleted.
    pub backup: Option<CronJob>,
}

pub(crate) fn build(
    realm: &Realm,
    config: &Config,
    creds: &DbCredentials,
) -> Result<WorkerObjects, Error> {
    Ok(WorkerObjects {
        service_account: desired::service_account(realm)?,
        service: desired::service(realm)?,
        hub_token: config
            .federation_secret
            .as_ref()
            .map(|secret| desired::hub_token_secret(realm, secret))
            .transpose()?,
        deployment: desired::deployment(realm, config, &desired::credentials_hash(creds))?,
        network_policy: desired::network_policy(realm, config)?,
        pod_disruption_budget: desired::pod_disruption_budget(realm)?,
        backup: desired::backup_cron_job(realm, config)?,
    })
}
