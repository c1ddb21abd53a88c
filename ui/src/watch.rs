//! The only module that talks to the API: one watch per kind, read-only (list and watch), each
//! feeding the store and announcing what changed. A watch that fails backs off and lists again;
//! the page keeps showing the last state meanwhile.

use std::fmt::Debug;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use nodewright_api::{EdgeCluster, EdgeNode, Migration, StorageUpgrade};
use serde::de::DeserializeOwned;

use crate::server::{Change, Shared};
use crate::store::{Objects, Store, keeps_config_map};

/// Where the UI reads.
#[derive(Clone, Debug)]
pub struct Namespaces {
    /// Nodewright's own objects (EdgeClusters, EdgeNodes, workflows).
    pub nodewright: String,
    /// The legacy script's ConfigMaps (takeover and acknowledgements).
    pub legacy: String,
}

/// How many watches [`spawn`] starts (for [`Shared::new`]).
pub const KINDS: usize = 5;

/// The running watches; dropping it stops them.
#[must_use = "dropping the watches stops them"]
pub struct Watches(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Watches {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Starts the watches that keep `shared` current, until the returned [`Watches`] is dropped.
pub fn spawn(client: &Client, namespaces: &Namespaces, shared: &Shared) -> Watches {
    let ns = &namespaces.nodewright;
    Watches(vec![
        tokio::spawn(run(
            Api::<EdgeCluster>::namespaced(client.clone(), ns),
            shared.clone(),
            "EdgeCluster",
            |s| &mut s.clusters,
            |_| true,
            Hooks::NONE,
        )),
        tokio::spawn(run(
            Api::<EdgeNode>::namespaced(client.clone(), ns),
            shared.clone(),
            "EdgeNode",
            |s| &mut s.nodes,
            |_| true,
            Hooks {
                seen: |s, node, at| s.record_resync(node, at),
                gone: |s, node| {
                    s.resync.remove(&crate::store::key_of(node));
                },
            },
        )),
        tokio::spawn(run(
            Api::<StorageUpgrade>::namespaced(client.clone(), ns),
            shared.clone(),
            "StorageUpgrade",
            |s| &mut s.upgrades,
            |_| true,
            Hooks::NONE,
        )),
        tokio::spawn(run(
            Api::<Migration>::namespaced(client.clone(), ns),
            shared.clone(),
            "Migration",
            |s| &mut s.migrations,
            |_| true,
            Hooks::NONE,
        )),
        tokio::spawn(run(
            Api::<ConfigMap>::namespaced(client.clone(), &namespaces.legacy),
            shared.clone(),
            "ConfigMap",
            |s| &mut s.config_maps,
            keeps_config_map,
            Hooks::NONE,
        )),
    ])
}

/// What the store keeps about a kind beyond its objects (a node's resync progress over time).
struct Hooks<K> {
    /// An object seen (applied, or listed), with the time, Unix milliseconds.
    seen: fn(&mut Store, &K, i64),
    /// An object deleted.
    gone: fn(&mut Store, &K),
}

impl<K> Hooks<K> {
    const NONE: Hooks<K> = Hooks {
        seen: |_, _, _| {},
        gone: |_, _| {},
    };
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn run<K>(
    api: Api<K>,
    shared: Shared,
    kind: &'static str,
    objects: fn(&mut Store) -> &mut Objects<K>,
    keep: fn(&K) -> bool,
    hooks: Hooks<K>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut relist: Vec<K> = Vec::new();
    let mut synced = false;
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(kind, error = %e, "watch failed; listing again after a backoff");
                continue;
            }
        };
        match event {
            watcher::Event::Init => relist.clear(),
            watcher::Event::InitApply(obj) => {
                if keep(&obj) {
                    relist.push(obj);
                }
            }
            watcher::Event::InitDone => {
                let all = std::mem::take(&mut relist);
                let change = Change {
                    kind,
                    namespace: String::new(),
                    name: String::new(),
                };
                let at = now_ms();
                shared.update(change, |s| {
                    for obj in &all {
                        (hooks.seen)(s, obj, at);
                    }
                    objects(s).reset(all);
                });
                if !synced {
                    synced = true;
                    shared.mark_synced();
                }
            }
            watcher::Event::Apply(obj) => {
                if keep(&obj) {
                    let change = Change {
                        kind,
                        namespace: obj.namespace().unwrap_or_default(),
                        name: obj.name_any(),
                    };
                    let at = now_ms();
                    shared.update(change, |s| {
                        (hooks.seen)(s, &obj, at);
                        objects(s).apply(obj);
                    });
                }
            }
            watcher::Event::Delete(obj) => {
                if keep(&obj) {
                    let change = Change {
                        kind,
                        namespace: obj.namespace().unwrap_or_default(),
                        name: obj.name_any(),
                    };
                    shared.update(change, |s| {
                        (hooks.gone)(s, &obj);
                        objects(s).delete(&obj);
                    });
                }
            }
        }
    }
}
