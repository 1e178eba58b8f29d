//! Palisade's protobuf contract: the message types every component exchanges, in process and
//! on the wire, and the gRPC clients and servers generated from proto/palisade/v1.

/// The `palisade.v1` package.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("palisade.v1");

    /// Encoded `FileDescriptorSet` of palisade.v1, served through gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("palisade_v1_descriptor");
}

pub use prost_types;

pub mod wire;

mod priority;

pub use priority::{ParsePriorityError, PriorityExt};
