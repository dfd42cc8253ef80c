//! The HTTP handlers of the targets API and [`router`], which mounts them. Each handler checks
//! credentials first, then the request, then takes the project's lock, stores, and publishes.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use livegate_protocol::FieldError;
use livegate_protocol::target::Target;
use serde_json::{Value, json};
use uuid::Uuid;

use super::api_error::ApiError;
use super::auth::Caller;
use super::envelope::{Reply, RequestMeta};
use super::model::{Page, TargetPatch, parse_bulk, parse_new_target};
use super::store::{Change, StoreError, TargetStore};
use super::{MAX_BODY_BYTES, TargetsApi};
use crate::{Publisher, events};

/// The collection route.
pub const TARGETS_PATH: &str = "/v2/projects/{project_id}/targets";
/// The item route.
pub const TARGET_PATH: &str = "/v2/projects/{project_id}/targets/{target_id}";

type Api<S, P> = State<Arc<TargetsApi<S, P>>>;

/// The targets API's routes, ready to serve or to merge into a bigger router.
pub fn router<S: TargetStore, P: Publisher + 'static>(api: TargetsApi<S, P>) -> Router {
    Router::new()
        .route(
            TARGETS_PATH,
            get(list::<S, P>)
                .post(create::<S, P>)
                .patch(bulk_patch::<S, P>)
                .fallback(method_not_allowed),
        )
        .route(
            TARGET_PATH,
            get(get_one::<S, P>)
                .patch(patch_one::<S, P>)
                .delete(delete_one::<S, P>)
                .fallback(method_not_allowed),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(api))
}

// === handlers ===

async fn list<S: TargetStore, P: Publisher>(
    State(api): Api<S, P>,
    meta: RequestMeta,
    headers: HeaderMap,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let (project, _) = api.auth.authorize(&headers, &project).await?;
        let page = Page::parse(query.as_deref())?;
        let mut all = api.store.list(project).await?;
        all.sort_by(|a, b| {
            (a.target_name.to_lowercase(), a.target_id)
                .cmp(&(b.target_name.to_lowercase(), b.target_id))
        });
        let total = all.len();
        let page: Vec<Target> = all.into_iter().skip(page.offset).take(page.limit).collect();
        Ok(data(StatusCode::OK, Some(total), None, json!(page)))
    };
    meta.respond(result.await)
}

async fn get_one<S: TargetStore, P: Publisher>(
    State(api): Api<S, P>,
    meta: RequestMeta,
    headers: HeaderMap,
    Path((project, target)): Path<(String, String)>,
) -> Response {
    let result = async {
        let (project, _) = api.auth.authorize(&headers, &project).await?;
        let target_id = target_id(project, &target)?;
        match api.store.get(project, target_id).await? {
            Some(t) => Ok(data(StatusCode::OK, None, None, json!(t))),
            None => Err(ApiError::no_target(project, target_id)),
        }
    };
    meta.respond(result.await)
}

async fn create<S: TargetStore, P: Publisher>(
    State(api): Api<S, P>,
    meta: RequestMeta,
    headers: HeaderMap,
    Path(project): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let (project, caller) = api.auth.authorize(&headers, &project).await?;
        let target = parse_new_target(&json_body(body)?)?;
        let _order = api.locks.lock(project).await;
        api.check_parent(project, target.target_id, target.parent_target_id)
            .await?;
        api.store.create(project, &target).await?;
        log_change(&meta, &caller, project, "created", target.target_id);
        let published = api.publish(project, None, Some(&target)).await;
        Ok(data(
            StatusCode::CREATED,
            None,
            Some(published.note("Target created")),
            json!(target),
        ))
    };
    meta.respond(result.await)
}

async fn patch_one<S: TargetStore, P: Publisher>(
    State(api): Api<S, P>,
    meta: RequestMeta,
    headers: HeaderMap,
    Path((project, target)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let (project, caller) = api.auth.authorize(&headers, &project).await?;
        let target_id = target_id(project, &target)?;
        let patch = TargetPatch::parse(&json_body(body)?, target_id)?;
        let _order = api.locks.lock(project).await;
        if let Some(parent) = patch.parent_target_id {
            api.check_parent(project, target_id, parent).await?;
        }
        let change = match api.store.update(project, &[(target_id, patch)]).await {
            Ok(mut changes) if changes.len() == 1 => changes.remove(0),
            Ok(_) | Err(StoreError::NotFound(_)) => {
                return Err(ApiError::no_target(project, target_id));
            }
            Err(e) => return Err(e.into()),
        };
        let message = if change.before == change.after {
            "No change".to_owned()
        } else {
            log_change(&meta, &caller, project, "updated", target_id);
            api.publish_change(project, &change)
                .await
                .note("Target updated")
        };
        Ok(data(
            StatusCode::OK,
            None,
            Some(message),
            json!(change.after),
        ))
    };
    meta.respond(result.await)
}

async fn bulk_patch<S: TargetStore, P: Publisher>(
    State(api): Api<S, P>,
    meta: RequestMeta,
    headers: HeaderMap,
    Path(project): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let (project, caller) = api.auth.authorize(&headers, &project).await?;
        let edits = parse_bulk(&json_body(body)?)?;
        let _order = api.locks.lock(project).await;
        let changes = match api.store.update(project, &edits).await {
            Ok(changes) => changes,
            Err(StoreError::NotFound(missing)) => {
                return Err(ApiError::NotFound {
                    message: format!(
                        "{} of the targets do not exist in project {project}; nothing was changed",
                        missing.len()
                    ),
                    errors: edits
                        .iter()
                        .enumerate()
                        .filter(|(_, (id, _))| missing.contains(id))
                        .map(|(i, (id, _))| {
                            FieldError::new(format!("/{i}/target_id"), format!("no target {id}"))
                        })
                        .collect(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let mut all_published = Published::Nothing;
        for change in changes.iter().filter(|c| c.before != c.after) {
            log_change(&meta, &caller, project, "updated", change.after.target_id);
            all_published = all_published.and(api.publish_change(project, change).await);
        }
        let updated: Vec<&Target> = changes.iter().map(|c| &c.after).collect();
        let message =
            all_published.note(&format!("Successfully updated {} target(s)", updated.len()));
        Ok(data(
            StatusCode::OK,
            Some(updated.len()),
            Some(message),
            json!(updated),
        ))
    };
    meta.respond(result.await)
}

async fn delete_one<S: TargetStore, P: Publisher>(
    State(api): Api<S, P>,
    meta: RequestMeta,
    headers: HeaderMap,
    Path((project, target)): Path<(String, String)>,
) -> Response {
    let result = async {
        let (project, caller) = api.auth.authorize(&headers, &project).await?;
        let target_id = target_id(project, &target)?;
        let _order = api.locks.lock(project).await;
        let Some(removed) = api.store.delete(project, target_id).await? else {
            return Err(ApiError::no_target(project, target_id));
        };
        log_change(&meta, &caller, project, "deleted", target_id);
        // A 204 has no body to say so: a failed publish is only logged.
        api.publish(project, Some(&removed), None).await;
        Ok(Reply::NoContent)
    };
    meta.respond(result.await)
}

async fn method_not_allowed(meta: RequestMeta) -> Response {
    meta.respond(Err(ApiError::MethodNotAllowed))
}

// === impl TargetsApi ===

impl<S: TargetStore, P: Publisher> TargetsApi<S, P> {
    /// A parent must be another target of the same project.
    async fn check_parent(
        &self,
        project: Uuid,
        target: Uuid,
        parent: Option<Uuid>,
    ) -> Result<(), ApiError> {
        let Some(parent) = parent else { return Ok(()) };
        if parent == target {
            return Err(ApiError::Validation(vec![FieldError::new(
                "parent_target_id",
                "a target cannot be its own parent",
            )]));
        }
        match self.store.get(project, parent).await? {
            Some(_) => Ok(()),
            None => Err(ApiError::Validation(vec![FieldError::new(
                "parent_target_id",
                format!("project {project} has no target {parent}"),
            )])),
        }
    }

    async fn publish_change(&self, project: Uuid, change: &Change) -> Published {
        self.publish(project, Some(&change.before), Some(&change.after))
            .await
    }

    /// Publishes the event the change derives (CONTRACT §4), if any.
    async fn publish(
        &self,
        project: Uuid,
        before: Option<&Target>,
        after: Option<&Target>,
    ) -> Published {
        let publication = match events::target_change(project, before, after) {
            Ok(Some(p)) => p,
            Ok(None) => return Published::Nothing,
            Err(e) => {
                tracing::error!(%project, error = %e, "a stored target made an invalid publication");
                return Published::Failed;
            }
        };
        let event = publication.event;
        match self.publisher.publish(publication).await {
            Ok(event_id) => {
                tracing::debug!(%project, event = event.as_str(), %event_id, "published");
                Published::Sent
            }
            Err(e) => {
                let cause = std::error::Error::source(&e).map(ToString::to_string);
                tracing::warn!(%project, event = event.as_str(), error = %e, ?cause,
                    "stored a target change but could not publish its event");
                Published::Failed
            }
        }
    }
}

/// What became of the events of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Published {
    Nothing,
    Sent,
    Failed,
}

impl Published {
    fn and(self, next: Published) -> Published {
        match (self, next) {
            (Published::Failed, _) | (_, Published::Failed) => Published::Failed,
            (Published::Sent, _) | (_, Published::Sent) => Published::Sent,
            (Published::Nothing, Published::Nothing) => Published::Nothing,
        }
    }

    /// The envelope's `message`.
    fn note(self, done: &str) -> String {
        match self {
            Published::Nothing | Published::Sent => done.to_owned(),
            Published::Failed => format!("{done}; the live event could not be published"),
        }
    }
}

// === request pieces ===

fn data(status: StatusCode, total: Option<usize>, message: Option<String>, data: Value) -> Reply {
    Reply::Data {
        status,
        total,
        message,
        data,
    }
}

/// A path target id that is not a UUID names no target: 404.
fn target_id(project: Uuid, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::no_target(project, format!("{raw:?}")))
}

/// The body as JSON: 413 past [`MAX_BODY_BYTES`], 400 when it is not JSON.
fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(MAX_BODY_BYTES)
        } else {
            ApiError::InvalidJson(rejection.body_text())
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

fn log_change(meta: &RequestMeta, caller: &Caller, project: Uuid, what: &str, target: Uuid) {
    match caller {
        Caller::User { sub, sid } => tracing::info!(request_id = %meta.request_id, %project,
            %target, user = %sub, session = %sid, "target {what}"),
        Caller::ApiKey => tracing::info!(request_id = %meta.request_id, %project, %target,
            credential = "api_key", "target {what}"),
    }
}
