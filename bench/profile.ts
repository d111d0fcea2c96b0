/**
 * @module
 * Summarises a V8 `.cpuprofile` (written by `deno run --cpu-prof`) as self time per function,
 * so the report can say where the relay's CPU went without opening DevTools.
 *
 * @example
 * ```sh
 * deno run -A bench/profile.ts bench/tmp/prof/CPU.123.cpuprofile
 * ```
 */

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
};
type CpuProfile = {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
};

/** One line of the summary. */
export type ProfileEntry = { fn: string; self_pct: number };

/** The `top` functions by self time, as a percentage of all samples (idle included). */
export function summarizeProfile(profile: CpuProfile, top = 25): {
  total_ms: number;
  idle_pct: number;
  top: ProfileEntry[];
  by_file: ProfileEntry[];
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node) continue;
    total += dt;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") idle += dt;
    const file = shortUrl(url);
    const key = `${functionName || "(anonymous)"} ${file}${url ? `:${lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    const group = file || functionName;
    files.set(group, (files.get(group) ?? 0) + dt);
  }
  const pct = (v: number) => Math.round(v / total * 1000) / 10;
  const sorted = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, v]) => ({ fn, self_pct: pct(v) }));
  return {
    total_ms: Math.round(total / 1000),
    idle_pct: pct(idle),
    top: sorted(self),
    by_file: sorted(files),
  };
}

function shortUrl(url: string): string {
  if (!url) return "";
  const npm = /node_modules\/(?:\.deno\/)?([^/]+)/.exec(url) ?? /npm\/[^/]+\/([^/]+)/.exec(url);
  if (npm) return `npm:${npm[1]}`;
  const local = /\/work\/main\/(.*)$/.exec(url);
  if (local) return local[1];
  return url.replace(/^.*\//, "");
}

/** Reads and summarises the newest `.cpuprofile` in `dir`, or null when there is none. */
export async function summarizeProfileDir(dir: string, top = 25) {
  const files: { path: string; mtime: number }[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".cpuprofile")) continue;
    const path = `${dir}/${entry.name}`;
    files.push({ path, mtime: (await Deno.stat(path)).mtime?.getTime() ?? 0 });
  }
  files.sort((a, b) => b.mtime - a.mtime);
  if (files.length === 0) return null;
  return {
    file: files[0].path,
    ...summarizeProfile(JSON.parse(await Deno.readTextFile(files[0].path)), top),
  };
}

if (import.meta.main) {
  const profile = JSON.parse(await Deno.readTextFile(Deno.args[0]));
  console.log(JSON.stringify(summarizeProfile(profile, Number(Deno.args[1] ?? 30)), null, 2));
}
