//! The searcher actors: answer the queries too costly for an async worker (facets, relevance,
//! highlighting, wildcards, cold caches) and the live tail's windows, on threads of their own.
//! Their number bounds how many such queries run at once; others wait in the mailbox.

use std::sync::Arc;

use actix::prelude::*;
use palisade_core::ids::TenantId;
use palisade_proto::v1::{SearchRequest, TailResponse};
use palisade_proto::wire;

use crate::engine::SearchEngine;
use crate::error::SearchError;
use crate::indexer::Positions;
use crate::query::Node;

/// A query of one tenant. The answer's hits hold their stored records undecoded.
#[derive(Message)]
#[rtype(result = "Result<wire::SearchResponse, SearchError>")]
pub struct RunSearch {
    pub tenant: TenantId,
    pub request: SearchRequest,
}

/// The records of one tenant matching a query that became searchable between two commits.
#[derive(Message)]
#[rtype(result = "Result<Vec<TailResponse>, SearchError>")]
pub struct TailWindow {
    pub tenant: TenantId,
    pub query: Node,
    pub from: Positions,
    pub to: Positions,
}

/// Answers queries; several run in parallel, each on its own thread.
pub struct Searcher {
    /// Shared by every searcher thread and by callers answering cheap queries themselves.
    pub(crate) engine: Arc<SearchEngine>,
}

impl Actor for Searcher {
    type Context = SyncContext<Self>;
}

impl Handler<RunSearch> for Searcher {
    type Result = Result<wire::SearchResponse, SearchError>;

    fn handle(&mut self, message: RunSearch, _context: &mut SyncContext<Self>) -> Self::Result {
        self.engine.run(&message.tenant, &message.request)
    }
}

impl Handler<TailWindow> for Searcher {
    type Result = Result<Vec<TailResponse>, SearchError>;

    fn handle(&mut self, message: TailWindow, _context: &mut SyncContext<Self>) -> Self::Result {
        self.engine.tail_window(&message)
    }
}
