/**
 * @module
 * A small file system for disk-full tests: a tmpfs of a few MiB mounted on a fresh directory
 * (`mount -t tmpfs`, which needs root — CI runs as root), with a filler file to take free space
 * away and give it back. Where mounting is impossible the caller's test fails under `CI=true`
 * and is skipped elsewhere (see {@link smallFsUnavailable}).
 */

import { statfsSync } from "node:fs";

/** A mounted small file system. */
export interface SmallFs {
  readonly dir: string;
  /** Bytes free right now. */
  free(): number;
  /** Takes space away until about `leaveBytes` are free. */
  fill(leaveBytes: number): Promise<void>;
  /** Gives back everything `fill` took. */
  unfill(): Promise<void>;
  /** Unmounts and removes the directory. */
  unmount(): Promise<void>;
}

/** Why a small file system cannot be mounted here (not root), or null. */
export function smallFsUnavailable(): string | null {
  if (Deno.env.get("CI") === "true") return null; // must work in CI: the test fails instead
  return Deno.uid() === 0 ? null : "mounting a tmpfs needs root";
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/**
 * Mounts a tmpfs of `sizeMiB` on a new temporary directory.
 *
 * @example
 * ```ts
 * const fs = await mountSmallFs(200);
 * try { await fs.fill(10 * 1024 * 1024); } finally { await fs.unmount(); }
 * ```
 */
export async function mountSmallFs(sizeMiB: number): Promise<SmallFs> {
  const dir = await Deno.makeTempDir({ prefix: "sealpost-smallfs-" });
  try {
    await run("mount", ["-t", "tmpfs", "-o", `size=${sizeMiB}m,mode=0777`, "tmpfs", dir]);
  } catch (error) {
    await Deno.remove(dir).catch(() => {});
    throw error;
  }
  const filler = `${dir}/filler`;
  const free = () => {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  };
  return {
    dir,
    free,
    fill: async (leaveBytes) => {
      // fallocate really takes the blocks (a sparse file would not).
      const have = await Deno.stat(filler).then((s) => s.size, () => 0);
      const size = Math.max(0, have + free() - leaveBytes);
      await run("fallocate", ["-l", String(size), filler]);
    },
    unfill: async () => {
      await Deno.remove(filler).catch(() => {});
    },
    unmount: async () => {
      await run("umount", ["-l", dir]).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
