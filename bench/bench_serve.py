"""bench_serve.py — driver of bench/bench_serve.sh (see there). Prints one table; every
number is from this run, with the load average at start and end."""
import argparse, json, os, re, signal, sqlite3, subprocess, sys, time, urllib.request

import numpy as np


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def unit(rng, n, d):
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def faiss_bench(I, Q, k, threads, n_single):
    import faiss
    faiss.omp_set_num_threads(threads)
    index = faiss.IndexFlatIP(I.shape[1])
    index.add(I)
    index.search(Q[:64], k)  # warm-up
    t = time.perf_counter()
    for q0 in range(0, len(Q), 64):
        index.search(Q[q0:q0 + 64], k)
    b64 = len(Q) / (time.perf_counter() - t)
    t = time.perf_counter()
    _, ids = index.search(Q, k)
    ball = len(Q) / (time.perf_counter() - t)
    lat = []
    for i in range(n_single):
        t = time.perf_counter()
        index.search(Q[i % len(Q):i % len(Q) + 1], k)
        lat.append(time.perf_counter() - t)
    lat.sort()
    return dict(batched64_qps=b64, batched_all_qps=ball, single_p50_ms=lat[len(lat) // 2] * 1e3,
                single_p99_ms=lat[int(len(lat) * 0.99)] * 1e3), ids


def http(url, body=None, method=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def start_server(args, log):
    p = subprocess.Popen(["build/easyrec", "serve", "--port", "0"] + args, stdout=subprocess.DEVNULL,
                         stderr=open(log, "w"))
    for _ in range(6000):
        m = re.search(r"on http://127\.0\.0\.1:(\d+)", open(log).read())
        if m:
            return p, "http://127.0.0.1:" + m.group(1)
        if p.poll() is not None:
            sys.exit("server failed: " + open(log).read())
        time.sleep(0.05)
    sys.exit("server did not start")


def stop_server(p):
    p.send_signal(signal.SIGTERM)
    return p.wait(timeout=120)


def rss_mib(pid):
    st = open(f"/proc/{pid}/status").read()
    get = lambda k: int(re.search(k + r":\s+(\d+)", st).group(1)) / 1024
    return get("VmRSS"), get("VmHWM")


def wrk(url, path, body, conns, seconds, out):
    lua = os.path.join(out, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        f.write("wrk.body = " + json.dumps(json.dumps(body)) + "\n")
        f.write('done = function(summary, latency, requests)\n'
                '  io.write(string.format("JSON {\\"rps\\": %f, \\"p50\\": %f, \\"p99\\": %f, \\"errors\\": %d, '
                '\\"non2xx\\": %d}\\n", summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1e3, '
                'latency:percentile(99) / 1e3, summary.errors.connect + summary.errors.read + summary.errors.write + '
                'summary.errors.timeout, summary.errors.status))\nend\n')
    r = subprocess.run(["wrk", "-t", str(min(conns, 2)), "-c", str(conns), "-d", f"{seconds}s", "--timeout", "30s",
                        "-s", lua, url + path], capture_output=True, text=True, check=True)
    return json.loads(r.stdout.split("JSON ", 1)[1].splitlines()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--queries", type=int, default=1024)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--single", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--layers", type=int, default=2)
    a = ap.parse_args()
    out = a.out
    la0 = loadavg()
    rng = np.random.default_rng(0)
    I, Q = unit(rng, a.items, a.dim), unit(rng, a.queries, a.dim)
    np.save(f"{out}/I.npy", I)
    np.save(f"{out}/Q.npy", Q)

    # 1. top-K engines
    r = subprocess.run([f"{out}/bench_serve_topk", f"{out}/I.npy", f"{out}/Q.npy", str(a.k), str(a.threads),
                        str(a.single), f"{out}/ids.npy"], capture_output=True, text=True, check=True)
    ours = json.loads(r.stdout)
    theirs, fids = faiss_bench(I, Q, a.k, a.threads, a.single)
    oids = np.load(f"{out}/ids.npy").astype(np.int64)
    overlap = np.mean([len(set(oids[i]) & set(fids[i])) / a.k for i in range(len(Q))])
    print(f"# bench_serve {time.strftime('%Y-%m-%d %H:%M')} threads {a.threads}, load average {la0} at start")
    print(f"## exact top-{a.k}, {a.items} x {a.dim} items, {a.queries} queries (lists agree on {overlap:.4%} of entries)")
    print("| | easyrec er_recommend | FAISS IndexFlatIP | ratio |")
    print("|---|---|---|---|")
    print(f"| batched queries/s, products of 64 | {ours['batched_qps']:.0f} | {theirs['batched64_qps']:.0f} | "
          f"{ours['batched_qps'] / theirs['batched64_qps']:.2f}x |")
    print(f"| batched queries/s, FAISS given all {a.queries} at once | {ours['batched_qps']:.0f} | "
          f"{theirs['batched_all_qps']:.0f} | {ours['batched_qps'] / theirs['batched_all_qps']:.2f}x |")
    print(f"| single query p50 ms | {ours['single_p50_ms']:.2f} | {theirs['single_p50_ms']:.2f} | "
          f"{theirs['single_p50_ms'] / ours['single_p50_ms']:.2f}x |")
    print(f"| single query p99 ms | {ours['single_p99_ms']:.2f} | {theirs['single_p99_ms']:.2f} | |")
    print(f"\neasyrec scans a bf16 copy of the items ({ours['bf16_mib']:.0f} MiB next to the "
          f"{a.items * a.dim * 4 / 2**20:.0f} MiB fp32 matrix, packed in {ours['pack_s']:.2f} s) and rescores "
          f"{ours['candidates_per_query']:.1f} items per query exactly; process RSS {ours['rss_f32_mib']:.0f} MiB with the "
          f"fp32 items, {ours['rss_mib']:.0f} MiB with the copy (peak {ours['rss_peak_mib']:.0f} MiB)")
    sys.stdout.flush()

    # 2. the service: a catalog whose embeddings are in the state already
    model, state = f"{out}/model", f"{out}/state"
    if not os.path.exists(f"{model}/config.json"):
        subprocess.run(["build/easyrec", "init", "--vocab", "../shared/vocab/roberta-base", "--output", model,
                        "--layers", str(a.layers), "--hidden", str(a.dim), "--heads", "12", "--ffn", str(4 * a.dim)],
                       check=True, stderr=subprocess.DEVNULL)
    subprocess.run(["rm", "-rf", state], check=True)
    with open(f"{out}/items.jsonl", "w") as f:
        for i in range(a.items):
            f.write(json.dumps({"item_id": i, "profile": f"item {i}", "n": i}) + "\n")
    p, url = start_server(["--model", model, "--state", state, "--threads", str(a.threads)], f"{out}/serve.log")
    fp = http(url + "/info")["fingerprint"]
    stop_server(p)
    db = sqlite3.connect(f"{state}/easyrec.sqlite")
    db.executemany("INSERT INTO items(id,id_int,profile,meta,emb,fingerprint,from_api,deleted) VALUES(?,?,?,?,?,?,0,0)",
                   ((str(i), 1, f"item {i}", json.dumps({"n": i}, separators=(",", ":")), I[i].tobytes(), fp)
                    for i in range(a.items)))
    db.commit()
    db.close()
    t = time.perf_counter()
    p, url = start_server(["--model", model, "--catalog", f"{out}/items.jsonl", "--state", state, "--threads",
                           str(a.threads)], f"{out}/serve.log")
    start_s = time.perf_counter() - t
    assert "encoding" not in open(f"{out}/serve.log").read(), "catalog was re-encoded"
    http(url + "/users/bench/profile", {"profile": "Loves hard science fiction and space operas."}, "PUT")
    rss0 = rss_mib(p.pid)
    text = "Loves hard science fiction and space operas with big ideas."
    rows = []
    for path, body in (("/recommend", {"user_id": "bench", "k": a.k}), ("/v1/embeddings", {"input": text})):
        for c in (1, 64):
            w = wrk(url, path, body, c, a.seconds, out)
            rows.append((path, c, w))
    rss1 = rss_mib(p.pid)
    stop_server(p)
    # offline encode of the same text, as many times as the server answered in one second at 64 connections
    n_off = 2000
    with open(f"{out}/texts.txt", "w") as f:
        f.write((text + "\n") * n_off)
    t = time.perf_counter()
    subprocess.run(["build/easyrec", "encode", "--model", model, "--text", "--input", f"{out}/texts.txt", "--output",
                    f"{out}/texts.npy", "--threads", str(a.threads), "--quiet"], check=True)
    off = n_off / (time.perf_counter() - t)
    print(f"\n## easyrec serve, {a.items} items x {a.dim} (random {a.layers}-layer model), wrk {a.seconds}s, "
          f"--threads {a.threads}; started in {start_s:.1f} s from the state (no re-encoding)")
    print("| route | connections | requests/s | p50 ms | p99 ms | p99/p50 | errors |")
    print("|---|---|---|---|---|---|---|")
    for path, c, w in rows:
        print(f"| {path} | {c} | {w['rps']:.0f} | {w['p50']:.2f} | {w['p99']:.2f} | {w['p99'] / w['p50']:.1f} | "
              f"{w['errors'] + w['non2xx']} |")
    emb64 = [w for path, c, w in rows if path == "/v1/embeddings" and c == 64][0]["rps"]
    print(f"\n/v1/embeddings at 64 connections: {emb64:.0f} texts/s vs offline `easyrec encode` {off:.0f} texts/s "
          f"({emb64 / off:.2f}x; one short text per request)")
    print(f"server RSS: {rss0[0]:.0f} MiB after start, {rss1[0]:.0f} MiB after the load (peak {rss1[1]:.0f} MiB); "
          f"item matrix {a.items * a.dim * 4 / 2**20:.0f} MiB")
    print(f"load average {la0} at start, {loadavg()} at end")


if __name__ == "__main__":
    main()
