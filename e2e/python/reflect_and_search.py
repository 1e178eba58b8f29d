"""Integrates with a Palisade server using only Python's grpcio and server reflection.

Checks grpc.health.v1, lists services through reflection, then builds the palisade.v1 message
types from the descriptors the server serves (no generated code) and runs a search with an API
key. Prints one JSON object with what it found.

    python3 reflect_and_search.py HOST:PORT TOKEN CA_FILE

The server speaks TLS; CA_FILE is the certificate that verifies it (DATA_DIR/pki/ca.pem for
the self-signed default).
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main(target, token, ca_file):
    with open(ca_file, "rb") as ca:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.read())
    channel = grpc.secure_channel(target, credentials)
    grpc.channel_ready_future(channel).result(timeout=15)

    health = health_pb2_grpc.HealthStub(channel)
    overall = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    search_health = health.Check(
        health_pb2.HealthCheckRequest(service="palisade.v1.SearchService"), timeout=10
    )

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    services = sorted(
        service.name
        for response in reflection.ServerReflectionInfo(iter([request]), timeout=10)
        for service in response.list_services_response.service
    )

    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    search_method = pool.FindServiceByName("palisade.v1.SearchService").FindMethodByName("Search")
    request_type = message_factory.GetMessageClass(search_method.input_type)
    response_type = message_factory.GetMessageClass(search_method.output_type)
    search = channel.unary_unary(
        "/palisade.v1.SearchService/Search",
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )
    metadata = [("authorization", "Bearer " + token)]
    found = search(request_type(query="proc.name:bash"), metadata=metadata, timeout=10)
    try:
        search(request_type(query="*"), metadata=[("authorization", "Bearer pal_wrong")], timeout=10)
        refused = None
    except grpc.RpcError as error:
        refused = error.code().name

    print(
        json.dumps(
            {
                "health": health_pb2.HealthCheckResponse.ServingStatus.Name(overall.status),
                "search_health": health_pb2.HealthCheckResponse.ServingStatus.Name(
                    search_health.status
                ),
                "services": services,
                "search_total": found.total,
                "first_rule": found.hits[0].alert.rule if found.hits else None,
                "wrong_token": refused,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
