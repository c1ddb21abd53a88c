//! The newest checkpoint, published to the cluster: a ConfigMap of the writer's own
//! ([`CONFIG_MAP`] in its namespace), so that a log rewritten or cut short on disk no longer
//! matches what the cluster saw. `nodewright audit verify --from-cluster` reads it back.
//!
//! Keys: `checkpoint` (the signed note, verbatim), `size` (its tree size), `published-at`
//! (RFC 3339) and `verifier-key` (the writer's public key, a convenience: a verifier that trusts
//! the cluster for the checkpoint may trust it for the key; one that does not passes its own). The ConfigMap is written by server-side apply with the writer's field manager, so
//! a person's own labels or annotations on it are left alone.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use tokio::sync::watch;

use crate::serve::Published;

/// The name of the ConfigMap that holds the published checkpoint.
pub const CONFIG_MAP: &str = "nodewright-audit-checkpoint";
/// The field manager of the writer's applies.
pub const FIELD_MANAGER: &str = "nodewright-audit";
/// The key of the signed checkpoint.
pub const CHECKPOINT_KEY: &str = "checkpoint";
/// The key of the writer's verifier key.
pub const VERIFIER_KEY: &str = "verifier-key";

/// The ConfigMap holding `published`, as the writer applies it.
pub fn config_map(namespace: &str, published: &Published, verifier_key: &str) -> serde_json::Value {
    let at = jiff::Timestamp::from_second(published.at)
        .map_or_else(|_| published.at.to_string(), |t| t.to_string());
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIG_MAP,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/component": "audit", "app.kubernetes.io/part-of": "nodewright"},
        },
        "data": {
            CHECKPOINT_KEY: published.checkpoint,
            "size": published.size.to_string(),
            "published-at": at,
            VERIFIER_KEY: verifier_key,
        },
    })
}

/// Applies each new checkpoint from `updates` until the sender is gone. A failed apply is
/// retried (every 2 s) with the newest checkpoint; only the newest matters.
pub async fn run(
    client: Client,
    namespace: String,
    verifier_key: String,
    mut updates: watch::Receiver<Option<Published>>,
) {
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let params = PatchParams::apply(FIELD_MANAGER);
    let mut pending = false;
    loop {
        if !pending && updates.changed().await.is_err() {
            return;
        }
        let current = updates.borrow_and_update().clone();
        let Some(published) = current else {
            pending = false;
            continue;
        };
        let object = config_map(&namespace, &published, &verifier_key);
        match api.patch(CONFIG_MAP, &params, &Patch::Apply(&object)).await {
            Ok(_) => {
                tracing::info!(size = published.size, "published the audit checkpoint");
                pending = false;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish the audit checkpoint; trying again");
                pending = true;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// The checkpoint published in `namespace`, and the verifier key published with it.
pub async fn read(client: Client, namespace: &str) -> anyhow::Result<(String, Option<String>)> {
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let cm = api.get_opt(CONFIG_MAP).await?.ok_or_else(|| {
        anyhow::anyhow!("no ConfigMap {namespace}/{CONFIG_MAP}: the writer has not published a checkpoint")
    })?;
    let mut data = cm.data.unwrap_or_default();
    let checkpoint = data
        .remove(CHECKPOINT_KEY)
        .ok_or_else(|| anyhow::anyhow!("ConfigMap {namespace}/{CONFIG_MAP} has no key {CHECKPOINT_KEY:?}"))?;
    Ok((checkpoint, data.remove(VERIFIER_KEY)))
}
