/**
 * @module
 * A server-rendered SVG line chart of per-minute rates (no chart library, no script): one
 * polyline per series over a shared y axis, with a text summary for screen readers.
 */

import { formatRate } from "./format.ts";

/** One line of the chart. */
export type Series = { label: string; className: string; values: number[] };

const W = 600;
const H = 160;
const PAD = { left: 44, right: 8, top: 10, bottom: 22 };

/** The chart of the last `values.length` minutes, oldest at the left. */
export function RateChart(props: { title: string; series: Series[]; now: number }) {
  const count = Math.max(2, ...props.series.map((s) => s.values.length));
  const max = Math.max(1, ...props.series.flatMap((s) => s.values));
  const top = niceCeiling(max);
  const x = (i: number) => PAD.left + (i / (count - 1)) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - v / top) * (H - PAD.top - PAD.bottom);
  const summary = props.series.map((s) => {
    const last = s.values.at(-1) ?? 0;
    const peak = Math.max(0, ...s.values);
    return `${s.label}: now ${formatRate(last)}/s, peak ${formatRate(peak)}/s`;
  }).join("; ");
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${props.title}. ${summary}`}
      >
        {[0, 0.5, 1].map((f) => (
          <g>
            <line class="grid" x1={PAD.left} x2={W - PAD.right} y1={y(top * f)} y2={y(top * f)} />
            <text class="axis" x={PAD.left - 6} y={y(top * f) + 4} text-anchor="end">
              {formatRate(top * f)}
            </text>
          </g>
        ))}
        <text class="axis" x={PAD.left} y={H - 6}>−60 min</text>
        <text class="axis" x={W - PAD.right} y={H - 6} text-anchor="end">now</text>
        {props.series.map((s) => (
          <polyline
            class={`line ${s.className}`}
            fill="none"
            points={s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}
          />
        ))}
      </svg>
      <figcaption>
        {props.series.map((s) => (
          <span class={`legend ${s.className}`}>
            {s.label}: <strong>{formatRate(s.values.at(-1) ?? 0)}/s</strong> now, peak{" "}
            {formatRate(Math.max(0, ...s.values))}/s
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

/** 1, 2, 5 × 10^n at or above `value`. */
function niceCeiling(value: number): number {
  const exp = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 5, 10]) if (m * exp >= value) return m * exp;
  return 10 * exp;
}
