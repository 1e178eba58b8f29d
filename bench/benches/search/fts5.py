# The SQLite FTS5 peer of the search benchmark. Input rows are parsed before the clock starts,
# so the load time is SQLite's alone: inserts, the FTS5 index and the B-tree indexes the
# queries use. Every row keeps the alert's whole encoded record, as palisade's index does, and
# the newest-N statements return it, so both engines hand back the same data for each hit.
import json, sqlite3, sys, time, os
path, jsonl, cases_path = sys.argv[1], sys.argv[2], sys.argv[3]
# At least min_runs timed runs, then more while they have taken under budget seconds, up to
# max_runs: the rule the palisade side follows.
min_runs, max_runs, budget = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
rows = []
with open(jsonl) as lines:
    for line in lines:
        a = json.loads(line)
        f = a["output_fields"]
        rows.append((a["id"], a["tenant"], a["time"], a["severity"], a["rule"], f["k8s.ns.name"],
                     f["proc.name"], f["container.image.repository"], a["output"], json.dumps(f),
                     bytes.fromhex(a["record"])))
with open(cases_path) as cases_file:
    cases = json.load(cases_file)
db = sqlite3.connect(path)
db.executescript("""
PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
CREATE TABLE alerts(rowid INTEGER PRIMARY KEY, id TEXT, tenant TEXT, time INTEGER, severity INTEGER,
  rule TEXT, ns TEXT, proc TEXT, image TEXT, output TEXT, fields TEXT, record BLOB);
CREATE VIRTUAL TABLE alerts_fts USING fts5(output, rule, content='alerts', content_rowid='rowid');
""")
start = time.perf_counter()
insert = ("INSERT INTO alerts(id,tenant,time,severity,rule,ns,proc,image,output,fields,record) "
          "VALUES (?,?,?,?,?,?,?,?,?,?,?)")
for first in range(0, len(rows), 10000):
    db.executemany(insert, rows[first:first + 10000])
db.execute("INSERT INTO alerts_fts(rowid, output, rule) SELECT rowid, output, rule FROM alerts")
db.executescript("""
CREATE INDEX alerts_tenant_time ON alerts(tenant, time);
CREATE INDEX alerts_tenant_proc_ns ON alerts(tenant, proc, ns, time);
CREATE INDEX alerts_tenant_ns_severity ON alerts(tenant, ns, severity, time);
CREATE INDEX alerts_tenant_rule ON alerts(tenant, rule);
CREATE INDEX alerts_tenant_ns ON alerts(tenant, ns);
""")
db.commit()
load = time.perf_counter() - start
out = {
    "load_seconds": load,
    "rows": db.execute("SELECT count(*) FROM alerts").fetchone()[0],
    "fts_rows": db.execute("SELECT count(*) FROM alerts_fts").fetchone()[0],
    "queries": [],
}
def ask(case):
    answer = {"total": db.execute(case["total"]).fetchone()[0],
              "newest": [row[0] for row in db.execute(case["newest"])], "facets": {}}
    for facet, sql in case["facets"].items():
        answer["facets"][facet] = {value: count for value, count in db.execute(sql)}
    return answer
for case in cases:
    answer = ask(case)
    # Hex only for the answer handed back to the comparison, outside the timed runs.
    answer["newest"] = [record.hex() for record in answer["newest"]]
    samples = []
    first = time.perf_counter()
    while len(samples) < min_runs or (len(samples) < max_runs and time.perf_counter() - first < budget):
        started = time.perf_counter()
        ask(case)
        samples.append(time.perf_counter() - started)
    samples.sort()
    answer["p50"] = samples[int(round((len(samples) - 1) * 0.5))]
    answer["p99"] = samples[int(round((len(samples) - 1) * 0.99))]
    out["queries"].append(answer)
db.close()
out["size_bytes"] = sum(os.path.getsize(path + suffix) for suffix in ["", "-wal", "-shm"] if os.path.exists(path + suffix))
print(json.dumps(out))
