//! The gRPC adapter of palisade.v1.NotifyService: the caller's tenant's targets and their
//! dead letters. A target of another tenant is reported as unknown, so a caller learns nothing
//! about other tenants' targets.

use palisade_core::auth::{Principal, Role};
use palisade_core::bridge::principal_of;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::notify_service_server::NotifyService;
use palisade_proto::v1::{
    DeadLetter as DeadLetterMessage, ListDeadLettersRequest, ListDeadLettersResponse,
    ListTargetsRequest, ListTargetsResponse, NotifyTargetStatus, ResendDeadLettersRequest,
    ResendDeadLettersResponse,
};
use tonic::{Request, Response, Status};

use crate::dead_letter::DeadLetter;
use crate::error::NotifyError;
use crate::notifier::NotifyMonitor;

/// Dead letters listed per call by default, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

/// Serves NotifyService.
#[derive(Clone)]
pub struct NotifyGrpc {
    monitor: NotifyMonitor,
}

impl NotifyGrpc {
    pub fn new(monitor: NotifyMonitor) -> NotifyGrpc {
        NotifyGrpc { monitor }
    }

    /// The caller's target named `name`.
    fn own_target(&self, principal: &Principal, name: &str) -> Result<(), Status> {
        match self.monitor.target(name) {
            Ok(target) if target.tenant == principal.tenant.as_str() => Ok(()),
            _ => Err(Status::not_found(format!(
                "tenant {} has no notify target named {name:?} [NOTIFY_UNKNOWN_TARGET]",
                principal.tenant
            ))),
        }
    }
}

fn status_of(error: NotifyError) -> Status {
    let code = error.code();
    match error {
        NotifyError::UnknownTarget(_) => Status::not_found(format!("{error} [{code}]")),
        NotifyError::Storage(core) => Status::from(core),
        other => Status::failed_precondition(format!("{other} [{code}]")),
    }
}

fn letter_message(letter: DeadLetter) -> DeadLetterMessage {
    let failed_at = chrono::DateTime::parse_from_rfc3339(&letter.failed_at)
        .ok()
        .map(|time| Timestamp {
            seconds: time.timestamp(),
            nanos: 0,
        });
    DeadLetterMessage {
        sequence: letter.sequence,
        offset: letter.offset,
        alert_id: letter.alert_id,
        rule: letter.rule,
        priority: letter.priority,
        attempts: letter.attempts,
        error: letter.error,
        failed_at,
    }
}

#[tonic::async_trait]
impl NotifyService for NotifyGrpc {
    async fn list_targets(
        &self,
        request: Request<ListTargetsRequest>,
    ) -> Result<Response<ListTargetsResponse>, Status> {
        let principal = principal_of(&request)?;
        principal.require(Role::Analyst)?;
        let targets = self
            .monitor
            .status()
            .targets
            .into_iter()
            .filter(|target| target.tenant == principal.tenant.as_str())
            .map(|target| NotifyTargetStatus {
                name: target.name,
                kind: target.kind,
                lag: target.lag,
                delivered: target.delivered,
                dead_lettered: target.dead_lettered,
                dead_letters_kept: target.dead_letters_kept as u64,
                retrying: target.retrying,
                last_error: target.last_error.unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(ListTargetsResponse { targets }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        let principal = principal_of(&request)?;
        principal.require(Role::Analyst)?;
        let request = request.into_inner();
        self.own_target(&principal, &request.target)?;
        let limit = match request.limit {
            0 => DEFAULT_LIMIT,
            limit => (limit as usize).min(MAX_LIMIT),
        };
        let after = (!request.from_start).then_some(request.after);
        let letters = self
            .monitor
            .dead_letters(&request.target)
            .map_err(status_of)?;
        // one more than asked tells whether a next page exists
        let mut page = letters.list(after, limit + 1).map_err(status_of)?;
        let next_after = (page.len() > limit).then(|| page[limit - 1].sequence);
        page.truncate(limit);
        Ok(Response::new(ListDeadLettersResponse {
            letters: page.into_iter().map(letter_message).collect(),
            next_after,
        }))
    }

    async fn resend_dead_letters(
        &self,
        request: Request<ResendDeadLettersRequest>,
    ) -> Result<Response<ResendDeadLettersResponse>, Status> {
        let principal = principal_of(&request)?;
        principal.require(Role::Admin)?;
        let request = request.into_inner();
        self.own_target(&principal, &request.target)?;
        let sequences = match (request.all, request.sequences.is_empty()) {
            (true, true) => None,
            (false, false) => Some(request.sequences),
            (true, false) => {
                return Err(Status::invalid_argument(
                    "give either sequences or all, not both",
                ));
            }
            (false, true) => {
                return Err(Status::invalid_argument(
                    "give the sequences of the dead letters to send again, or all",
                ));
            }
        };
        let resent = self
            .monitor
            .resend(&request.target, sequences)
            .await
            .map_err(status_of)?;
        tracing::info!(tenant = %principal.tenant, by = %principal.key_id, target = %request.target, delivered = resent.delivered, failed = resent.failed, "dead letters sent again");
        Ok(Response::new(ResendDeadLettersResponse {
            delivered: resent.delivered,
            failed: resent.failed,
            missing: resent.missing,
        }))
    }
}
