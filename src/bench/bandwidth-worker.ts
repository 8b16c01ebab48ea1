/** One thread of the bandwidth probe: read its slice every time the generation changes. */
import { parentPort, workerData } from "node:worker_threads";
import { CTRL_DONE, CTRL_GEN, type ProbeWorkerInit } from "./bandwidth.js";

const init = workerData as ProbeWorkerInit;
const ctrl = new Int32Array(init.ctrl);
const instance = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
const read = instance.exports.read as (start: number, end: number) => number;
let sink = 0;
let gen = Atomics.load(ctrl, CTRL_GEN);
parentPort!.postMessage("ready");
for (;;) {
  Atomics.wait(ctrl, CTRL_GEN, gen);
  const g = Atomics.load(ctrl, CTRL_GEN);
  if (g === -1) break;
  if (g === gen) continue;
  gen = g;
  sink ^= read(init.start, init.end);
  Atomics.add(ctrl, CTRL_DONE, 1);
  Atomics.notify(ctrl, CTRL_DONE);
}
// NOTE: keeps `sink` observable so no engine could drop the reads.
if (sink === 0x7fffffff) parentPort!.postMessage("sink");
