import type { Command } from "commander";
import { sysInfo } from "../../bench/sysinfo.js";
import { formatBytes, printJson, runCommand, say } from "../common.js";

export function registerSysinfo(program: Command): void {
  program
    .command("sysinfo")
    .description("describe this machine: CPU, cores, memory, runtime, relaxed SIMD, memory read bandwidth from WebAssembly")
    .option("--refresh", "measure the read bandwidth again (it is cached per CPU, core count and Node version)")
    .option("--json", "print one JSON object on stdout")
    .action((o: { refresh?: boolean; json?: boolean }) =>
      runCommand(async () => {
        const info = await sysInfo({
          refresh: o.refresh ?? false,
          onMeasure: (t) => {
            if (!o.json) say(`measuring read bandwidth with ${t} thread(s)...`);
          },
        });
        if (o.json) return printJson(info);
        const bw = info.read_bandwidth;
        say(`cpu            ${info.cpu_model}, ${info.cores} cores, ${info.platform}/${info.arch}`);
        say(`memory         ${formatBytes(info.memory_bytes)}`);
        say(`runtime        Node ${info.node}, V8 ${info.v8}`);
        say(`relaxed SIMD   ${info.relaxed_simd === "native" ? "yes" : info.relaxed_simd === "flag" ? "yes (behind --experimental-wasm-relaxed-simd, set by slimlm)" : "no"}; kernels ${info.kernels}`);
        for (const r of bw.by_threads) {
          say(`read bandwidth ${r.gb_s.toFixed(1)} GB/s with ${r.threads} thread(s) (min ${r.min_gb_s.toFixed(1)}, max ${r.max_gb_s.toFixed(1)}; ${r.passes} passes over ${formatBytes(r.probe_bytes)})`);
        }
        say(`               ${bw.cached ? "cached" : "measured"} ${bw.measured_at}${bw.cached ? "; --refresh measures again" : ""}`);
      }),
    );
}
