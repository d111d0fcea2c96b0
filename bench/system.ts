/**
 * @module
 * What the benchmark reads from Linux `/proc`: a process's resident memory and CPU time, the
 * CPU time of a whole process tree (the Postgres postmaster and its backends), the 1-minute
 * load average and a description of the machine. CPU is reported as a percentage of one core
 * (200 % is both cores of a 2-core machine).
 */

/** Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on Linux x86-64). */
const CLK_TCK = 100;

/** Resident set size of `pid` in bytes, or 0 when the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

type Stat = { ppid: number; ticks: number };

function readStat(pid: number): Stat | null {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** User plus system CPU seconds used so far by `pid` (0 when gone). */
export function cpuSeconds(pid: number): number {
  return (readStat(pid)?.ticks ?? 0) / CLK_TCK;
}

/** CPU seconds of `root` and all its live descendants (a postmaster and its backends). */
export function treeCpuSeconds(root: number): number {
  const stats = new Map<number, Stat>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = readStat(Number(entry.name));
    if (stat) stats.set(Number(entry.name), stat);
  }
  const inTree = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, stat] of stats) {
      if (!inTree.has(pid) && inTree.has(stat.ppid)) {
        inTree.add(pid);
        grew = true;
      }
    }
  }
  let ticks = 0;
  for (const pid of inTree) ticks += stats.get(pid)?.ticks ?? 0;
  return ticks / CLK_TCK;
}

/** CPU seconds the whole machine has spent busy (all cores, everything but idle and iowait). */
export function machineBusySeconds(): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const [user, nice, system, _idle, _iowait, irq, softirq, steal] = line.split(/\s+/).slice(1)
    .map(Number);
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}

/** The 1-, 5- and 15-minute load averages. */
export function loadAverage(): [number, number, number] {
  const [one, five, fifteen] = Deno.readTextFileSync("/proc/loadavg").split(" ").map(Number);
  return [one, five, fifteen];
}

/** The machine the numbers were measured on. */
export type MachineInfo = {
  cpus: number;
  cpu_model: string;
  mem_total_gib: number;
  kernel: string;
  deno: string;
  v8: string;
};

/** Describes this machine. */
export function machineInfo(): MachineInfo {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const meminfo = Deno.readTextFileSync("/proc/meminfo");
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
  return {
    cpus: navigator.hardwareConcurrency,
    cpu_model: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    mem_total_gib: Math.round(memKb / 1024 / 1024 * 10) / 10,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
  };
}

/** A CPU and memory reading of the relay, the generator and (when there is one) Postgres. */
export type Usage = {
  relay_cpu_pct: number;
  /** The relay's CPU-seconds over the window (utime + stime): the measure a busy box distorts least. */
  relay_cpu_s: number;
  generator_cpu_pct: number;
  postgres_cpu_pct: number | null;
  /**
   * CPU used by everything else on the machine meanwhile (other developers' test suites): the
   * machine's busy time minus the relay, the generator and Postgres.
   */
  others_cpu_pct: number;
  relay_rss_mib_start: number;
  relay_rss_mib_end: number;
  relay_rss_mib_max: number;
};

/**
 * Measures CPU over a window and samples the relay's RSS every 250 ms.
 *
 * @example
 * ```ts
 * const meter = new UsageMeter(relay.pid, pg?.postmasterPid);
 * // … load …
 * const usage = meter.stop();
 * ```
 */
export class UsageMeter {
  readonly #t0 = performance.now();
  readonly #relay0: number;
  readonly #self0 = cpuSeconds(Deno.pid);
  readonly #pg0: number | null;
  readonly #machine0 = machineBusySeconds();
  readonly #rss0: number;
  #maxRss = 0;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(private readonly relayPid: number, private readonly postgresPid?: number) {
    this.#relay0 = cpuSeconds(relayPid);
    this.#pg0 = postgresPid ? treeCpuSeconds(postgresPid) : null;
    this.#rss0 = rssBytes(relayPid);
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), 250);
  }

  #sample(): void {
    this.#maxRss = Math.max(this.#maxRss, rssBytes(this.relayPid));
  }

  /** Ends the window. */
  stop(): Usage {
    clearInterval(this.#timer);
    this.#sample();
    const seconds = (performance.now() - this.#t0) / 1000;
    const pct = (cpu: number) => Math.round(cpu / seconds * 1000) / 10;
    const relay = cpuSeconds(this.relayPid) - this.#relay0;
    const generator = cpuSeconds(Deno.pid) - this.#self0;
    const pg = this.postgresPid && this.#pg0 !== null
      ? treeCpuSeconds(this.postgresPid) - this.#pg0
      : null;
    const machine = machineBusySeconds() - this.#machine0;
    return {
      relay_cpu_pct: pct(relay),
      relay_cpu_s: Math.round(relay * 100) / 100,
      generator_cpu_pct: pct(generator),
      postgres_cpu_pct: pg === null ? null : pct(pg),
      others_cpu_pct: Math.max(0, pct(machine - relay - generator - (pg ?? 0))),
      relay_rss_mib_start: mib(this.#rss0),
      relay_rss_mib_end: mib(rssBytes(this.relayPid)),
      relay_rss_mib_max: mib(this.#maxRss),
    };
  }
}

/** Bytes as MiB with one decimal. */
export function mib(bytes: number): number {
  return Math.round(bytes / 1024 / 1024 * 10) / 10;
}
