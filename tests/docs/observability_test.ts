/**
 * The observability docs' examples work: every PromQL expression of the Grafana dashboard and of
 * the example alerts passes `promtool check rules`, and names only metrics the relay exports.
 */
import assert from "node:assert/strict";
import { Metrics } from "../../relay/base/metrics.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function promtool(): string | null {
  for (const p of ["/usr/bin/promtool", "/usr/local/bin/promtool"]) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  if (Deno.env.get("CI") === "true") throw new Error("CI=true but promtool is missing");
  return null;
}

const tool = promtool();

Deno.test({
  name: "docs/grafana-dashboard.json and the example alerts are valid PromQL over exported metrics",
  ignore: tool === null,
  fn: async () => {
    const dashboard = JSON.parse(await Deno.readTextFile(`${ROOT}docs/grafana-dashboard.json`));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets: { expr: string }[] }) =>
      p.targets.map((t) => t.expr)
    );
    const doc = await Deno.readTextFile(`${ROOT}docs/observability.md`);
    // The alert rules are the yaml block that starts with `groups:` (others are scrape configs).
    const alerts = doc.split("```yaml").map((block) => block.split("```")[0])
      .find((block) => block.trimStart().startsWith("groups:"));
    assert.ok(alerts, "docs/observability.md has a yaml block of alert rules");
    const rules = [
      "groups:",
      "  - name: dashboard",
      "    rules:",
      ...exprs.map((e, i) =>
        `      - record: dashboard:panel_${i}\n        expr: ${JSON.stringify(e)}`
      ),
    ].join("\n");
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/dashboard.yml`, rules + "\n");
      await Deno.writeTextFile(`${dir}/alerts.yml`, alerts);
      const out = await new Deno.Command(tool!, {
        args: ["check", "rules", `${dir}/dashboard.yml`, `${dir}/alerts.yml`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.ok(out.success, text);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    // Every sealpost_* name used is one the relay registers (histograms add _bucket/_sum/_count).
    const metrics = new Metrics();
    metrics.gauge("sealpost_websocket_connections", "x", () => 0);
    metrics.gauge("sealpost_devices_online", "x", () => 0);
    metrics.gauge("sealpost_backup_last_success_timestamp_seconds", "x", () => 0);
    const known = new Set(
      (await metrics.registry.getMetricsAsJSON()).map((m) => m.name),
    );
    const used = new Set(
      [...(exprs.join(" ") + alerts).matchAll(/sealpost_[a-z_]+/g)].map((m) => m[0]),
    );
    for (const name of used) {
      const base = name.replace(/_(bucket|sum|count)$/, "");
      assert.ok(known.has(name) || known.has(base), `${name} is exported by the relay`);
    }
  },
});
