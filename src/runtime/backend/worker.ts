/** Entry point of lanes 1..N-1: build the lane, then run forward passes until told to exit. */
import { parentPort, workerData } from "node:worker_threads";
import { getFamily } from "../../models/index.js";
import { BatchLayout } from "./batch.js";
import { type LaneInit, makeKernels } from "./index.js";
import { Lane } from "./lane.js";
import { Command, LaneAborted, LaneSync } from "./sync.js";

const init = workerData as LaneInit;
const sync = new LaneSync(new Int32Array(init.ctrl), init.plan.nLanes);
try {
  const kernels = makeKernels(init.kernelMode, init.module, init.memories[init.index]!);
  const lane = new Lane(init.index, init.plan, getFamily(init.plan.family), init.config, kernels, init.memories, sync, new BatchLayout(init.plan.capacity));
  parentPort!.postMessage({ type: "ready" });
  let gen = init.startGeneration;
  for (;;) {
    const [cmd, g] = sync.nextCommand(gen);
    gen = g;
    if (cmd === Command.EXIT) break;
    if (cmd === Command.FORWARD) lane.forward();
  }
} catch (e) {
  if (!(e instanceof LaneAborted)) {
    const message = e instanceof Error ? `lane ${init.index}: ${e.message}` : String(e);
    sync.abort(message);
    parentPort!.postMessage({ type: "error", message, stack: e instanceof Error ? e.stack : undefined });
  }
}
