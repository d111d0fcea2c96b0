/**
 * Unit tests of relay/connection.ts: live sends stop (and report the connection slow) once the
 * socket's buffered output passes the limit; paced replay sends wait for the client to read.
 * The socket is a recording double whose `bufferedAmount` the test sets, since a real socket's
 * buffer cannot be held at an exact size.
 */

import assert from "node:assert/strict";
import { Connection, type FrameSocket } from "../../relay/connection.ts";
import { RecordingSocket } from "../helpers/frame_socket.ts";

function connection(socket: FrameSocket, maxBuffered = 100) {
  const slow: Connection[] = [];
  const conn = new Connection(1, "acct", "dev", socket, maxBuffered, (c) => slow.push(c));
  return { conn, slow };
}

Deno.test("Connection.sendText sends under the buffer limit; past it sends nothing and reports slow", () => {
  const socket = new RecordingSocket();
  const { conn, slow } = connection(socket);
  assert.equal(conn.sendText("a"), true);
  socket.bufferedAmount = 101;
  assert.equal(conn.sendText("b"), false);
  assert.deepEqual(socket.sent, ["a"]);
  assert.equal(slow.length, 1);
  assert.equal(slow[0], conn);
});

Deno.test("Connection.sendJson serializes a server frame", () => {
  const socket = new RecordingSocket();
  const { conn } = connection(socket);
  assert.equal(conn.sendJson({ t: "synced", group: "g", seq: 4 }), true);
  assert.deepEqual(socket.frames(), [{ t: "synced", group: "g", seq: 4 }]);
});

Deno.test("Connection.sendPaced waits for the buffer to drain below half the limit, then sends", async () => {
  const socket = new RecordingSocket();
  const { conn, slow } = connection(socket);
  socket.bufferedAmount = 500;
  const sending = conn.sendPaced(["replayed"]);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.deepEqual(socket.sent, [], "nothing sent while the client reads nothing");
  socket.bufferedAmount = 60;
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.deepEqual(socket.sent, [], "still above half the limit");
  socket.bufferedAmount = 40;
  assert.equal(await sending, true);
  assert.deepEqual(socket.sent, ["replayed"]);
  assert.equal(slow.length, 0);
});

Deno.test("Connection.sendPaced sends a page in order, pausing mid-page while the client has too much unread", async () => {
  const socket = new RecordingSocket();
  const { conn, slow } = connection(socket);
  // The double's buffer grows with every frame sent, as a socket's does when the client is slow.
  const send = socket.send.bind(socket);
  socket.send = (data) => {
    send(data);
    socket.bufferedAmount += 40;
  };
  const sending = conn.sendPaced(["1", "2", "3", "4", "5"]);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.deepEqual(socket.sent, ["1", "2", "3"], "stops once more than the limit is unread");
  socket.bufferedAmount = 0;
  assert.equal(await sending, true);
  assert.deepEqual(socket.sent, ["1", "2", "3", "4", "5"]);
  assert.equal(slow.length, 0);
});

Deno.test("Connection.sendPaced never fills the buffer past the limit, so a live frame of another group sent meanwhile is not taken for a slow client", async () => {
  const socket = new RecordingSocket();
  const { conn, slow } = connection(socket);
  // As a real socket's: the buffer grows by what is sent, and the client reads nothing yet.
  const send = socket.send.bind(socket);
  socket.send = (data) => {
    send(data);
    socket.bufferedAmount += data.length;
  };
  const frame = "r".repeat(30);
  const sending = conn.sendPaced([frame, frame, frame, frame, frame]);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.ok(socket.bufferedAmount <= 100, `replay filled ${socket.bufferedAmount} of 100`);
  // A live message of another group, mid-replay: within the limit, so sent.
  assert.equal(conn.sendText("live"), true);
  assert.equal(slow.length, 0);
  socket.bufferedAmount = 0;
  assert.equal(await sending, true);
  assert.equal(socket.sent.length, 6);
  assert.equal(slow.length, 0);
});

Deno.test("Connection.sendPaced gives up when the connection closes while waiting", async () => {
  const socket = new RecordingSocket();
  const { conn } = connection(socket);
  socket.bufferedAmount = 500;
  const sending = conn.sendPaced(["replayed"]);
  conn.close(4009, "too slow");
  assert.equal(await sending, false);
  assert.deepEqual(socket.sent, []);
});

Deno.test("Connection.close closes the socket once and nothing is sent after", () => {
  const socket = new RecordingSocket();
  const { conn } = connection(socket);
  conn.close(4003, "device revoked");
  conn.close(1001, "relay restarting");
  assert.deepEqual(socket.closed, [{ code: 4003, reason: "device revoked" }]);
  assert.equal(conn.open, false);
  assert.equal(conn.sendText("late"), false);
  assert.deepEqual(socket.sent, []);
});
