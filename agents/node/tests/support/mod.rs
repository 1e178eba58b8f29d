//! Test support: servers and fixtures shared by the integration tests.
#![allow(dead_code)]

pub mod ack_server;
