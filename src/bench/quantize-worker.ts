/** Entry point of a QuantizePool worker: quantize chunks of rows until terminated. */
import { parentPort } from "node:worker_threads";
import { type QuantizeJob, type QuantizeReply, quantizeRows } from "./quantize-pool.js";

const port = parentPort!;
port.on("message", (job: QuantizeJob) => {
  let reply: QuantizeReply;
  try {
    const bytes = quantizeRows(job.type, job.values, job.rows, job.cols);
    reply = { id: job.id, bytes };
    port.postMessage(reply, [bytes.buffer as ArrayBuffer]);
  } catch (e) {
    reply = { id: job.id, error: e instanceof Error ? e.message : String(e) };
    port.postMessage(reply);
  }
});
