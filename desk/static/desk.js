// The agent page: live queue (SSE), one conversation at a time, reply / hand back / close / transfer.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const me = document.body.dataset.user;
  const $ = (id) => document.getElementById(id);
  let items = [];
  let current = null; // handoff id shown on the right

  async function api(method, path, body) {
    const options = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) { options.headers["Content-Type"] = "application/json"; options.body = JSON.stringify(body); }
    const response = await fetch(path, options);
    const data = await response.json().catch(() => ({}));
    if (response.status === 401) { window.location = "/login"; }
    if (!response.ok) { throw new Error(data.error || ("HTTP " + response.status)); }
    return data;
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => { if (v !== undefined && v !== null) node.setAttribute(k, v); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function waited(item) {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(item.requested_at)) / 1000));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function renderQueue() {
    const list = $("queue");
    list.replaceChildren();
    $("queue-count").textContent = "(" + items.filter((i) => i.status === "waiting").length + " waiting)";
    for (const item of items) {
      const li = el("li", { "data-id": item.id, "data-status": item.status, class: item.id === current ? "selected" : "" });
      const meta = el("div", { class: "meta" });
      meta.append(el("span", { class: "pill" }, item.channel || "?"), el("span", {}, item.language || ""),
        el("span", { class: "waiting", "data-requested": item.requested_at }, waited(item)),
        el("span", {}, item.reason || ""), el("span", {}, item.mode === "live" ? "" : item.mode));
      if (item.order_number) meta.append(el("span", {}, "order " + item.order_number));
      li.append(meta, el("div", { class: "last" }, item.last_message || ""));
      const foot = el("div", { class: "meta" });
      if (item.status === "waiting") {
        const button = el("button", { type: "button", class: "claim" }, "Claim");
        button.addEventListener("click", (e) => { e.stopPropagation(); claim(item.id); });
        foot.append(button);
      } else {
        foot.append(el("span", { class: "holder" }, "with " + item.claimed_by));
      }
      li.append(foot);
      li.addEventListener("click", () => open(item.id));
      list.append(li);
    }
  }

  setInterval(() => {
    document.querySelectorAll("#queue .waiting").forEach((node) => {
      node.textContent = waited({ requested_at: node.dataset.requested });
    });
  }, 1000);

  async function claim(id) {
    try { await api("POST", "/api/handoffs/" + id + "/claim"); await open(id); }
    catch (err) { alert(err.message); }
  }

  function renderTurn(turn) {
    const li = el("li", { class: "turn " + turn.kind });
    if (turn.kind !== "event") {
      const who = turn.kind === "agent" ? "agent " + (turn.agent_id || "") : turn.kind;
      li.append(el("span", { class: "who" }, who));
    }
    li.append(document.createTextNode(turn.text));
    if (turn.kind === "customer" && turn.intent) {
      const ranking = (turn.ranking || []).map((r) => r.name + " " + r.confidence).join("\n");
      li.title = "intent: " + turn.intent + " (" + turn.confidence + ")" + (ranking ? "\n" + ranking : "") +
        (turn.kb ? "\nknowledge base: " + turn.kb.match + " p=" + turn.kb.p_answer : "");
      li.dataset.intent = turn.intent;
    }
    return li;
  }

  async function open(id) {
    current = id;
    renderQueue();
    let data;
    try { data = await api("GET", "/api/handoffs/" + id); }
    catch (err) { $("reply-status").textContent = err.message; return; }
    if (current !== id) return;
    const h = data.handoff;
    $("conversation").hidden = false;
    $("conversation-title").textContent = h.conversation_id + " · " + (h.channel || "?") + " · " + (h.language || "");
    $("conversation-status").textContent = h.status + (h.claimed_by ? " (" + h.claimed_by + ")" : "") + (data.paused ? "" : " · bot active");
    $("conversation").dataset.status = h.status;
    $("conversation").dataset.holder = h.claimed_by || "";
    const transcript = $("transcript");
    transcript.replaceChildren(...data.turns.map(renderTurn));
    transcript.scrollTop = transcript.scrollHeight;
    const orders = $("orders-list");
    orders.replaceChildren();
    if (!data.orders.length) orders.textContent = "No order mentioned.";
    for (const o of data.orders) {
      const div = el("div", { class: "order" });
      div.append(el("strong", {}, o.order_number + " · " + o.status), el("div", {}, o.item),
        el("div", {}, o.customer_name + " <" + o.email + ">"), el("div", {}, "placed " + o.placed_at + (o.eta ? ", eta " + o.eta : "")),
        el("div", {}, o.carrier ? o.carrier + " " + (o.tracking_number || "") : ""));
      orders.append(div);
    }
    const mine = h.status === "claimed" && h.claimed_by === me;
    $("send").disabled = !mine;
    $("reply-text").disabled = !mine;
    $("handback").disabled = $("close").disabled = $("transfer").disabled = h.status !== "claimed";
  }

  async function loadAgents() {
    const agents = await api("GET", "/api/agents");
    const select = $("transfer-to");
    select.replaceChildren(...agents.filter((a) => a.username !== me).map((a) =>
      el("option", { value: a.username }, a.display_name + (a.online ? " (online)" : ""))));
  }

  $("reply-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("reply-text").value.trim();
    if (!text || current === null) return;
    $("send").disabled = true;
    try {
      const result = await api("POST", "/api/handoffs/" + current + "/reply", { text });
      $("reply-text").value = "";
      $("reply-status").textContent = "delivered: " + result.delivered;
      await open(current);
    } catch (err) { $("reply-status").textContent = err.message; }
    finally { $("send").disabled = false; }
  });
  $("reply-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("reply-form").requestSubmit(); }
  });

  async function finish(kind) {
    if (current === null) return;
    try {
      const result = await api("POST", "/api/handoffs/" + current + "/" + kind, {});
      $("reply-status").textContent = kind + ": " + result.delivered;
      await open(current);
    } catch (err) { $("reply-status").textContent = err.message; }
  }
  $("handback").addEventListener("click", () => finish("handback"));
  $("close").addEventListener("click", () => finish("close"));
  $("transfer").addEventListener("click", async () => {
    const to = $("transfer-to").value;
    if (!to || current === null) return;
    try { await api("POST", "/api/handoffs/" + current + "/transfer", { to }); await open(current); }
    catch (err) { $("reply-status").textContent = err.message; }
  });
  $("logout").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
    window.location = "/login";
  });

  function connect() {
    const source = new EventSource("/api/events");
    source.addEventListener("open", () => { $("connection").textContent = "live"; $("connection").className = "pill live"; });
    source.addEventListener("error", () => { $("connection").textContent = "reconnecting…"; $("connection").className = "pill"; });
    source.addEventListener("queue", (e) => {
      items = JSON.parse(e.data).items;
      if (current !== null && !items.some((i) => i.id === current)) {
        // handed back or closed: keep the transcript, but it is no longer in the queue
      }
      renderQueue();
    });
    source.addEventListener("conversation", (e) => {
      const data = JSON.parse(e.data);
      if (data.id === current) open(current);
    });
  }

  loadAgents().catch(() => {});
  connect();
})();
