/**
 * @module
 * Bounds on parsed JSON, checked without recursion: how deep containers nest, how many entries
 * one object or array holds, and no U+0000 in any string or key (Postgres text cannot store it).
 * `JSON.parse` itself copes with deep input; walking the result recursively does not (20,000
 * levels overflow the stack), so {@link jsonProblem} walks it with an explicit stack. Every
 * request body and WebSocket frame passes through it before its schema.
 */

/** Containers nested deeper than this are refused; no Sealpost message needs more than 4. */
export const MAX_JSON_DEPTH = 32;
/** Entries of one object or array beyond this are refused (10,000 groups or members fit). */
export const MAX_JSON_WIDTH = 10_000;

/**
 * Why `value` (the result of `JSON.parse`) is out of bounds, or null when it is within them.
 *
 * @example
 * ```ts
 * jsonProblem(JSON.parse('{"a":[1,2]}')); // null
 * jsonProblem(JSON.parse("[".repeat(100) + "]".repeat(100))); // "nested deeper than 32 levels"
 * ```
 */
export function jsonProblem(
  value: unknown,
  limits: { depth?: number; width?: number } = {},
): string | null {
  const maxDepth = limits.depth ?? MAX_JSON_DEPTH;
  const maxWidth = limits.width ?? MAX_JSON_WIDTH;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item === "string") {
      if (item.includes("\0")) return "strings may not contain the NUL character";
      continue;
    }
    if (typeof item !== "object" || item === null) continue;
    if (depth >= maxDepth) return `nested deeper than ${maxDepth} levels`;
    if (Array.isArray(item)) {
      if (item.length > maxWidth) return `an array holds more than ${maxWidth} entries`;
      for (const child of item) stack.push([child, depth + 1]);
      continue;
    }
    const keys = Object.keys(item);
    if (keys.length > maxWidth) return `an object holds more than ${maxWidth} entries`;
    for (const key of keys) {
      if (key.includes("\0")) return "strings may not contain the NUL character";
      stack.push([(item as Record<string, unknown>)[key], depth + 1]);
    }
  }
  return null;
}
