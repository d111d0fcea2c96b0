/**
 * @module
 * Pure formatting for the dashboard: times, durations, byte sizes, short ids.
 */

/** `2024-05-01 13:45:10 UTC` — absolute, unambiguous, the same on every instance. */
export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** `3 min ago`, `in 2 h` relative to `now`. */
export function formatAgo(ms: number | null | undefined, now: number): string {
  if (ms === null || ms === undefined) return "never";
  const delta = now - ms;
  const text = formatSpan(Math.abs(delta));
  if (text === "0 s") return "just now";
  return delta >= 0 ? `${text} ago` : `in ${text}`;
}

/** A span in the largest sensible unit: `45 s`, `12 min`, `5 h`, `3 d`. */
export function formatSpan(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

/** Bytes in binary units: `512 B`, `1.5 KiB`, `12.3 MiB`. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0
    ? `${value} ${units[0]}`
    : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A rate with sensible precision: `0`, `0.35`, `12.5`, `3400`. */
export function formatRate(perSecond: number): string {
  if (perSecond === 0) return "0";
  if (perSecond < 1) return perSecond.toFixed(2);
  if (perSecond < 100) return perSecond.toFixed(1);
  return Math.round(perSecond).toString();
}

/** The first characters of a long id, for tables (the full id is in the title and link). */
export function shortId(id: string, n = 12): string {
  return id.length > n ? `${id.slice(0, n)}…` : id;
}

/** Human words for a device or invite status: `pending deletion`, `used up`. */
export function statusLabel(status: string): string {
  return status.replaceAll("_", " ");
}

/**
 * Text a client chose (a device name, a platform), made safe to show: control and invisible
 * format characters — bidi overrides and isolates such as U+202E, which would reorder the text
 * around them, zero-width characters, C0/C1 controls — are shown as a visible `[U+202E]`
 * instead of acting. The zero-width joiner inside emoji is kept.
 *
 * @example
 * ```ts
 * clientText("phone\u202Egnp.exe"); // "phone[U+202E]gnp.exe"
 * ```
 */
export function clientText(text: string): string {
  return text.replace(
    /(?!\u200D)[\p{Cc}\p{Cf}\u2028\u2029]/gu,
    (c) => `[U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}]`,
  );
}
