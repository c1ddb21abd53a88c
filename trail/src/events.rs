//! The API server's audit events (`audit.k8s.io/v1`), as its webhook backend posts them, and
//! which of them the trail keeps.
//!
//! Pure: no I/O. [`EventList`] is decoded from the request body; [`Scope`] says which events are
//! about Nodewright's objects or the legacy contract; [`changes`] turns the object before and after
//! a request into a list of JSON-pointer paths with their old and new values.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// `audit.k8s.io/v1` `EventList`: one batch of the webhook backend.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    /// Must be `audit.k8s.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// Must be `EventList`.
    #[serde(default)]
    pub kind: String,
    /// The events, oldest first.
    #[serde(default)]
    pub items: Vec<Event>,
}

/// Why a request body is not an `audit.k8s.io/v1` `EventList`.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not the shape of an `EventList`.
    #[error("not an audit EventList: {0}")]
    Json(#[from] serde_json::Error),
    /// Another kind or version.
    #[error(
        "expected kind EventList of apiVersion audit.k8s.io/v1, got kind {kind:?} of apiVersion {api_version:?}"
    )]
    Kind {
        /// The `kind` found.
        kind: String,
        /// The `apiVersion` found.
        api_version: String,
    },
}

impl EventList {
    /// Decodes a webhook request body.
    pub fn decode(body: &[u8]) -> Result<EventList, DecodeError> {
        let list: EventList = serde_json::from_slice(body)?;
        if list.kind != "EventList" || list.api_version != "audit.k8s.io/v1" {
            return Err(DecodeError::Kind {
                kind: list.kind,
                api_version: list.api_version,
            });
        }
        Ok(list)
    }
}

/// One `audit.k8s.io/v1` `Event`: the fields the trail reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `None`, `Metadata`, `Request` or `RequestResponse`.
    #[serde(default)]
    pub level: String,
    /// The request's unique id (shared by the stages of one request).
    #[serde(rename = "auditID", default)]
    pub audit_id: String,
    /// `RequestReceived`, `ResponseStarted`, `ResponseComplete` or `Panic`.
    #[serde(default)]
    pub stage: String,
    /// The request's path and query.
    #[serde(rename = "requestURI", default)]
    pub request_uri: String,
    /// The Kubernetes verb: `create`, `update`, `patch`, `delete`, …
    #[serde(default)]
    pub verb: String,
    /// Who sent the request.
    #[serde(default)]
    pub user: UserInfo,
    /// Whom the sender impersonated, if anyone.
    #[serde(default)]
    pub impersonated_user: Option<UserInfo>,
    /// The sender's user agent.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// The object the request is about.
    #[serde(default)]
    pub object_ref: Option<EventObjectRef>,
    /// The response's status (its `code`).
    #[serde(default)]
    pub response_status: Option<Value>,
    /// The request body (level `Request` and above).
    #[serde(default)]
    pub request_object: Option<Value>,
    /// The response body (level `RequestResponse`).
    #[serde(default)]
    pub response_object: Option<Value>,
    /// When this stage was reached, RFC 3339 with microseconds.
    #[serde(default)]
    pub stage_timestamp: String,
}

/// `authentication.k8s.io/v1` `UserInfo`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct UserInfo {
    /// The user name.
    #[serde(default)]
    pub username: String,
    /// The groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The audit event's `objectRef`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventObjectRef {
    /// The resource, plural (`migrations`).
    #[serde(default)]
    pub resource: String,
    /// The namespace, for a namespaced object.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The name (absent on a create whose name the server generates).
    #[serde(default)]
    pub name: Option<String>,
    /// The uid, when the server knew it.
    #[serde(default)]
    pub uid: Option<String>,
    /// The API group (empty for the core group).
    #[serde(default)]
    pub api_group: Option<String>,
    /// The subresource (`status`).
    #[serde(default)]
    pub subresource: Option<String>,
}

impl Event {
    /// The response's HTTP code, when the event has one.
    pub fn code(&self) -> Option<i64> {
        self.response_status.as_ref()?.get("code")?.as_i64()
    }

    /// Whether the request could have changed an object.
    pub fn mutates(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    /// The object's name: the reference's, or the response's (a generated name).
    pub fn name(&self) -> Option<String> {
        self.object_ref
            .as_ref()
            .and_then(|o| o.name.clone())
            .or_else(|| string_at(self.response_object.as_ref()?, &["metadata", "name"]))
    }

    /// The object's uid: the reference's, or the response's.
    pub fn uid(&self) -> Option<String> {
        self.object_ref
            .as_ref()
            .and_then(|o| o.uid.clone())
            .filter(|u| !u.is_empty())
            .or_else(|| string_at(self.response_object.as_ref()?, &["metadata", "uid"]))
    }

    /// The object's kind: the response's, else known from the resource's plural.
    pub fn kind(&self) -> String {
        let from_response = self
            .response_object
            .as_ref()
            .and_then(|o| string_at(o, &["kind"]))
            .filter(|k| k != "Status" && !k.ends_with("List"));
        if let Some(kind) = from_response {
            return kind;
        }
        let resource = self.object_ref.as_ref().map_or("", |o| o.resource.as_str());
        kind_of_resource(resource).map_or_else(|| resource.to_owned(), str::to_owned)
    }
}

/// The kind of a resource the trail keeps, by its plural.
pub fn kind_of_resource(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "edgeclusters" => "EdgeCluster",
        "edgenodes" => "EdgeNode",
        "migrations" => "Migration",
        "storageupgrades" => "StorageUpgrade",
        "bondflips" => "BondFlip",
        "nodetasks" => "NodeTask",
        "configmaps" => "ConfigMap",
        "nodes" => "Node",
        _ => return None,
    })
}

/// The string at `path` in `value`.
pub fn string_at(value: &Value, path: &[&str]) -> Option<String> {
    let mut at = value;
    for key in path {
        at = at.get(key)?;
    }
    at.as_str().map(str::to_owned)
}

/// Which objects the trail keeps: Nodewright's own, the legacy ConfigMaps, and the legacy
/// contract's labels, annotations and taints on Nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// Nodewright's API group.
    pub group: String,
    /// Namespace of the legacy ConfigMaps.
    pub legacy_namespace: String,
    /// Names of the legacy ConfigMaps kept whole.
    pub legacy_config_maps: Vec<String>,
    /// Prefix of the per-node legacy ConfigMaps.
    pub node_config_map_prefix: String,
    /// Prefix of the label, annotation and taint keys of the legacy contract.
    pub contract_prefix: String,
}

impl Default for Scope {
    fn default() -> Self {
        use nodewright_parsers::contract;
        Scope {
            group: "nodewright.io".into(),
            legacy_namespace: contract::NAMESPACE.into(),
            legacy_config_maps: vec![contract::CLUSTER_STATE.into(), contract::TAKEOVER.into()],
            node_config_map_prefix: contract::NODE_CONFIG_MAP_PREFIX.into(),
            contract_prefix: contract::PREFIX.into(),
        }
    }
}

/// What kind of object an event is about, as far as the trail cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A `nodewright.io` object.
    Nodewright,
    /// A legacy ConfigMap.
    LegacyConfigMap,
    /// A Node (kept only when a contract key changed).
    Node,
}

impl Scope {
    /// Whether the trail keeps `event` at all (before looking at what changed), and as what.
    /// Only completed (or panicked) mutating requests are kept.
    pub fn subject(&self, event: &Event) -> Option<Subject> {
        if !event.mutates() || !matches!(event.stage.as_str(), "ResponseComplete" | "Panic") {
            return None;
        }
        let object = event.object_ref.as_ref()?;
        let group = object.api_group.as_deref().unwrap_or("");
        if group == self.group {
            return Some(Subject::Nodewright);
        }
        if !group.is_empty() {
            return None;
        }
        match object.resource.as_str() {
            "configmaps" if object.namespace.as_deref() == Some(self.legacy_namespace.as_str()) => {
                let name = event.name()?;
                let kept =
                    self.legacy_config_maps.contains(&name) || name.starts_with(&self.node_config_map_prefix);
                kept.then_some(Subject::LegacyConfigMap)
            }
            "nodes" => Some(Subject::Node),
            _ => None,
        }
    }

    /// The part of an object the trail compares: for a Node, only the contract's labels,
    /// annotations and taints; for anything else, the object without the server's bookkeeping
    /// (`managedFields`, `resourceVersion`, timestamps).
    pub fn projection(&self, subject: Subject, object: &Value) -> Value {
        match subject {
            Subject::Node => {
                let keys = |field: &str| -> Value {
                    let kept: Map<String, Value> = object
                        .get("metadata")
                        .and_then(|m| m.get(field))
                        .and_then(Value::as_object)
                        .map(|m| {
                            m.iter()
                                .filter(|(k, _)| k.starts_with(&self.contract_prefix))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect()
                        })
                        .unwrap_or_default();
                    Value::Object(kept)
                };
                let mut projected = serde_json::json!({
                    "metadata": {"labels": keys("labels"), "annotations": keys("annotations")},
                });
                // Taints only when the object has a taint list (a patch of labels does not).
                if let Some(all) = object
                    .get("spec")
                    .and_then(|s| s.get("taints"))
                    .and_then(Value::as_array)
                {
                    let taints: Vec<Value> = all
                        .iter()
                        .filter(|t| {
                            t.get("key")
                                .and_then(Value::as_str)
                                .is_some_and(|k| k.starts_with(&self.contract_prefix))
                        })
                        .cloned()
                        .collect();
                    projected["spec"] = serde_json::json!({"taints": taints});
                }
                projected
            }
            Subject::Nodewright | Subject::LegacyConfigMap => {
                let mut object = object.clone();
                if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    for noise in [
                        "managedFields",
                        "resourceVersion",
                        "creationTimestamp",
                        "generation",
                        "uid",
                        "selfLink",
                    ] {
                        meta.remove(noise);
                    }
                }
                object
            }
        }
    }
}

/// One field that changed: a JSON pointer (RFC 6901) into the object, and its values before and
/// after (`None`: absent, or not known).
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The JSON pointer.
    pub path: String,
    /// The value before.
    pub old: Option<Value>,
    /// The value after.
    pub new: Option<Value>,
}

/// The fields that differ between `old` and `new`, depth first, in key order. Objects are
/// compared key by key; anything else (arrays included) is compared whole.
pub fn changes(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    diff(&mut String::new(), Some(old), Some(new), &mut out);
    out
}

fn diff(path: &mut String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Change>) {
    match (old, new) {
        // An object added or removed is listed leaf by leaf, as if compared with an empty one.
        (None, Some(Value::Object(b))) => diff(
            path,
            Some(&Value::Object(Map::new())),
            Some(&Value::Object(b.clone())),
            out,
        ),
        (Some(Value::Object(a)), None) => diff(
            path,
            Some(&Value::Object(a.clone())),
            Some(&Value::Object(Map::new())),
            out,
        ),
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: BTreeMap<&String, ()> = a.keys().chain(b.keys()).map(|k| (k, ())).collect();
            for key in keys.keys() {
                let len = path.len();
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                diff(path, a.get(*key), b.get(*key), out);
                path.truncate(len);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Change {
            path: if path.is_empty() { "/".into() } else { path.clone() },
            old: a.cloned(),
            new: b.cloned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_name_each_differing_leaf_by_json_pointer_with_escaped_keys() {
        let old =
            json!({"metadata": {"labels": {"vx-rail.io/role": "primary"}}, "data": {"a": "1", "b": [1]}});
        let new = json!({"metadata": {"labels": {"vx-rail.io/role": "member"}}, "data": {"a": "1", "b": [1, 2], "c": "x"}});
        let got = changes(&old, &new);
        let paths: Vec<&str> = got.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["/data/b", "/data/c", "/metadata/labels/vx-rail.io~1role"]);
        assert_eq!(got[1].old, None);
        assert_eq!(got[2].old, Some(json!("primary")));
        assert_eq!(got[2].new, Some(json!("member")));
    }

    #[test]
    fn a_node_is_compared_only_on_the_contracts_labels_annotations_and_taints() {
        let scope = Scope::default();
        let node = json!({
            "metadata": {"labels": {"kubernetes.io/hostname": "e1", "vx-rail.io/role": "member"},
                         "annotations": {"other": "x"}},
            "spec": {"taints": [{"key": "vx-rail.io/storage-not-ready", "effect": "NoSchedule"},
                                {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]},
            "status": {"conditions": []}
        });
        assert_eq!(
            scope.projection(Subject::Node, &node),
            json!({"metadata": {"labels": {"vx-rail.io/role": "member"}, "annotations": {}},
                   "spec": {"taints": [{"key": "vx-rail.io/storage-not-ready", "effect": "NoSchedule"}]}})
        );
    }

    #[test]
    fn a_body_of_another_kind_is_refused_with_what_it_was() {
        let err = EventList::decode(br#"{"kind":"Status","apiVersion":"v1"}"#).unwrap_err();
        assert!(err.to_string().contains("got kind \"Status\""), "{err}");
        let err = EventList::decode(b"not json").unwrap_err();
        assert!(err.to_string().starts_with("not an audit EventList"), "{err}");
    }
}
