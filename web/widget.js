/*
 * Musaed chat widget: right-to-left Arabic chat over Rasa's socket.io channel.
 *
 * Embed in any page (the socket.io client is served beside this file):
 *   <script src="https://HOST/vendor/socket.io.min.js"></script>
 *   <script src="https://HOST/widget.js" data-server="https://RASA-HOST"></script>
 *
 * Our own rather than rasa-webchat: that package is unmaintained and has no
 * RTL option; this one is a small file over socket.io-client.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var server = (script && script.dataset.server) || window.location.protocol + "//" + window.location.hostname + ":5005";
  var STORE = "musaed.chat.v1";

  function load() {
    try { return JSON.parse(localStorage.getItem(STORE)) || { sessionId: null, log: [] }; }
    catch (e) { return { sessionId: null, log: [] }; }
  }
  var state = load();
  function save() { localStorage.setItem(STORE, JSON.stringify(state)); }

  var root = document.createElement("section");
  root.className = "musaed-chat";
  root.setAttribute("dir", "rtl");
  root.setAttribute("lang", "ar");
  root.innerHTML =
    '<header class="musaed-head">مساعد — خدمات الهوية والإقامة</header>' +
    '<div class="musaed-log" role="log" aria-live="polite"></div>' +
    '<form class="musaed-form">' +
    '<input class="musaed-input" name="message" dir="auto" autocomplete="off" placeholder="اكتب سؤالك هنا…" aria-label="رسالتك">' +
    '<button class="musaed-send" type="submit">إرسال</button></form>';
  (document.querySelector("[data-musaed-chat]") || document.body).appendChild(root);
  var log = root.querySelector(".musaed-log");
  var input = root.querySelector(".musaed-input");

  function render(entry) {
    var bubble = document.createElement("div");
    bubble.className = "musaed-msg musaed-" + entry.from;
    // Each bubble runs the way its own text does: Arabic right to left, English left to right.
    bubble.setAttribute("dir", "auto");
    if (entry.text) {
      var p = document.createElement("p");
      p.textContent = entry.text;  // textContent: a message is never HTML
      bubble.appendChild(p);
    }
    if (entry.image) {
      var img = document.createElement("img");
      img.src = entry.image;
      img.alt = "إيصال الطلب";
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
        btn.addEventListener("click", function () { send(b.payload, b.title); });
        row.appendChild(btn);
      });
      bubble.appendChild(row);
    }
    log.appendChild(bubble);
    log.scrollTop = log.scrollHeight;
  }
  function add(entry) { state.log.push(entry); save(); render(entry); }
  state.log.forEach(render);  // the conversation survives a page reload

  var socket = io(server, { transports: ["websocket", "polling"] });
  socket.on("connect", function () {
    socket.emit("session_request", { session_id: state.sessionId });
  });
  socket.on("session_confirm", function (sessionId) {
    var issued = typeof sessionId === "string" ? sessionId : sessionId.session_id;
    if (state.sessionId && issued !== state.sessionId) {
      // The server started a new conversation (the stored token was not one it
      // issued, or has been replaced): the old transcript is not this one's.
      state.log = [];
      log.textContent = "";
    }
    state.sessionId = issued;
    save();
    root.dataset.ready = "true";
  });
  socket.on("bot_uttered", function (m) {
    var buttons = (m.quick_replies || m.buttons || []).map(function (b) {
      return { title: b.title, payload: b.payload };
    });
    var image = m.attachment && m.attachment.type === "image" ? m.attachment.payload.src : null;
    add({ from: "bot", text: m.text || "", buttons: buttons, image: image });
  });

  function send(message, shown) {
    if (!message || !message.trim()) return;
    add({ from: "user", text: shown || message });
    socket.emit("user_uttered", { message: message, session_id: state.sessionId });
  }
  root.querySelector(".musaed-form").addEventListener("submit", function (e) {
    e.preventDefault();
    send(input.value);
    input.value = "";
  });
})();
