// The kiosk page: shows whatever the player says is current, and says when it is on screen.
//
// Each play arrives over server-sent events. The creative is loaded into the hidden layer and
// only cross-faded in once it can be drawn (an image decoded, a video playing), so the screen
// never shows a blank or half-loaded frame; a creative that fails to load leaves the previous
// one on screen (and marks <body data-failed-play-id>). When the fade is done the page marks
// <body data-creative data-play-id> and posts /api/shown, which is how the daemon learns what
// the screen really showed, and when.
"use strict";

(() => {
  const FADE_MS = 300; // keep in step with the transition in kiosk.css
  const LOAD_TIMEOUT_MS = 15000; // a creative not ready by then counts as broken
  const RECONNECT_MS = 2000;

  const ABORTED = new Error("superseded by a newer play");
  const layers = Array.from(document.querySelectorAll(".layer"));
  let front = null; // the layer on screen; null until the first creative is shown
  let current = null; // play_id of the creative on screen
  let wanted = null; // {play, receivedAt}: the newest play from the player
  let loading = null; // {abort()} while a creative is loading
  let working = false;

  function backLayer() {
    return layers[0] === front ? layers[1] : layers[0];
  }

  function discard(el) {
    if (el instanceof HTMLVideoElement) {
      // Frees the decoder now rather than at garbage collection: it is scarce on a Pi.
      el.pause();
      el.removeAttribute("src");
      el.load();
    }
    el.remove();
  }

  // Resolves with the element once it can be drawn, in `layer` (still invisible).
  function load(play, layer) {
    return new Promise((resolve, reject) => {
      const video = play.kind === "video";
      const el = document.createElement(video ? "video" : "img");
      let settled = false;
      const finish = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        loading = null;
        if (error) {
          discard(el);
          reject(error);
        } else {
          resolve(el);
        }
      };
      const timer = setTimeout(() => finish(new Error("not ready in time")), LOAD_TIMEOUT_MS);
      loading = { abort: () => finish(ABORTED) };
      el.addEventListener("error", () => finish(new Error("the media did not load")), {
        once: true,
      });
      if (video) {
        // Muted is what lets it autoplay without a user gesture; it loops until the next play.
        el.muted = true;
        el.autoplay = true;
        el.loop = true;
        el.playsInline = true;
        el.preload = "auto";
        el.addEventListener("playing", () => finish(null), { once: true });
        el.addEventListener(
          "canplay",
          () => {
            el.play().catch((err) => {
              // Autoplay refused (a browser without the kiosk flags): a still frame beats black.
              console.warn("kiosk: video did not start playing:", err);
              finish(null);
            });
          },
          { once: true },
        );
        el.src = play.url;
        layer.appendChild(el);
      } else {
        el.alt = "";
        el.decoding = "async";
        el.src = play.url;
        layer.appendChild(el);
        el.decode().then(
          () => finish(null),
          (err) => finish(err),
        );
      }
    });
  }

  // Fades `layer` in above the front layer; resolves once it is fully opaque.
  function fadeIn(layer) {
    return new Promise((resolve) => {
      let done = false;
      const end = () => {
        if (!done) {
          done = true;
          resolve();
        }
      };
      layer.addEventListener("transitionend", function onEnd(ev) {
        if (ev.target === layer && ev.propertyName === "opacity") {
          layer.removeEventListener("transitionend", onEnd);
          end();
        }
      });
      // transitionend never comes for a page that is not being rendered: do not wait forever.
      setTimeout(end, FADE_MS + 150);
      layer.style.zIndex = "2";
      if (front) front.style.zIndex = "1";
      void layer.offsetWidth; // start the transition from opacity 0, not from the final state
      layer.classList.add("shown");
    });
  }

  // Hides a layer at once (it is covered already) so it is back at opacity 0 for the next play.
  function hideNow(layer) {
    layer.style.transition = "none";
    layer.classList.remove("shown");
    void layer.offsetWidth;
    layer.style.transition = "";
    for (const el of Array.from(layer.children)) discard(el);
  }

  function report(play, readyMs, shownMs) {
    fetch("/api/shown", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        play_id: play.play_id,
        creative_id: play.creative_id,
        page_ready_ms: readyMs,
        page_latency_ms: shownMs,
      }),
      keepalive: true,
    }).catch((err) => console.warn("kiosk: could not report play", play.play_id, err));
  }

  async function work() {
    working = true;
    try {
      while (wanted && wanted.play.play_id !== current) {
        const job = wanted;
        const layer = backLayer();
        let el;
        try {
          el = await load(job.play, layer);
        } catch (err) {
          if (err !== ABORTED) {
            console.error("kiosk: cannot show", job.play.creative_id, job.play.url, err);
            document.body.dataset.failedPlayId = job.play.play_id;
            if (wanted === job) wanted = null; // keep the previous creative on screen
          }
          continue;
        }
        if (wanted !== job) {
          discard(el); // a newer play came while this one got ready
          continue;
        }
        const readyMs = performance.now() - job.receivedAt;
        await fadeIn(layer);
        const old = front;
        front = layer;
        current = job.play.play_id;
        if (old) hideNow(old);
        document.body.dataset.creative = job.play.creative_id;
        document.body.dataset.playId = job.play.play_id;
        report(job.play, readyMs, performance.now() - job.receivedAt);
      }
    } finally {
      working = false;
    }
  }

  function want(play, receivedAt) {
    if (!play || play.play_id === current) return;
    if (wanted && wanted.play.play_id === play.play_id) return;
    wanted = { play, receivedAt };
    if (loading) loading.abort(); // the newest play wins over one still loading
    if (!working) work();
  }

  function connect() {
    // EventSource reconnects by itself after a network error (player restarting), using the
    // retry the player sends; it gives up only on an HTTP error answer, so start over then.
    const source = new EventSource("/events");
    source.onmessage = (ev) => {
      const receivedAt = performance.now();
      let play;
      try {
        play = JSON.parse(ev.data);
      } catch (err) {
        console.error("kiosk: bad event", ev.data, err);
        return;
      }
      want(play, receivedAt);
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(connect, RECONNECT_MS);
      }
    };
  }

  connect();
})();
