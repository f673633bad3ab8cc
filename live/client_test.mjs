// Tests of client.js, the browser client, with node's built-in test
// runner: node --test live/client_test.mjs (live/clientjs_test.go runs it
// from go test). The WebSocket, navigation and timers are injected.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

// The page's own fetch, as client.js finds it when it loads: each call
// answers when the test resolves it.
const pageRequests = [];
globalThis.fetch = (url) => new Promise((resolve, reject) => pageRequests.push({ url, resolve, reject }));

// The page's XMLHttpRequest, likewise: loadend fires when the test says.
class FakeXHR {
  constructor() { this.listeners = {}; }
  addEventListener(type, fn) { (this.listeners[type] ||= []).push(fn); }
  send() { this.sent = true; }
  finish() { for (const fn of this.listeners.loadend || []) fn(); }
}
globalThis.XMLHttpRequest = FakeXHR;

const require = createRequire(import.meta.url);
const KilnLive = require("./client.js");

// harness connects a client with fakes and records what it does.
// The probe (fetch) answers h.probeStatus, or fails when it is "error".
function harness(options = {}) {
  const h = { sockets: [], statuses: [], events: [], navigations: [], timers: [], probes: [], probeStatus: 400 };
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      h.sockets.push(this);
    }
    send(data) { this.sent.push(data); }
    close(code, reason) { this.closedWith = { code, reason }; }
    // Server side of the fake.
    open() { this.readyState = 1; }
    frame(event, payload) { this.onmessage({ data: JSON.stringify({ event, payload }) }); }
    serverClose(code, reason = "") { this.readyState = 3; this.onclose({ code, reason }); }
  }
  h.client = KilnLive.connect({
    WebSocket: FakeWebSocket,
    navigate: (url) => h.navigations.push(url),
    setTimeout: (fn, ms) => { h.timers.push({ fn, ms }); return h.timers.length; },
    fetch: (url, init) => {
      h.probes.push({ url, init });
      return h.probeStatus === "error" ? Promise.reject(new TypeError("network down")) : Promise.resolve({ status: h.probeStatus });
    },
    onStatus: (status, detail) => h.statuses.push({ status, ...detail }),
    onEvent: (event, payload) => h.events.push({ event, payload }),
    ...options,
  });
  h.last = () => h.sockets[h.sockets.length - 1];
  // fire runs the pending timer (the reconnect).
  h.fire = () => {
    const t = h.timers.shift();
    assert.ok(t, "no reconnect is scheduled");
    t.fn();
  };
  return h;
}

// settled lets the probe's promise settle.
const settled = () => new Promise((resolve) => setImmediate(resolve));

// withRandom fixes Math.random while fn runs.
function withRandom(value, fn) {
  const saved = Math.random;
  Math.random = () => value;
  try { return fn(); } finally { Math.random = saved; }
}

test("connects to the endpoint URL, absolute from the page's location", () => {
  const h = harness({ location: { protocol: "https:", host: "app.example" } });
  assert.equal(h.sockets.length, 1);
  assert.equal(h.last().url, "wss://app.example/live/websocket");
  assert.equal(harness({ location: { protocol: "http:", host: "localhost:4000" } }).last().url, "ws://localhost:4000/live/websocket");
  assert.equal(harness({ url: "wss://other.example/ws", location: { protocol: "http:", host: "x" } }).last().url, "wss://other.example/ws");
  assert.deepEqual(h.statuses[0], { status: "connecting", attempt: 0 });
});

test("hello makes the status live and gives the socket id; other frames go to onEvent", () => {
  const h = harness();
  const ws = h.last();
  ws.open();
  assert.equal(h.client.socketID(), null);
  ws.frame("hello", { socket_id: "users_sessions:abc" });
  assert.deepEqual(h.statuses.at(-1), { status: "live", socketID: "users_sessions:abc" });
  assert.equal(h.client.socketID(), "users_sessions:abc");
  assert.deepEqual(h.events, [], "hello is not an event");

  ws.frame("news", { n: 1 });
  ws.onmessage({ data: "not json" });
  ws.frame("error", { message: "unknown event nope" });
  assert.deepEqual(h.events, [
    { event: "news", payload: { n: 1 } },
    { event: "error", payload: { message: "unknown event nope" } },
  ]);
});

test("send writes JSON frames on an open socket only", () => {
  const h = harness();
  const ws = h.last();
  assert.equal(h.client.send("ping", { a: 1 }), false, "not open yet");
  ws.open();
  assert.equal(h.client.send("ping", { a: 1 }), true);
  assert.equal(h.client.send("bare"), true);
  assert.deepEqual(ws.sent.map((s) => JSON.parse(s)), [
    { event: "ping", payload: { a: 1 } },
    { event: "bare", payload: {} },
  ]);
});

for (const reason of ["signed out", "signed out everywhere", "password changed", "revoked", "expired"]) {
  test(`4001 "${reason}" with a session gone: one probe, no reconnect, go to sign-in with the reason`, async () => {
    const h = harness({ url: "wss://app.example/live/websocket" });
    const ws = h.last();
    ws.open();
    ws.frame("hello", { socket_id: "s" });
    h.probeStatus = 401;
    ws.serverClose(4001, reason);
    assert.deepEqual(h.navigations, [], "navigated before the probe answered");
    await settled();
    assert.deepEqual(h.probes.map((p) => p.url), ["https://app.example/live/websocket"]);
    assert.equal(h.probes[0].init.credentials, "same-origin");
    assert.deepEqual(h.navigations, ["/sign-in?reason=" + encodeURIComponent(reason)]);
    assert.deepEqual(h.statuses.at(-1), { status: "signed-out", reason });
    assert.equal(h.timers.length, 0, "a reconnect was scheduled");
    assert.equal(h.sockets.length, 1, "a new socket was opened");
    assert.equal(h.client.send("ping", {}), false);
  });
}

test("4001 without a reason says signed out; the sign-in path keeps its query", async () => {
  const h = harness({ signInPath: "/login?next=%2Fdash" });
  h.probeStatus = 401;
  h.last().serverClose(4001);
  await settled();
  assert.deepEqual(h.navigations, ["/login?next=%2Fdash&reason=signed%20out"]);
  assert.equal(h.timers.length, 0);
});

test("4001 before any hello (a token revoked while connecting) is probed once too", async () => {
  const h = harness();
  h.probeStatus = 401;
  h.last().serverClose(4001, "revoked");
  await settled();
  assert.deepEqual(h.navigations, ["/sign-in?reason=revoked"]);
  assert.equal(h.timers.length, 0);
  assert.equal(h.probes.length, 1);
});

test("4001 with the page's session still holding (a fresh cookie) reconnects at once, without leaving the page", async () => {
  const h = harness();
  h.last().open();
  h.last().frame("hello", { socket_id: "users_sessions:old" });
  h.probeStatus = 400; // authenticated by the cookie, refused as no upgrade
  h.last().serverClose(4001, "password changed");
  assert.deepEqual(h.statuses.at(-1), { status: "reconnecting", attempt: 0, code: 4001, reason: "password changed" });
  await settled();
  assert.equal(h.probes.length, 1);
  assert.deepEqual(h.navigations, []);
  assert.equal(h.timers.length, 0, "the reconnect waited for a backoff");
  assert.equal(h.sockets.length, 2, "no new socket");
  h.last().open();
  h.last().frame("hello", { socket_id: "users_sessions:new" });
  assert.deepEqual(h.statuses.at(-1), { status: "live", socketID: "users_sessions:new" });
  assert.equal(h.client.send("ping", {}), true);

  // The renewed socket is revoked in turn: asked again, once.
  h.probeStatus = 401;
  h.last().serverClose(4001, "revoked");
  await settled();
  assert.equal(h.probes.length, 2);
  assert.deepEqual(h.navigations, ["/sign-in?reason=revoked"]);
});

test("a second 4001 before the renewed socket's hello signs out without asking again", async () => {
  const h = harness();
  h.last().serverClose(4001, "password changed");
  await settled();
  assert.equal(h.sockets.length, 2);
  h.last().serverClose(4001, "revoked");
  await settled();
  assert.equal(h.probes.length, 1, "a 4001 loop");
  assert.deepEqual(h.navigations, ["/sign-in?reason=revoked"]);
  assert.equal(h.timers.length, 0);
});

test("4001 with a probe that fails goes to sign-in", async () => {
  const h = harness();
  h.probeStatus = "error";
  h.last().serverClose(4001, "signed out");
  await settled();
  assert.deepEqual(h.navigations, ["/sign-in?reason=signed%20out"]);
  assert.equal(h.sockets.length, 1);
});

test("4001 without fetch (a non-browser host) goes to sign-in at once", () => {
  const h = harness({ fetch: null });
  h.last().serverClose(4001, "revoked");
  assert.deepEqual(h.navigations, ["/sign-in?reason=revoked"]);
  assert.equal(h.timers.length, 0);
});

test("4001 asks only once the page's fetch() calls in flight have answered (their cookie counts)", async () => {
  const h = harness();
  h.last().open();
  h.last().frame("hello", { socket_id: "s" });
  // The page changes its password with fetch(); the 4001 arrives first.
  const change = globalThis.fetch("/auth/user/password/change", { method: "POST" });
  h.last().serverClose(4001, "password changed");
  await settled();
  assert.equal(h.probes.length, 0, "probed with the response (and its cookie) still to come");
  assert.deepEqual(h.timers.map((t) => t.ms), [5000], "no bound on the wait");
  // A request the page starts after the close is not waited for.
  globalThis.fetch("/long-poll");
  pageRequests.shift().resolve({ status: 200 });
  assert.equal((await change).status, 200);
  await settled();
  assert.equal(h.probes.length, 1);
  assert.deepEqual(h.navigations, []);
  assert.equal(h.sockets.length, 2, "the session holds: reconnected");
  h.fire(); // the bound's timer, once the wait is over, does nothing
  assert.equal(h.probes.length, 1);
  pageRequests.shift().reject(new TypeError("aborted"));
});

test("4001 asks only once the page's XMLHttpRequests in flight have ended", async () => {
  const h = harness();
  const xhr = new XMLHttpRequest();
  xhr.send("current_password=a&password=b");
  assert.equal(xhr.sent, true, "the page's send was not called");
  h.last().serverClose(4001, "password changed");
  await settled();
  assert.equal(h.probes.length, 0, "probed before the XMLHttpRequest ended");
  xhr.finish();
  await settled();
  assert.equal(h.probes.length, 1);
  assert.equal(h.sockets.length, 2);
});

test("4001 waits for a request in flight at most settleTimeout, then asks", async () => {
  const h = harness({ settleTimeout: 1234 });
  globalThis.fetch("/hangs").catch(() => {});
  h.probeStatus = 401;
  h.last().serverClose(4001, "revoked");
  await settled();
  assert.equal(h.probes.length, 0);
  assert.deepEqual(h.timers.map((t) => t.ms), [1234]);
  h.fire();
  await settled();
  assert.equal(h.probes.length, 1);
  assert.deepEqual(h.navigations, ["/sign-in?reason=revoked"]);
  pageRequests.shift().reject(new TypeError("aborted"));
});

test("1006 and 1001 reconnect with a growing backoff, capped, reset by hello", async () => {
  const saved = Math.random;
  Math.random = () => 1;
  try {
    const h = harness({ minDelay: 100, maxDelay: 1000 });
    const codes = [1006, 1001, 1006, 1001, 1006, 1006];
    const delays = [];
    for (const code of codes) {
      h.last().serverClose(code, code === 1001 ? "server shutting down" : "");
      await settled();
      assert.equal(h.timers.length, 1, `close ${code} scheduled no reconnect`);
      delays.push(h.timers[0].ms);
      assert.equal(h.statuses.at(-1).status, "reconnecting");
      assert.equal(h.statuses.at(-1).code, code);
      const before = h.sockets.length;
      h.fire();
      assert.equal(h.sockets.length, before + 1, "the timer did not reconnect");
      assert.equal(h.last().url, "/live/websocket");
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
    assert.deepEqual(h.navigations, [], "a non-terminal close navigated");
    assert.equal(h.probes.length, codes.length, "every failed connection is probed");

    // A successful reconnect (hello) starts the backoff over, and a close
    // after a hello reconnects without a probe.
    h.last().open();
    h.last().frame("hello", { socket_id: "s2" });
    h.last().serverClose(1006);
    assert.equal(h.timers[0].ms, 100);
    assert.equal(h.probes.length, codes.length);
  } finally {
    Math.random = saved;
  }
});

test("a connection that fails before its hello is probed over HTTP: 401 is signed out", async () => {
  const h = harness({ url: "wss://app.example/live/websocket" });
  h.probeStatus = 401;
  h.last().serverClose(1006);
  assert.equal(h.timers.length, 0, "reconnect scheduled before the probe answered");
  await settled();
  assert.deepEqual(h.probes.map((p) => p.url), ["https://app.example/live/websocket"]);
  assert.equal(h.probes[0].init.credentials, "same-origin");
  assert.deepEqual(h.navigations, ["/sign-in?reason=signed%20out"]);
  assert.deepEqual(h.statuses.at(-1), { status: "signed-out", reason: "signed out" });
  assert.equal(h.timers.length, 0, "a signed-out client reconnects");
});

test("a session lost while the socket was down goes to sign-in on the failed reconnect", async () => {
  const h = harness();
  h.last().open();
  h.last().frame("hello", { socket_id: "s" });
  h.last().serverClose(1006); // the network dropped; the 4001 was lost
  assert.equal(h.probes.length, 0);
  h.fire();
  h.probeStatus = 401; // the token was revoked meanwhile
  h.last().serverClose(1006); // the upgrade was refused
  await settled();
  assert.deepEqual(h.probes.map((p) => p.url), ["/live/websocket"]);
  assert.deepEqual(h.navigations, ["/sign-in?reason=signed%20out"]);
  assert.equal(h.timers.length, 0);
});

for (const answer of [400, 503, "error"]) {
  test(`a probe answering ${answer} reconnects`, async () => {
    const h = harness();
    h.probeStatus = answer;
    h.last().serverClose(1006);
    await settled();
    assert.equal(h.probes.length, 1);
    assert.equal(h.timers.length, 1);
    assert.deepEqual(h.navigations, []);
  });
}

test("without fetch (a non-browser host) failed connections just reconnect", () => {
  const h = harness({ fetch: null });
  h.last().serverClose(1006);
  assert.equal(h.timers.length, 1);
  assert.equal(h.probes.length, 0);
});

test("backoff is jittered between half and all of the delay", () => {
  const opts = { minDelay: 250, maxDelay: 10000 };
  for (let attempt = 0; attempt < 8; attempt++) {
    const full = Math.min(opts.maxDelay, opts.minDelay * 2 ** attempt);
    assert.equal(withRandom(0, () => KilnLive.backoff(attempt, opts)), full / 2);
    assert.equal(withRandom(0.999999, () => KilnLive.backoff(attempt, opts)), full);
  }
});

test("close() stops for good: no reconnect after it", () => {
  const h = harness();
  const ws = h.last();
  ws.open();
  h.client.close();
  assert.deepEqual(ws.closedWith, { code: 1000, reason: "bye" });
  ws.serverClose(1006);
  assert.equal(h.timers.length, 0);
  assert.deepEqual(h.navigations, []);
});

test("a terminal close after reconnects still goes to sign-in", async () => {
  const h = harness();
  h.last().serverClose(1006);
  await settled();
  h.fire();
  h.probeStatus = 401;
  h.last().serverClose(4001, "password changed");
  await settled();
  assert.deepEqual(h.navigations, ["/sign-in?reason=password%20changed"]);
  assert.equal(h.timers.length, 0);
});

for (const reason of ["too many sockets for this session", "too many sockets for this user"]) {
  test(`4029 "${reason}" is not a sign-out: no probe, one retry after the long, jittered delay`, async () => {
    const h = harness({ limitedDelay: 30000 });
    withRandom(0, () => h.last().serverClose(4029, reason));
    await settled();
    assert.deepEqual(h.navigations, [], "a 4029 navigated");
    assert.equal(h.probes.length, 0, "a 4029 needs no probe");
    assert.deepEqual(h.statuses.at(-1), { status: "limited", reason, delay: 15000 });
    assert.deepEqual(h.timers.map((t) => t.ms), [15000]);
    // Still over the limit: the next wait is as long, not a growing
    // backoff reset to a short one.
    h.fire();
    withRandom(0.999999, () => h.last().serverClose(4029, reason));
    assert.deepEqual(h.timers.map((t) => t.ms), [30000]);
    // A slot freed: the socket opens and works.
    h.fire();
    h.last().open();
    h.last().frame("hello", { socket_id: "s" });
    assert.equal(h.statuses.at(-1).status, "live");
    assert.equal(h.client.send("ping", {}), true);
  });
}

test("the API constants", () => {
  assert.equal(KilnLive.TERMINAL_CLOSE_CODE, 4001);
  assert.equal(KilnLive.LIMITED_CLOSE_CODE, 4029);
  assert.equal(KilnLive.signInURL("/sign-in", "a b&c"), "/sign-in?reason=a%20b%26c");
});
