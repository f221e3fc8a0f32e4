// bench_encode_ort.mjs — the ONNX Runtime peer of bench/bench_encode.sh (npm onnxruntime-node).
//
//   node bench/bench_encode_ort.mjs MODEL.onnx IDS.json THREADS BATCH OUT.npy [PAD_ID]
//
// IDS.json: {"ids": [[int, ...], ...]} (RoBERTa ids with <s> </s>, written by bench_encode.py).
// Sequences are sorted by length (longest first) and cut into batches of BATCH, each padded to
// its longest sequence with PAD_ID (default 1, RoBERTa's); one untimed warm-up run of the first
// batch, then the timed pass: tensor creation + session.run of every batch. Session options:
// intraOpNumThreads THREADS, interOpNumThreads 1, sequential, graph optimisation "all".
// Writes the embeddings in input order to OUT.npy (float32 [N, D]) and prints one JSON line
// {"seconds", "padded_tokens", "real_tokens", "ort"}.
//
//   node bench/bench_encode_ort.mjs --ops MODEL.onnx
//
// prints {op type: kernel runs} of one small batch with ORT's profiler (after its graph
// optimisation): which kernels the session really runs, e.g. that a quantised model's MatMuls
// became DynamicQuantizeMatMul / MatMulIntegerToFloat.
import fs from "fs";
import { createRequire } from "module";
const require = createRequire(import.meta.url);
const ort = require("onnxruntime-node");

function writeNpy(path, data, rows, cols) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const pre = Buffer.alloc(10);
  pre.write("\x93NUMPY", 0, "latin1");
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(path + ".tmp", Buffer.concat([pre, Buffer.from(header, "latin1"), body]));
  fs.renameSync(path + ".tmp", path);
}

async function opCounts(modelPath) {
  const dir = fs.mkdtempSync("/tmp/ort-ops-");
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: 1,
    graphOptimizationLevel: "all",
    enableProfiling: true,
    profileFilePrefix: dir + "/prof",
  });
  const B = 2, T = 8;
  const a = new BigInt64Array(B * T).fill(100n), m = new BigInt64Array(B * T).fill(1n);
  a[0] = a[T] = 0n;
  a[T - 1] = a[2 * T - 1] = 2n;
  await session.run({
    input_ids: new ort.Tensor("int64", a, [B, T]),
    attention_mask: new ort.Tensor("int64", m, [B, T]),
  });
  await session.endProfiling();
  const counts = {};
  for (const f of fs.readdirSync(dir)) {
    for (const e of JSON.parse(fs.readFileSync(dir + "/" + f, "utf8")))
      if (e.cat === "Node" && e.name.endsWith("_kernel_time")) counts[e.args.op_name] = (counts[e.args.op_name] || 0) + 1;
    fs.unlinkSync(dir + "/" + f);
  }
  fs.rmdirSync(dir);
  console.log(JSON.stringify(counts));
}

async function main() {
  if (process.argv[2] === "--ops") return opCounts(process.argv[3]);
  const [modelPath, idsPath, threadsArg, batchArg, outPath, padArg] = process.argv.slice(2);
  if (!outPath) {
    console.error("usage: node bench_encode_ort.mjs MODEL.onnx IDS.json THREADS BATCH OUT.npy [PAD_ID]");
    process.exit(2);
  }
  const threads = parseInt(threadsArg, 10), batch = parseInt(batchArg, 10);
  const pad = BigInt(padArg === undefined ? 1 : parseInt(padArg, 10));
  const ids = JSON.parse(fs.readFileSync(idsPath, "utf8")).ids;
  const n = ids.length;
  const order = [...Array(n).keys()].sort((a, b) => ids[b].length - ids[a].length || a - b);
  const groups = [];
  for (let i = 0; i < n; i += batch) groups.push(order.slice(i, i + batch));

  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  });

  // input arrays built up front (not timed), tensors created inside the timed loop
  let padded = 0, real = 0;
  const inputs = groups.map((g) => {
    const T = Math.max(...g.map((i) => ids[i].length));
    const a = new BigInt64Array(g.length * T).fill(pad);
    const m = new BigInt64Array(g.length * T);
    g.forEach((i, r) => {
      ids[i].forEach((v, c) => {
        a[r * T + c] = BigInt(v);
        m[r * T + c] = 1n;
      });
      real += ids[i].length;
    });
    padded += g.length * T;
    return { g, T, a, m };
  });
  const run = (x) =>
    session.run({
      input_ids: new ort.Tensor("int64", x.a, [x.g.length, x.T]),
      attention_mask: new ort.Tensor("int64", x.m, [x.g.length, x.T]),
    });

  await run(inputs[0]); // warm-up, untimed
  let out = null, D = 0;
  const t0 = process.hrtime.bigint();
  for (const x of inputs) {
    const r = await run(x);
    const e = r.embedding;
    if (!out) {
      D = e.dims[1];
      out = new Float32Array(n * D);
    }
    x.g.forEach((i, row) => out.set(e.data.subarray(row * D, (row + 1) * D), i * D));
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  writeNpy(outPath, out, n, D);
  console.log(JSON.stringify({ seconds, padded_tokens: padded, real_tokens: real, ort: ort.env.versions.node }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
