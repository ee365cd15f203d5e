/*!
 * kefu chat widget: a launcher button and a chat window for any page.
 *
 *   <script>window.KefuChat = {serverUrl: "https://bot.example.com", title: "Support", language: "en"};</script>
 *   <script src="https://bot.example.com:8080/static/kefu-widget.js" defer></script>
 *
 * or the same options as data- attributes of the script tag (data-server-url,
 * data-title, data-language, data-jwt, data-primary-color, data-open).
 * Talks to Rasa's socket.io channel (socket.io-client, served next to this file
 * under vendor/), falls back to the REST channel when socket.io cannot connect.
 * Bot text is never parsed as HTML: messages are built from DOM text nodes and
 * only http(s) URLs become links.
 */
(function () {
  "use strict";
  if (window.__kefuChatLoaded) return;
  window.__kefuChatLoaded = true;

  var script = document.currentScript;
  var STRINGS = {
    en: {
      title: "Chat with us", launcher: "Chat with us", close: "Close chat", placeholder: "Type a message…",
      inputLabel: "Message", send: "Send", typing: "The assistant is typing…", connecting: "Connecting…",
      online: "Online", offline: "Offline: your messages will be sent when the connection is back",
      restMode: "Online (basic connection)", pending: "Not sent yet", failed: "Not delivered: ",
      escalated: "You have been handed over to a person. A member of our team will continue this chat here.",
      suggestions: "Suggested replies", image: "Image from the assistant", log: "Conversation",
      you: "You said:", bot: "Assistant said:", authFailed: "The chat could not sign in. Please reload the page.",
      noAnswer: "the server did not answer"
    },
    zh: {
      title: "在线客服", launcher: "联系在线客服", close: "关闭聊天", placeholder: "请输入消息…",
      inputLabel: "消息", send: "发送", typing: "客服助手正在输入…", connecting: "正在连接…",
      online: "在线", offline: "网络已断开：恢复连接后会自动发送您的消息",
      restMode: "在线（基本连接）", pending: "尚未发送", failed: "发送失败：",
      escalated: "已为您转接人工客服，工作人员将在此继续为您服务。",
      suggestions: "快捷回复", image: "助手发送的图片", log: "对话记录",
      you: "您说：", bot: "助手说：", authFailed: "聊天登录失败，请刷新页面。",
      noAnswer: "服务器没有响应"
    }
  };
  var MAX_HISTORY = 200;
  var URL_RE = /https?:\/\/[^\s<>"']+/g;

  function readConfig() {
    var cfg = {};
    var global = window.KefuChat;
    if (global && typeof global === "object") for (var k in global) cfg[k] = global[k];
    var d = (script && script.dataset) || {};
    if (d.serverUrl) cfg.serverUrl = d.serverUrl;
    if (d.title) cfg.title = d.title;
    if (d.language) cfg.language = d.language;
    if (d.jwt) cfg.jwt = d.jwt;
    if (d.transport) cfg.transport = d.transport;
    if (d.open) cfg.open = d.open === "true";
    if (d.primaryColor) cfg.colors = Object.assign({}, cfg.colors, {primary: d.primaryColor});
    var base = script && script.src ? script.src.replace(/[^/]*(\?.*)?$/, "") : "/static/";
    cfg.assetsUrl = (cfg.assetsUrl || base).replace(/\/?$/, "/");
    cfg.serverUrl = String(cfg.serverUrl || window.location.origin).replace(/\/+$/, "");
    cfg.socketPath = cfg.socketPath || "/socket.io";
    cfg.connectTimeoutMs = cfg.connectTimeoutMs || 8000;
    var lang = String(cfg.language || document.documentElement.lang || navigator.language || "en").toLowerCase();
    cfg.lang = STRINGS[lang] ? lang : (STRINGS[lang.split("-")[0]] ? lang.split("-")[0] : "en");
    return cfg;
  }

  // ---- persistence: the session id, the rendered history and unsent messages survive reloads ----
  function Store(key) {
    this.key = key;
    var saved = null;
    try { saved = JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { saved = null; }
    this.state = saved && typeof saved.sessionId === "string" ? saved : {sessionId: newId(), messages: [], escalated: false, open: false};
    this.state.messages = Array.isArray(this.state.messages) ? this.state.messages : [];
  }
  Store.prototype.save = function () {
    var s = this.state;
    if (s.messages.length > MAX_HISTORY) {
      // Never drop a message that is still waiting to be sent.
      var extra = s.messages.length - MAX_HISTORY;
      s.messages = s.messages.filter(function (m) { return m.status === "pending" || extra-- <= 0; });
    }
    try { window.localStorage.setItem(this.key, JSON.stringify(s)); } catch (e) { /* storage full or disabled: keep in memory */ }
  };
  Store.prototype.pending = function () {
    return this.state.messages.filter(function (m) { return m.status === "pending"; });
  };

  function newId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var name in attrs || {}) {
      if (name === "text") node.textContent = attrs[name];
      else if (name === "className") node.className = attrs[name];
      else node.setAttribute(name, attrs[name]);
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  /** Text with http(s) URLs as links, built from text nodes (never innerHTML). */
  function linkified(text) {
    var frag = document.createDocumentFragment();
    var last = 0;
    String(text).replace(URL_RE, function (match, offset) {
      var url = match.replace(/[.,;:!?)\]]+$/, "");
      frag.appendChild(document.createTextNode(text.slice(last, offset)));
      frag.appendChild(el("a", {href: url, target: "_blank", rel: "noopener noreferrer nofollow", text: url}));
      last = offset + url.length;
      return match;
    });
    frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  function safeImageUrl(src) {
    return typeof src === "string" && /^https?:\/\//i.test(src) ? src : null;
  }

  /** One shape for what the socket.io and REST channels send. */
  function normalize(m) {
    m = m || {};
    var out = {from: "bot"};
    if (typeof m.text === "string" && m.text) out.text = m.text;
    var buttons = m.quick_replies || m.buttons;
    if (Array.isArray(buttons) && buttons.length) {
      out.buttons = buttons.filter(function (b) { return b && typeof b.title === "string"; })
        .map(function (b) { return {title: b.title, payload: typeof b.payload === "string" ? b.payload : b.title}; });
    }
    var image = m.image || (m.attachment && m.attachment.type === "image" && m.attachment.payload && m.attachment.payload.src);
    if (safeImageUrl(image)) out.image = image;
    if (m.custom && typeof m.custom === "object") out.custom = m.custom;
    return out;
  }

  function Widget(cfg) {
    this.cfg = cfg;
    this.t = STRINGS[cfg.lang];
    this.store = new Store("kefu-chat:" + cfg.serverUrl);
    this.mode = "connecting"; // connecting | socket | rest | offline
    this.socket = null;
    this.ready = false;       // socket.io session confirmed
    this.inflight = null;     // id of the message being sent
    this.retryTimer = null;
    this.build();
    this.renderHistory();
    if (this.store.state.open || cfg.open) this.open(false);
    this.connect();
  }

  Widget.prototype.build = function () {
    var t = this.t, cfg = this.cfg, self = this;
    this.host = el("div", {id: "kefu-chat", "data-kefu-chat": ""});
    var colors = cfg.colors || {};
    var vars = {primary: "--kefu-primary", primaryText: "--kefu-on-primary", background: "--kefu-bg",
                botBubble: "--kefu-bot-bg", botText: "--kefu-bot-fg", userBubble: "--kefu-user-bg", userText: "--kefu-user-fg"};
    for (var k in vars) if (typeof colors[k] === "string") this.host.style.setProperty(vars[k], colors[k]);
    var root = this.host.attachShadow ? this.host.attachShadow({mode: "open"}) : this.host;
    var css = el("link", {rel: "stylesheet", href: cfg.assetsUrl + "kefu-widget.css"});
    root.appendChild(css);

    this.launcher = el("button", {type: "button", className: "kefu-launcher", "aria-label": t.launcher,
                                  "aria-expanded": "false", "aria-controls": "kefu-window"});
    this.launcher.appendChild(icon());
    this.badge = el("span", {className: "kefu-badge", hidden: "", "aria-hidden": "true"});
    this.launcher.appendChild(this.badge);
    this.titleEl = el("h2", {id: "kefu-title", className: "kefu-title", text: cfg.title || t.title});
    this.statusEl = el("p", {className: "kefu-status", role: "status", text: t.connecting});
    this.closeBtn = el("button", {type: "button", className: "kefu-close", "aria-label": t.close, text: "×"});
    this.banner = el("p", {className: "kefu-banner", role: "status", hidden: "", text: t.escalated});
    this.log = el("div", {className: "kefu-log", role: "log", "aria-live": "polite", "aria-label": t.log, tabindex: "0"});
    this.typing = el("div", {className: "kefu-typing", hidden: "", role: "status"}, [
      el("span", {className: "kefu-dots", "aria-hidden": "true"}, [el("i"), el("i"), el("i")]),
      el("span", {className: "kefu-sr", text: t.typing})]);
    this.input = el("input", {id: "kefu-input", className: "kefu-input", type: "text", autocomplete: "off",
                              maxlength: "2000", placeholder: t.placeholder, enterkeyhint: "send"});
    this.sendBtn = el("button", {type: "submit", className: "kefu-send", text: t.send});
    this.form = el("form", {className: "kefu-composer"}, [
      el("label", {"for": "kefu-input", className: "kefu-sr", text: t.inputLabel}), this.input, this.sendBtn]);
    this.window = el("section", {id: "kefu-window", className: "kefu-window", role: "dialog",
                                 "aria-labelledby": "kefu-title", hidden: ""}, [
      el("header", {className: "kefu-header"}, [el("div", {}, [this.titleEl, this.statusEl]), this.closeBtn]),
      this.banner, this.log, this.typing, this.form]);
    var box = el("div", {className: "kefu-root", lang: cfg.lang === "zh" ? "zh-CN" : "en", style: "display:none"},
                 [this.window, this.launcher]);
    // Shown once styled, so the page never flashes an unstyled chat window.
    css.onload = css.onerror = function () { box.style.display = ""; };
    root.appendChild(box);

    this.launcher.addEventListener("click", function () { self.isOpen() ? self.close() : self.open(true); });
    this.closeBtn.addEventListener("click", function () { self.close(); });
    this.window.addEventListener("keydown", function (e) { if (e.key === "Escape") { e.preventDefault(); self.close(); } });
    this.form.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = self.input.value.trim();
      if (!text) return;
      self.input.value = "";
      self.send(text, text);
    });
    document.body.appendChild(this.host);
    this.setEscalated(this.store.state.escalated);
  };

  function icon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    svg.appendChild(path);
    return svg;
  }

  Widget.prototype.isOpen = function () { return !this.window.hasAttribute("hidden"); };

  Widget.prototype.open = function (focus) {
    this.window.removeAttribute("hidden");
    this.host.setAttribute("data-open", "");
    this.launcher.setAttribute("aria-expanded", "true");
    this.badge.setAttribute("hidden", "");
    this.store.state.open = true;
    this.store.save();
    this.scrollDown();
    if (focus !== false) this.input.focus();
  };

  Widget.prototype.close = function () {
    this.window.setAttribute("hidden", "");
    this.host.removeAttribute("data-open");
    this.launcher.setAttribute("aria-expanded", "false");
    this.store.state.open = false;
    this.store.save();
    this.launcher.focus();
  };

  Widget.prototype.scrollDown = function () { this.log.scrollTop = this.log.scrollHeight; };

  Widget.prototype.setStatus = function (mode) {
    this.mode = mode;
    var t = this.t;
    this.statusEl.textContent = {connecting: t.connecting, socket: t.online, rest: t.restMode, offline: t.offline}[mode];
    this.host.setAttribute("data-connection", mode);
  };

  Widget.prototype.setEscalated = function (on) {
    this.store.state.escalated = !!on;
    if (on) { this.banner.removeAttribute("hidden"); this.host.setAttribute("data-escalated", ""); }
    else { this.banner.setAttribute("hidden", ""); this.host.removeAttribute("data-escalated"); }
  };

  // ---- rendering ----
  Widget.prototype.renderHistory = function () {
    var msgs = this.store.state.messages;
    for (var i = 0; i < msgs.length; i++) this.render(msgs[i], i === msgs.length - 1);
    this.scrollDown();
  };

  Widget.prototype.render = function (m, withButtons) {
    var t = this.t, self = this;
    var bubble = el("div", {className: "kefu-msg kefu-" + m.from, "data-id": m.id});
    bubble.appendChild(el("span", {className: "kefu-sr", text: m.from === "user" ? t.you : t.bot}));
    if (m.text) bubble.appendChild(el("span", {className: "kefu-text"}, [linkified(m.text)]));
    if (m.image) bubble.appendChild(el("img", {className: "kefu-image", src: m.image, alt: t.image, loading: "lazy"}));
    if (m.from === "user") {
      var status = el("span", {className: "kefu-msg-status"});
      bubble.appendChild(status);
      this.applyStatus(bubble, m);
    }
    this.log.appendChild(bubble);
    if (withButtons && m.buttons && m.buttons.length) {
      var group = el("div", {className: "kefu-buttons", role: "group", "aria-label": t.suggestions});
      m.buttons.forEach(function (b) {
        var btn = el("button", {type: "button", className: "kefu-button", text: b.title});
        btn.addEventListener("click", function () {
          self.send(b.payload, b.title);
          self.input.focus();
        });
        group.appendChild(btn);
      });
      this.log.appendChild(group);
    }
    return bubble;
  };

  Widget.prototype.applyStatus = function (bubble, m) {
    var status = bubble.querySelector(".kefu-msg-status");
    if (!status) return;
    bubble.setAttribute("data-status", m.status || "sent");
    status.textContent = m.status === "pending" ? this.t.pending : m.status === "failed" ? this.t.failed + (m.error || "") : "";
  };

  Widget.prototype.updateStatus = function (m) {
    var bubble = this.log.querySelector('[data-id="' + m.id + '"]');
    if (bubble) this.applyStatus(bubble, m);
  };

  Widget.prototype.addBot = function (raw) {
    var m = normalize(raw);
    if (m.custom && m.custom.handoff) this.setEscalated(true);
    if (m.custom && m.custom.handoff === false) this.setEscalated(false);  // an agent handed back to the bot
    if (!m.text && !m.image && !m.buttons) { this.store.save(); return; }
    m.id = newId();
    this.dropButtons();
    this.store.state.messages.push(m);
    this.store.save();
    this.render(m, true);
    this.scrollDown();
    if (!this.isOpen()) this.badge.removeAttribute("hidden");
  };

  /** Suggested replies belong to the latest bot message only. */
  Widget.prototype.dropButtons = function () {
    this.store.state.messages.forEach(function (m) { delete m.buttons; });
    Array.prototype.forEach.call(this.log.querySelectorAll(".kefu-buttons"), function (g) { g.remove(); });
  };

  Widget.prototype.showTyping = function (on) {
    if (on) this.typing.removeAttribute("hidden"); else this.typing.setAttribute("hidden", "");
    if (on) this.scrollDown();
  };

  // ---- sending: every message goes through the pending queue, so nothing typed is lost ----
  Widget.prototype.send = function (payload, shown) {
    var m = {id: newId(), from: "user", text: shown, payload: payload, status: "pending"};
    this.dropButtons();
    this.store.state.messages.push(m);
    this.store.save();
    this.render(m, false);
    this.scrollDown();
    this.flush();
  };

  Widget.prototype.flush = function () {
    if (this.inflight) return;
    var next = this.store.pending()[0];
    if (!next) return;
    if (this.mode === "socket" && this.ready) this.sendSocket(next);
    else if (this.mode === "rest") this.sendRest(next);
  };

  Widget.prototype.delivered = function (m) {
    m.status = "sent";
    delete m.payload;
    this.inflight = null;
    this.store.save();
    this.updateStatus(m);
    this.showTyping(false);
    this.flush();
  };

  Widget.prototype.sendSocket = function (m) {
    var self = this, socket = this.socket;
    this.inflight = m.id;
    this.showTyping(true);
    // Rasa's handler returns after the bot has answered; its ack means the message is processed.
    var timer = setTimeout(function () {
      // Connected but never acknowledged (the server failed on it): say so, and go on with the queue.
      if (self.socket === socket && self.inflight === m.id && socket.connected) self.failed(m, self.t.noAnswer);
    }, this.cfg.answerTimeoutMs || 60000);
    socket.emit(this.cfg.userMessageEvent || "user_uttered",
      {message: m.payload, session_id: this.store.state.sessionId, metadata: {}},
      function () { clearTimeout(timer); if (self.socket === socket && self.inflight === m.id) self.delivered(m); });
  };

  Widget.prototype.failed = function (m, reason) {
    m.status = "failed";
    m.error = String(reason).slice(0, 200);
    this.inflight = null;
    this.store.save();
    this.updateStatus(m);
    this.showTyping(false);
    this.flush();
  };

  Widget.prototype.sendRest = function (m) {
    var self = this;
    this.inflight = m.id;
    this.showTyping(true);
    var headers = {"Content-Type": "application/json"};
    if (this.cfg.jwt) headers.Authorization = "Bearer " + this.cfg.jwt;
    fetch(this.cfg.serverUrl + "/webhooks/rest/webhook", {
      method: "POST", headers: headers,
      body: JSON.stringify({sender: this.store.state.sessionId, message: m.payload})
    }).then(function (res) {
      if (res.status >= 400 && res.status < 500) {
        return res.text().then(function (body) {
          var reason = body;
          try { reason = (JSON.parse(body).message || body); } catch (e) { /* plain text */ }
          self.failed(m, reason || res.status);
        });
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json().then(function (replies) {
        (Array.isArray(replies) ? replies : []).forEach(function (r) { self.addBot(r); });
        if (self.mode === "offline") self.setStatus("rest");
        self.delivered(m);
      });
    }).catch(function () {
      // Server unreachable: keep the message and try again.
      self.inflight = null;
      self.showTyping(false);
      self.setStatus("offline");
      self.mode = "rest";
      clearTimeout(self.retryTimer);
      self.retryTimer = setTimeout(function () { self.flush(); }, 3000);
    });
  };

  // ---- connection ----
  Widget.prototype.connect = function () {
    var self = this;
    this.setStatus("connecting");
    if (this.cfg.transport === "rest") return this.useRest();
    loadScript(this.cfg.assetsUrl + "vendor/socket.io.min.js", function (ok) {
      if (ok && window.io) self.startSocket(); else self.useRest();
    });
  };

  Widget.prototype.useRest = function () {
    if (this.socket) { this.socket.off(); this.socket.close(); this.socket = null; }
    this.ready = false;
    this.inflight = null;
    this.setStatus("rest");
    this.flush();
  };

  Widget.prototype.startSocket = function () {
    var self = this, cfg = this.cfg;
    var everConnected = false, failures = 0;
    var options = {path: cfg.socketPath, reconnectionDelay: 500, reconnectionDelayMax: 3000, tryAllTransports: true};
    if (cfg.jwt) options.auth = {token: cfg.jwt};
    var socket = this.socket = window.io(cfg.serverUrl, options);
    var fallback = setTimeout(function () { if (!everConnected && self.socket === socket) self.useRest(); }, cfg.connectTimeoutMs);

    socket.on("connect", function () {
      everConnected = true;
      clearTimeout(fallback);
      socket.emit("session_request", {session_id: self.store.state.sessionId});
    });
    socket.on("session_confirm", function () {
      self.ready = true;
      self.inflight = null;
      self.setStatus("socket");
      self.flush();
    });
    socket.on(cfg.botMessageEvent || "bot_uttered", function (m) { self.addBot(m); });
    socket.on("disconnect", function (reason) {
      if (reason === "io server disconnect") socket.connect(); // the server hung up: dial again
      self.ready = false;
      self.inflight = null; // re-sent after the reconnect
      self.showTyping(false);
      self.setStatus("offline");
    });
    socket.on("connect_error", function (err) {
      if (socket.active) {
        if (everConnected) self.setStatus("offline");
        // Never got through (proxy or firewall blocks socket.io): use the REST channel.
        else if (++failures >= 3 && self.socket === socket) { clearTimeout(fallback); self.useRest(); }
        return;
      }
      // Refused by the server (JWT): falling back to REST would bypass the check.
      clearTimeout(fallback);
      self.statusEl.textContent = self.t.authFailed;
      self.host.setAttribute("data-connection", "refused");
    });
  };

  function loadScript(src, done) {
    if (window.io) return done(true);
    var s = document.createElement("script");
    s.src = src;
    s.async = true;
    s.onload = function () { done(true); };
    s.onerror = function () { done(false); };
    document.head.appendChild(s);
  }

  function start() {
    var widget = new Widget(readConfig());
    window.KefuChat = Object.assign(window.KefuChat || {}, {
      open: function () { widget.open(true); },
      close: function () { widget.close(); },
      sessionId: function () { return widget.store.state.sessionId; }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
