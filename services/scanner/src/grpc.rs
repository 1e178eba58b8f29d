//! The gRPC adapter of the scanner service: the server's authentication layer attached the
//! caller's principal; the adapter checks its role and forwards to the scanner actor with the
//! principal's tenant, never one named in the request.

use actix::Addr;
use palisade_core::auth::Role;
use palisade_core::bridge::{mailbox_status, principal_of};
use palisade_proto::v1::scanner_service_server::ScannerService;
use palisade_proto::v1::{
    GetVulnDbStatusRequest, GetVulnDbStatusResponse, ScanImageRequest, ScanImageResponse,
};
use tonic::{Request, Response, Status};

use crate::service::{ScanImage, ScannerActor, VulnDbStatus};

/// Serves palisade.v1.ScannerService from the scanner actor.
#[derive(Clone)]
pub struct ScannerGrpc {
    actor: Addr<ScannerActor>,
}

impl ScannerGrpc {
    /// An adapter forwarding to `actor`.
    pub fn new(actor: Addr<ScannerActor>) -> ScannerGrpc {
        ScannerGrpc { actor }
    }
}

#[tonic::async_trait]
impl ScannerService for ScannerGrpc {
    async fn scan_image(
        &self,
        request: Request<ScanImageRequest>,
    ) -> Result<Response<ScanImageResponse>, Status> {
        let principal = principal_of(&request)?;
        // a scan writes findings
        principal.require(Role::Analyst).map_err(Status::from)?;
        let response = self
            .actor
            .send(ScanImage {
                tenant: principal.tenant,
                request: request.into_inner(),
            })
            .await
            .map_err(mailbox_status)??;
        Ok(Response::new(response))
    }

    async fn get_vuln_db_status(
        &self,
        request: Request<GetVulnDbStatusRequest>,
    ) -> Result<Response<GetVulnDbStatusResponse>, Status> {
        let principal = principal_of(&request)?;
        principal.require(Role::ReadOnly).map_err(Status::from)?;
        let response = self
            .actor
            .send(VulnDbStatus)
            .await
            .map_err(mailbox_status)??;
        Ok(Response::new(response))
    }
}
