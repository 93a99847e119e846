/*
 * Musaed chat widget: Arabic and English chat over Rasa's socket.io channel.
 *
 * Embed in any page (the socket.io client is served beside this file):
 *   <script src="https://HOST/vendor/socket.io.min.js"></script>
 *   <script src="https://HOST/widget.js" data-server="https://RASA-HOST"></script>
 * The embedding site's origin must be in the server's MUSAED_WEB_ORIGINS:
 * the socket refuses a page from any other.
 *
 * Our own rather than rasa-webchat: that package is unmaintained and has no
 * RTL option; this one is a small file over socket.io-client.
 *
 * What a person on a phone needs: full screen on small screens (widget.css),
 * a typing indicator while the bot answers, a visible "reconnecting" state
 * when the socket drops (messages typed meanwhile wait and go once it is
 * back, each once), «محادثة جديدة» to start over, and the buttons of a
 * question disabled once it is answered, so a double tap cannot confirm twice.
 *
 * What the browser keeps (localStorage) is the session token and the
 * language, nothing a person typed or was told: no transcript (it held
 * national ids, dependents' ids, names and requests), and messages typed
 * while offline wait in memory only. After a reload the server sends the
 * conversation back (session_history) to a token it still accepts.
 * «محادثة جديدة» ends the old session on the server (it is sent as `end`,
 * kept until the server confirms), and the server lets an idle one expire.
 *
 * Its own words (header, placeholder, buttons) are in the language of the
 * bot's latest reply: the server answers in the person's language (Arabizi is
 * Arabic), so the frame follows the same choice and turns left to right in
 * English. Before any reply: the script's data-lang, else the page's lang,
 * else the browser's.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var server = (script && script.dataset.server) || window.location.protocol + "//" + window.location.hostname + ":5005";
  var STORE = "musaed.chat.v1";
  // How long the typing indicator waits for a first reply before it gives up.
  var TYPING_MS = 15000;

  function load() {
    var kept = {};
    try { kept = JSON.parse(localStorage.getItem(STORE)) || {}; } catch (e) { kept = {}; }
    function token(t) { return typeof t === "string" ? t : null; }
    return { sessionId: token(kept.sessionId), ending: token(kept.ending), language: kept.language,
             log: [], outbox: [] };  // the transcript and the outbox live in this page only
  }
  var state = load();
  // Only these go to storage; writing them now also drops a transcript an older widget kept.
  function save() {
    localStorage.setItem(STORE, JSON.stringify({ sessionId: state.sessionId, ending: state.ending,
                                                 language: state.language }));
  }
  save();

  var WORDS = {
    ar: { dir: "rtl", title: "مساعد — خدمات الهوية والإقامة", fresh: "محادثة جديدة", reconnecting: "جارٍ إعادة الاتصال…",
          typing: "مساعد يكتب", placeholder: "اكتب سؤالك هنا…", input: "رسالتك", send: "إرسال", receipt: "إيصال الطلب" },
    en: { dir: "ltr", title: "Musaed — ID and residency services", fresh: "New chat", reconnecting: "Reconnecting…",
          typing: "Musaed is typing", placeholder: "Type your question…", input: "Your message", send: "Send",
          receipt: "Request receipt" }
  };
  function pick(tag) {
    tag = (tag || "").slice(0, 2).toLowerCase();
    return WORDS[tag] ? tag : null;
  }
  // The language a reply is written in: more Arabic letters than Latin ones is Arabic.
  function languageOf(text) {
    var arabic = (text.match(/[\u0600-\u06FF]/g) || []).length;
    var latin = (text.match(/[A-Za-z]/g) || []).length;
    return arabic || latin ? (arabic >= latin ? "ar" : "en") : null;
  }

  var root = document.createElement("section");
  root.className = "musaed-chat";
  root.innerHTML =
    '<header class="musaed-head"><span class="musaed-title"></span>' +
    '<button class="musaed-new" type="button"></button></header>' +
    '<div class="musaed-status" role="status" hidden></div>' +
    '<div class="musaed-log" role="log" aria-live="polite"></div>' +
    '<div class="musaed-typing" hidden><span></span><span></span><span></span></div>' +
    '<form class="musaed-form">' +
    '<input class="musaed-input" name="message" dir="auto" autocomplete="off" enterkeyhint="send">' +
    '<button class="musaed-send" type="submit"></button></form>';
  (document.querySelector("[data-musaed-chat]") || document.body).appendChild(root);
  var log = root.querySelector(".musaed-log");
  var input = root.querySelector(".musaed-input");
  var typing = root.querySelector(".musaed-typing");
  var status = root.querySelector(".musaed-status");
  var typingTimer = null;

  function words() { return WORDS[state.language]; }
  function speak(language) {
    state.language = language;
    save();
    var w = words();
    root.setAttribute("lang", language);
    root.setAttribute("dir", w.dir);
    root.querySelector(".musaed-title").textContent = w.title;
    root.querySelector(".musaed-new").textContent = w.fresh;
    root.querySelector(".musaed-send").textContent = w.send;
    status.textContent = w.reconnecting;
    typing.setAttribute("aria-label", w.typing);
    input.placeholder = w.placeholder;
    input.setAttribute("aria-label", w.input);
  }
  speak(pick(state.language) || pick(script && script.dataset.lang) || pick(document.documentElement.lang) ||
        pick(navigator.language) || "ar");

  function showTyping(on) {
    typing.hidden = !on;
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(function () { typing.hidden = true; }, TYPING_MS);
  }

  function render(entry, index) {
    var bubble = document.createElement("div");
    bubble.className = "musaed-msg musaed-" + entry.from;
    // Each bubble runs the way its own text does: Arabic right to left, English left to right.
    bubble.setAttribute("dir", "auto");
    if (entry.agent) {  // a person from customer care, not the assistant: named
      var who = document.createElement("span");
      who.className = "musaed-who";
      who.textContent = entry.agent;
      bubble.appendChild(who);
    }
    if (entry.text) {
      var p = document.createElement("p");
      p.textContent = entry.text;  // textContent: a message is never HTML
      bubble.appendChild(p);
    }
    if (entry.image) {
      var img = document.createElement("img");
      img.src = entry.image;
      img.alt = words().receipt;
      img.className = "musaed-image";
      bubble.appendChild(img);
    }
    if (entry.buttons && entry.buttons.length) {
      var row = document.createElement("div");
      row.className = "musaed-buttons";
      entry.buttons.forEach(function (b) {
        var btn = document.createElement("button");
        btn.type = "button";
        btn.className = "musaed-button";
        btn.textContent = b.title;
        btn.disabled = !!entry.answered;
        btn.addEventListener("click", function () {
          if (entry.answered) return;  // a second tap on an answered question does nothing
          answer(index);
          send(b.payload, b.title);
        });
        row.appendChild(btn);
      });
      bubble.appendChild(row);
    }
    log.appendChild(bubble);
    log.scrollTop = log.scrollHeight;
  }
  // A question's buttons are for one answer: disable every earlier question's.
  function answer(upTo) {
    state.log.forEach(function (entry, i) { if (i <= upTo && entry.buttons && entry.buttons.length) entry.answered = true; });
    root.querySelectorAll(".musaed-button").forEach(function (btn) {
      var bubble = btn.closest(".musaed-msg");
      var i = Array.prototype.indexOf.call(log.children, bubble);
      if (i <= upTo) btn.disabled = true;
    });
  }
  function add(entry) { state.log.push(entry); render(entry, state.log.length - 1); }
  function redraw() { log.textContent = ""; state.log.forEach(render); }
  var withAgent = false;  // an agent holds the conversation (the bot is silent)
  var restored = false;  // has the server sent this page the conversation so far?
  var startingOver = false;  // «محادثة جديدة» pressed, its new session not confirmed yet

  var socket = io(server, { transports: ["websocket", "polling"] });
  function online(up) {
    status.hidden = up;
    root.dataset.connected = up ? "true" : "false";
  }
  socket.on("connect", function () {
    var request = { session_id: state.sessionId, history: !restored && !!state.sessionId };
    if (state.ending) request.end = state.ending;  // «محادثة جديدة» not yet confirmed
    socket.emit("session_request", request);
  });
  // The conversation so far (after a reload): what the person typed meanwhile stays after it.
  socket.on("session_history", function (entries) {
    if (!Array.isArray(entries)) return;
    restored = true;
    var waiting = state.log.filter(function (e) { return e.pending; });
    state.log = entries.map(function (e) {
      var from = e.from === "user" || e.from === "agent" ? e.from : "bot";
      return { from: from, agent: from === "agent" ? e.agent : null, text: e.text || "", buttons: e.buttons || [],
               image: e.image || null };
    });
    // A question the person has answered since keeps its buttons disabled.
    var lastUser = -1;
    state.log.forEach(function (e, i) { if (e.from === "user") lastUser = i; });
    state.log.forEach(function (e, i) { if (i < lastUser && e.buttons.length) e.answered = true; });
    state.log = state.log.concat(waiting);
    redraw();
    for (var i = state.log.length - 1; i >= 0; i--) {
      var language = state.log[i].from === "bot" && languageOf(state.log[i].text);
      if (language) { if (language !== state.language) speak(language); break; }
    }
  });
  socket.on("disconnect", function () { online(false); showTyping(false); });
  socket.on("session_confirm", function (sessionId) {
    var issued = typeof sessionId === "string" ? sessionId : sessionId.session_id;
    if (state.sessionId && issued !== state.sessionId) {
      // The server started a new conversation (the stored token was not one it
      // issued, was ended or expired): the old transcript is not this one's,
      // only what the person just typed into it.
      state.log = state.log.filter(function (e) { return e.pending; });
      redraw();
    }
    state.sessionId = issued;
    state.ending = null;
    restored = true;
    startingOver = false;
    save();
    online(true);
    root.dataset.ready = "true";
    flush();
  });
  socket.on("bot_uttered", function (m) {
    if (startingOver) return;  // the rest of the old conversation's answer: not this one's
    showTyping(false);
    state.log.forEach(function (e) { delete e.pending; });
    var buttons = (m.quick_replies || m.buttons || []).map(function (b) {
      return { title: b.title, payload: b.payload };
    });
    var image = m.attachment && m.attachment.type === "image" ? m.attachment.payload.src : null;
    var language = languageOf(m.text || "");
    if (language && language !== state.language) speak(language);
    // An agent's message (customer care, issue 28) carries the agent's name, and the desk's
    // messages whether an agent holds the chat: the bot is silent then, so no "typing".
    var agent = typeof m.agent === "string" && m.agent ? m.agent : null;
    if (typeof m.handover === "string") withAgent = m.handover === "agent";
    add({ from: agent ? "agent" : "bot", agent: agent, text: m.text || "", buttons: buttons, image: image });
  });

  // Each typed message is shown once and sent once: straight away when
  // connected, else kept in the outbox (in this page's memory only: it may
  // be an id or a code) until the session is confirmed again.
  function flush() {
    while (state.outbox.length && socket.connected && root.dataset.connected === "true" && !startingOver) {
      var out = state.outbox.shift();
      var sent = { message: out.message, session_id: state.sessionId };
      // A button's title: what an agent reads instead of its payload (channels/handover_gate.py).
      if (out.title) sent.metadata = { musaed_title: out.title };
      socket.emit("user_uttered", sent);
      showTyping(!withAgent);
    }
  }
  function send(message, shown) {
    if (!message || !message.trim()) return;
    answer(state.log.length - 1);  // typing an answer answers the question too
    add({ from: "user", text: shown || message, pending: true });
    state.outbox.push({ message: message, title: shown || null });
    flush();
  }
  root.querySelector(".musaed-form").addEventListener("submit", function (e) {
    e.preventDefault();
    send(input.value);
    input.value = "";
  });
  root.querySelector(".musaed-new").addEventListener("click", function () {
    // Start over: the old session ends on the server, a new one is issued, the transcript is empty.
    var ending = state.sessionId || state.ending;
    state = { sessionId: null, ending: ending, log: [], outbox: [], language: state.language };
    save();
    log.textContent = "";
    showTyping(false);
    root.dataset.ready = "false";
    startingOver = true;
    withAgent = false;
    if (socket.connected) socket.emit("session_request", { session_id: null, end: ending });
    // (else the next connect sends it)
  });
})();
