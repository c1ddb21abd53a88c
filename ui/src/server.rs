//! The HTTP side: the page shell and its assets (compiled into the binary), the views as JSON, and
//! `/events`, a server-sent event per change the watches saw. Read-only unless actions are turned
//! on ([`Shared::with_actions`]): then `POST /api/actions` authenticates the person's bearer token
//! with a TokenReview and acts as that person by impersonation, so that RBAC decides and the API
//! server's audit records the person. `POST /api/actions/preview` (always there) returns the exact
//! `kubectl` command of an action.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::actions::{Action, Request};
use crate::store::Store;
use crate::views::{self, NodeQuery};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// What changed, as sent on `/events`.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The kind (`EdgeCluster`, `EdgeNode`, …).
    pub kind: &'static str,
    /// Its namespace.
    pub namespace: String,
    /// Its name (empty for a relist of the whole kind).
    pub name: String,
}

/// What the watches and the handlers share.
#[derive(Clone)]
pub struct Shared {
    store: Arc<RwLock<Store>>,
    changes: broadcast::Sender<Change>,
    synced: Arc<AtomicUsize>,
    kinds: usize,
    /// Set when the server stops: ends every open change stream, which would otherwise hold the
    /// graceful shutdown open for as long as a browser keeps the page.
    stopping: tokio::sync::watch::Sender<bool>,
    /// With actions on: the UI's own client configuration (it must be allowed to create
    /// TokenReviews and to impersonate users and groups); each action is sent with a copy that
    /// impersonates the person.
    actions: Option<Arc<kube::Config>>,
    /// With `--audit-dir`: where the Audit view reads the log and the published checkpoint.
    audit: Option<Arc<crate::audit::Source>>,
}

impl Shared {
    /// An empty store, ready once `kinds` watches have listed.
    pub fn new(kinds: usize) -> Shared {
        let (changes, _) = broadcast::channel(1024);
        Shared {
            store: Arc::default(),
            changes,
            synced: Arc::default(),
            kinds,
            stopping: tokio::sync::watch::Sender::new(false),
            actions: None,
            audit: None,
        }
    }

    /// Turns the Audit view on: it reads the log and the published checkpoint from `source`.
    pub fn with_audit(mut self, source: crate::audit::Source) -> Shared {
        self.audit = Some(Arc::new(source));
        self
    }

    /// Turns actions on: `config` is the UI's own client configuration, used for TokenReviews and,
    /// impersonating the person, for the actions.
    pub fn with_actions(mut self, config: kube::Config) -> Shared {
        self.actions = Some(Arc::new(config));
        self
    }

    /// A store already filled (tests, benchmarks, a one-off rendering).
    pub fn with_store(store: Store) -> Shared {
        let shared = Shared::new(0);
        if let Ok(mut s) = shared.store.write() {
            *s = store;
        }
        shared
    }

    /// Changes the store with `f` and tells every open page what changed.
    pub fn update(&self, change: Change, f: impl FnOnce(&mut Store)) {
        // A poisoned lock means a panic while writing, which the store's functions do not do;
        // recover the data rather than stop serving.
        let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
        f(&mut store);
        drop(store);
        // No page open is not an error.
        let _ = self.changes.send(change);
    }

    /// Records that one more watch has listed its kind.
    pub fn mark_synced(&self) {
        self.synced.fetch_add(1, Ordering::Relaxed);
    }

    fn ready(&self) -> bool {
        self.synced.load(Ordering::Relaxed) >= self.kinds
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The UI's routes over `shared`.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/sites", get(page))
        .route("/nodes/{namespace}/{name}", get(page))
        .route("/workflows", get(page))
        .route("/takeover", get(page))
        .route("/audit", get(page))
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/api/sites", get(api_sites))
        .route("/api/nodes/{namespace}/{name}", get(api_node))
        .route("/api/workflows", get(api_workflows))
        .route("/api/takeover", get(api_takeover))
        .route("/api/audit", get(api_audit))
        .route("/api/actions", get(api_actions).post(act))
        .route("/api/actions/preview", post(preview))
        .route("/events", get(events))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page\n") })
        .with_state(shared)
}

/// Serves `router(shared)` on `listener` until `stop` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Shared,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = shared.stopping.clone();
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(async move {
            stop.await;
            stopping.send_replace(true);
        })
        .await
}

fn hardened(mut response: Response) -> Response {
    let h = response.headers_mut();
    // Everything the page needs comes from this server; nothing inline, nothing from elsewhere.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    hardened(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

fn json<T: Serialize>(value: &T) -> Response {
    let mut r = Json(value).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    hardened(r)
}

fn error(status: StatusCode, message: String) -> Response {
    hardened((status, Json(serde_json::json!({ "error": message }))).into_response())
}

async fn api_sites(State(shared): State<Shared>, Query(query): Query<NodeQuery>) -> Response {
    let store = shared.read();
    match views::sites(&store, &query) {
        Ok(view) => json(&view),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn api_node(State(shared): State<Shared>, Path((namespace, name)): Path<(String, String)>) -> Response {
    let store = shared.read();
    match views::node(&store, &namespace, &name) {
        Some(view) => json(&view),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no EdgeNode {name} in namespace {namespace}"),
        ),
    }
}

async fn api_workflows(State(shared): State<Shared>) -> Response {
    json(&views::workflows(&shared.read()))
}

async fn api_takeover(State(shared): State<Shared>) -> Response {
    json(&views::takeover(&shared.read()))
}

async fn api_audit(State(shared): State<Shared>, Query(query): Query<crate::audit::AuditQuery>) -> Response {
    let Some(source) = shared.audit.clone() else {
        return json(&crate::audit::disabled());
    };
    // A bad selection is answered before the log is read.
    if let Err(e) = query.filter() {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let (entries, verification) = match source.load().await {
        Ok(loaded) => loaded,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let dir = source.dir.display().to_string();
    match crate::audit::view(&dir, &entries, &query, verification) {
        Ok(view) => json(&view),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

async fn api_actions(State(shared): State<Shared>) -> Response {
    json(&serde_json::json!({ "enabled": shared.actions.is_some() }))
}

async fn preview(body: Bytes) -> Response {
    match Action::parse(&body) {
        Ok(action) => json(&serde_json::json!({ "command": action.kubectl() })),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// The bearer token of `Authorization: Bearer <token>`, if that is what the header holds.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The person behind `token` (user name and groups), or `None` when the API server does not
/// authenticate it.
async fn authenticate(
    client: kube::Client,
    token: &str,
) -> Result<Option<(String, Vec<String>)>, kube::Error> {
    use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.to_owned(),
            ..TokenReviewSpec::default()
        },
        ..TokenReview::default()
    };
    let reviewed = kube::Api::<TokenReview>::all(client)
        .create(&kube::api::PostParams::default(), &review)
        .await?;
    let Some(status) = reviewed.status else {
        return Ok(None);
    };
    if status.authenticated != Some(true) {
        return Ok(None);
    }
    Ok(status
        .user
        .and_then(|u| u.username.map(|name| (name, u.groups.unwrap_or_default()))))
}

/// Sends `request` with `client` (which impersonates the person).
async fn send(client: kube::Client, request: Request) -> Result<(), kube::Error> {
    use kube::api::{Patch, PatchParams, PostParams};
    use nodewright_api::{EdgeCluster, StorageUpgrade};
    let params = PatchParams {
        field_manager: Some("nodewright-ui".into()),
        ..PatchParams::default()
    };
    match request {
        Request::Create { namespace, object } => {
            let upgrade: StorageUpgrade = serde_json::from_value(object).map_err(kube::Error::SerdeError)?;
            let params = PostParams {
                field_manager: params.field_manager.clone(),
                ..PostParams::default()
            };
            kube::Api::<StorageUpgrade>::namespaced(client, &namespace)
                .create(&params, &upgrade)
                .await?;
        }
        Request::PatchStorageUpgrade {
            namespace,
            name,
            patch,
        } => {
            kube::Api::<StorageUpgrade>::namespaced(client, &namespace)
                .patch(&name, &params, &Patch::Merge(patch))
                .await?;
        }
        Request::PatchEdgeCluster {
            namespace,
            name,
            patch,
        } => {
            kube::Api::<EdgeCluster>::namespaced(client, &namespace)
                .patch(&name, &params, &Patch::Merge(patch))
                .await?;
        }
    }
    Ok(())
}

fn kube_error(what: &str, e: kube::Error) -> Response {
    match e {
        // The API server's answer (403 when RBAC does not allow the person, 404, 409, 422 …)
        // goes back as it is.
        kube::Error::Api(status) => error(
            StatusCode::from_u16(status.code).unwrap_or(StatusCode::BAD_GATEWAY),
            status.message,
        ),
        other => error(StatusCode::BAD_GATEWAY, format!("{what}: {other}")),
    }
}

/// `POST /api/actions`: only with actions on, only with a bearer token the API server
/// authenticates; the action is sent as that person. No cookie is read: a page of another origin
/// cannot make a browser send the `Authorization` header here (that needs CORS, which this server
/// never allows), so there is nothing to forge.
async fn act(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(config) = shared.actions.clone() else {
        return error(
            StatusCode::FORBIDDEN,
            "actions are off in this UI (nodewright ui --enable-actions); run the command shown instead"
                .into(),
        );
    };
    let Some(token) = bearer(&headers) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "no bearer token: send Authorization: Bearer <your token>".into(),
        );
    };
    let action = match Action::parse(&body) {
        Ok(action) => action,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let own = match kube::Client::try_from((*config).clone()) {
        Ok(client) => client,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("client: {e}")),
    };
    let (user, groups) = match authenticate(own, token).await {
        Ok(Some(person)) => person,
        Ok(None) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "the API server does not accept this token".into(),
            );
        }
        Err(e) => return kube_error("token review", e),
    };
    let mut as_person = (*config).clone();
    as_person.auth_info.impersonate = Some(user.clone());
    as_person.auth_info.impersonate_groups = Some(groups);
    let client = match kube::Client::try_from(as_person) {
        Ok(client) => client,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("client: {e}")),
    };
    let command = action.kubectl();
    match send(client, action.request()).await {
        Ok(()) => {
            tracing::info!(%user, %command, "action done");
            json(&serde_json::json!({ "user": user, "command": command }))
        }
        Err(e) => kube_error("action", e),
    }
}

async fn readyz(State(shared): State<Shared>) -> Response {
    if shared.ready() {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "listing\n").into_response()
    }
}

async fn events(State(shared): State<Shared>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = shared.changes.subscribe();
    let stopping = shared.stopping.subscribe();
    let stream = futures::stream::unfold((rx, stopping), |(mut rx, mut stopping)| async move {
        let received = tokio::select! {
            r = rx.recv() => r,
            // The server stops (or is gone): end the stream; the browser reconnects elsewhere.
            _ = stopping.wait_for(|s| *s) => return None,
        };
        let change = match received {
            Ok(change) => change,
            // Too slow a reader missed some: tell it everything may have changed.
            Err(broadcast::error::RecvError::Lagged(_)) => Change {
                kind: "All",
                namespace: String::new(),
                name: String::new(),
            },
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        let data = serde_json::to_string(&change).unwrap_or_default();
        Some((Ok(Event::default().event("change").data(data)), (rx, stopping)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
