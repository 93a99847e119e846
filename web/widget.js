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
 * kept above the on-screen keyboard (visualViewport); a greeting with three
 * suggested questions; a number pad for an id or a code (the code filled in
 * from the SMS: autocomplete="one-time-code"); a typing indicator that screen
 * readers hear; a visible "reconnecting" state when the socket drops
 * (messages typed meanwhile are marked as waiting and go once it is back, each
 * once); «محادثة جديدة» to start over, after asking; the buttons of a question
 * disabled once it is answered, so a double tap cannot confirm twice; a
 * request's receipt as a card that opens full size, to save or share; and a
 * document sent where the person is: the attach button, a file dropped on the
 * chat, or (when the bot asks for a document) the phone's camera.
 *
 * A document goes as the body of POST <server>/webhooks/socketio/document with
 * the session token (channels/socketio.py): the server checks it by its bytes,
 * keeps it or refuses it, and the bot's answer comes on the socket like any
 * other. No more than the size allowed plus one byte is sent (the server says
 * how much it allows); what the person sees of it is its type and size.
 *
 * Who said what is the bubble's side, by speaker, in the chat's direction: the
 * person's at the inline end, the bot's at the start. Each bubble's text runs
 * its own way (dir and lang from its letters), and what runs against it (a
 * tracking number in Arabic, an address in English) comes isolated from the
 * server (U+2068…U+2069, musaed/bidi.py) and is shown as <bdi>.
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
  var ABSHER = "https://www.absher.sa";

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
    ar: { dir: "rtl", title: "مساعد — خدمات الهوية والإقامة", fresh: "محادثة جديدة",
          reconnecting: "مساعد غير متاح الآن، نعيد الاتصال… ما تكتبه يُرسل عند عودته.",
          typing: "مساعد يكتب…", placeholder: "اكتب سؤالك هنا…", input: "رسالتك", send: "إرسال",
          receipt: "إيصال الطلب", number: "رقم الطلب", service: "الخدمة", date: "التاريخ",
          open: "فتح الإيصال بالحجم الكامل", save: "حفظ", share: "مشاركة", close: "إغلاق",
          pending: "بانتظار الإرسال", freshAsk: "تبدأ محادثة جديدة؟ ستُمسح هذه المحادثة من الشاشة.",
          freshYes: "نعم، ابدأ من جديد", freshNo: "إلغاء",
          attach: "إرفاق مستند", camera: "تصوير مستند", drop: "أفلت الملف هنا لإرساله",
          uploadFailed: "تعذّر إرسال الملف. تأكد من الاتصال ثم حاول مرة أخرى.",
          greeting: "مرحبًا، أنا مساعد. أساعدك في تجديد الهوية والإقامة، والإبلاغ عن فقدان الهوية، وسجل الأسرة، ومتابعة طلباتك. جرّب:",
          suggestions: ["كيف أجدد هويتي الوطنية؟", "ضاعت هويتي، وش أسوي؟", "وين وصل طلبي؟"] },
    en: { dir: "ltr", title: "Musaed — ID and residency services", fresh: "New chat",
          reconnecting: "Musaed is not available right now; reconnecting… What you type is sent when it is back.",
          typing: "Musaed is typing…", placeholder: "Type your question…", input: "Your message", send: "Send",
          receipt: "Request receipt", number: "Request number", service: "Service", date: "Date",
          open: "Open the receipt full size", save: "Save", share: "Share", close: "Close",
          pending: "Waiting to send", freshAsk: "Start a new chat? This conversation will be cleared from the screen.",
          freshYes: "Yes, start over", freshNo: "Cancel",
          attach: "Attach a document", camera: "Take a photo of a document", drop: "Drop the file here to send it",
          uploadFailed: "The file couldn't be sent. Check the connection, then try again.",
          greeting: "Hello, I'm Musaed. I help you renew an ID or iqama, report a lost ID, replace a family record and follow your requests. Try:",
          suggestions: ["How do I renew my national ID?", "I lost my ID card", "Where is my request?"] }
  };
  function pick(tag) {
    tag = (tag || "").slice(0, 2).toLowerCase();
    return WORDS[tag] ? tag : null;
  }
  // The language a text is written in: more Arabic letters than Latin ones is Arabic.
  function languageOf(text) {
    var arabic = (text.match(/[\u0600-\u06FF]/g) || []).length;
    var latin = (text.match(/[A-Za-z]/g) || []).length;
    return arabic || latin ? (arabic >= latin ? "ar" : "en") : null;
  }

  var root = document.createElement("section");
  root.className = "musaed-chat";
  // The form comes before the log: the tab order is input, send, then the answers' buttons
  // (widget.css shows the form at the bottom).
  root.innerHTML =
    '<header class="musaed-head"><span class="musaed-title"></span>' +
    '<button class="musaed-new" type="button"></button></header>' +
    '<div class="musaed-confirm" hidden><p></p><button class="musaed-confirm-yes" type="button"></button>' +
    '<button class="musaed-confirm-no" type="button"></button></div>' +
    '<div class="musaed-status" role="status" hidden></div>' +
    '<form class="musaed-form">' +
    '<input class="musaed-input" name="message" dir="auto" autocomplete="off" enterkeyhint="send">' +
    '<button class="musaed-send" type="submit"></button></form>' +
    '<div class="musaed-log" role="log" aria-live="polite" tabindex="-1"></div>' +
    '<div class="musaed-typing" role="status"><span class="musaed-dots" hidden><span></span><span></span><span></span></span>' +
    '<span class="musaed-sr"></span></div>' +
    // After the log in the page (tab order: input, send, the answers, then these), shown under the input.
    '<div class="musaed-tools"><button class="musaed-attach" type="button"><span aria-hidden="true">📎</span> ' +
    '<span class="musaed-attach-words"></span></button>' +
    '<button class="musaed-camera" type="button" hidden><span aria-hidden="true">📷</span> ' +
    '<span class="musaed-camera-words"></span></button>' +
    '<input class="musaed-file" type="file" accept="image/jpeg,image/png,application/pdf,.jpg,.jpeg,.png,.pdf" hidden>' +
    '<input class="musaed-shot" type="file" accept="image/*" capture="environment" hidden></div>' +
    '<div class="musaed-drop" hidden></div>';
  (document.querySelector("[data-musaed-chat]") || document.body).appendChild(root);
  var log = root.querySelector(".musaed-log");
  var input = root.querySelector(".musaed-input");
  var dots = root.querySelector(".musaed-dots");
  var typingText = root.querySelector(".musaed-typing .musaed-sr");
  var status = root.querySelector(".musaed-status");
  var confirmBar = root.querySelector(".musaed-confirm");
  var typingTimer = null;
  var attach = root.querySelector(".musaed-attach");
  var camera = root.querySelector(".musaed-camera");
  var picker = root.querySelector(".musaed-file");
  var shooter = root.querySelector(".musaed-shot");
  var dropZone = root.querySelector(".musaed-drop");

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
    confirmBar.querySelector("p").textContent = w.freshAsk;
    confirmBar.querySelector(".musaed-confirm-yes").textContent = w.freshYes;
    confirmBar.querySelector(".musaed-confirm-no").textContent = w.freshNo;
    status.textContent = w.reconnecting;
    if (typingText.textContent) typingText.textContent = w.typing;
    input.placeholder = w.placeholder;
    input.setAttribute("aria-label", w.input);
    root.querySelector(".musaed-attach-words").textContent = w.attach;
    root.querySelector(".musaed-camera-words").textContent = w.camera;
    root.querySelector(".musaed-drop").textContent = w.drop;
  }
  speak(pick(state.language) || pick(script && script.dataset.lang) || pick(document.documentElement.lang) ||
        pick(navigator.language) || "ar");

  // The typing indicator is a live status: its words are announced, its dots are only seen.
  function showTyping(on) {
    dots.hidden = !on;
    typingText.textContent = on ? words().typing : "";
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(function () { showTyping(false); }, TYPING_MS);
  }

  // The keyboard the next answer needs: digits for an id or a code, the code filled in from the SMS.
  function expect(asks) {
    var digits = asks === "national_id" || asks === "otp";
    input.setAttribute("inputmode", digits ? "numeric" : "text");
    input.setAttribute("autocomplete", asks === "otp" ? "one-time-code" : "off");
    input.dataset.asks = asks || "";
    // A document asked for: the camera too (phones open it straight away), and the attach button stands out.
    camera.hidden = asks !== "documents";
    attach.classList.toggle("musaed-wanted", asks === "documents");
  }

  // Text as nodes, never HTML: isolates (U+2068…U+2069) become <bdi>, the call centre and Absher links.
  var LINK = /(\b(?:992|9200\d{5}|800\d{7})\b|أبشر|Absher)/;
  function appendLinked(parent, text) {
    text.split(LINK).forEach(function (part, i) {
      if (!part) return;
      if (i % 2 === 0) { parent.appendChild(document.createTextNode(part)); return; }
      var a = document.createElement("a");
      a.textContent = part;
      if (/^\d/.test(part)) { a.href = "tel:" + part; } else { a.href = ABSHER; a.target = "_blank"; a.rel = "noopener"; }
      parent.appendChild(a);
    });
  }
  function fill(parent, text) {
    var depth = 0, node = parent, run = "";
    var stack = [];
    function flushRun() { if (run) appendLinked(node, run); run = ""; }
    for (var i = 0; i < text.length; i++) {
      var c = text[i];
      if (c === "\u2068" || c === "\u2066" || c === "\u2067") {
        flushRun();
        var bdi = document.createElement("bdi");
        if (c === "\u2066") bdi.dir = "ltr";
        if (c === "\u2067") bdi.dir = "rtl";
        node.appendChild(bdi);
        stack.push(node);
        node = bdi;
        depth++;
      } else if (c === "\u2069") {
        flushRun();
        if (depth) { node = stack.pop(); depth--; }
      } else {
        run += c;
      }
    }
    flushRun();
  }
  function textBlock(tag, text) {
    var el = document.createElement(tag);
    var language = languageOf(text) || state.language;
    el.setAttribute("lang", language);
    el.setAttribute("dir", WORDS[language].dir);
    fill(el, text);
    return el;
  }

  // Keep the latest message in view unless the person scrolled up to read.
  var following = true;
  log.addEventListener("scroll", function () {
    following = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  });
  function toBottom() { if (following) log.scrollTop = log.scrollHeight; }

  function receiptCard(entry) {
    var w = words();
    var card = document.createElement("figure");
    card.className = "musaed-receipt";
    var r = entry.receipt || {};
    var caption = document.createElement("figcaption");
    caption.appendChild(textBlock("strong", w.receipt));
    [[w.number, r.number], [w.service, r.service], [w.date, r.date]].forEach(function (row) {
      if (!row[1]) return;
      var line = document.createElement("p");
      line.appendChild(document.createTextNode(row[0] + ": "));
      var value = document.createElement("bdi");
      value.className = "musaed-receipt-value";
      value.textContent = row[1];
      line.appendChild(value);
      caption.appendChild(line);
    });
    card.appendChild(caption);
    var open = document.createElement("button");
    open.type = "button";
    open.className = "musaed-receipt-open";
    open.setAttribute("aria-label", w.open);
    var img = document.createElement("img");
    img.src = entry.image;
    img.alt = w.receipt + (r.number ? " " + r.number : "");
    img.className = "musaed-image";
    // Scrolling waits for the image: it is what makes the card tall.
    img.addEventListener("load", toBottom);
    open.appendChild(img);
    open.addEventListener("click", function () { viewer(entry.image, r.number); });
    card.appendChild(open);
    return card;
  }

  // A receipt full size, with save and share (Web Share API where the browser has it).
  var dialog = null;
  function viewer(src, number) {
    var w = words();
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.className = "musaed-viewer";
      root.appendChild(dialog);
      dialog.addEventListener("close", function () { input.focus({ preventScroll: true }); });
    }
    dialog.textContent = "";
    dialog.setAttribute("aria-label", w.receipt);
    var img = document.createElement("img");
    img.src = src;
    img.alt = w.receipt + (number ? " " + number : "");
    dialog.appendChild(img);
    var bar = document.createElement("div");
    bar.className = "musaed-viewer-bar";
    var save = document.createElement("a");
    save.href = src;
    save.download = (number || "receipt") + ".png";
    save.textContent = w.save;
    bar.appendChild(save);
    if (navigator.share) {
      var share = document.createElement("button");
      share.type = "button";
      share.textContent = w.share;
      share.addEventListener("click", function () {
        fetch(src).then(function (r) { return r.blob(); }).then(function (blob) {
          var file = new File([blob], (number || "receipt") + ".png", { type: "image/png" });
          var data = navigator.canShare && navigator.canShare({ files: [file] }) ? { files: [file], title: w.receipt }
                                                                                : { url: src, title: w.receipt };
          return navigator.share(data);
        }).catch(function () { /* the person closed the share sheet */ });
      });
      bar.appendChild(share);
    }
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = w.close;
    close.addEventListener("click", function () { dialog.close(); });
    bar.appendChild(close);
    dialog.appendChild(bar);
    dialog.showModal();
    close.focus();
  }

  function render(entry, index) {
    var bubble = document.createElement("div");
    bubble.className = "musaed-msg musaed-" + entry.from + (entry.image ? " musaed-has-receipt" : "");
    entry.el = bubble;
    if (entry.agent) {  // a person from customer care, not the assistant: named
      var who = document.createElement("span");
      who.className = "musaed-who";
      who.textContent = entry.agent;
      bubble.appendChild(who);
    }
    if (entry.text) bubble.appendChild(textBlock("p", entry.text));
    if (entry.image) bubble.appendChild(receiptCard(entry));
    if (entry.pending) pendingMark(bubble);
    if (entry.buttons && entry.buttons.length) {
      var row = document.createElement("div");
      row.className = "musaed-buttons";
      entry.buttons.forEach(function (b) {
        var btn = document.createElement("button");
        btn.type = "button";
        btn.className = "musaed-button";
        btn.appendChild(textBlock("span", b.title));
        btn.disabled = !!entry.answered;
        btn.addEventListener("click", function () {
          if (entry.answered) return;  // a second tap on an answered question does nothing
          answer(index);
          send(b.payload, b.title);
          keepFocus();
        });
        row.appendChild(btn);
      });
      bubble.appendChild(row);
    }
    log.appendChild(bubble);
    toBottom();
  }
  function pendingMark(bubble) {
    var mark = document.createElement("span");
    mark.className = "musaed-pending";
    mark.textContent = words().pending;
    bubble.appendChild(mark);
  }
  function sent(entry) {
    delete entry.pending;
    var mark = entry.el && entry.el.querySelector(".musaed-pending");
    if (mark) mark.remove();
  }
  // After a tap the focus stays in the chat: the input on a keyboard, the log on a touch
  // screen (focusing the input there would open the on-screen keyboard).
  function keepFocus() {
    if (window.matchMedia && window.matchMedia("(pointer: coarse)").matches) log.focus({ preventScroll: true });
    else input.focus({ preventScroll: true });
  }
  // A question's buttons are for one answer: disable every earlier question's.
  function answer(upTo) {
    state.log.forEach(function (entry, i) {
      if (i <= upTo && entry.buttons && entry.buttons.length) {
        entry.answered = true;
        if (entry.el) entry.el.querySelectorAll(".musaed-button").forEach(function (b) { b.disabled = true; });
      }
    });
  }
  function add(entry) { state.log.push(entry); render(entry, state.log.length - 1); }
  function redraw() { log.textContent = ""; following = true; state.log.forEach(render); greet(); }
  // An empty chat opens with a greeting and three questions to try (shown here, not sent).
  function greet() {
    if (state.log.length || log.querySelector(".musaed-greeting")) return;
    var w = words();
    var bubble = document.createElement("div");
    bubble.className = "musaed-msg musaed-bot musaed-greeting";
    bubble.appendChild(textBlock("p", w.greeting));
    var row = document.createElement("div");
    row.className = "musaed-buttons";
    w.suggestions.forEach(function (question) {
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = "musaed-button";
      btn.appendChild(textBlock("span", question));
      btn.addEventListener("click", function () { send(question); keepFocus(); });
      row.appendChild(btn);
    });
    bubble.appendChild(row);
    log.appendChild(bubble);
  }
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
  function entryOf(m, from) {
    var buttons = (m.quick_replies || m.buttons || []).map(function (b) { return { title: b.title, payload: b.payload }; });
    var image = m.image || (m.attachment && m.attachment.type === "image" ? m.attachment.payload.src : null);
    return { from: from, agent: from === "agent" ? m.agent : null, text: m.text || "", buttons: buttons,
             image: image, receipt: m.receipt || null };
  }
  // The conversation so far (after a reload): what the person typed meanwhile stays after it.
  socket.on("session_history", function (entries) {
    if (!Array.isArray(entries)) return;
    restored = true;
    var waiting = state.log.filter(function (e) { return e.pending; });
    state.log = entries.map(function (e) {
      return entryOf(e, e.from === "user" || e.from === "agent" ? e.from : "bot");
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
    var last = entries[entries.length - 1];
    expect(last && last.from === "bot" ? last.asks : null);
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
    greet();
    root.dataset.ready = "true";
    flush();
  });
  socket.on("bot_uttered", function (m) {
    if (startingOver) return;  // the rest of the old conversation's answer: not this one's
    showTyping(false);
    var language = languageOf(m.text || "");
    if (language && language !== state.language) speak(language);
    // An agent's message (customer care, issue 28) carries the agent's name, and the desk's
    // messages whether an agent holds the chat: the bot is silent then, so no "typing".
    var agent = typeof m.agent === "string" && m.agent ? m.agent : null;
    if (typeof m.handover === "string") withAgent = m.handover === "agent";
    var greeting = log.querySelector(".musaed-greeting");
    if (greeting) greeting.remove();
    add(entryOf(m, agent ? "agent" : "bot"));
    expect(m.asks);
  });

  // Each typed message is shown once and sent once: straight away when
  // connected, else kept in the outbox (in this page's memory only: it may
  // be an id or a code), marked as waiting, until the session is confirmed again.
  function flush() {
    while (state.outbox.length && socket.connected && root.dataset.connected === "true" && !startingOver) {
      var out = state.outbox.shift();
      var message = { message: out.message, session_id: state.sessionId };
      // A button's title: what an agent reads instead of its payload (channels/handover_gate.py).
      if (out.title) message.metadata = { musaed_title: out.title };
      socket.emit("user_uttered", message);
      sent(out.entry);
      showTyping(!withAgent);
    }
  }
  function send(message, shown) {
    if (!message || !message.trim()) return;
    answer(state.log.length - 1);  // typing an answer answers the question too
    var greeting = log.querySelector(".musaed-greeting");
    if (greeting) greeting.remove();
    var entry = { from: "user", text: shown || message, pending: true };
    add(entry);
    following = true;
    toBottom();
    state.outbox.push({ message: message, title: shown || null, entry: entry });
    expect(null);
    flush();
  }
  // -- documents --------------------------------------------------------------------
  var UPLOAD = server.replace(/\/+$/, "") + "/webhooks/socketio/document";
  var allowed = null;  // how many bytes the server takes (asked once)
  var TYPES = { "image/jpeg": "JPEG", "image/png": "PNG", "application/pdf": "PDF" };
  function sizeText(bytes) {
    return bytes < 1048576 ? Math.max(1, Math.ceil(bytes / 1024)) + " KB" : (bytes / 1048576).toFixed(1) + " MB";
  }
  function limit() {
    if (allowed !== null) return Promise.resolve(allowed);
    return fetch(UPLOAD).then(function (r) { return r.json(); }).then(function (d) {
      allowed = typeof d.max_bytes === "number" ? d.max_bytes : 5242880;
      return allowed;
    }).catch(function () { return 5242880; });
  }
  // The person's own bubble says what went (its type as the browser names it, and its size), not its name.
  function sendFile(file) {
    if (!file) return;
    answer(state.log.length - 1);
    var greeting = log.querySelector(".musaed-greeting");
    if (greeting) greeting.remove();
    var entry = { from: "user", text: "📎 " + (TYPES[file.type] || file.type || "?") + " · " + sizeText(file.size),
                  pending: true };
    add(entry);
    following = true;
    toBottom();
    expect(null);
    limit().then(function (most) {
      if (!state.sessionId || root.dataset.connected !== "true") throw new Error("offline");
      showTyping(!withAgent);
      // No more than one byte past the limit: enough for the server to say it is too large.
      return fetch(UPLOAD, { method: "POST", body: file.size > most ? file.slice(0, most + 1) : file,
                             headers: { "Authorization": "Bearer " + state.sessionId,
                                        "Content-Type": "application/octet-stream" } });
    }).then(function (response) {
      sent(entry);
      if (response.status === 401 || response.status === 403) throw new Error("refused");
    }).catch(function () {
      sent(entry);
      showTyping(false);
      add({ from: "bot", text: words().uploadFailed, buttons: [] });
    });
  }
  function pickFrom(chooser) {
    chooser.value = "";
    chooser.click();
  }
  attach.addEventListener("click", function () { pickFrom(picker); });
  camera.addEventListener("click", function () { pickFrom(shooter); });
  [picker, shooter].forEach(function (chooser) {
    chooser.addEventListener("change", function () {
      if (chooser.files && chooser.files[0]) sendFile(chooser.files[0]);
      keepFocus();
    });
  });
  // A file dragged onto the chat: dropped anywhere on it, sent.
  var dragging = 0;
  root.addEventListener("dragenter", function (e) {
    if (!e.dataTransfer || Array.prototype.indexOf.call(e.dataTransfer.types || [], "Files") < 0) return;
    e.preventDefault();
    dragging++;
    dropZone.hidden = false;
  });
  root.addEventListener("dragover", function (e) {
    if (!dropZone.hidden) { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; }
  });
  root.addEventListener("dragleave", function () { if (--dragging <= 0) { dragging = 0; dropZone.hidden = true; } });
  root.addEventListener("drop", function (e) {
    dragging = 0;
    dropZone.hidden = true;
    if (!e.dataTransfer || !e.dataTransfer.files || !e.dataTransfer.files.length) return;
    e.preventDefault();
    sendFile(e.dataTransfer.files[0]);
  });

  root.querySelector(".musaed-form").addEventListener("submit", function (e) {
    e.preventDefault();
    send(input.value);
    input.value = "";
  });

  // «محادثة جديدة» asks first: the conversation leaves the screen for good.
  var freshButton = root.querySelector(".musaed-new");
  function asking(on) {
    confirmBar.hidden = !on;
    freshButton.setAttribute("aria-expanded", on ? "true" : "false");
    if (on) confirmBar.querySelector(".musaed-confirm-no").focus();
  }
  freshButton.addEventListener("click", function () { asking(confirmBar.hidden); });
  confirmBar.querySelector(".musaed-confirm-no").addEventListener("click", function () {
    asking(false);
    freshButton.focus();
  });
  confirmBar.addEventListener("keydown", function (e) { if (e.key === "Escape") { asking(false); freshButton.focus(); } });
  confirmBar.querySelector(".musaed-confirm-yes").addEventListener("click", function () {
    asking(false);
    // Start over: the old session ends on the server, a new one is issued, the transcript is empty.
    var ending = state.sessionId || state.ending;
    state = { sessionId: null, ending: ending, log: [], outbox: [], language: state.language };
    save();
    log.textContent = "";
    showTyping(false);
    expect(null);
    root.dataset.ready = "false";
    startingOver = true;
    withAgent = false;
    if (socket.connected) socket.emit("session_request", { session_id: null, end: ending });
    // (else the next connect sends it)
    input.focus({ preventScroll: true });
  });

  // Phones: the chat fills the visible viewport, which shrinks for the on-screen keyboard
  // (dvh does not on iOS or Chrome for Android), and the latest message stays in view.
  if (window.visualViewport) {
    var fit = function () {
      if (window.matchMedia("(max-width: 600px)").matches) {
        root.style.height = window.visualViewport.height + "px";
        root.style.top = window.visualViewport.offsetTop + "px";
      } else {
        root.style.height = "";
        root.style.top = "";
      }
      toBottom();
    };
    window.visualViewport.addEventListener("resize", fit);
    window.visualViewport.addEventListener("scroll", fit);
    fit();
  }
})();
