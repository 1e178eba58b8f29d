"""Benchmark peers of the graph service: NetworkX (correctness oracle) and Kuzu (graph DB).

Usage: python3 peers.py networkx|kuzu DIR
DIR holds nodes.csv, path.csv, vuln.csv, uses.csv, runs.csv and questions.json written by the
fleet bench. Prints one JSON object with load time, peak RSS, answers and latencies.
"""
import csv
import json
import sys
import time


def peak_rss_mb():
    # VmHWM belongs to this process's own address space, which exec created afresh;
    # ru_maxrss would carry the high-water mark of the bench process that forked us.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def summary(samples):
    if not samples:
        return {"runs": 0}
    first = samples[0]
    samples = sorted(samples)
    pick = lambda fraction: samples[int(round((len(samples) - 1) * fraction))]
    return {"runs": len(samples), "first_ms": first, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "total_ms": sum(samples)}


def timed(function):
    started = time.perf_counter()
    value = function()
    return value, (time.perf_counter() - started) * 1000.0


def load_nodes(directory):
    nodes = {}
    with open(f"{directory}/nodes.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            nodes[int(row["id"])] = row
    return nodes


def run_networkx(directory, questions):
    import networkx as nx

    started = time.perf_counter()
    nodes = load_nodes(directory)
    graphs = {}
    for name in ["path", "vuln", "uses", "runs"]:
        graph = nx.DiGraph()
        with open(f"{directory}/{name}.csv", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            graph.add_edges_from((int(src), int(dst), {"k": kind}) for src, dst, kind in reader)
        graphs[name] = graph
    build_ms = (time.perf_counter() - started) * 1000.0
    path = graphs["path"]
    is_target = {node for node, row in nodes.items() if row["target"] == "true"}
    result = {"version": nx.__version__, "build_ms": build_ms}

    pairs, latencies = [], []
    for entry in questions["entries"]:
        reached, elapsed = timed(lambda: nx.single_source_shortest_path_length(path, entry, cutoff=5) if entry in path else {entry: 0})
        latencies.append(elapsed)
        pairs.extend([entry, target, depth] for target, depth in reached.items() if target != entry and target in is_target)
    result["p1"] = dict(summary(latencies), pairs=pairs)
    for depth in (3, 5):
        counts, latencies = [], []
        for container in questions["containers"]:
            reached, elapsed = timed(lambda: nx.single_source_shortest_path_length(path, container, cutoff=depth) if container in path else {container: 0})
            latencies.append(elapsed)
            counts.append([container, len(reached) - 1])
        result[f"p2_{depth}"] = dict(summary(latencies), counts=counts)

    vuln, uses, runs = graphs["vuln"], graphs["uses"], graphs["runs"]
    cve = questions["cve"]
    repeats = questions["runs"]["networkx"]["q"]

    def q1():
        rows = set()
        for image, row in nodes.items():
            if row["kind"] != "image" or image not in vuln:
                continue
            if any(nodes[v]["name"] == cve for v in vuln.successors(image)):
                for container in (uses.predecessors(image) if image in uses else []):
                    for pod in (runs.predecessors(container) if container in runs else []):
                        rows.add(json.dumps([image, pod], separators=(",", ":")))
        return rows

    def q2():
        rows = set()
        for pod, row in nodes.items():
            if row["kind"] != "pod" or row["exposed"] != "true" or pod not in runs:
                continue
            found = False
            for container in runs.successors(pod):
                for image in (uses.successors(container) if container in uses else []):
                    if image in vuln and any(int(nodes[v]["severity"]) >= 5 for v in vuln.successors(image)):
                        found = True
            if found:
                rows.add(json.dumps(pod))
        return rows

    def q3():
        rows = set()
        for account, row in nodes.items():
            if row["kind"] != "service_account" or account not in path:
                continue
            for target in path.successors(account):
                if path.edges[account, target]["k"] == "PERMISSION_DISCOVER" and nodes[target]["creates_pods"] in ("*", "kube-system"):
                    rows.add(json.dumps(account))
        return rows

    for name, function in (("q1", q1), ("q2", q2), ("q3", q3)):
        latencies, rows = [], set()
        for _ in range(repeats):
            rows, elapsed = timed(function)
            latencies.append(elapsed)
        result[name] = dict(summary(latencies), rows=[json.loads(row) for row in rows])
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def run_kuzu(directory, questions):
    import shutil
    import kuzu

    database_path = f"{directory}/kuzu.db"
    shutil.rmtree(database_path, ignore_errors=True)
    try:
        import os
        os.remove(database_path)
    except OSError:
        pass
    started = time.perf_counter()
    database = kuzu.Database(database_path)
    connection = kuzu.Connection(database)
    connection.execute("CREATE NODE TABLE Entity(id INT64, kind STRING, name STRING, exposed BOOLEAN, target BOOLEAN, severity INT64, creates_pods STRING, PRIMARY KEY(id))")
    for name in ["path", "vuln", "uses", "runs"]:
        connection.execute(f"CREATE REL TABLE {name.upper()}(FROM Entity TO Entity, kind STRING)")
    connection.execute(f"COPY Entity FROM '{directory}/nodes.csv' (HEADER=true)")
    for name in ["path", "vuln", "uses", "runs"]:
        connection.execute(f"COPY {name.upper()} FROM '{directory}/{name}.csv' (HEADER=true)")
    build_ms = (time.perf_counter() - started) * 1000.0
    result = {"version": kuzu.__version__, "build_ms": build_ms}

    def rows_of(query, parameters):
        answer = connection.execute(query, parameters)
        rows = []
        while answer.has_next():
            rows.append(answer.get_next())
        return rows

    pairs, latencies = [], []
    reach = "MATCH (a:Entity {id: $id})-[e:PATH* SHORTEST 1..5]->(b:Entity) WHERE b.target RETURN b.id, length(e)"
    for entry in questions["entries"]:
        rows, elapsed = timed(lambda: rows_of(reach, {"id": entry}))
        latencies.append(elapsed)
        pairs.extend([entry, target, depth] for target, depth in rows)
    result["p1"] = dict(summary(latencies), pairs=pairs)
    for depth in (3, 5):
        counts, latencies = [], []
        query = f"MATCH (a:Entity {{id: $id}})-[e:PATH* SHORTEST 1..{depth}]->(b:Entity) RETURN count(DISTINCT b.id)"
        for container in questions["containers"]:
            rows, elapsed = timed(lambda: rows_of(query, {"id": container}))
            latencies.append(elapsed)
            counts.append([container, rows[0][0] if rows else 0])
        result[f"p2_{depth}"] = dict(summary(latencies), counts=counts)
    queries = {
        "q1": ("MATCH (v:Entity)<-[:VULN]-(i:Entity)<-[:USES]-(c:Entity)<-[:RUNS]-(p:Entity) WHERE v.kind = 'vulnerability' AND v.name = $cve AND p.kind = 'pod' RETURN DISTINCT i.id, p.id", {"cve": questions["cve"]}),
        "q2": ("MATCH (p:Entity)-[:RUNS]->(c:Entity)-[:USES]->(i:Entity)-[:VULN]->(v:Entity) WHERE p.kind = 'pod' AND p.exposed AND v.severity >= 5 RETURN DISTINCT p.id", {}),
        "q3": ("MATCH (s:Entity)-[r:PATH]->(ps:Entity) WHERE s.kind = 'service_account' AND r.kind = 'PERMISSION_DISCOVER' AND ps.creates_pods IN ['*', 'kube-system'] RETURN DISTINCT s.id", {}),
    }
    repeats = questions["runs"]["kuzu"]["q"]
    for name, (query, parameters) in queries.items():
        latencies, rows = [], []
        for _ in range(repeats):
            rows, elapsed = timed(lambda: rows_of(query, parameters))
            latencies.append(elapsed)
        result[name] = dict(summary(latencies), rows=[row if len(row) > 1 else row[0] for row in rows])
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def main():
    engine, directory = sys.argv[1], sys.argv[2]
    with open(f"{directory}/questions.json") as handle:
        questions = json.load(handle)
    result = run_networkx(directory, questions) if engine == "networkx" else run_kuzu(directory, questions)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
