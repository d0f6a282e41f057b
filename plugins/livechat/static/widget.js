/* Loket live chat widget: plain JavaScript, no build step, no inline code (strict CSP safe).
 *
 * Embed on any allowed site:
 *   <script src="https://desk.example/chat/static/widget.js" async></script>
 * On the desk's own chat page it fills <div id="loket-chat">.
 *
 * Every message gets a client id and waits in localStorage until the desk acknowledges it
 * (stored); after a reload or a dropped connection the widget reconnects with its signed
 * token and the last message id it saw, resends what was not acknowledged (the desk keeps
 * one message per client id) and receives every message it missed, none twice.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var base = script.src.replace(/static\/widget\.js(\?.*)?$/, "");
  var mount = document.getElementById("loket-chat");
  var lang = (mount && mount.getAttribute("data-lang")) || script.getAttribute("data-lang") ||
    document.documentElement.lang || navigator.language || "en";
  var storeKey = "loket-chat:" + base;
  var saved = {};
  try { saved = JSON.parse(localStorage.getItem(storeKey) || "{}") || {}; } catch (e) { saved = {}; }
  saved.pending = saved.pending || [];
  // The last message id this page shows: a reconnect asks only for later ones, while a
  // reload (an empty page) asks for the whole conversation again.
  var shownUpTo = 0;

  function persist() {
    try { localStorage.setItem(storeKey, JSON.stringify(saved)); } catch (e) { /* private mode */ }
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) { node.textContent = text; }
    return node;
  }

  function clientId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // Text only: links become <a> for http(s) addresses, nothing is ever parsed as HTML.
  function fill(node, text) {
    var parts = String(text).split(/(https?:\/\/[^\s<>"]+)/);
    parts.forEach(function (part, i) {
      if (i % 2 === 1) {
        var a = el("a", {href: part, target: "_blank", rel: "noopener noreferrer"}, part);
        node.appendChild(a);
      } else if (part) {
        node.appendChild(document.createTextNode(part));
      }
    });
  }

  var link = el("link", {rel: "stylesheet", href: base + "static/widget.css"});
  document.head.appendChild(link);

  fetch(base + "config.json?lang=" + encodeURIComponent(lang), {credentials: "omit"})
    .then(function (r) { return r.json(); })
    .then(start)
    .catch(function () { /* the desk is unreachable: no widget rather than a broken one */ });

  function start(cfg) {
    var t = cfg.strings;
    var root = el("div", {"class": "lkc" + (mount ? " lkc-page" : " lkc-floating"), lang: cfg.lang});
    var launcher = el("button", {type: "button", "class": "lkc-launcher", "aria-expanded": "false",
                                 "aria-controls": "lkc-panel"}, t.open);
    var panel = el("section", {id: "lkc-panel", "class": "lkc-panel", role: "dialog",
                               "aria-label": t.title});
    var header = el("header", {"class": "lkc-header"});
    header.appendChild(el("h2", {}, t.title));
    var closeBtn = el("button", {type: "button", "class": "lkc-close", "aria-label": t.close}, "×");
    header.appendChild(closeBtn);
    var status = el("p", {"class": "lkc-status", role: "status", "aria-live": "polite"});
    var log = el("ol", {"class": "lkc-log", role: "log", "aria-live": "polite", "aria-label": t.title,
                        tabindex: "0"});
    var typing = el("p", {"class": "lkc-typing", "aria-live": "polite", hidden: ""}, t.typing);
    var actions = el("div", {"class": "lkc-actions"});
    var person = el("button", {type: "button", "class": "lkc-person"}, t.person);
    var yes = el("button", {type: "button", "class": "lkc-yes", hidden: ""}, t.yes);
    var no = el("button", {type: "button", "class": "lkc-no", hidden: ""}, t.no);
    actions.appendChild(yes); actions.appendChild(no); actions.appendChild(person);

    var intro = el("form", {"class": "lkc-intro"});
    var nameLabel = el("label", {"for": "lkc-name"}, t.name);
    var nameInput = el("input", {id: "lkc-name", name: "name", autocomplete: "name", maxlength: "120", required: ""});
    var emailLabel = el("label", {"for": "lkc-email"}, t.email);
    var emailInput = el("input", {id: "lkc-email", name: "email", type: "email", autocomplete: "email", maxlength: "254"});
    intro.appendChild(nameLabel); intro.appendChild(nameInput);
    intro.appendChild(emailLabel); intro.appendChild(emailInput);
    intro.appendChild(el("button", {type: "submit"}, t.start));

    var composer = el("form", {"class": "lkc-composer", hidden: ""});
    var textLabel = el("label", {"for": "lkc-text", "class": "lkc-visually-hidden"}, t.message);
    var text = el("textarea", {id: "lkc-text", rows: "2", maxlength: String(cfg.max_message),
                               placeholder: t.placeholder});
    composer.appendChild(textLabel); composer.appendChild(text);
    composer.appendChild(el("button", {type: "submit"}, t.send));
    var fileLabel = el("label", {"for": "lkc-file", "class": "lkc-file-label"}, t.attach);
    var fileInput = el("input", {id: "lkc-file", type: "file", "class": "lkc-file"});
    composer.appendChild(fileLabel); composer.appendChild(fileInput);

    var offline = el("form", {"class": "lkc-offline", hidden: ""});
    var offLabel = el("label", {"for": "lkc-offline-email"}, t.leave_email);
    var offInput = el("input", {id: "lkc-offline-email", type: "email", autocomplete: "email", required: ""});
    offline.appendChild(offLabel); offline.appendChild(offInput);
    offline.appendChild(el("button", {type: "submit"}, t.send_email));

    var rating = el("fieldset", {"class": "lkc-rating", hidden: ""});
    rating.appendChild(el("legend", {}, t.rate));
    [1, 2, 3, 4, 5].forEach(function (score) {
      var star = el("button", {type: "button", "aria-label": t.rate_score.replace("%(score)s", score)},
                    String(score));
      star.addEventListener("click", function () {
        send({type: "rate", score: score});
        rating.hidden = true;
        status.textContent = t.rated;
      });
      rating.appendChild(star);
    });

    var transcript = el("form", {"class": "lkc-transcript", hidden: ""});
    transcript.appendChild(el("label", {"for": "lkc-transcript-email"}, t.transcript));
    var transcriptInput = el("input", {id: "lkc-transcript-email", type: "email",
                                       autocomplete: "email", required: "", maxlength: "254"});
    transcript.appendChild(transcriptInput);
    transcript.appendChild(el("button", {type: "submit"}, t.send_transcript));

    var endBox = el("div", {"class": "lkc-end"});
    var endBtn = el("button", {type: "button", "class": "lkc-end-button"}, t.end);
    endBox.appendChild(endBtn);

    [header, status, log, typing, actions, intro, composer, offline, rating, transcript, endBox].forEach(function (n) {
      panel.appendChild(n);
    });
    if (!mount) { root.appendChild(launcher); panel.hidden = true; }
    root.appendChild(panel);
    (mount || document.body).appendChild(root);

    var ws = null, retry = 0, seen = {}, state = "new", seenUpTo = 0, typingTimer = null;

    // An agent read the visitor's messages up to this id: they show "Seen".
    function markSeen(upto) {
      if (!upto || upto <= seenUpTo) { return; }
      seenUpTo = upto;
      Array.prototype.forEach.call(log.querySelectorAll(".lkc-visitor[data-id]"), function (item) {
        if (parseInt(item.getAttribute("data-id"), 10) <= upto) {
          var r = item.querySelector(".lkc-receipt");
          if (r) { r.textContent = t.seen; }
        }
      });
    }

    function agentTyping(name) {
      typing.textContent = name ? t.agent_typing.replace("%(name)s", name) : t.typing;
      typing.hidden = false;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { typing.hidden = true; }, 6000);
    }

    function show(open) {
      panel.hidden = !open;
      launcher.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) { (saved.name ? text : nameInput).focus(); if (!ws) { connect(); } }
      else { launcher.focus(); }
    }
    launcher.addEventListener("click", function () { show(panel.hidden); });
    closeBtn.addEventListener("click", function () { if (mount) { return; } show(false); });
    panel.addEventListener("keydown", function (e) { if (e.key === "Escape" && !mount) { show(false); } });

    function named() {
      intro.hidden = !!saved.name;
      composer.hidden = !saved.name;
    }
    named();
    nameInput.value = saved.name || "";
    emailInput.value = saved.email || "";
    intro.addEventListener("submit", function (e) {
      e.preventDefault();
      saved.name = nameInput.value.trim();
      saved.email = emailInput.value.trim();
      persist();
      named();
      connect();  // say hello again, with the name
      text.focus();
    });

    function line(event) {
      if (event.id && seen[event.id]) { return; }
      if (event.id) { seen[event.id] = true; }
      var item = el("li", {"class": "lkc-msg lkc-" + event.author});
      if (event.client_id) { item.setAttribute("data-client-id", event.client_id); }
      var who = {visitor: t.you, bot: t.bot, agent: event.name || t.agent, system: t.desk}[event.author] || "";
      item.appendChild(el("span", {"class": "lkc-who"}, who));
      var body = el("p", {"class": "lkc-text"});
      fill(body, event.text);
      item.appendChild(body);
      (event.files || []).forEach(function (f) {
        // A download from the desk (never shown inline there), not a page to open.
        if (!/^https?:\/\//.test(f.url)) { return; }
        var a = el("a", {href: f.url, download: "", rel: "noopener noreferrer", "class": "lkc-file-link"},
                   f.name);
        var p = el("p", {"class": "lkc-file-line"});
        p.appendChild(a);
        item.appendChild(p);
      });
      if (event.id) { item.setAttribute("data-id", event.id); }
      if (event.author === "visitor") {
        item.appendChild(el("span", {"class": "lkc-receipt"},
                            event.id ? (event.id <= seenUpTo ? t.seen : t.sent) : t.sending));
      } else if (event.author === "agent") {
        typing.hidden = true;
      }
      if (event.client_id) {  // our own message, shown while pending: replace it
        var old = log.querySelector('[data-client-id="' + event.client_id + '"]');
        if (old) { log.replaceChild(item, old); return; }
      }
      log.appendChild(item);
      log.scrollTop = log.scrollHeight;
    }

    var queued = [];  // actions pressed while the socket was (re)connecting
    var welcomed = false;
    function send(frame) {
      if (ws && ws.readyState === 1 && welcomed) { ws.send(JSON.stringify(frame)); return true; }
      if (frame.type !== "message" && frame.type !== "typing") { queued.push(frame); }
      return false;
    }

    function flush() {
      saved.pending.forEach(function (p) { send({type: "message", client_id: p.client_id, text: p.text}); });
    }

    composer.addEventListener("submit", function (e) {
      e.preventDefault();
      var value = text.value.trim();
      if (!value) { return; }
      var item = {client_id: clientId(), text: value};
      saved.pending.push(item);
      persist();
      line({author: "visitor", text: value, client_id: item.client_id});
      text.value = "";
      send({type: "message", client_id: item.client_id, text: value});
    });
    fileInput.addEventListener("change", function () {
      var file = fileInput.files && fileInput.files[0];
      fileInput.value = "";
      if (!file || !saved.token) { return; }
      var id = clientId();
      line({author: "visitor", text: file.name, client_id: id});
      var form = new FormData();
      form.append("file", file);
      form.append("client_id", id);
      form.append("lang", cfg.lang);
      form.append("name", saved.name || "");
      fetch(base + "upload", {method: "POST", body: form, credentials: "omit",
                              headers: {"X-Loket-Chat-Token": saved.token}})
        .then(function (r) { return r.json().then(function (data) { return [r.ok, data]; }); })
        .then(function (res) {
          if (res[0]) { (res[1].events || []).forEach(function (e) { if (e.type === "message") { line(e); } }); return; }
          status.textContent = res[1].text || t.error;
          var pending = log.querySelector('[data-client-id="' + id + '"]');
          if (pending) { log.removeChild(pending); }
        })
        .catch(function () { status.textContent = t.error; });
    });
    var lastTyping = 0;
    text.addEventListener("input", function () {
      if (Date.now() - lastTyping > 3000) { lastTyping = Date.now(); send({type: "typing"}); }
    });
    text.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); composer.requestSubmit(); }
    });
    person.addEventListener("click", function () { send({type: "handover"}); });
    yes.addEventListener("click", function () { send({type: "answer", solved: true}); });
    no.addEventListener("click", function () { send({type: "answer", solved: false}); });
    offline.addEventListener("submit", function (e) {
      e.preventDefault();
      send({type: "email", email: offInput.value.trim()});
    });
    endBtn.addEventListener("click", function () { send({type: "end"}); });
    transcript.addEventListener("submit", function (e) {
      e.preventDefault();
      send({type: "transcript", email: transcriptInput.value.trim()});
    });

    function setState(event) {
      state = event.state;
      person.hidden = state !== "bot" && state !== "new";
      yes.hidden = no.hidden = !(state === "bot" && event.step === "asked");
      offline.hidden = state !== "offline";
      endBtn.hidden = state === "new" || state === "closed";
      rating.hidden = state !== "closed";
      transcript.hidden = state !== "closed";
      if (state === "closed" && !transcriptInput.value) { transcriptInput.value = saved.email || ""; }
      if (state === "waiting") { status.textContent = t.waiting; }
      else if (state === "active") { status.textContent = event.agent ? t.with_agent.replace("%(name)s", event.agent) : ""; }
      else if (state === "offline") { status.textContent = t.offline; }
      else if (state === "closed") { status.textContent = t.closed; }
      else { status.textContent = ""; }
    }

    function receipt(event) {
      if (event.author === "visitor" || !event.id) { return; }
      var kind = document.visibilityState === "visible" && !panel.hidden ? "read" : "delivered";
      send({type: kind, id: event.id});
    }

    function connect() {
      if (ws) { ws.onclose = null; ws.close(); }  // one socket at a time
      status.textContent = t.connecting;
      welcomed = false;
      ws = new WebSocket(cfg.socket);
      ws.onopen = function () {
        ws.send(JSON.stringify({type: "hello", token: saved.token || null, name: saved.name || "",
                                email: saved.email || "", lang: cfg.lang, last_seen: shownUpTo}));
      };
      ws.onmessage = function (msg) {
        var event;
        try { event = JSON.parse(msg.data); } catch (e) { return; }
        if (event.type === "welcome") {
          retry = 0;
          status.textContent = "";
          saved.token = event.token;
          persist();
          welcomed = true;
          if (!log.children.length) { line({author: "bot", text: event.greeting}); }
          flush();
          queued.splice(0).forEach(send);
        } else if (event.type === "message") {
          line(event);
          shownUpTo = Math.max(shownUpTo, event.id);
          if (event.chat_state && event.chat_state !== state) {
            setState({state: event.chat_state, step: "", agent: event.name});
          }
          receipt(event);
        } else if (event.type === "ack") {
          saved.pending = saved.pending.filter(function (p) { return p.client_id !== event.client_id; });
          persist();
        } else if (event.type === "transcript") {
          status.textContent = event.text;
          transcript.hidden = true;
        } else if (event.type === "state") {
          setState(event);
          markSeen(event.seen);
        } else if (event.type === "seen") {
          markSeen(event.upto);
        } else if (event.type === "typing") {
          agentTyping(event.name);
        } else if (event.type === "error") {
          status.textContent = t["error_" + event.code] || event.text || t.error;
          if (event.client_id) {
            saved.pending = saved.pending.filter(function (p) { return p.client_id !== event.client_id; });
            persist();
          }
        }
      };
      ws.onclose = function (e) {
        ws = null;
        if (e.code === 4401) { saved.token = null; persist(); }
        status.textContent = t.reconnecting;
        retry = Math.min(retry + 1, 6);
        var wait = Math.min(1000 * Math.pow(2, retry - 1), 15000) * (0.5 + Math.random());
        setTimeout(function () { if (!ws) { connect(); } }, wait);
      };
    }
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && shownUpTo) { send({type: "read", id: shownUpTo}); }
    });
    if (mount || saved.token) { connect(); }
  }
})();
