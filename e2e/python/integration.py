"""A typical integration with Palisade from Python, with code generated from proto/.

Generate the client once (grpcio-tools), then run this with an API key:

    python3 -m grpc_tools.protoc -I proto --python_out=gen --grpc_python_out=gen \
        proto/palisade/v1/*.proto
    PYTHONPATH=gen python3 e2e/python/integration.py HOST:PORT API_KEY CA_FILE

It lists the newest alerts, reads one whole, searches with a field filter and facets, asks the
graph for containers that can escape to their node and for the attack paths, and prints one JSON object with what it found.
"""

import json
import sys

import grpc
from palisade.v1 import alert_pb2, alert_pb2_grpc
from palisade.v1 import common_pb2
from palisade.v1 import graph_pb2, graph_pb2_grpc
from palisade.v1 import search_pb2, search_pb2_grpc


def main(target, api_key, ca_file):
    with open(ca_file, "rb") as ca:
        tls = grpc.ssl_channel_credentials(root_certificates=ca.read())
    # the API key goes with every call
    key = grpc.access_token_call_credentials(api_key)
    channel = grpc.secure_channel(target, grpc.composite_channel_credentials(tls, key))
    search = search_pb2_grpc.SearchServiceStub(channel)
    alerts = alert_pb2_grpc.AlertServiceStub(channel)
    graph = graph_pb2_grpc.GraphServiceStub(channel)

    newest = search.Search(
        search_pb2.SearchRequest(
            query="*",
            page=common_pb2.PageRequest(limit=5),
            sort=search_pb2.SORT_ORDER_TIME_DESC,
        ),
        timeout=15,
    )
    first = newest.hits[0].alert if newest.hits else None
    whole = alerts.GetAlert(alert_pb2.GetAlertRequest(id=first.id), timeout=15).alert if first else None

    filtered = search.Search(
        search_pb2.SearchRequest(query="proc.name:bash", facets=["rule", "priority"]),
        timeout=15,
    )
    escaping = graph.Query(
        graph_pb2.GraphQueryRequest(query="container where escapes_to_node"), timeout=15
    )
    paths = graph.ListAttackPaths(graph_pb2.ListAttackPathsRequest(), timeout=15)

    print(
        json.dumps(
            {
                "newest": [hit.alert.id for hit in newest.hits],
                "total": newest.total,
                "whole_alert_rule": whole.rule if whole else None,
                "whole_alert_fields": len(whole.output_fields) if whole else 0,
                "bash_total": filtered.total,
                "facets": {facet.field: len(facet.buckets) for facet in filtered.facets},
                "escaping_containers": sorted(entity.ref.name for entity in escaping.entities),
                "attack_paths": len(paths.paths),
                "first_path_steps": len(paths.paths[0].steps) if paths.paths else 0,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
