/**
 * @module
 * CPU seconds per thread of a running relay, from `/proc/<pid>/task/<tid>/stat` (utime + stime),
 * over a window: a load-insensitive way to see where the relay's CPU goes while another program
 * (the peer harness, `deno task bench`) drives it. On embedded PGlite the database's worker is
 * its own thread (`worker-N`), beside the main thread (`deno`) and V8's helpers
 * (`V8 DefaultWorke`). Prints one line per thread and the highest RSS seen.
 *
 * @example
 * ```sh
 * # in one shell: the peer harness on embedded PGlite (see bench/README.md)
 * # in another: 20 s of the relay started from /tmp/sealpost, beginning 10 s from now
 * deno run --allow-all bench/thread_cpu.ts --cwd /tmp/sealpost --after 10 --window 20
 * ```
 */

import { parseArgs } from "node:util";

type Sample = Map<string, { name: string; ticks: number }>;

/** Clock ticks per second of /proc's utime and stime (100 on Linux). */
const HZ = 100;

function sample(pid: number): Sample {
  const out: Sample = new Map();
  for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(entry.name, { name, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch { /* the thread ended */ }
  }
  return out;
}

function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

/** The pid of `main.ts serve` whose working directory is `cwd` (from /proc, no `ps`). */
function findRelay(cwd: string): number | null {
  const want = Deno.realPathSync(cwd);
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const args = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      if (!args.includes("main.ts") || !args.includes("serve")) continue;
      if (Deno.realPathSync(`/proc/${entry.name}/cwd`) === want) return Number(entry.name);
    } catch { /* gone, or not ours to read */ }
  }
  return null;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    pid: { type: "string" },
    cwd: { type: "string" },
    after: { type: "string", default: "0" },
    window: { type: "string", default: "20" },
  },
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
await sleep(Number(values.after) * 1000);
let pid = values.pid ? Number(values.pid) : null;
// Wait up to 60 s for the relay to appear.
for (let i = 0; !pid && values.cwd && i < 60; i++) {
  pid = findRelay(values.cwd);
  if (!pid) await sleep(1000);
}
if (!pid) throw new Error("No relay found: give --pid or the --cwd it was started from");
const windowS = Number(values.window);
const first = sample(pid);
const started = performance.now();
let rss = rssMiB(pid);
for (let i = 0; i < windowS; i++) {
  await sleep(1000);
  rss = Math.max(rss, rssMiB(pid));
}
const last = sample(pid);
const seconds = (performance.now() - started) / 1000;
const rows = [...last].map(([tid, { name, ticks }]) => ({
  tid,
  name,
  cpu_s: (ticks - (first.get(tid)?.ticks ?? 0)) / HZ,
})).filter((r) => r.cpu_s > 0).sort((a, b) => b.cpu_s - a.cpu_s);
const total = rows.reduce((sum, r) => sum + r.cpu_s, 0);
console.log(
  `pid ${pid}: ${total.toFixed(2)} CPU-s in ${seconds.toFixed(1)} s (${
    Math.round(100 * total / seconds)
  } % of a core); highest RSS ${rss} MiB`,
);
for (const r of rows) {
  console.log(
    `  ${r.name.padEnd(16)} ${r.tid.padStart(7)} ${r.cpu_s.toFixed(2).padStart(7)} s ${
      String(Math.round(100 * r.cpu_s / seconds)).padStart(4)
    } %`,
  );
}
