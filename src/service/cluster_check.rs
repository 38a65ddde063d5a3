//! Cluster checks: `POST /v2/clusters/{cluster}/check`, and the check after each cluster
//! write that carries a kubeconfig. The result is stored as the cluster's
//! `status.conditions` (`store::cluster_checks`).

use chrono::{SubsecRound, Utc};

use super::Service;
use super::access::{Caller, audit_change};
use crate::domain::cluster::ClusterSpec;
use crate::domain::cluster_check::{
    CheckReport, ConditionStatus, ConditionType, Observed, StoredCheck, merge,
};
use crate::domain::envelopes::Cluster;
use crate::domain::names::Name;
use crate::domain::resource::ResourcePath;
use crate::error::{Error, Result};
use crate::push::ClusterClients;

impl Service {
    /// Checks the cluster at `path` now, stores the conditions (audited as `cluster.check`)
    /// and returns the cluster with them.
    #[tracing::instrument(skip(self, caller), fields(cluster = %path.url()))]
    pub async fn check_cluster(&self, path: &ResourcePath, caller: &Caller) -> Result<Cluster> {
        self.get::<Cluster>(path).await?;
        self.run_check(path, Some(caller)).await?;
        self.get(path).await
    }

    /// The check after a write that stored a kubeconfig (the write is committed): a failure
    /// here never fails the write; it is logged, and the conditions say what the check found.
    pub(crate) async fn check_after_write(
        &self,
        path: &ResourcePath,
        _caller: &Caller,
    ) -> Option<StoredCheck> {
        match self.run_check(path, None).await {
            Ok(check) => Some(check),
            Err(e) => {
                tracing::warn!(cluster = %path.url(), error = %e, "the check after the cluster write failed");
                None
            }
        }
    }

    /// Runs the check and stores it; audited when `caller` asked for it.
    async fn run_check(&self, path: &ResourcePath, caller: Option<&Caller>) -> Result<StoredCheck> {
        let name: Name = path
            .key()
            .map(|k| k.name.clone())
            .ok_or_else(|| Error::internal("check", "empty path"))?;
        let spec: ClusterSpec = self.get::<Cluster>(path).await?.spec;
        let ask = async {
            match self.client(&name).await {
                Ok(client) => crate::push::check::check(&client, &spec).await,
                Err(e) => no_client("NoClient", &e.to_string()),
            }
        };
        // A write waits for its check: bounded, so a cluster that accepts connections and never
        // answers cannot hold the write's response for the whole request timeout.
        let report = match caller {
            Some(_) => ask.await,
            None => tokio::time::timeout(CHECK_ON_WRITE_BUDGET, ask)
                .await
                .unwrap_or_else(|_| {
                    no_client(
                        "Timeout",
                        &format!(
                            "the check did not finish within {} s",
                            CHECK_ON_WRITE_BUDGET.as_secs()
                        ),
                    )
                }),
        };
        let mut tx = self.store.begin_write().await?;
        let rows = self.resolve_path(&mut tx, path).await?;
        let row = rows
            .last()
            .ok_or_else(|| Error::internal("check", "empty path"))?;
        let previous = tx.cluster_check(row.id).await?;
        let now = Utc::now().trunc_subsecs(0);
        let conditions = merge(
            previous
                .as_ref()
                .map(|p| p.conditions.as_slice())
                .unwrap_or_default(),
            &report.observed,
            now,
        );
        let check = StoredCheck {
            checked_at: now,
            kubernetes_version: report.kubernetes_version,
            istio_version: report.istio_version,
            conditions,
        };
        tx.put_cluster_check(row.id, &check).await?;
        if let Some(caller) = caller {
            let revision = Some(row.revision);
            audit_change(
                &mut tx,
                caller,
                "cluster.check",
                path,
                (revision, revision),
                200,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(check)
    }
}

/// How long the check after a cluster write may take.
const CHECK_ON_WRITE_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// The report when no client could be built (no kubeconfig, one that cannot be used), or the
/// check ran out of time (`reason` Timeout).
fn no_client(reason: &str, message: &str) -> CheckReport {
    let why = "the cluster could not be asked";
    CheckReport {
        kubernetes_version: None,
        istio_version: None,
        observed: vec![
            Observed::new(
                ConditionType::Reachable,
                ConditionStatus::False,
                reason,
                format!(
                    "{message}; check the stored kubeconfig (or inCluster), then POST .../check"
                ),
            ),
            Observed::new(
                ConditionType::IstioServed,
                ConditionStatus::Unknown,
                "NotChecked",
                format!("not checked: {why}"),
            ),
            Observed::new(
                ConditionType::Permitted,
                ConditionStatus::Unknown,
                "NotChecked",
                format!("not checked: {why}"),
            ),
        ],
    }
}
