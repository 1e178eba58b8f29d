//! Generates the palisade.v1 types, clients and servers, the descriptor set that the servers
//! expose through gRPC reflection, and the search service's own server and client (`wire`).

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "palisade/v1/common.proto",
    "palisade/v1/alert.proto",
    "palisade/v1/finding.proto",
    "palisade/v1/inventory.proto",
    "palisade/v1/agent.proto",
    "palisade/v1/search.proto",
    "palisade/v1/graph.proto",
    "palisade/v1/scanner.proto",
    "palisade/v1/admin.proto",
    "palisade/v1/enrollment.proto",
    "palisade/v1/log.proto",
    "palisade/v1/peer.proto",
    "palisade/v1/notify.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::create_dir_all(out_dir.join("wire"))?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    // The agent stream RPC is named Connect, which would clash with the generated
    // `Client::connect(endpoint)` constructor; clients are built from a `Channel` instead.
    // An alert's output fields decode into a BTreeMap: a handful of entries insert faster
    // there than into a hash map (no hashing, no growth rehashes), which matters when a search
    // page decodes fifty stored alerts, and they list in a stable order.
    tonic_prost_build::configure()
        .build_transport(false)
        .btree_map(".palisade.v1.Alert.output_fields")
        .file_descriptor_set_path(out_dir.join("palisade_v1_descriptor.bin"))
        .compile_protos(PROTOS, &["."])?;
    // The search service once more, as the search service itself serves and calls it: every
    // message is the palisade.v1 type above except Search's answer, `wire::SearchResponse`,
    // whose hits carry the stored records' encoded bytes (see src/wire.rs). Only search.proto's
    // descriptor is compiled (not its imports, which hold other services), and all of its
    // messages are extern, so this generates the service's server and client modules alone.
    let search_proto = "palisade/v1/search.proto";
    let mut search = tonic_prost_build::Config::new().load_fds(&[search_proto], &["."])?;
    search.file.retain(|file| file.name() == search_proto);
    tonic_prost_build::configure()
        .build_transport(false)
        .out_dir(out_dir.join("wire"))
        .extern_path(".palisade.v1", "crate::v1")
        .extern_path(".palisade.v1.SearchResponse", "crate::wire::SearchResponse")
        .compile_fds(search)?;
    Ok(())
}
