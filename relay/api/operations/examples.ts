/**
 * @module
 * The values the route table's worked examples use: real Ed25519 keys and a real certificate
 * (for realism only), a group, a send capability and its verifier.
 */

// Example identities (real Ed25519 keys and a real certificate, for realism only).
export const ACCOUNT = "_ZyVIyUBAXumd96pSyYuWhQ3Gc-KgUjgYGoClxhEPxU";
export const OTHER = "QXZIemMrnAaDsA0wCMzJC4GwEbyIzQ-nuvSESbTYIKo";
export const CERT =
  "U96t2cb_xKE2al0mEaGKn9ZvRH-iLN6XTnSqOsbeo56Nsy47I-GFc3oN2Fn1g5M98Y_ETZmfVjy5H2P56UgJAw";
export const NONCE = "3q2-7wAAAAAa7bJ0y9Vd1WkFQm6uVbZ0mJt0y4FVqCg";
export const TOKEN = "Xk0y3FvQn9rJ2wB8tLmZcD5eH7aP1sU4iG6oR0vY2xE";
export const GROUP = "Yq3b9xW2nL7tK1vM8pR4sA";
/** An example send capability (32 bytes of 7) and its verifier, SHA-256 in base64url. */
export const CAP = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";
export const CAP_VERIFIER = "S7Bvjk46dxXSAdVz0KpCN2LlXavWGiwCJ4-lbMbSlOA";
export const T = 1_796_000_000_000;

export const group = {
  id: GROUP,
  members: [{ account: ACCOUNT, role: "owner", added_at: T, state: "accepted" }],
  retention_s: 2_592_000,
  last_seq: 0,
  created_at: T,
};
export const byteCount = (n: number) => ({ count: n, per_s: 60 });
