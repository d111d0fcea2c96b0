/**
 * @module
 * Builds the AsyncAPI 3.0 document served at `GET /v1/asyncapi.json`: the WebSocket session of
 * `/v1/ws` as one channel, the frames a client may send (the zod schemas `relay/protocol.ts`
 * parses them with: `AuthFrame` and each branch of `ClientFrame`) and the frames the relay sends
 * (`SERVER_FRAMES` of `responses.ts`). The document describes the relay, so client frames are
 * what it receives and server frames what it sends. Schemas are JSON Schema draft 7, the
 * dialect of AsyncAPI's default schema format.
 */

import { z } from "zod";
import { AuthFrame, ClientFrame, SealedFrame } from "../protocol.ts";
import { PROTOCOL_VERSION } from "../base/version.ts";
import { componentSchemas, type Json, namedSchemas } from "./openapi.ts";
import { SERVER_FRAMES } from "./responses.ts";

const CLIENT_SUMMARIES: Record<string, string> = {
  auth: "The first frame: a token, or a signature over the hello nonce (within 10 s)",
  sub: "Subscribe (null: all groups, and groups joined later); replay, then synced, then live",
  unsub: "Stop delivery of groups (null: all); no reply",
  send: "Send a message; answered by sent (or error)",
  ack: "Move the device's cursor for a group; no reply",
  presence: "Ask which devices of the group are online; answered by presence",
  ping: "Answered by pong",
  accept: "Accept the account's invitation to the group; answered by accepted",
};

const SERVER_SUMMARIES: Record<keyof typeof SERVER_FRAMES, string> = {
  hello: "Sent first on every connection: the nonce to sign, protocol version and limits",
  ready: "Authentication succeeded",
  msg: "A stored message (replay or live); deduplicate by (group, seq)",
  msgs: "Replayed messages of one group, seq ascending, to a sub with batch: true (batched_replay)",
  synced: "A subscription's replay is complete up to seq",
  sent: "The answer to send: seq for stored messages, delivered for ephemeral ones",
  eph: "An ephemeral message (not stored)",
  presence: "The answer to presence (online: device ids), or a presence event (online: bool)",
  group: "A membership change of a group the device's account is (or was) in",
  pong: "The answer to ping",
  accepted: "The answer to accept: the account takes part in the group",
  error: "A frame was refused; the connection stays open unless a close follows",
};

/** `SubFrame` for a client's `sub`; `RelayPresenceFrame` for the relay's `presence`. */
function frameName(prefix: string, t: string): string {
  return `${prefix}${t[0].toUpperCase()}${t.slice(1)}Frame`;
}

/**
 * The AsyncAPI 3.0 document of the WebSocket session.
 *
 * @example
 * ```ts
 * const doc = asyncApiDocument({ version: "0.1.0", host: "relay.example.net", secure: true });
 * ```
 */
export function asyncApiDocument(
  options: { version: string; host?: string; secure?: boolean },
): Json {
  const named = namedSchemas();
  const client: [string, z.ZodType][] = [["auth", AuthFrame]];
  for (const option of ClientFrame.options) {
    client.push([String(option.shape.t.value), option as z.ZodType]);
  }
  const server = Object.entries(SERVER_FRAMES) as [keyof typeof SERVER_FRAMES, z.ZodType][];
  const frames = new Map(named);
  for (const [t, schema] of client) if (!frames.has(schema)) frames.set(schema, frameName("", t));
  for (const [t, schema] of server) frames.set(schema, frameName("Relay", t));
  const sealedSend = SealedFrame.options[0] as z.ZodType;
  frames.set(sealedSend, "SealedSendFrame");
  const schemas = componentSchemas(frames, "draft-7");

  const messages: Json = {};
  const channelMessages: Json = {};
  const message = (key: string, schema: z.ZodType, summary: string) => {
    messages[key] = {
      name: key,
      summary,
      contentType: "application/json",
      payload: { $ref: `#/components/schemas/${frames.get(schema)}` },
    };
    channelMessages[key] = { $ref: `#/components/messages/${key}` };
  };
  for (const [t, schema] of client) message(`client.${t}`, schema, CLIENT_SUMMARIES[t] ?? t);
  for (const [t, schema] of server) message(`relay.${t}`, schema, SERVER_SUMMARIES[t]);
  const sessionMessages = { ...channelMessages };
  message("client.sealed_send", sealedSend, "A sealed send: the group's capability `cap`, no auth");
  // The sealed socket (issue 16): hello (with "sealed": true), then send → sent/error, ping → pong.
  const sealedKeys = ["client.sealed_send", "client.ping", "relay.hello", "relay.sent"];
  sealedKeys.push("relay.error", "relay.pong");
  const sealedMessages = Object.fromEntries(sealedKeys.map((k) => [k, channelMessages[k]]));

  const operation = (
    action: "send" | "receive",
    keys: string[],
    summary: string,
    channel = "session",
  ) => ({
    action,
    summary,
    channel: { $ref: `#/channels/${channel}` },
    messages: keys.map((key) => ({ $ref: `#/channels/${channel}/messages/${key}` })),
  });
  return {
    asyncapi: "3.0.0",
    info: {
      title: "Sealpost WebSocket session",
      version: options.version,
      description: `Protocol v${PROTOCOL_VERSION}. JSON text frames over \`GET /v1/ws\`. ` +
        "Close codes: 4001 not authenticated (in time), bad auth or token expired, " +
        "4003 device revoked, " +
        "4008 rate-limit abuse, 4009 too slow a consumer (resume from the cursor), 1009 frame " +
        "too large, 1001 relay draining, 1013 database unreachable during auth. The HTTP API is " +
        "described by /v1/openapi.json; prose: docs/protocol.md.",
    },
    servers: {
      relay: {
        host: options.host ?? "localhost:8080",
        protocol: options.secure ? "wss" : "ws",
        description: "This relay",
      },
    },
    defaultContentType: "application/json",
    channels: {
      session: {
        address: "/v1/ws",
        title: "A device's WebSocket session",
        messages: sessionMessages,
      },
      sealed: {
        address: "/v1/sealed/ws",
        title: "Sealed sends without auth (docs/protocol.md, sealed group sends)",
        messages: sealedMessages,
      },
    },
    operations: {
      receiveClientFrames: operation(
        "receive",
        client.map(([t]) => `client.${t}`),
        "Frames a client sends: auth first, then any of the others",
      ),
      sendRelayFrames: operation(
        "send",
        server.map(([t]) => `relay.${t}`),
        "Frames the relay sends: hello first, ready after auth, then replies and deliveries",
      ),
      receiveSealedFrames: operation(
        "receive",
        ["client.sealed_send", "client.ping"],
        "Frames a sealed-send client sends: no auth, sends carry the group's capability",
        "sealed",
      ),
      sendSealedRelayFrames: operation(
        "send",
        ["relay.hello", "relay.sent", "relay.error", "relay.pong"],
        "Frames the relay sends on the sealed socket",
        "sealed",
      ),
    },
    components: { schemas, messages },
  };
}
