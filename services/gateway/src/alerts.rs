//! The gRPC adapter of palisade.v1.AlertService.

use actix::Addr;
use palisade_core::auth::Role;
use palisade_core::bridge::{mailbox_status, principal_of};
use palisade_core::log::Topic;
use palisade_proto::v1::alert_service_server::AlertService;
use palisade_proto::v1::{
    GetAlertRequest, GetAlertResponse, PublishAlertsRequest, PublishAlertsResponse,
};
use tonic::{Request, Response, Status};

use crate::ingest::{Ingest, PublishAlerts, stored_alert};

/// Serves AlertService: publishing goes to the ingest actor, reads come from the log.
#[derive(Clone)]
pub struct AlertGrpc {
    ingest: Addr<Ingest>,
    topic: Topic,
}

impl AlertGrpc {
    /// An adapter forwarding to `ingest` and reading from `topic`.
    pub fn new(ingest: Addr<Ingest>, topic: Topic) -> AlertGrpc {
        AlertGrpc { ingest, topic }
    }
}

#[tonic::async_trait]
impl AlertService for AlertGrpc {
    async fn publish_alerts(
        &self,
        request: Request<PublishAlertsRequest>,
    ) -> Result<Response<PublishAlertsResponse>, Status> {
        let principal = principal_of(&request)?;
        principal.require(Role::Analyst)?;
        let alerts = request.into_inner().alerts;
        let response = self
            .ingest
            .send(PublishAlerts { principal, alerts })
            .await
            .map_err(mailbox_status)??;
        Ok(Response::new(response))
    }

    async fn get_alert(
        &self,
        request: Request<GetAlertRequest>,
    ) -> Result<Response<GetAlertResponse>, Status> {
        let principal = principal_of(&request)?;
        let id = request.into_inner().id;
        let topic = self.topic.clone();
        let tenant = principal.tenant.to_string();
        let alert = tokio::task::spawn_blocking(move || stored_alert(&topic, &tenant, &id))
            .await
            .map_err(|error| Status::internal(format!("alert lookup failed: {error}")))??;
        Ok(Response::new(GetAlertResponse { alert: Some(alert) }))
    }
}
