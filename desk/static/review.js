// The lead's review page: label unsure messages, name proposed intents, accept/edit/reject agents' answers.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);

  async function api(method, path, body, raw) {
    const options = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (raw !== undefined) { options.headers["Content-Type"] = "text/csv"; options.body = raw; }
    else if (body !== undefined) { options.headers["Content-Type"] = "application/json"; options.body = JSON.stringify(body); }
    const response = await fetch(path, options);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
    return data;
  }
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function say(text) { $("review-status").textContent = text; }

  function picker(value, onSave, dismissLabel) {
    const td = el("td");
    const input = el("input", { list: "intents", value: value || "", placeholder: "intent or new_intent_name" });
    const save = el("button", { type: "button", class: "save" }, "Save");
    const dismiss = el("button", { type: "button", class: "dismiss" }, dismissLabel);
    save.addEventListener("click", () => onSave(input.value.trim()));
    dismiss.addEventListener("click", () => onSave("-"));
    td.append(input, save, dismiss);
    return td;
  }

  async function load() {
    const data = await api("GET", "/api/review");
    $("intents").replaceChildren(...data.intents.map((i) => el("option", { value: i })));
    const messages = $("messages").querySelector("tbody");
    const candidates = $("candidates").querySelector("tbody");
    messages.replaceChildren();
    candidates.replaceChildren();
    for (const row of data.rows) {
      const tr = el("tr", { "data-index": row.index });
      if (row.kind === "message") {
        tr.append(el("td", {}, row.text), el("td", {}, row.predicted + " (" + row.confidence + ")"),
          el("td", {}, row.count), el("td", {}, row.reason),
          picker(row.label, async (label) => {
            try { await api("POST", "/api/review/" + row.index + "/label", { label }); say("saved"); load(); }
            catch (err) { say(err.message); }
          }, "Dismiss"));
        messages.append(tr);
      } else {
        tr.append(el("td", {}, row.examples || row.text), el("td", {}, row.count),
          picker(row.label, async (name) => {
            try { const r = await api("POST", "/api/review/" + row.index + "/candidate", { name }); say(r.labelled_messages + " messages labelled"); load(); }
            catch (err) { say(err.message); }
          }, "Reject"));
        candidates.append(tr);
      }
    }
    const proposals = (await api("GET", "/api/proposals")).proposals;
    const body = $("proposals").querySelector("tbody");
    body.replaceChildren();
    for (const p of proposals) {
      const tr = el("tr", { "data-id": p.id });
      const q = el("textarea", { class: "edit question", title: "one question per line: each becomes a variant of the entry" });
      q.value = (p.questions && p.questions.length ? p.questions : [p.question]).join("\n");
      q.rows = Math.min(8, Math.max(2, q.value.split("\n").length));
      const a = el("textarea", { class: "edit answer" }); a.value = p.answer;
      const actions = el("td");
      const accept = el("button", { type: "button", class: "accept" }, "Accept");
      const reject = el("button", { type: "button", class: "reject" }, "Reject");
      accept.addEventListener("click", async () => {
        try { await api("POST", "/api/proposals/" + p.id + "/accept", { question: q.value, answer: a.value }); say("added to the knowledge base"); load(); }
        catch (err) { say(err.message); }
      });
      reject.addEventListener("click", async () => {
        try { await api("POST", "/api/proposals/" + p.id + "/reject"); say("rejected"); load(); }
        catch (err) { say(err.message); }
      });
      actions.append(accept, reject);
      const qc = el("td"); qc.append(q);
      const ac = el("td"); ac.append(a);
      const who = el("td", {}, p.agent_id + (p.conversations && p.conversations.length > 1 ? " (" + p.conversations.length + " conversations)" : ""));
      tr.append(qc, ac, who, actions);
      body.append(tr);
    }
  }

  $("import").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    try { const r = await api("POST", "/api/review/import", undefined, await file.text()); say(r.rows + " rows imported"); load(); }
    catch (err) { say(err.message); }
  });
  load().catch((err) => say(err.message));
})();
