/*! sessionscope browser SDK | Apache-2.0 | served by a sessionscope server at /sdk/sessionscope.js
 *
 * <script src="https://ANALYTICS/sdk/sessionscope.js"></script>  defines window.Sessionscope;
 * import "https://ANALYTICS/sdk/sessionscope.js" (or sessionscope.mjs for named exports) works too.
 *
 *   Sessionscope.trackVideo(videoElement, {key: "INGEST KEY"})  -> {stop()}
 *   Sessionscope.trackPages({key: "INGEST KEY"})                 -> {stop()}
 *
 * Events go to POST {endpoint}/api/v1/events?key=KEY as a text/plain JSON array (a "simple"
 * cross-origin request: no preflight, and the only kind navigator.sendBeacon can send). Each event
 * gets its id when it is made, so a retry resends the same ids and the server stores it once.
 * Nothing here throws into the page: every entry point and handler is guarded.
 */
(function () {
  "use strict";
  var G = typeof globalThis !== "undefined" ? globalThis : window;
  if (G.Sessionscope) return;
  var VERSION = "1.0.0";
  var doc = G.document, nav = G.navigator || {}, loc = G.location || {};
  var script = doc && doc.currentScript;
  var BASE = script && script.src ? new URL(script.src).origin : loc.origin;
  var senders = {};

  function guard(f) {
    return function () {
      try { return f.apply(this, arguments); } catch (e) { /* never into the host page */ }
    };
  }
  function now() { return Date.now(); }
  function uuid() {
    var c = G.crypto;
    return c && c.randomUUID ? c.randomUUID() : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (d) {
      return (d ^ (c ? c.getRandomValues(new Uint8Array(1))[0] : Math.random() * 256) & 15 >> d / 4).toString(16);
    });
  }
  function stored(name) {
    try {
      var v = localStorage.getItem(name) || uuid();
      localStorage.setItem(name, v);
      return v;
    } catch (e) { return uuid(); }
  }
  function listen(target, names, fn, list) {
    names.split(" ").forEach(function (n) {
      var g = guard(fn);
      target.addEventListener(n, g);
      list.push(function () { target.removeEventListener(n, g); });
    });
  }

  // ------------------------------------------------------------------ sending

  function Sender(o) {
    var url = (o.endpoint || BASE).replace(/\/+$/, "") + "/api/v1/events?key=" + encodeURIComponent(o.key);
    var queue = [], flying = null, failures = 0, timer = null, self = this;
    var every = o.flushInterval || 5000, onError = o.onError;

    function post(body, keep) {
      return G.fetch(url, { method: "POST", body: body, keepalive: keep, credentials: "omit",
        headers: { "Content-Type": "text/plain" } });
    }
    function schedule(ms) {
      if (!timer) timer = setTimeout(guard(function () { timer = null; self.flush(); }), ms);
    }
    this.push = function (ev) {
      queue.push(ev);
      if (queue.length > 5000) queue.splice(0, queue.length - 5000);
      if (queue.length >= 100) self.flush(); else schedule(every);
    };
    this.flush = function () {
      if (flying || !queue.length) return;
      var batch = queue.splice(0, 500), body = JSON.stringify(batch);
      flying = batch;
      var retry = function (why) {
        flying = null;
        queue = batch.concat(queue); // same events, same ids: the server stores them once
        failures++;
        if (onError) guard(onError)(why);
        schedule(Math.min(60000, 1000 * Math.pow(2, failures)));
      };
      try {
        post(body, body.length < 60000).then(function (r) {
            if (r.ok || (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429)) {
              flying = null; failures = 0;
              if (!r.ok && onError) guard(onError)(r);
              if (queue.length) schedule(0);
            } else retry(r);
          }, retry);
      } catch (e) { retry(e); }
    };
    // The page goes away: hand everything to the browser (it sends after the page is gone).
    this.leave = function () {
      var all = (flying || []).concat(queue);
      queue = [];
      while (all.length) {
        var body = JSON.stringify(all.splice(0, 200));
        // sendBeacon refuses what passes its quota; keepalive fetch is the other way out.
        guard(function () { nav.sendBeacon(url, body) || post(body, true).catch(guard); })();
      }
    };
  }

  function sender(o) {
    var id = (o.endpoint || BASE) + "|" + o.key;
    return senders[id] || (senders[id] = new Sender(o));
  }

  // Before the page goes (or is hidden: mobile browsers may never fire pagehide), trackers
  // report what they measured so far and every queue goes out with sendBeacon.
  var leaving = [];
  function leave() {
    leaving.forEach(function (f) { guard(f)(); });
    for (var k in senders) senders[k].leave();
  }
  if (G.addEventListener) {
    G.addEventListener("pagehide", guard(leave));
    doc && doc.addEventListener("visibilitychange", guard(function () {
      if (doc.visibilityState === "hidden") leave();
    }));
  }

  function event(kind, type, fields, extra) {
    var e = { id: uuid(), kind: kind, time: now(), type: type }, k;
    for (k in fields) if (fields[k] !== undefined && fields[k] !== null && fields[k] !== "") e[k] = fields[k];
    for (k in extra) if (extra[k] !== undefined && extra[k] !== null) e[k] = extra[k];
    return e;
  }

  // ------------------------------------------------------------------ environment

  var UA = nav.userAgent || "";
  function device() {
    return /iPad|Tablet|Android(?!.*Mobi)/i.test(UA) ? "Tablet" : /Mobi|iPhone|Android/i.test(UA) ? "Mobile" : "PC";
  }
  function os() {
    var m = UA.match(/(Windows NT|Android|Mac OS X|OS) ([\d._]+)/);
    return m ? ({ "Windows NT": "Windows", "Mac OS X": "macOS", OS: "iOS" }[m[1]] || m[1]) + " " +
      m[2].replace(/_/g, ".") : /Linux|CrOS/.test(UA) ? "Linux" : "";
  }
  function browser() {
    var m = UA.match(/(Edg|OPR|Firefox|Chrome|Version)\/([\d.]+)/);
    return m ? ({ Edg: "Edge", OPR: "Opera", Version: "Safari" }[m[1]] || m[1]) + " " + m[2] : "";
  }

  // ------------------------------------------------------------------ video

  function trackVideo(media, opts) {
    opts = opts || {};
    var out = sender(opts), off = [];
    var base = {
      user: opts.user || stored("sessionscope.user"), device: opts.device || device(), origin: opts.origin || loc.origin, os: os(),
      browser: browser(), screen: G.screen ? screen.width + "x" + screen.height : "", lang: nav.language, page: opts.page || loc.href,
      player_name: opts.playerName || "html5", player_version: opts.playerVersion || VERSION
    };
    var interval = opts.playingInterval || 60000;
    var session = null, loadAt = now(), playAt = 0, startedUp = false, ready = false;
    var playingSince = 0, stallAt = 0, seekAt = 0, seekWasPlaying = false, tick = null, ended = false;

    function emit(type, extra, time) {
      var e = event("player", type, base, extra), src = opts.media || media.currentSrc;
      e.session = session = session || uuid();
      e.video_type = opts.videoType || (media.duration === Infinity ? "LIVE" : "VOD");
      e.video_time = +(media.currentTime || 0).toFixed(3);
      if (src && !/^blob:/.test(src)) e.media = src.slice(0, 2048);
      if (time) e.time = time;
      out.push(e);
    }
    function reportPlaying() {
      if (!playingSince) return;
      var t = now(), d = t - playingSince;
      playingSince = t;
      if (d > 0) emit("playing", { duration_ms: d }, t);
    }
    function startPlaying() {
      playingSince = now();
      if (!tick) tick = setInterval(guard(reportPlaying), interval);
    }
    function stopPlaying() {
      reportPlaying();
      playingSince = 0;
      if (tick) { clearInterval(tick); tick = null; }
    }
    function newSession() {
      session = uuid(); startedUp = false; ready = false; loadAt = now(); playAt = 0;
    }
    function markReady() {
      if (ready) return;
      ready = true;
      emit("player_start", { duration_ms: Math.max(0, now() - loadAt) });
    }

    listen(media, "loadstart", function () {
      stopPlaying();
      if (session && startedUp) { out.flush(); newSession(); } else loadAt = now();
    }, off);
    listen(media, "loadedmetadata canplay", markReady, off);
    listen(media, "play", function () {
      if (ended) { ended = false; newSession(); }
      if (media.readyState >= 1) markReady();
      if (!startedUp) playAt = now();
    }, off);
    listen(media, "playing", function () {
      var t = now();
      markReady();
      if (!startedUp) {
        startedUp = true;
        emit("startup", { duration_ms: Math.max(0, t - (playAt || t)) }, t);
      } else if (stallAt) {
        emit("rebuffering", { duration_ms: t - stallAt }, stallAt);
      }
      stallAt = 0;
      startPlaying();
    }, off);
    listen(media, "waiting", function () {
      if (!startedUp || media.seeking || stallAt) return;
      stopPlaying();
      stallAt = now();
    }, off);
    listen(media, "pause", function () {
      if (media.ended || !startedUp) return;
      stopPlaying();
      stallAt = 0;
      emit("paused");
    }, off);
    listen(media, "seeking", function () {
      seekWasPlaying = !!playingSince;
      stopPlaying();
      if (!seekAt) seekAt = now();
    }, off);
    listen(media, "seeked", function () {
      if (!seekAt) return;
      var t = now();
      emit("seeking", { duration_ms: t - seekAt }, seekAt);
      seekAt = 0;
      if (seekWasPlaying && !media.paused) startPlaying();
    }, off);
    listen(media, "ended", function () {
      stopPlaying();
      emit("ended");
      ended = true;
      out.flush();
    }, off);
    listen(media, "error", function () {
      var err = media.error || {};
      stopPlaying();
      emit("error", { error_code: "E000" + (err.code || 0), error_message: (err.message || "MediaError " + err.code).slice(0, 2048) });
      out.flush();
    }, off);
    leaving.push(reportPlaying);
    off.push(function () { leaving.splice(leaving.indexOf(reportPlaying), 1); });
    if (media.readyState >= 1) markReady();
    if (!media.paused && media.readyState >= 3) { startedUp = true; startPlaying(); }

    return {
      stop: guard(function () {
        stopPlaying();
        off.forEach(function (f) { f(); });
        off = [];
        out.flush();
      }),
      get session() { return session; }
    };
  }

  // ------------------------------------------------------------------ pages

  function trackPages(opts) {
    opts = opts || {};
    var out = sender(opts), off = [], done = false;
    var agent = opts.agentId || stored("sessionscope.agent");
    var idle = opts.sessionTimeout || 1800000;
    function sessionKey() {
      // One browsing session per tab until `sessionTimeout` (30 minutes) passes without a page.
      var key = null;
      try {
        var s = G.sessionStorage, v = (s.getItem("sessionscope.visit") || "").split("|");
        key = v[0] && now() - +v[1] < idle ? v[0] : uuid();
        s.setItem("sessionscope.visit", key + "|" + now());
      } catch (e) { key = key || uuid(); }
      return key;
    }
    function report() {
      var p = G.performance, n = p && p.getEntriesByType && p.getEntriesByType("navigation")[0];
      if (done || !n) return;
      if (!n.loadEventEnd) return setTimeout(guard(report), 50);
      done = true;
      var proto = loc.protocol.replace(":", ""), code = n.responseStatus;
      var ev = event("endpoint", "page", {
        session: opts.session || sessionKey(), agent_id: agent, visited_site: loc.hostname,
        protocol: proto, port: +loc.port || (proto === "http" ? 80 : 443),
        source_addr: opts.sourceAddr || "0.0.0.0", org_name: opts.orgName,
        page_id: uuid(), title: doc.title.slice(0, 2048),
        on_content_load_ms: Math.round(n.domContentLoadedEventEnd), on_load_ms: Math.round(n.loadEventEnd),
        response_code: code >= 100 && code < 600 ? code : 200
      });
      ev.time = Math.round(p.timeOrigin);
      out.push(ev);
      out.flush();
    }
    if (doc.readyState === "complete") setTimeout(guard(report), 0);
    else listen(G, "load", function () { setTimeout(guard(report), 0); }, off);
    return {
      stop: guard(function () { off.forEach(function (f) { f(); }); off = []; done = true; })
    };
  }

  G.Sessionscope = {
    version: VERSION,
    trackVideo: guard(trackVideo),
    trackPages: guard(trackPages),
    flush: guard(function () { for (var k in senders) senders[k].flush(); })
  };
})();
