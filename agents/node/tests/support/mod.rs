//! Test support: servers, containerd and images shared by the integration tests.
#![allow(dead_code)]

pub mod ack_server;
pub mod containerd;
pub mod image;
