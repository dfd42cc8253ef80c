// The livegate admin page: a live table of one project's targets.
//
// It follows seed 000's recommended client pattern:
//   - on every `ready` (the first connect and every reconnect) subscribe to `targets`, and once
//     `subscribed` arrives, refetch the list through the REST API (events that arrive meanwhile are
//     held back and replayed on top of the fresh list, so none is lost or undone);
//   - keep a Map keyed by target_id: overwrite it from `target` on added/enabled/disabled/updated,
//     delete on removed.
// Changes go through the targets REST API on this origin; while the socket is live the table is
// left to the events, so what it shows is always what the server published.
// Every DOM node is built with textContent: nothing from the server is parsed as HTML.
"use strict";

(() => {
  const NAMESPACE = "/v2/live-updates";
  const SOCKET_PATH = "/v2/live-updates/socket.io/";
  const TARGET_EVENTS = ["target.added", "target.enabled", "target.disabled", "target.updated"];
  const PAGE = 200; // the API's largest page
  const KEEPALIVE_MS = 60_000; // the gateway closes sockets that send nothing for 9 minutes
  const ACTIVITY_KEPT = 60;
  // connect_error codes that retrying with the same token cannot fix (CONTRACT §1).
  const FINAL_CODES = new Set([
    "auth_missing", "invalid_project_id", "invalid_token", "token_expired",
    "not_a_user_token", "project_forbidden", "session_revoked",
  ]);

  const $ = (id) => document.getElementById(id);
  const state = {
    token: null,
    projectId: null,
    socket: null,
    targets: new Map(), // target_id → target snapshot
    selected: new Set(),
    held: null, // events held back while a refetch is in flight, or null
    fetchSeq: 0,
    editing: null, // target_id being renamed
    draft: null, // the name typed so far
    keepalive: null,
    activityCount: 0,
  };

  // === connection ===

  function setStatus(kind, text) {
    const pill = $("status");
    pill.className = `pill pill-${kind}`;
    pill.dataset.state = kind;
    $("status-text").textContent = text;
  }

  function connect() {
    if (state.socket) {
      state.socket.removeAllListeners();
      state.socket.disconnect();
    }
    clearInterval(state.keepalive);
    state.targets.clear();
    state.selected.clear();
    render();
    $("project-id").textContent = state.projectId;
    setStatus("connecting", "Connecting…");

    const socket = io(location.origin + NAMESPACE, {
      path: SOCKET_PATH,
      auth: { token: state.token, project_id: state.projectId },
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    state.socket = socket;

    socket.on("connect", () => setStatus("connecting", "Authenticating…"));
    socket.on("message", onSystemMessage);
    for (const name of TARGET_EVENTS) {
      socket.on(name, (payload) => onTargetEvent(name, payload));
    }
    socket.on("target.removed", (payload) => onTargetEvent("target.removed", payload));
    socket.on("session.revoked", (body) => {
      setStatus("error", "Session revoked");
      activity("system", `session revoked: ${body?.reason ?? "?"}`);
    });
    socket.on("connect_error", (err) => {
      const code = String(err?.message ?? "").split(":")[0].trim();
      if (FINAL_CODES.has(code)) {
        setStatus("error", `Refused: ${code}`);
        activity("system", `connection refused: ${err.message}`);
        toast(`Connection refused: ${err.message}`, true);
      } else {
        // Transport failures are retried by the client itself; `unavailable` by us.
        setStatus("connecting", "Reconnecting…");
        if (!socket.active) setTimeout(() => socket.connect(), 2000);
      }
    });
    socket.on("disconnect", (reason) => {
      clearInterval(state.keepalive);
      if ($("status").dataset.state === "error") return; // revoked: stay down
      setStatus("connecting", "Reconnecting…");
      activity("system", `disconnected (${reason})`);
      // A server-side disconnect (idle timeout, node draining) is not retried by socket.io.
      if (reason === "io server disconnect") setTimeout(() => socket.connect(), 1000);
    });
  }

  function onSystemMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    switch (msg.event) {
      case "ready":
        // Every ready, the first and each after a reconnect: subscribe again, then refetch.
        setStatus("connecting", "Subscribing…");
        state.held = []; // hold events from now until the refetch has landed
        state.socket.send({ action: "subscribe", channel: "targets" });
        clearInterval(state.keepalive);
        state.keepalive = setInterval(
          () => state.socket?.send({ action: "ping", timestamp: Date.now() }),
          KEEPALIVE_MS,
        );
        break;
      case "subscribed":
        if (msg.channel === "targets") refetch();
        break;
      case "error":
        activity("system", `${msg.code}: ${msg.message}`);
        if (msg.meta?.channel === "targets" && msg.meta?.action === "subscribe") {
          setStatus("error", `Subscribe failed: ${msg.code}`);
        }
        break;
      default:
        break; // pong, unsubscribed
    }
  }

  function onTargetEvent(name, payload) {
    showLastEvent(name, payload);
    if (state.held) {
      state.held.push([name, payload]);
      return;
    }
    apply(name, payload);
    render(name === "target.removed" ? null : payload?.target?.target_id);
  }

  /** Seed 000: overwrite from `target`, or delete by `target_id`. */
  function apply(name, payload) {
    if (name === "target.removed") {
      state.targets.delete(payload.target_id);
      state.selected.delete(payload.target_id);
    } else if (payload?.target?.target_id) {
      state.targets.set(payload.target.target_id, payload.target);
    }
  }

  async function refetch() {
    const seq = ++state.fetchSeq;
    try {
      const all = [];
      for (let offset = 0; ; offset += PAGE) {
        const res = await api("GET", `?limit=${PAGE}&offset=${offset}`);
        all.push(...res.data);
        if (all.length >= res.total || res.data.length === 0) break;
      }
      if (seq !== state.fetchSeq) return; // a newer refetch (a newer ready) owns the table
      state.targets = new Map(all.map((t) => [t.target_id, t]));
      for (const id of [...state.selected]) if (!state.targets.has(id)) state.selected.delete(id);
      for (const [name, payload] of state.held ?? []) apply(name, payload);
      state.held = null;
      render();
      setStatus("live", "Live");
      activity("system", `subscribed · ${state.targets.size} target(s) loaded`);
    } catch (e) {
      if (seq !== state.fetchSeq) return;
      state.held = null;
      setStatus("error", "Cannot load targets");
      toast(`Loading targets failed: ${e.message}`, true);
    }
  }

  // === REST ===

  async function api(method, rest = "", body) {
    const res = await fetch(`/v2/projects/${state.projectId}/targets${rest}`, {
      method,
      headers: {
        authorization: `Bearer ${state.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 204) return null;
    let json;
    try {
      json = await res.json();
    } catch {
      throw new Error(`HTTP ${res.status}`);
    }
    if (!json.ok) {
      const details = (json.error?.errors ?? []).map((e) => `${e.field}: ${e.message}`).join("; ");
      throw new Error(`${json.error?.message ?? `HTTP ${res.status}`}${details ? ` (${details})` : ""}`);
    }
    return json;
  }

  /** Runs a change; when the socket is not live, the answer updates the table directly. */
  async function change(what, run) {
    try {
      const res = await run();
      if ($("status").dataset.state !== "live" && res?.data) {
        for (const t of Array.isArray(res.data) ? res.data : [res.data]) state.targets.set(t.target_id, t);
        render();
      }
      return true;
    } catch (e) {
      toast(`${what} failed: ${e.message}`, true);
      return false;
    }
  }

  const setEnabled = (id, on) =>
    change(on ? "Enable" : "Disable", () => api("PATCH", `/${id}`, { is_enabled: on }));

  const rename = (id, name) => change("Rename", () => api("PATCH", `/${id}`, { target_name: name }));

  async function remove(id) {
    const t = state.targets.get(id);
    if (!confirm(`Delete “${t?.target_name ?? id}”? Live clients see target.removed.`)) return;
    const ok = await change("Delete", () => api("DELETE", `/${id}`));
    if (ok && $("status").dataset.state !== "live") {
      state.targets.delete(id);
      render();
    }
  }

  async function bulk(on) {
    const items = [...state.selected].map((target_id) => ({ target_id, is_enabled: on }));
    if (items.length === 0) return;
    const ok = await change(on ? "Bulk enable" : "Bulk disable", () => api("PATCH", "", items));
    if (ok) {
      toast(`${on ? "Enabled" : "Disabled"} ${items.length} target(s)`);
      state.selected.clear();
      render();
    }
  }

  // === rendering ===

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function visibleTargets() {
    const q = $("search").value.trim().toLowerCase();
    return [...state.targets.values()]
      .filter((t) => !q || t.target_name.toLowerCase().includes(q) || t.target_id.includes(q) || t.external_id.toLowerCase().includes(q))
      .sort((a, b) => a.target_name.localeCompare(b.target_name, undefined, { sensitivity: "base" }) || a.target_id.localeCompare(b.target_id));
  }

  function render(flashId) {
    const rows = visibleTargets();
    const body = $("rows");
    body.replaceChildren(...rows.map(row));
    $("count").textContent = String(state.targets.size);
    $("empty").hidden = state.targets.size > 0;
    const n = state.selected.size;
    $("bulk-bar").hidden = n === 0;
    $("bulk-count").textContent = `${n} selected`;
    const all = $("select-all");
    all.checked = rows.length > 0 && rows.every((t) => state.selected.has(t.target_id));
    all.indeterminate = !all.checked && rows.some((t) => state.selected.has(t.target_id));
    if (flashId) body.querySelector(`tr[data-target-id="${CSS.escape(flashId)}"]`)?.classList.add("flash");
  }

  function row(t) {
    const id = t.target_id;
    const parent = t.parent_target_id ? state.targets.get(t.parent_target_id) : null;
    const tr = el("tr", {
      "data-target-id": id,
      "data-testid": "target-row",
      "data-enabled": String(t.is_enabled),
      class: [state.selected.has(id) ? "selected" : "", t.is_enabled ? "" : "disabled"].join(" ").trim(),
    });
    const check = el("input", {
      type: "checkbox",
      "aria-label": `Select ${t.target_name}`,
      "data-testid": "row-select",
      onchange: (e) => {
        if (e.target.checked) state.selected.add(id);
        else state.selected.delete(id);
        render();
      },
    });
    check.checked = state.selected.has(id);

    let nameCell;
    if (state.editing === id) {
      // A re-render while typing (a live event) keeps the draft.
      const input = el("input", { class: "input rename-input", value: state.draft ?? t.target_name, maxlength: "200", "data-testid": "rename-input" });
      input.addEventListener("input", () => (state.draft = input.value));
      const finish = async (save) => {
        if (state.editing !== id) return;
        state.editing = null;
        state.draft = null;
        const name = input.value.trim();
        if (save && name && name !== t.target_name) await rename(id, name);
        render();
      };
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") finish(true);
        if (e.key === "Escape") finish(false);
      });
      input.addEventListener("blur", () => finish(true));
      nameCell = el("td", { class: "name-cell" }, input);
      queueMicrotask(() => {
        input.focus();
        input.select();
      });
    } else {
      nameCell = el(
        "td",
        { class: "name-cell" },
        el("span", { class: "name-text", "data-testid": "target-name", text: t.target_name }),
        el("span", { class: "sub mono", title: id, text: id.slice(0, 8) }),
      );
    }

    const toggle = el("input", {
      type: "checkbox",
      "data-testid": "enabled-toggle",
      "aria-label": `${t.is_enabled ? "Disable" : "Enable"} ${t.target_name}`,
      onchange: (e) => {
        e.target.checked = t.is_enabled; // the event, not the click, moves the switch
        setEnabled(id, !t.is_enabled);
      },
    });
    toggle.checked = t.is_enabled;

    tr.append(
      el("td", { class: "col-check" }, check),
      nameCell,
      el("td", {}, el("span", { class: `badge badge-${t.platform}`, text: cap(t.platform) })),
      el("td", { class: "kind", text: t.kind }),
      el("td", { class: "mono ext", text: t.external_id }),
      el("td", { class: parent ? "" : "muted", text: parent ? parent.target_name : t.parent_target_id ? short(t.parent_target_id) : "—" }),
      el("td", { class: "num", text: count(t.plan_count) }),
      el("td", { class: "num", text: count(t.participant_count) }),
      el(
        "td",
        {},
        el("label", { class: "switch" }, toggle, el("span", { class: "track" }), el("span", { class: "state", text: t.is_enabled ? "Enabled" : "Disabled" })),
      ),
      el(
        "td",
        { class: "col-actions" },
        el("button", { type: "button", class: "icon-btn", "data-testid": "rename", text: "Rename", onclick: () => { state.editing = id; render(); } }),
        el("button", { type: "button", class: "icon-btn danger", "data-testid": "delete", text: "Delete", onclick: () => remove(id) }),
      ),
    );
    return tr;
  }

  const count = (n) => (typeof n === "number" ? n.toLocaleString() : "—");
  const cap = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);
  const short = (id) => `${id.slice(0, 8)}…`;
  const clock = () => new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  function describe(name, payload) {
    if (name === "target.removed") return state.targets.get(payload.target_id)?.target_name ?? short(payload.target_id ?? "?");
    return payload?.target?.target_name ?? "?";
  }

  function showLastEvent(name, payload) {
    const text = $("last-event-text");
    text.className = "";
    text.textContent = `${name} · ${describe(name, payload)} · ${clock()}`;
    text.dataset.event = name;
    activity(name.split(".")[1], describe(name, payload), name);
  }

  function activity(kind, what, label = "system") {
    const list = $("activity");
    list.querySelector(".empty-activity")?.remove();
    list.prepend(
      el("li", { "data-event": label }, el("span", { class: `ev ev-${kind}`, text: label === "system" ? "info" : kind }), el("span", { class: "what", title: what, text: what }), el("span", { class: "when", text: clock() })),
    );
    while (list.children.length > ACTIVITY_KEPT) list.lastElementChild.remove();
  }

  function toast(message, error = false) {
    const t = el("div", { class: `toast${error ? " error" : ""}`, role: "status", text: message });
    $("toasts").append(t);
    setTimeout(() => t.remove(), error ? 7000 : 3000);
  }

  // === dialogs ===

  function openCreate() {
    const parent = $("create-parent");
    parent.replaceChildren(
      el("option", { value: "", text: "None" }),
      ...visibleTargets().map((t) => el("option", { value: t.target_id, text: t.target_name })),
    );
    $("create-error").hidden = true;
    $("create-form").reset();
    $("create-dialog").showModal();
  }

  async function submitCreate(e) {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = {
      target_name: f.get("target_name"),
      platform: f.get("platform"),
      kind: f.get("kind"),
      external_id: f.get("external_id"),
      is_enabled: f.get("is_enabled") === "on",
      parent_target_id: f.get("parent_target_id") || null,
    };
    try {
      const res = await api("POST", "", body);
      if ($("status").dataset.state !== "live") {
        state.targets.set(res.data.target_id, res.data);
        render();
      }
      $("create-dialog").close();
      toast(`Created “${res.data.target_name}”`);
    } catch (err) {
      $("create-error").textContent = err.message;
      $("create-error").hidden = false;
    }
  }

  function askForSession() {
    $("connect-project").value = state.projectId ?? "";
    $("connect-token").value = "";
    $("connect-dialog").showModal();
  }

  function startSession(token, projectId) {
    state.token = token;
    state.projectId = projectId.toLowerCase();
    sessionStorage.setItem("livegate-admin", JSON.stringify({ token, projectId: state.projectId }));
    connect();
  }

  // === start ===

  async function start() {
    $("search").addEventListener("input", () => render());
    $("new-target").addEventListener("click", openCreate);
    $("create-form").addEventListener("submit", submitCreate);
    $("create-cancel").addEventListener("click", () => $("create-dialog").close());
    $("bulk-enable").addEventListener("click", () => bulk(true));
    $("bulk-disable").addEventListener("click", () => bulk(false));
    $("bulk-clear").addEventListener("click", () => {
      state.selected.clear();
      render();
    });
    $("select-all").addEventListener("change", (e) => {
      for (const t of visibleTargets()) {
        if (e.target.checked) state.selected.add(t.target_id);
        else state.selected.delete(t.target_id);
      }
      render();
    });
    $("switch-project").addEventListener("click", askForSession);
    $("connect-form").addEventListener("submit", (e) => {
      e.preventDefault();
      $("connect-dialog").close();
      startSession($("connect-token").value.trim(), $("connect-project").value.trim());
    });
    activityPlaceholder();
    render();

    // Development mode hands out a session; otherwise the last one of this tab, or ask.
    try {
      const res = await fetch("/admin/dev-session", { cache: "no-store" });
      if (res.ok) {
        const dev = await res.json();
        return startSession(dev.token, dev.project_id);
      }
    } catch {
      /* not in development mode */
    }
    try {
      const saved = JSON.parse(sessionStorage.getItem("livegate-admin") ?? "null");
      if (saved?.token && saved?.projectId) return startSession(saved.token, saved.projectId);
    } catch {
      /* nothing usable saved */
    }
    askForSession();
  }

  function activityPlaceholder() {
    $("activity").replaceChildren(el("li", { class: "empty-activity", text: "Events appear here as they arrive." }));
  }

  if (typeof io !== "function") {
    document.body.prepend(el("p", { class: "form-error", text: "socket.io client failed to load" }));
    return;
  }
  start();
})();
