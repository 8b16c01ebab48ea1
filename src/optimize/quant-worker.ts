/** A quantization worker thread: runs every job the pool posts (see quant-job.ts). */
import { parentPort } from "node:worker_threads";
import { type QuantJob, workOn } from "./quant-job.js";

const port = parentPort;
if (port !== null) {
  port.on("message", (job: QuantJob) => {
    try {
      workOn(job);
    } catch (e) {
      port.postMessage({ type: "error", message: e instanceof Error ? e.message : String(e) });
    }
  });
  port.postMessage({ type: "ready" });
}
