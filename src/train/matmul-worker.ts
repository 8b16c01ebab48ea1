/** A training matmul lane on a worker thread: waits for products, computes its columns. */
import { workerData, parentPort } from "node:worker_threads";
import { Command, LaneAborted, LaneSync } from "../runtime/backend/sync.js";
import { JOB } from "./matmul-pool.js";
import { MatmulLane, columnsOf } from "./ops/matmul-lane.js";

const d = workerData as { module: WebAssembly.Module; arena: Float32Array; ctrl: Int32Array; index: number; lanes: number };
const sync = new LaneSync(d.ctrl, d.lanes);
const lane = new MatmulLane(d.module, d.arena);
parentPort!.postMessage("ready");
let gen = 0;
try {
  for (;;) {
    const [cmd, g] = sync.nextCommand(gen);
    gen = g;
    if (cmd === Command.EXIT) break;
    const c = d.ctrl;
    const job = { M: c[JOB.M]!, N: c[JOB.N]!, K: c[JOB.K]!, acc: c[JOB.ACC] === 1, a: c[JOB.A]!, b: c[JOB.B]!, c: c[JOB.C]!, aT: c[JOB.A_T] === 1, bCols: c[JOB.B_COLS] === 1 };
    const [n0, n1] = columnsOf(job.N, d.lanes, d.index);
    lane.run(job, n0, n1);
    sync.barrier();
  }
} catch (e) {
  if (!(e instanceof LaneAborted)) sync.abort(e instanceof Error ? e.message : String(e));
}
