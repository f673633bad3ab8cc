// kiln live client: connects to the live endpoint, reconnects with backoff
// after a non-terminal close. After close code 4001 (signed out) it asks the
// endpoint once, over plain HTTP, whether the page's current cookie session
// still holds: a page that changed its own password with fetch() got a
// fresh session cookie, and reconnects with it. Otherwise it goes to the
// sign-in page with the reason. The question waits for this page's fetch()
// and XMLHttpRequest calls in flight (at most settleTimeout), so that a
// cookie they bring is the one asked about. After close code 4029 (too many sockets for this session or user: too many tabs) it
// tries again only after a long delay. When a connection fails before its
// hello, it asks the endpoint over plain HTTP whether the session still
// holds (a browser cannot see a refused upgrade's status): 401 means
// signed out, as 4001 does.
//
//   <script src="/live/client.js"></script>
//   <script>
//     const live = KilnLive.connect({
//       url: "/live/websocket",          // default
//       signInPath: "/sign-in",          // default
//       onEvent: (event, payload) => {}, // every frame but hello
//       onStatus: (status, detail) => {} // "connecting", "live", "reconnecting", "limited", "signed-out"
//       settleTimeout: 5000,             // default; how long a 4001 waits for requests in flight
//     });
//     live.send("ping", {});
//   </script>
(function (root) {
  "use strict";

  var TERMINAL = 4001;
  var LIMITED = 4029;

  // The page's fetch() and XMLHttpRequest calls in flight, each a promise
  // that settles when its response (and any cookie it sets) has arrived.
  // The probe uses the fetch the page had, so it is not counted.
  var inflight = [];
  var pageFetch = root.fetch;

  function track(done) {
    inflight.push(done);
    var forget = function () {
      var i = inflight.indexOf(done);
      if (i >= 0) inflight.splice(i, 1);
    };
    done.then(forget, forget);
  }

  if (typeof pageFetch === "function") {
    root.fetch = function () {
      var p = pageFetch.apply(root, arguments);
      track(p);
      return p;
    };
  }
  if (root.XMLHttpRequest && root.XMLHttpRequest.prototype && root.XMLHttpRequest.prototype.send) {
    var send = root.XMLHttpRequest.prototype.send;
    root.XMLHttpRequest.prototype.send = function () {
      var xhr = this;
      track(new Promise(function (resolve) { xhr.addEventListener("loadend", resolve); }));
      return send.apply(this, arguments);
    };
  }

  // settled calls fn once the requests in flight now have settled, or after
  // timeout ms, whichever is first; requests started later are not waited for.
  function settled(timeout, setTimeout, fn) {
    var called = false;
    var once = function () { if (!called) { called = true; fn(); } };
    if (inflight.length === 0) { once(); return; }
    Promise.all(inflight.map(function (p) { return p.then(null, function () {}); })).then(once);
    setTimeout(once, timeout);
  }

  function backoff(attempt, opts) {
    var base = opts.minDelay * Math.pow(2, attempt);
    var d = Math.min(opts.maxDelay, base);
    return Math.round(d / 2 + Math.random() * d / 2);
  }

  function signInURL(path, reason) {
    return path + (path.indexOf("?") >= 0 ? "&" : "?") + "reason=" + encodeURIComponent(reason);
  }

  function connect(options) {
    var opts = {
      url: "/live/websocket",
      signInPath: "/sign-in",
      minDelay: 250,
      maxDelay: 10000,
      limitedDelay: 30000, // after 4029, jittered
      settleTimeout: 5000, // after 4001, the longest wait for requests in flight
      onEvent: function () {},
      onStatus: function () {},
      // Injectable for tests and non-browser hosts.
      WebSocket: root.WebSocket,
      navigate: function (url) { root.location.assign(url); },
      setTimeout: function (fn, ms) { return root.setTimeout(fn, ms); },
      fetch: pageFetch ? function (url, init) { return pageFetch.call(root, url, init); } : null,
      location: root.location,
    };
    for (var k in options || {}) opts[k] = options[k];

    var ws = null;
    var attempt = 0;
    var stopped = false;
    var leaving = false;
    var socketID = null;
    var helloSeen = false;
    var renewed = false; // reconnected after a 4001, no hello yet

    // A form post that signs this page out (sign out, change password)
    // closes its socket while the browser navigates: do not race it.
    if (root.addEventListener) {
      root.addEventListener("beforeunload", function () { leaving = true; });
      root.addEventListener("pageshow", function () { leaving = false; });
    }

    function absolute(url) {
      if (/^wss?:\/\//.test(url) || !opts.location) return url;
      var scheme = opts.location.protocol === "https:" ? "wss://" : "ws://";
      return scheme + opts.location.host + url;
    }

    // probeURL is the endpoint's URL over HTTP, for the probe.
    function probeURL(url) {
      return url.replace(/^ws(s?):\/\//, "http$1://");
    }

    function signOut(reason) {
      stopped = true;
      opts.onStatus("signed-out", { reason: reason });
      if (!leaving) opts.navigate(signInURL(opts.signInPath, reason));
    }

    // probe asks the endpoint whether the session still holds: 401 means
    // signed out; 400 (a plain GET, authenticated, refused as no upgrade)
    // means it holds.
    function probe() {
      return opts.fetch(probeURL(opts.url), { credentials: "same-origin", cache: "no-store" });
    }

    // revoked handles a 4001: the socket's token is revoked, but the page
    // may hold a fresh session cookie (it changed its own password, or
    // signed in again in another tab). Only a session that no longer holds
    // leaves the page. A form post that is navigating away, a host
    // without fetch, and a second 4001 before a hello sign out at once.
    function revoked(reason) {
      if (leaving || !opts.fetch || renewed) {
        signOut(reason);
        return;
      }
      opts.onStatus("reconnecting", { attempt: attempt, code: TERMINAL, reason: reason });
      settled(opts.settleTimeout, opts.setTimeout, function () {
        if (stopped) return;
        probe().then(
          function (res) {
            if (stopped) return;
            if (res.status === 401) {
              signOut(reason);
              return;
            }
            renewed = true;
            open();
          },
          function () { if (!stopped) signOut(reason); }
        );
      });
    }

    function retry(code) {
      var delay = backoff(attempt, opts);
      attempt++;
      opts.onStatus("reconnecting", { attempt: attempt, delay: delay, code: code });
      opts.setTimeout(open, delay);
    }

    // limited waits long before trying again: another tab must close first.
    function limited(reason) {
      var d = opts.limitedDelay;
      var delay = Math.round(d / 2 + Math.random() * d / 2);
      opts.onStatus("limited", { reason: reason, delay: delay });
      opts.setTimeout(open, delay);
    }

    function open() {
      helloSeen = false;
      opts.onStatus(attempt === 0 ? "connecting" : "reconnecting", { attempt: attempt });
      ws = new opts.WebSocket(absolute(opts.url));
      ws.onmessage = function (msg) {
        var frame;
        try { frame = JSON.parse(msg.data); } catch (e) { return; }
        if (frame.event === "hello") {
          attempt = 0;
          helloSeen = true;
          renewed = false;
          socketID = frame.payload && frame.payload.socket_id;
          opts.onStatus("live", { socketID: socketID });
          return;
        }
        opts.onEvent(frame.event, frame.payload);
      };
      ws.onclose = function (ev) {
        ws = null;
        if (stopped) return;
        if (ev.code === TERMINAL) {
          revoked(ev.reason || "signed out");
          return;
        }
        if (ev.code === LIMITED) {
          limited(ev.reason || "too many sockets");
          return;
        }
        if (!helloSeen && opts.fetch) {
          // Refused or cut before its hello: is the session gone?
          probe().then(
            function (res) {
              if (stopped) return;
              if (res.status === 401) signOut("signed out");
              else retry(ev.code);
            },
            function () { if (!stopped) retry(ev.code); }
          );
          return;
        }
        retry(ev.code);
      };
    }

    open();

    return {
      send: function (event, payload) {
        if (!ws || ws.readyState !== 1) return false;
        ws.send(JSON.stringify({ event: event, payload: payload === undefined ? {} : payload }));
        return true;
      },
      close: function () {
        stopped = true;
        if (ws) ws.close(1000, "bye");
      },
      socketID: function () { return socketID; },
    };
  }

  var api = { connect: connect, TERMINAL_CLOSE_CODE: TERMINAL, LIMITED_CLOSE_CODE: LIMITED, backoff: backoff, signInURL: signInURL };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.KilnLive = api;
})(typeof window !== "undefined" ? window : globalThis);
