//! Actions, against the real test API server: the person's bearer token is checked with a
//! TokenReview and the action is sent as that person by impersonation, so the API server's RBAC
//! decides (its 403 comes back as it is) and the change lands under the person's name.

// Test code: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kube::api::Api;
use nodewright_api::{EdgeCluster, StorageUpgrade};
use nodewright_testenv::TestContext;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `POST path` with `body` and, if given, `Authorization: Bearer <token>`: the status and the body.
async fn post(port: u16, path: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

fn token(ctx: &TestContext, account: &str) -> String {
    let out = ctx.kubectl().args(["create", "token", account]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn serve(ctx: &TestContext, actions: bool) -> u16 {
    let kubeconfig = kube::config::Kubeconfig::read_from(ctx.control_plane.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let mut shared = nodewright_ui::Shared::with_store(nodewright_ui::Store::default());
    if actions {
        shared = shared.with_actions(config);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(nodewright_ui::serve(listener, shared, std::future::pending()));
    port
}

fn set_mode(ns: &str) -> String {
    format!(
        r#"{{"action":"setMode","namespace":"{ns}","cluster":"site-a","workflow":"storageUpgrade","mode":"shadow"}}"#
    )
}

#[tokio::test]
async fn actions_are_checked_by_token_review_and_sent_as_the_person_so_rbac_decides() {
    let ctx = TestContext::new("ui-actions").await.unwrap();
    nodewright_testenv::install_crds(&ctx.client, &nodewright_api::crds())
        .await
        .unwrap();
    let ns = ctx.namespace.clone();
    let yaml = format!(
        r#"apiVersion: nodewright.io/v1alpha1
kind: EdgeCluster
metadata: {{name: site-a, namespace: {ns}}}
spec: {{profile: {{topology: MultiNode}}, workflows: {{storageUpgrade: legacy, taints: shadow}}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: site-owner, namespace: {ns}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: onlooker, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: site-owner, namespace: {ns}}}
rules:
- apiGroups: [nodewright.io]
  resources: [edgeclusters, storageupgrades]
  verbs: [get, create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: site-owner, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: site-owner}}
subjects:
- {{kind: ServiceAccount, name: site-owner, namespace: {ns}}}
"#
    );
    nodewright_testenv::apply_yaml(&ctx.client, &yaml, None)
        .await
        .unwrap();
    let owner = token(&ctx, "site-owner");
    let onlooker = token(&ctx, "onlooker");
    let port = serve(&ctx, true).await;
    let body = set_mode(&ns);

    // The command is there for everyone, token or not.
    let (status, preview) = post(port, "/api/actions/preview", None, &body).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        preview["command"],
        format!(
            r#"kubectl -n {ns} patch edgecluster site-a --type=merge -p '{{"spec":{{"workflows":{{"storageUpgrade":"shadow"}}}}}}'"#
        )
    );

    // No token, or one the API server does not know: 401, nothing sent.
    let (status, answer) = post(port, "/api/actions", None, &body).await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = post(port, "/api/actions", Some("not-a-token"), &body).await;
    assert_eq!(status, 401, "{answer}");

    // A person RBAC does not allow: the API server's 403, naming the person (not the UI).
    let (status, answer) = post(port, "/api/actions", Some(&onlooker), &body).await;
    assert_eq!(status, 403, "{answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(
        message.contains(&format!("system:serviceaccount:{ns}:onlooker")),
        "{message}"
    );
    let clusters: Api<EdgeCluster> = ctx.api();
    let site = clusters.get("site-a").await.unwrap();
    assert_eq!(site.spec.workflows.storage_upgrade.as_str(), "legacy");

    // The allowed person: the change lands, that one field only, by a merge patch.
    let (status, answer) = post(port, "/api/actions", Some(&owner), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["user"], format!("system:serviceaccount:{ns}:site-owner"));
    let site = clusters.get("site-a").await.unwrap();
    assert_eq!(site.spec.workflows.storage_upgrade.as_str(), "shadow");
    assert_eq!(site.spec.workflows.taints.as_str(), "shadow");
    let managers: Vec<_> = site
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.manager.as_deref() == Some("nodewright-ui"))
        .collect();
    assert_eq!(managers.len(), 1, "one entry of the UI's field manager");
    assert_eq!(
        managers[0].operation.as_deref(),
        Some("Update"),
        "a patch, not an apply"
    );

    // Request an upgrade, then roll it back, as the same person.
    let create = format!(
        r#"{{"action":"requestUpgrade","namespace":"{ns}","name":"up-1","cluster":"site-a","fromVersion":"9.2.4","toVersion":"9.2.5"}}"#
    );
    let (status, answer) = post(port, "/api/actions", Some(&owner), &create).await;
    assert_eq!(status, 200, "{answer}");
    let rollback = format!(r#"{{"action":"rollback","namespace":"{ns}","name":"up-1"}}"#);
    let (status, answer) = post(port, "/api/actions", Some(&onlooker), &rollback).await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = post(port, "/api/actions", Some(&owner), &rollback).await;
    assert_eq!(status, 200, "{answer}");
    let upgrades: Api<StorageUpgrade> = ctx.api();
    let upgrade = upgrades.get("up-1").await.unwrap();
    assert_eq!(upgrade.spec.to_version, "9.2.5");
    assert!(upgrade.spec.rollback);

    // A request that is not an action: 400 with the field.
    let (status, answer) = post(
        port,
        "/api/actions",
        Some(&owner),
        r#"{"action":"rollback","namespace":"x","name":"A'"}"#,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().starts_with("name:"), "{answer}");
}

#[tokio::test]
async fn with_actions_off_the_ui_refuses_every_action_but_still_shows_the_command() {
    let ctx = TestContext::new("ui-actions-off").await.unwrap();
    let port = serve(&ctx, false).await;
    let body = set_mode(&ctx.namespace);
    let (status, answer) = post(port, "/api/actions", Some("any"), &body).await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("--enable-actions"),
        "{answer}"
    );
    let (status, answer) = post(port, "/api/actions/preview", None, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["command"].as_str().unwrap().starts_with("kubectl -n "),
        "{answer}"
    );
}
