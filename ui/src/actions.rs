//! The UI's actions, as data: what a person asked for, the exact `kubectl` command it is, and the
//! request the server sends (as that person, by impersonation) when actions are on. Pure: parsing
//! and validating a request, and rendering it; the server does the I/O.

use serde::Deserialize;
use serde_json::{Value, json};

use nodewright_api::common::WorkflowMode;

/// The API group and version of Nodewright's kinds.
pub const API_VERSION: &str = "nodewright.io/v1alpha1";

/// The `spec.workflows` keys of an EdgeCluster.
pub const WORKFLOW_KEYS: [&str; 8] = [
    "bootstrap",
    "migration",
    "storageUpgrade",
    "bondFlip",
    "taints",
    "bootRecovery",
    "network",
    "storage",
];

/// One action, as the page sends it (`{"action": "setMode", …}`).
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "action", rename_all = "camelCase", deny_unknown_fields)]
pub enum Action {
    /// Create a StorageUpgrade for the operator to carry out.
    #[serde(rename_all = "camelCase")]
    RequestUpgrade {
        /// Namespace of the site.
        namespace: String,
        /// Name of the new StorageUpgrade.
        name: String,
        /// The EdgeCluster to upgrade.
        cluster: String,
        /// Storage stack version before.
        from_version: String,
        /// Storage stack version after.
        to_version: String,
    },
    /// Set `spec.rollback: true` on a StorageUpgrade.
    #[serde(rename_all = "camelCase")]
    Rollback {
        /// Namespace of the StorageUpgrade.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Set one workflow's mode on an EdgeCluster (`spec.workflows.<workflow>`).
    #[serde(rename_all = "camelCase")]
    SetMode {
        /// Namespace of the EdgeCluster.
        namespace: String,
        /// Its name.
        cluster: String,
        /// One of [`WORKFLOW_KEYS`].
        workflow: String,
        /// The mode to set.
        mode: WorkflowMode,
    },
}

/// A request that cannot be an action: which field and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct Invalid {
    /// The field of the request.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// What the server sends for an action.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Create this StorageUpgrade in `namespace`.
    Create {
        /// Where.
        namespace: String,
        /// The StorageUpgrade, as JSON.
        object: Value,
    },
    /// A JSON merge patch of the StorageUpgrade `name`.
    PatchStorageUpgrade {
        /// Where.
        namespace: String,
        /// Which.
        name: String,
        /// The merge patch.
        patch: Value,
    },
    /// A JSON merge patch of the EdgeCluster `name`.
    PatchEdgeCluster {
        /// Where.
        namespace: String,
        /// Which.
        name: String,
        /// The merge patch.
        patch: Value,
    },
}

fn dns_name(field: &'static str, value: &str) -> Result<(), Invalid> {
    let invalid = |reason: &str| {
        Err(Invalid {
            field,
            reason: format!("{value:?} {reason}"),
        })
    };
    if value.is_empty() || value.len() > 253 {
        return invalid("is not 1 to 253 characters long");
    }
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = value.as_bytes();
    if !bytes.iter().all(|&b| ok(b) || b == b'-' || b == b'.') {
        return invalid("has a character other than a lower-case letter, a digit, '-' or '.'");
    }
    if !bytes.first().is_some_and(|&b| ok(b)) || !bytes.last().is_some_and(|&b| ok(b)) {
        return invalid("does not start and end with a lower-case letter or a digit");
    }
    Ok(())
}

fn version(field: &'static str, value: &str) -> Result<(), Invalid> {
    // The API server checks the full pattern; here only what keeps the command safe to paste.
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '~');
    if value.is_empty() || value.len() > 64 || !value.chars().all(allowed) {
        return Err(Invalid {
            field,
            reason: format!("{value:?} is not a version (digits and dots, at most 64 characters)"),
        });
    }
    Ok(())
}

impl Action {
    /// Parses and checks a request body: every name a DNS name, versions plain, the workflow one
    /// of [`WORKFLOW_KEYS`]. What passes is safe to quote in a shell command.
    pub fn parse(body: &[u8]) -> Result<Action, Invalid> {
        let action: Action = serde_json::from_slice(body).map_err(|e| Invalid {
            field: "body",
            reason: e.to_string(),
        })?;
        action.validate()?;
        Ok(action)
    }

    fn validate(&self) -> Result<(), Invalid> {
        match self {
            Action::RequestUpgrade {
                namespace,
                name,
                cluster,
                from_version,
                to_version,
            } => {
                dns_name("namespace", namespace)?;
                dns_name("name", name)?;
                dns_name("cluster", cluster)?;
                version("fromVersion", from_version)?;
                version("toVersion", to_version)
            }
            Action::Rollback { namespace, name } => {
                dns_name("namespace", namespace)?;
                dns_name("name", name)
            }
            Action::SetMode {
                namespace,
                cluster,
                workflow,
                ..
            } => {
                dns_name("namespace", namespace)?;
                dns_name("cluster", cluster)?;
                if WORKFLOW_KEYS.contains(&workflow.as_str()) {
                    Ok(())
                } else {
                    Err(Invalid {
                        field: "workflow",
                        reason: format!("{workflow:?} is not one of {}", WORKFLOW_KEYS.join(", ")),
                    })
                }
            }
        }
    }

    /// What the server sends for this action.
    pub fn request(&self) -> Request {
        match self {
            Action::RequestUpgrade {
                namespace,
                name,
                cluster,
                from_version,
                to_version,
            } => Request::Create {
                namespace: namespace.clone(),
                object: json!({
                    "apiVersion": API_VERSION,
                    "kind": "StorageUpgrade",
                    "metadata": { "name": name, "namespace": namespace },
                    "spec": {
                        "owner": "operator",
                        "clusterRef": { "name": cluster },
                        "fromVersion": from_version,
                        "toVersion": to_version,
                    },
                }),
            },
            Action::Rollback { namespace, name } => Request::PatchStorageUpgrade {
                namespace: namespace.clone(),
                name: name.clone(),
                patch: json!({ "spec": { "rollback": true } }),
            },
            Action::SetMode {
                namespace,
                cluster,
                workflow,
                mode,
            } => Request::PatchEdgeCluster {
                namespace: namespace.clone(),
                name: cluster.clone(),
                patch: json!({ "spec": { "workflows": { workflow.as_str(): mode.as_str() } } }),
            },
        }
    }

    /// The exact `kubectl` command that does the same (a person can copy it, and run it with
    /// their own credentials). Only valid actions are rendered; their values need no escaping
    /// inside single quotes.
    pub fn kubectl(&self) -> String {
        match self.request() {
            Request::Create { namespace, object } => format!(
                "kubectl -n {namespace} create -f - <<'EOF'\n{}\nEOF",
                serde_json::to_string_pretty(&object).unwrap_or_default()
            ),
            Request::PatchStorageUpgrade {
                namespace,
                name,
                patch,
            } => {
                format!("kubectl -n {namespace} patch storageupgrade {name} --type=merge -p '{patch}'")
            }
            Request::PatchEdgeCluster {
                namespace,
                name,
                patch,
            } => {
                format!("kubectl -n {namespace} patch edgecluster {name} --type=merge -p '{patch}'")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_mode_change_is_a_merge_patch_of_that_one_workflow_field() {
        let action = Action::parse(
            br#"{"action":"setMode","namespace":"nw","cluster":"site-a","workflow":"storageUpgrade","mode":"shadow"}"#,
        )
        .unwrap();
        assert_eq!(
            action.kubectl(),
            r#"kubectl -n nw patch edgecluster site-a --type=merge -p '{"spec":{"workflows":{"storageUpgrade":"shadow"}}}'"#
        );
        assert_eq!(
            action.request(),
            Request::PatchEdgeCluster {
                namespace: "nw".into(),
                name: "site-a".into(),
                patch: json!({"spec":{"workflows":{"storageUpgrade":"shadow"}}}),
            }
        );
    }

    #[test]
    fn a_rollback_sets_only_spec_rollback() {
        let action = Action::parse(br#"{"action":"rollback","namespace":"nw","name":"up-1"}"#).unwrap();
        assert_eq!(
            action.kubectl(),
            r#"kubectl -n nw patch storageupgrade up-1 --type=merge -p '{"spec":{"rollback":true}}'"#
        );
    }

    #[test]
    fn an_upgrade_request_is_a_create_of_an_operator_owned_storage_upgrade() {
        let action = Action::parse(
            br#"{"action":"requestUpgrade","namespace":"nw","name":"up-2","cluster":"site-a","fromVersion":"9.2.4","toVersion":"9.2.5"}"#,
        )
        .unwrap();
        let command = action.kubectl();
        assert!(
            command.starts_with("kubectl -n nw create -f - <<'EOF'\n"),
            "{command}"
        );
        assert!(command.ends_with("\nEOF"), "{command}");
        let Request::Create { object, .. } = action.request() else {
            panic!("not a create")
        };
        assert_eq!(object["spec"]["owner"], "operator");
        assert_eq!(object["spec"]["clusterRef"]["name"], "site-a");
        assert_eq!(object["spec"]["toVersion"], "9.2.5");
    }

    #[test]
    fn a_name_that_could_break_out_of_the_command_is_refused_with_its_field() {
        let err =
            Action::parse(br#"{"action":"rollback","namespace":"nw","name":"x'; rm -rf /"}"#).unwrap_err();
        assert_eq!(err.field, "name");
        let err = Action::parse(
            br#"{"action":"requestUpgrade","namespace":"nw","name":"u","cluster":"c","fromVersion":"1.0","toVersion":"1.0'"}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "toVersion");
    }

    #[test]
    fn an_unknown_workflow_or_mode_or_action_is_refused() {
        let err = Action::parse(
            br#"{"action":"setMode","namespace":"nw","cluster":"c","workflow":"everything","mode":"operator"}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "workflow");
        let err = Action::parse(
            br#"{"action":"setMode","namespace":"nw","cluster":"c","workflow":"taints","mode":"yolo"}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "body");
        let err = Action::parse(br#"{"action":"deleteEverything"}"#).unwrap_err();
        assert_eq!(err.field, "body");
    }
}
