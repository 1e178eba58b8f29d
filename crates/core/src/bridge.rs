//! The bridge between actix actors and gRPC.
//!
//! Actors run in an actix `System` on threads of their own; tonic runs on a multi-thread tokio
//! runtime. They meet through `Addr::send`, whose future needs no actix runtime. A service's
//! peer handle (defined in the service crate) is either the actor's `Addr` in this process or a
//! tonic client of the same service in another process; both carry the caller's [`Principal`]:
//! in process as a value, across processes as an internal service credential plus the headers
//! that name the tenant it acts for.

use std::thread::JoinHandle;

use tonic::metadata::MetadataValue;

use crate::auth::{Principal, ROLE_HEADER, TENANT_HEADER};
use crate::error::{CoreError, CoreResult};

/// The principal the authentication layer attached to a request. A request without one never
/// passed authentication, which is a wiring bug, reported as UNAUTHENTICATED.
pub fn principal_of<T>(request: &tonic::Request<T>) -> Result<Principal, tonic::Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| tonic::Status::unauthenticated("request was not authenticated"))
}

/// Maps a failed `Addr::send` (actor stopped, mailbox closed or timed out) to a status.
pub fn mailbox_status(error: actix::MailboxError) -> tonic::Status {
    match error {
        actix::MailboxError::Closed => tonic::Status::unavailable("service is shutting down"),
        actix::MailboxError::Timeout => {
            tonic::Status::deadline_exceeded("service did not answer in time")
        }
    }
}

/// Prepares a request to a remote peer: the internal service token, and the tenant and role of
/// the principal the call is made for.
pub fn remote_request<T>(
    message: T,
    principal: &Principal,
    service_token: &str,
) -> Result<tonic::Request<T>, tonic::Status> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    let authorization: MetadataValue<_> = format!("Bearer {service_token}")
        .parse()
        .map_err(|_| tonic::Status::internal("service token is not valid header text"))?;
    metadata.insert("authorization", authorization);
    let tenant: MetadataValue<_> = principal
        .tenant
        .as_str()
        .parse()
        .map_err(|_| tonic::Status::internal("tenant id is not valid header text"))?;
    metadata.insert(TENANT_HEADER, tenant);
    metadata.insert(
        ROLE_HEADER,
        MetadataValue::from_static(principal.role.as_str()),
    );
    Ok(request)
}

/// An actix `System` running on a thread of its own.
pub struct ActorSystem {
    system: actix::System,
    thread: Option<JoinHandle<()>>,
}

impl ActorSystem {
    /// Starts a system named `name` and runs `init` inside it to start the actors; returns what
    /// `init` returns (typically their addresses) with the system handle.
    pub fn start<T, F>(name: &str, init: F) -> CoreResult<(ActorSystem, T)>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread_name = format!("actors-{name}");
        let system_name = name.to_string();
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let runner = actix::System::with_tokio_rt(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap_or_else(|error| panic!("cannot build the actor runtime: {error}"))
                });
                let started = runner.block_on(async move {
                    let handles = init();
                    (actix::System::current(), handles)
                });
                if sender.send(started).is_err() {
                    return;
                }
                if let Err(error) = runner.run() {
                    tracing::error!(system = %system_name, %error, "actor system stopped with an error");
                }
            })
            .map_err(|error| CoreError::Task(format!("cannot start actor thread: {error}")))?;
        let (system, handles) = receiver
            .recv()
            .map_err(|_| CoreError::Task("actor system failed while starting".into()))?;
        Ok((
            ActorSystem {
                system,
                thread: Some(thread),
            },
            handles,
        ))
    }

    /// Stops every actor of the system and waits for its thread.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.system.stop();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("actor system thread panicked");
        }
    }
}

impl Drop for ActorSystem {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop_and_join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::prelude::*;

    struct Doubler;

    impl Actor for Doubler {
        type Context = Context<Self>;
    }

    #[derive(Message)]
    #[rtype(result = "u64")]
    struct Double(u64);

    impl Handler<Double> for Doubler {
        type Result = u64;
        fn handle(&mut self, message: Double, _context: &mut Context<Self>) -> u64 {
            message.0 * 2
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokio_tasks_reach_actors_of_a_system_on_its_own_thread() {
        let (system, addr) = ActorSystem::start("test", || Doubler.start()).expect("start");
        let mut tasks = Vec::new();
        for value in 0..100u64 {
            let addr = addr.clone();
            tasks.push(tokio::spawn(async move { addr.send(Double(value)).await }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.expect("join").expect("mailbox");
        }
        assert_eq!(total, 2 * (0..100).sum::<u64>());
        system.stop();
        let error = addr.send(Double(1)).await.expect_err("stopped");
        assert_eq!(mailbox_status(error).code(), tonic::Code::Unavailable);
    }

    #[test]
    fn remote_requests_carry_the_service_token_and_the_principal() {
        let principal = Principal {
            tenant: crate::ids::TenantId::new("acme").expect("tenant"),
            role: crate::auth::Role::Analyst,
            key_id: "k".into(),
            cluster: None,
        };
        let request = remote_request((), &principal, "pal_service").expect("request");
        let metadata = request.metadata();
        assert_eq!(
            metadata.get("authorization").expect("auth"),
            "Bearer pal_service"
        );
        assert_eq!(metadata.get(TENANT_HEADER).expect("tenant"), "acme");
        assert_eq!(metadata.get(ROLE_HEADER).expect("role"), "analyst");
    }
}
