// The steadfast web UI: a page of the admin endpoint that reads and acts
// through the same JSON API as the command-line tool (/api/v1). No
// framework and no build step: plain DOM, so it works with no network.
"use strict";

const TOKEN_KEY = "steadfast-token";
const REFRESH_MS = 1000;
let refreshTimer = null;
// The refresh in flight, if one is: a page waits for it before a change
// that would make it fail (a delete).
let refreshing = null;

// ---- the API ----------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    json = null;
  }
  if (!response.ok) {
    const error = json && json.error ? json.error : { code: "http", message: "HTTP " + response.status };
    throw new ApiError(response.status, error.code, error.message);
  }
  return json;
}

function workflowPath(id) {
  return "/api/v1/workflows/" + encodeURIComponent(id);
}

// ---- DOM helpers (text only: payloads and IDs are user data) -----------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(status, parked, paused) {
  if (paused && paused.kind === "Requested") {
    return el("span", { class: "badge Paused", title: paused.reason }, status + " · paused");
  }
  if (parked) return el("span", { class: "badge Parked", title: parked.message }, status + " · parked");
  return el("span", { class: "badge " + status }, status);
}

function json(value) {
  return el("pre", { class: "mono" }, JSON.stringify(value, null, 2));
}

function when(text) {
  if (!text) return "";
  const date = new Date(text);
  return isNaN(date) ? text : date.toLocaleString();
}

function eventTime(event) {
  // The endpoint adds each event's time as RFC 3339; the history JSON form
  // itself keeps it as seconds and nanoseconds.
  if (event.timestamp_rfc3339) return Date.parse(event.timestamp_rfc3339);
  const ts = event.timestamp;
  if (ts && typeof ts === "object") return ts.secs_since_epoch * 1000 + ts.nanos_since_epoch / 1e6;
  return Date.parse(ts);
}

function kindOf(event) {
  const kind = event.kind;
  if (typeof kind === "string") return [kind, {}];
  const name = Object.keys(kind)[0];
  return [name, kind[name] || {}];
}

function show(...nodes) {
  const app = document.getElementById("app");
  app.replaceChildren(...nodes);
}

function failure(error) {
  if (error instanceof ApiError && error.status === 401) return tokenForm(error.message);
  return el("p", { class: "error", role: "alert" }, error.message || String(error));
}

function tokenForm(message) {
  const input = el("input", { type: "password", id: "token", autocomplete: "off", size: 40 });
  return el("form", {
    class: "card", id: "token-form",
    onsubmit: (e) => {
      e.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      route();
    },
  },
    el("p", { class: "error", role: "alert" }, message),
    el("label", { class: "field" }, "Token of this endpoint", input),
    el("p", {}, el("button", { type: "submit" }, "Use token")));
}

// ---- the run list -----------------------------------------------------

const STATUSES = ["Running", "Completed", "Failed", "Cancelled", "Terminated", "TimedOut", "ContinuedAsNew"];

function listQuery(params) {
  const query = new URLSearchParams();
  for (const name of ["status", "workflow_type", "workflow_id_prefix", "search_attribute",
    "started_after", "started_before", "closed_after", "closed_before", "next_page_token"]) {
    if (params.get(name)) query.set(name, params.get(name));
  }
  if (params.get("parked")) query.set("parked", "true");
  query.set("page_size", "50");
  return query;
}

async function listPage(params) {
  const form = listFilters(params);
  // The store keeps counts of the whole file by status only; counting what
  // the other filters match would read every matching run.
  const counts = el("nav", { id: "counts", class: "counts", title: "runs in the whole file, by status" });
  const body = el("div", { id: "runs" }, el("p", { class: "muted" }, "Loading…"));
  show(el("h1", {}, "Workflows"), counts, form, body);
  let shown = null;
  let shownCounts = null;
  const render = async () => {
    let page;
    let counted;
    try {
      [page, counted] = await Promise.all([
        api("GET", "/api/v1/workflows?" + listQuery(params)),
        api("GET", "/api/v1/counts"),
      ]);
    } catch (error) {
      body.replaceChildren(failure(error));
      shown = null;
      return false;
    }
    // Redrawn only when something changed: a click or a selection on the
    // table is not lost to a refresh.
    const text = JSON.stringify(page);
    if (text !== shown) {
      body.replaceChildren(runTable(page.executions), pager(params, page.next_page_token));
      shown = text;
    }
    const countsText = JSON.stringify(counted);
    if (countsText !== shownCounts) {
      counts.replaceChildren(...countLinks(counted, params.get("status")));
      shownCounts = countsText;
    }
    return true;
  };
  if (await render()) every(render);
}

// Counts of the whole file by status (not of the filter: the store keeps
// them, so they cost nothing with a million runs); each filters the list.
function countLinks(counted, current) {
  const link = (label, status, count) =>
    el("a", {
      href: status ? "#/?status=" + encodeURIComponent(status) : "#/",
      class: "count" + ((current || "") === (status || "") ? " current" : ""),
      "data-status": status || "all",
    }, label + " ", el("span", { class: "n" }, count.toLocaleString()));
  return [
    link("All", null, counted.total),
    ...counted.statuses.filter((s) => s.count > 0 || s.status === "Running")
      .map((s) => link(s.status, s.status, s.count)),
    counted.parked ? el("a", { href: "#/?parked=true", class: "count parked", "data-status": "parked" },
      "Parked ", el("span", { class: "n" }, counted.parked.toLocaleString())) : null,
  ].filter(Boolean);
}

function listFilters(params) {
  const status = el("select", { name: "status", id: "filter-status" },
    el("option", { value: "" }, "any status"),
    STATUSES.map((s) => el("option", { value: s, selected: params.get("status") === s }, s)));
  const field = (label, name, type) =>
    el("label", {}, label, el("input", { name, id: "filter-" + name, type: type || "text", value: params.get(name) || "" }));
  const toLocal = (text) => (text ? new Date(text).toISOString().slice(0, 16) : "");
  const time = (label, name) =>
    el("label", {}, label, el("input", { name, id: "filter-" + name, type: "datetime-local", value: toLocal(params.get(name)) }));
  return el("form", {
    class: "filters",
    onsubmit: (e) => {
      e.preventDefault();
      const data = new FormData(e.target);
      const next = new URLSearchParams();
      for (const [name, value] of data.entries()) {
        if (!value) continue;
        if (name.startsWith("started_") || name.startsWith("closed_")) next.set(name, new Date(value).toISOString());
        else next.set(name, value);
      }
      location.hash = "#/?" + next;
    },
  },
    el("label", {}, "Status", status),
    field("Type", "workflow_type"),
    field("Workflow ID starts with", "workflow_id_prefix"),
    field("Search attribute (Name=Value)", "search_attribute"),
    time("Started after", "started_after"),
    time("Started before", "started_before"),
    time("Closed after", "closed_after"),
    time("Closed before", "closed_before"),
    el("label", {}, "Parked only", el("input", { type: "checkbox", name: "parked", value: "true", checked: params.get("parked") === "true" })),
    el("button", { type: "submit" }, "Filter"),
    el("button", { type: "button", class: "secondary", onclick: () => { location.hash = "#/"; } }, "Clear"));
}

function runTable(executions) {
  if (executions.length === 0) return el("p", { class: "muted", id: "no-runs" }, "No workflow matches.");
  return el("table", { id: "run-list" },
    el("thead", {}, el("tr", {}, ["Status", "Workflow ID", "Type", "Started", "Closed", "Events"].map((h) => el("th", {}, h)))),
    el("tbody", {}, executions.map((e) =>
      el("tr", { "data-workflow-id": e.workflow_id },
        el("td", {}, badge(e.status, e.parked, e.paused)),
        el("td", { class: "mono" }, el("a", { href: runHref(e.workflow_id, null), class: "run-link" }, e.workflow_id)),
        el("td", {}, e.workflow_type),
        el("td", {}, when(e.start_time)),
        el("td", {}, when(e.close_time)),
        el("td", {}, e.history_length)))));
}

function pager(params, next) {
  const first = params.get("next_page_token");
  const go = (token) => {
    const p = new URLSearchParams(params);
    if (token) p.set("next_page_token", token);
    else p.delete("next_page_token");
    location.hash = "#/?" + p;
  };
  return el("div", { class: "pager" },
    first ? el("button", { class: "secondary", onclick: () => go(null) }, "First page") : null,
    next ? el("button", { class: "secondary", id: "next-page", onclick: () => go(next) }, "Next page") : null);
}

function runHref(id, run) {
  return "#/workflows/" + encodeURIComponent(id) + (run ? "?run=" + encodeURIComponent(run) : "");
}

// ---- one run ----------------------------------------------------------

async function runPage(id, run) {
  const query = run ? "?run_id=" + encodeURIComponent(run) : "";
  const head = el("div", {});
  const actions = el("section", { id: "actions" });
  const details = el("div", { id: "details" });
  const history = el("section", { id: "history" });
  // Outside the actions, which are redrawn when the run changes: what an
  // action did stays in view (a reset's new run, a termination).
  const message = el("div", { id: "action-result" });
  show(el("p", {}, el("a", { href: "#/" }, "← all workflows")), head, actions, message, details, history);
  let shownHistory = null;
  let actionsFor = null;
  const render = async () => {
    let described;
    let events = null;
    try {
      described = await api("GET", workflowPath(id) + query);
      // A reset starts another run: the latest run's history is refetched
      // whenever the run or its length changes.
      if (described.run_id + "/" + described.history_length !== shownHistory) {
        events = (await api("GET", workflowPath(id) + "/history" + query)).events;
      }
    } catch (error) {
      head.replaceChildren(failure(error));
      return false;
    }
    head.replaceChildren(
      el("h1", {}, id, " ", badge(described.status, described.parked, described.paused)));
    const pausedBy = described.paused && described.paused.kind === "Requested" ? described.paused.reason : null;
    const key = described.run_id + described.status + (pausedBy === null ? "" : " paused");
    if (actionsFor !== key) {
      // A closed run can only be reset; an earlier run of the chain not at
      // all (the routes act on the workflow's latest run).
      actions.replaceChildren(...(run ? [] : runActions(id, pausedBy, message, described.status !== "Running")));
      actionsFor = key;
    }
    if (events) {
      shownHistory = described.run_id + "/" + described.history_length;
      details.replaceChildren(...runDetails(id, described, events));
      history.replaceChildren(el("h2", {}, "History"), timeline(events, described), eventTable(events));
    } else {
      const pending = details.querySelector("#pending");
      const text = JSON.stringify([described.pending_activities, described.pending_timers,
        described.pending_children, described.pending_updates]);
      if (pending && pending.dataset.shown !== text) {
        const fresh = pendingSection(described);
        fresh.dataset.shown = text;
        pending.replaceWith(fresh);
      }
    }
    return true;
  };
  if (await render()) every(render);
}

function runDetails(id, d, events) {
  const started = events.length ? kindOf(events[0])[1] : {};
  const last = events.length ? kindOf(events[events.length - 1]) : ["", {}];
  const link = (run) => el("a", { href: runHref(id, run), class: "mono" }, run);
  const summary = el("dl", { class: "summary", id: "summary" },
    el("dt", {}, "Run ID"), el("dd", { class: "mono" }, d.run_id),
    el("dt", {}, "Type"), el("dd", {}, d.workflow_type),
    el("dt", {}, "Task queue"), el("dd", {}, d.task_queue, d.task_queue_served ? "" : " (no worker serves it)"),
    el("dt", {}, "Started"), el("dd", {}, when(d.start_time)),
    el("dt", {}, "Closed"), el("dd", {}, when(d.close_time) || "—"),
    el("dt", {}, "Events"), el("dd", {}, d.history_length),
    d.previous_run_id ? [el("dt", {}, "Continued from"), el("dd", {}, link(d.previous_run_id))] : null,
    d.next_run_id ? [el("dt", {}, "Continued as"), el("dd", {}, link(d.next_run_id))] : null,
    d.reset_from ? [el("dt", {}, "Reset from"), el("dd", { id: "reset-from" }, link(d.reset_from))] : null,
    d.reset_to ? [el("dt", {}, "Reset to"), el("dd", { id: "reset-to" }, link(d.reset_to))] : null,
    scheduledBy(d) ? [el("dt", {}, "Started by"), el("dd", { id: "scheduled-by" }, "schedule ",
      el("a", { href: scheduleHref(scheduledBy(d)), class: "mono" }, scheduledBy(d)))] : null,
    d.parent ? [el("dt", {}, "Parent"), el("dd", {},
      el("a", { href: runHref(d.parent.workflow_id, d.parent.run_id), id: "parent-link" }, d.parent.workflow_id))] : null);
  const out = [el("div", { class: "grid" },
    el("section", { class: "card" }, el("h2", {}, "Summary"), summary),
    el("section", { class: "card" }, el("h2", {}, "Input"), json(started.input === undefined ? null : started.input),
      closeSection(last)))];
  if (d.paused && d.paused.kind === "Requested") {
    out.unshift(el("section", { class: "notice", id: "paused" },
      el("strong", {}, "Paused: "), d.paused.reason,
      " — no activity attempt begins and no timer fires until it is unpaused; nothing is lost."));
  }
  if (d.parked) {
    const diff = d.parked.nondeterminism;
    out.unshift(el("section", { class: "error", id: "parked" },
      el("strong", {}, "Parked (" + d.parked.kind + "): "), "the run waits for a fix; nothing is lost.",
      diff ? el("table", { id: "nondeterminism", class: "diff" },
        el("thead", {}, el("tr", {}, el("th", {}, "Event"), el("th", {}, "History has"), el("th", {}, "Code did"))),
        el("tbody", {}, el("tr", {},
          el("td", {}, diff.event_id ? el("a", { href: "#event-" + diff.event_id, onclick: (e) => {
            e.preventDefault();
            const row = document.getElementById("event-" + diff.event_id);
            if (row) row.scrollIntoView({ block: "center" });
          } }, diff.event_id) : "end of history"),
          el("td", { class: "mono history-side" }, diff.history),
          el("td", { class: "mono code-side" }, diff.code)))) : null,
      el("pre", { class: "mono" }, d.parked.message)));
  }
  const attributes = Object.entries(d.search_attributes || {});
  if (attributes.length || d.memo !== null) {
    out.push(el("section", { class: "card" },
      el("h2", {}, "Search attributes and memo"),
      attributes.length ? el("table", {}, el("tbody", {}, attributes.map(([name, a]) =>
        el("tr", {}, el("td", {}, name), el("td", { class: "muted" }, a.type), el("td", { class: "mono" }, JSON.stringify(a.value)))))) : null,
      d.memo !== null ? [el("p", { class: "muted" }, "Memo"), json(d.memo)] : null));
  }
  out.push(pendingSection(d));
  if (d.unread_signals.length) {
    out.push(el("section", {}, el("h2", {}, "Signals never read"),
      el("table", {}, el("tbody", {}, d.unread_signals.map((u) => el("tr", {}, el("td", {}, u.signal_name), el("td", {}, u.count)))))));
  }
  return out;
}

// The schedule that started a run: the search attribute each action sets.
function scheduledBy(d) {
  const attribute = (d.search_attributes || {}).TemporalScheduledById;
  return attribute && attribute.type === "Keyword" ? attribute.value : null;
}

function closeSection([name, fields]) {
  switch (name) {
    case "WorkflowCompleted": return [el("h2", {}, "Result"), json(fields.result)];
    case "WorkflowFailed":
    case "WorkflowCancelled": return [el("h2", {}, name === "WorkflowFailed" ? "Failure" : "Cancelled with"), json(fields.failure)];
    case "WorkflowTerminated": return [el("h2", {}, "Terminated"), json(fields.reason)];
    case "WorkflowTimedOut": return [el("h2", {}, "Timed out"), json(fields.timeout)];
    case "WorkflowContinuedAsNew": return [el("h2", {}, "Continued as new with"), json(fields.input)];
    default: return [];
  }
}

function pendingSection(d) {
  const activities = d.pending_activities.length
    ? el("table", { id: "pending-activities" },
      el("thead", {}, el("tr", {}, ["Seq", "Activity", "Attempt", "Next attempt", "Last failure", "Last heartbeat"].map((h) => el("th", {}, h)))),
      el("tbody", {}, d.pending_activities.map((a) => el("tr", {},
        el("td", {}, a.seq), el("td", {}, a.local ? a.activity_type + " (local)" : a.activity_type), el("td", {}, a.attempt),
        el("td", {}, a.next_attempt_at ? when(a.next_attempt_at) : "running"),
        el("td", {}, a.last_failure ? a.last_failure.error_type + ": " + a.last_failure.message : ""),
        el("td", { class: "mono" }, a.last_heartbeat === null ? "" : JSON.stringify(a.last_heartbeat))))))
    : el("p", { class: "muted" }, "No pending activity.");
  const timers = d.pending_timers.length
    ? el("table", { id: "pending-timers" },
      el("thead", {}, el("tr", {}, el("th", {}, "Seq"), el("th", {}, "Fires at"))),
      el("tbody", {}, d.pending_timers.map((t) => el("tr", {}, el("td", {}, t.seq), el("td", {}, when(t.fire_at))))))
    : el("p", { class: "muted" }, "No pending timer.");
  const children = d.pending_children.length
    ? [el("h2", {}, "Pending children"), el("table", { id: "pending-children" },
      el("thead", {}, el("tr", {}, ["Seq", "Workflow ID", "Type", "Parent close", "Cancel requested"].map((h) => el("th", {}, h)))),
      el("tbody", {}, d.pending_children.map((c) => el("tr", {},
        el("td", {}, c.seq),
        el("td", { class: "mono" }, el("a", { href: runHref(c.workflow_id, null) }, c.workflow_id)),
        el("td", {}, c.workflow_type), el("td", {}, c.parent_close_policy),
        el("td", {}, c.cancel_requested ? "yes" : "")))))]
    : [];
  // Updates accepted whose handler has not returned (absent from older
  // endpoints: read as none).
  const updates = (d.pending_updates || []).length
    ? [el("h2", {}, "Pending updates"), el("table", { id: "pending-updates" },
      el("thead", {}, el("tr", {}, ["Update", "Update ID", "Accepted"].map((h) => el("th", {}, h)))),
      el("tbody", {}, d.pending_updates.map((u) => el("tr", {},
        el("td", {}, u.update_name), el("td", { class: "mono" }, u.update_id), el("td", {}, when(u.accepted_at))))))]
    : [];
  return el("section", { id: "pending" }, el("h2", {}, "Pending activities"), activities,
    el("h2", {}, "Pending timers"), timers, children, updates);
}

function runActions(id, pausedBy, message, closed) {
  // `done` is the notice's text, or a function of the answer giving its nodes.
  const act = async (button, method, path, body, done) => {
    button.disabled = true;
    try {
      const answer = await api(method, path, body);
      message.replaceChildren(el("p", { class: "notice", role: "status" },
        typeof done === "function" ? done(answer) : done));
    } catch (error) {
      message.replaceChildren(failure(error));
    } finally {
      button.disabled = false;
    }
  };
  const name = el("input", { id: "signal-name", placeholder: "signal name", required: true });
  const input = el("textarea", { id: "signal-input", placeholder: "JSON payload, e.g. \"alice\" or {\"amount\": 5}" });
  const send = el("button", { type: "submit", id: "signal-send" }, "Send signal");
  const signalForm = el("form", {
    class: "row",
    onsubmit: (e) => {
      e.preventDefault();
      let payload = null;
      if (input.value.trim()) {
        try {
          payload = JSON.parse(input.value);
        } catch (error) {
          message.replaceChildren(el("p", { class: "error", role: "alert" }, "The payload is not JSON: " + error.message));
          return;
        }
      }
      act(send, "POST", workflowPath(id) + "/signal", { name: name.value, input: payload }, "Signal " + name.value + " sent.");
    },
  }, el("label", { class: "field" }, "Signal", name), el("label", { class: "field grow" }, "Payload (JSON)", input), send);
  const cancel = el("button", { type: "button", class: "secondary", id: "cancel" }, "Request cancellation");
  cancel.addEventListener("click", () => act(cancel, "POST", workflowPath(id) + "/cancel", undefined, "Cancellation requested."));
  const reason = el("input", { id: "terminate-reason", placeholder: "reason" });
  const terminate = el("button", { type: "button", class: "danger", id: "terminate" }, "Terminate");
  terminate.addEventListener("click", () =>
    act(terminate, "POST", workflowPath(id) + "/terminate", { reason: reason.value || null }, "Terminated."));
  // Pause or unpause, whichever applies; the reason goes into the history.
  const pauseReason = el("input", { id: "pause-reason", placeholder: "reason" });
  const paused = pausedBy !== null;
  const pause = el("button", { type: "button", class: "secondary", id: paused ? "unpause" : "pause" },
    paused ? "Unpause" : "Pause");
  pause.addEventListener("click", () => act(pause, "POST", workflowPath(id) + (paused ? "/unpause" : "/pause"),
    { reason: pauseReason.value || null }, paused ? "Unpaused." : "Paused."));
  // Reset to a workflow task boundary: the first, the last good one, or an event ID.
  const resetTo = el("select", { id: "reset-type" },
    el("option", { value: "LastWorkflowTask" }, "Last workflow task"),
    el("option", { value: "FirstWorkflowTask" }, "First workflow task"),
    el("option", { value: "event" }, "Event ID"));
  const resetEvent = el("input", { id: "reset-event-id", type: "number", min: "1", placeholder: "event ID" });
  const resetReason = el("input", { id: "reset-reason", placeholder: "reason (required)" });
  const reset = el("button", { type: "button", class: "danger", id: "reset" }, "Reset");
  // A reset ends this run: the button asks first, naming the point.
  const confirmReset = el("div", { class: "confirm", id: "reset-confirmation", hidden: true });
  reset.addEventListener("click", () => {
    const body = { reason: resetReason.value };
    if (resetTo.value === "event") body.event_id = Number(resetEvent.value);
    else body.type = resetTo.value;
    const point = resetTo.value === "event" ? "event " + resetEvent.value : resetTo.selectedOptions[0].textContent.toLowerCase();
    const yes = el("button", { type: "button", class: "danger", id: "reset-confirm" }, "Reset the run");
    const no = el("button", { type: "button", class: "secondary", id: "reset-keep" }, "Keep it");
    const close = () => { confirmReset.hidden = true; confirmReset.replaceChildren(); reset.disabled = false; };
    yes.addEventListener("click", async () => {
      close();
      await act(reset, "POST", workflowPath(id) + "/reset", body, (answer) => [
        "Reset: a new run started, ",
        el("a", { href: runHref(id, answer.run_id), id: "reset-new-run", class: "mono" }, answer.run_id), "."]);
    });
    no.addEventListener("click", close);
    confirmReset.replaceChildren(
      el("span", {}, (closed ? "Start a new run from this closed run's " : "Terminate this run and start a new one from its ")
        + point + "?"), yes, no);
    confirmReset.hidden = false;
    reset.disabled = true;
  });
  const resetRow = el("div", { class: "row" }, el("label", { class: "field" }, "Reset to", resetTo),
    el("label", { class: "field" }, "Event", resetEvent),
    el("label", { class: "field" }, "Reason", resetReason), reset);
  if (closed) return [el("h2", {}, "Actions"), el("div", { class: "actions card" }, resetRow, confirmReset)];
  return [el("h2", {}, "Actions"), el("div", { class: "actions card" }, signalForm,
    el("div", { class: "row" }, cancel, el("label", { class: "field" }, "Reason", reason), terminate),
    el("div", { class: "row" }, el("label", { class: "field" }, "Pause reason", pauseReason), pause),
    resetRow, confirmReset)];
}

// The history as bars over time: each activity from its scheduling to its
// final result, each timer from start to firing, signals received and
// signals or cancellations sent to other workflows as ticks.
function timeline(events, d) {
  if (!events.length) return el("p", { class: "muted" }, "No events.");
  const t0 = eventTime(events[0]);
  const closed = d.status !== "Running";
  const t1 = Math.max(closed ? eventTime(events[events.length - 1]) : Date.now(), t0 + 1);
  const rows = new Map();
  const signals = [];
  const sent = [];
  for (const event of events) {
    const [name, f] = kindOf(event);
    const at = eventTime(event);
    if (name === "ActivityScheduled") rows.set("a" + f.seq, { label: "activity " + f.seq + " · " + f.activity_type, cls: "activity", from: at, to: null });
    else if (name === "ActivityCompleted" && rows.has("a" + f.seq)) rows.get("a" + f.seq).to = at;
    else if (name === "ActivityFailed" && rows.has("a" + f.seq) && !f.next_attempt_at) Object.assign(rows.get("a" + f.seq), { to: at, cls: "activity failed" });
    else if (name === "TimerStarted") rows.set("t" + f.seq, { label: "timer " + f.seq, cls: "timer", from: at, to: null });
    else if ((name === "TimerFired" || name === "TimerCanceled") && rows.has("t" + f.seq)) rows.get("t" + f.seq).to = at;
    else if (name === "WorkflowSignaled" || name === "WorkflowSignaledWithOptions") signals.push({ at, label: f.signal_name });
    else if (name === "SignalExternalWorkflowInitiated" || name === "SignalChildWorkflowInitiated") sent.push({ at, label: "signal " + f.signal_name + " to " + f.workflow_id });
    else if (name === "RequestCancelExternalWorkflowInitiated") sent.push({ at, label: "cancel " + f.workflow_id });
  }
  const list = [...rows.values()];
  const width = 1000, left = 220, rowH = 22, top = 24;
  const height = top + (list.length + (signals.length ? 1 : 0) + (sent.length ? 1 : 0)) * rowH + 10;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - 10);
  const span = (ms) => (ms < 1000 ? ms.toFixed(0) + " ms" : (ms / 1000).toFixed(2) + " s");
  const parts = [
    svg("text", { x: left, y: 14 }, "0"),
    svg("text", { x: width - 10, y: 14, "text-anchor": "end" }, span(t1 - t0)),
    svg("line", { class: "axis", x1: left, y1: 18, x2: width - 10, y2: 18 }),
  ];
  list.forEach((r, i) => {
    const y = top + i * rowH;
    const end = r.to === null ? t1 : r.to;
    parts.push(svg("text", { x: 6, y: y + 14 }, r.label));
    parts.push(svg("rect", {
      class: r.cls + (r.to === null ? " pending" : ""), x: x(r.from), y: y + 3,
      width: Math.max(2, x(end) - x(r.from)), height: rowH - 8, rx: 3,
    }, svg("title", {}, r.label + ": " + span(end - r.from) + (r.to === null ? " so far" : ""))));
  });
  if (signals.length) {
    const y = top + list.length * rowH;
    parts.push(svg("text", { x: 6, y: y + 14 }, "signals"));
    for (const s of signals) {
      parts.push(svg("line", { class: "signal", x1: x(s.at), y1: y + 2, x2: x(s.at), y2: y + rowH - 4 }, svg("title", {}, s.label)));
    }
  }
  if (sent.length) {
    const y = top + (list.length + (signals.length ? 1 : 0)) * rowH;
    parts.push(svg("text", { x: 6, y: y + 14 }, "sent"));
    for (const s of sent) {
      parts.push(svg("line", { class: "signal", x1: x(s.at), y1: y + 2, x2: x(s.at), y2: y + rowH - 4 }, svg("title", {}, s.label)));
    }
  }
  return svg("svg", { class: "timeline", id: "timeline", viewBox: `0 0 ${width} ${height}`, role: "img" }, parts);
}

function eventTable(events) {
  return el("table", { id: "events" },
    el("thead", {}, el("tr", {}, ["ID", "Time", "Event", "Details"].map((h) => el("th", {}, h)))),
    el("tbody", {}, events.map((event) => {
      const [name, fields] = kindOf(event);
      const text = JSON.stringify(fields);
      return el("tr", { "data-event": name, id: "event-" + event.event_id },
        el("td", {}, event.event_id),
        el("td", {}, new Date(eventTime(event)).toLocaleString()),
        el("td", {}, name),
        el("td", {}, el("details", {}, el("summary", { class: "mono" }, text.length > 90 ? text.slice(0, 89) + "…" : text),
          json(fields))));
    })));
}

// ---- schedules --------------------------------------------------------

function schedulePath(id) {
  return "/api/v1/schedules/" + encodeURIComponent(id);
}

function scheduleHref(id) {
  return "#/schedules/" + encodeURIComponent(id);
}

function scheduleBadge(paused, note) {
  return paused
    ? el("span", { class: "badge Paused", title: note || null }, "Paused")
    : el("span", { class: "badge Active" }, "Active");
}

function times(list, id) {
  return list.length
    ? el("ul", { class: "times", id }, list.map((t) => el("li", {}, when(t))))
    : el("p", { class: "muted", id }, "None: the spec has no time left, or the schedule is paused.");
}

async function schedulesPage() {
  const body = el("div", { id: "schedules" }, el("p", { class: "muted" }, "Loading…"));
  show(el("h1", {}, "Schedules"), body);
  let shown = null;
  const render = async () => {
    let listed;
    try {
      listed = await api("GET", "/api/v1/schedules");
    } catch (error) {
      body.replaceChildren(failure(error));
      shown = null;
      return false;
    }
    const text = JSON.stringify(listed);
    if (text !== shown) {
      body.replaceChildren(scheduleTable(listed.schedules));
      shown = text;
    }
    return true;
  };
  if (await render()) every(render);
}

function scheduleTable(schedules) {
  if (schedules.length === 0) {
    return el("p", { class: "muted", id: "no-schedules" },
      "No schedule. Create one with engine.create_schedule, POST /api/v1/schedules/{id} or steadfast schedule create.");
  }
  return el("table", { id: "schedule-list" },
    el("thead", {}, el("tr", {}, ["State", "Schedule ID", "Workflow type", "Next actions", "Last action"].map((h) => el("th", {}, h)))),
    el("tbody", {}, schedules.map((s) => {
      const last = s.recent_actions.length ? s.recent_actions[s.recent_actions.length - 1] : null;
      return el("tr", { "data-schedule-id": s.schedule_id },
        el("td", {}, scheduleBadge(s.paused, s.note), s.paused && s.note ? el("div", { class: "muted" }, s.note) : null),
        el("td", { class: "mono" }, el("a", { href: scheduleHref(s.schedule_id), class: "schedule-link" }, s.schedule_id)),
        el("td", {}, s.workflow_type),
        el("td", { class: "next-actions" }, s.next_action_times.slice(0, 3).map((t) => el("div", {}, when(t)))),
        el("td", {}, last
          ? [el("a", { href: runHref(last.workflow_id, last.run_id), class: "mono" }, last.workflow_id),
            el("div", { class: "muted" }, when(last.actual_time))]
          : el("span", { class: "muted" }, "none yet")));
    })));
}

async function schedulePage(id) {
  const head = el("div", {});
  const actions = el("section", { id: "schedule-actions" });
  const message = el("div", { id: "action-result" });
  const details = el("div", { id: "schedule-details" });
  show(el("p", {}, el("a", { href: "#/schedules" }, "← all schedules")), head, actions, message, details);
  let shown = null;
  let actionsFor = null;
  const render = async () => {
    let s;
    try {
      s = await api("GET", schedulePath(id));
    } catch (error) {
      head.replaceChildren(failure(error));
      return false;
    }
    const text = JSON.stringify(s);
    if (text === shown) return true;
    shown = text;
    head.replaceChildren(el("h1", {}, id, " ", scheduleBadge(s.paused, s.note)));
    if (actionsFor !== s.paused) {
      actions.replaceChildren(...scheduleActions(id, s, message, render));
      actionsFor = s.paused;
    }
    details.replaceChildren(...scheduleDetails(s));
    return true;
  };
  if (await render()) every(render);
}

function scheduleDetails(s) {
  const i = s.info;
  const row = (name, value) => [el("dt", {}, name), el("dd", {}, value === null || value === undefined || value === "" ? "—" : value)];
  const spec = el("dl", { class: "summary", id: "schedule-spec" },
    s.cron.length ? row("Cron", s.cron.map((c) => el("div", { class: "mono" }, c))) : null,
    s.intervals.length ? row("Every", s.intervals.map((v) =>
      el("div", { class: "mono" }, v.every + (v.offset && v.offset !== "0s" ? " (offset " + v.offset + ")" : "")))) : null,
    row("Time zone", s.time_zone || "UTC"),
    row("Jitter", s.jitter),
    row("Not before", when(s.start_at)),
    row("Not after", when(s.end_at)),
    row("Overlap policy", el("span", { class: "mono", id: "schedule-overlap" }, s.overlap)),
    row("Catch-up window", s.catchup_window),
    row("Pause on failure", el("span", { id: "schedule-pause-on-failure" }, s.pause_on_failure ? "yes" : "no")),
    row("Actions left", s.remaining_actions === null ? "unlimited" : s.remaining_actions));
  const state = el("dl", { class: "summary", id: "schedule-state" },
    row("State", s.paused ? "paused" : "active"),
    row("Note", s.note),
    row("Actions taken", i.action_count),
    row("Skipped by overlap", i.overlap_skipped),
    row("Missed (catch-up window)", i.missed_catchup_window),
    row("Buffered", i.buffer_size),
    row("Dropped (buffer full)", i.buffer_dropped),
    row("Created", when(i.created_at)),
    row("Last changed", when(i.last_updated_at)),
    row("Last result", i.last_completion_result === null || i.last_completion_result === undefined
      ? null : el("span", { class: "mono", id: "schedule-last-result" }, JSON.stringify(i.last_completion_result))),
    row("Last failure", i.last_failure ? el("span", { id: "schedule-last-failure" }, i.last_failure) : null));
  const action = el("dl", { class: "summary", id: "schedule-action" },
    row("Workflow type", s.workflow_type),
    row("Workflow ID", el("span", { class: "mono" }, s.workflow_id, el("span", { class: "muted" }, "-<time>"))),
    row("Task queue", s.task_queue));
  const recent = i.recent_actions.length
    ? el("table", { id: "recent-actions" },
      el("thead", {}, el("tr", {}, ["Scheduled for", "Started", "Workflow", "Run"].map((h) => el("th", {}, h)))),
      el("tbody", {}, [...i.recent_actions].reverse().map((a) => el("tr", { "data-workflow-id": a.workflow_id },
        el("td", {}, when(a.schedule_time)),
        el("td", {}, when(a.actual_time)),
        el("td", { class: "mono" }, el("a", { href: runHref(a.workflow_id, a.run_id), class: "run-link" }, a.workflow_id)),
        el("td", { class: "mono muted" }, a.run_id)))))
    : el("p", { class: "muted", id: "recent-actions" }, "No action yet.");
  const running = i.running_workflows.length
    ? el("ul", { id: "running-workflows" }, i.running_workflows.map((w) =>
      el("li", {}, el("a", { href: runHref(w.workflow_id, w.run_id), class: "mono" }, w.workflow_id))))
    : el("p", { class: "muted", id: "running-workflows" }, "None open.");
  return [
    el("div", { class: "grid" },
      el("section", { class: "card" }, el("h2", {}, "Next actions"), times(i.next_action_times, "next-actions")),
      el("section", { class: "card" }, el("h2", {}, "Workflows open"), running)),
    el("h2", {}, "Recent actions"), recent,
    el("div", { class: "grid below" },
      el("section", { class: "card" }, el("h2", {}, "Spec"), spec),
      el("section", { class: "card" }, el("h2", {}, "State"), state),
      el("section", { class: "card" }, el("h2", {}, "Action"), action, el("p", { class: "muted" }, "Input"), json(s.input))),
  ];
}

const OVERLAPS = ["skip", "buffer-one", "buffer-all", "cancel-other", "terminate-other", "allow-all"];

function scheduleActions(id, s, message, render) {
  const act = async (button, method, path, body, done) => {
    button.disabled = true;
    try {
      await api(method, path, body);
      message.replaceChildren(el("p", { class: "notice", role: "status" }, done));
    } catch (error) {
      message.replaceChildren(failure(error));
    } finally {
      button.disabled = false;
    }
  };
  const overlap = el("select", { id: "trigger-overlap" },
    el("option", { value: "" }, "the schedule's (" + s.overlap + ")"),
    OVERLAPS.map((o) => el("option", { value: o }, o)));
  const trigger = el("button", { type: "button", id: "trigger" }, "Trigger now");
  trigger.addEventListener("click", () =>
    act(trigger, "POST", schedulePath(id) + "/trigger", { overlap: overlap.value || null }, "Triggered: an action now."));
  const note = el("input", { id: "schedule-note", placeholder: "note" });
  const pause = el("button", { type: "button", class: "secondary", id: s.paused ? "schedule-unpause" : "schedule-pause" },
    s.paused ? "Unpause" : "Pause");
  pause.addEventListener("click", () => act(pause, "POST", schedulePath(id) + (s.paused ? "/unpause" : "/pause"),
    { note: note.value || null }, s.paused ? "Unpaused." : "Paused."));
  // Deleting asks first; the workflows it started are left as they are.
  const remove = el("button", { type: "button", class: "danger", id: "schedule-delete" }, "Delete");
  const confirm = el("div", { class: "confirm", hidden: true });
  remove.addEventListener("click", () => {
    const yes = el("button", { type: "button", class: "danger", id: "schedule-delete-confirm" }, "Delete the schedule");
    const no = el("button", { type: "button", class: "secondary" }, "Keep it");
    const close = () => { confirm.hidden = true; confirm.replaceChildren(); remove.disabled = false; };
    yes.addEventListener("click", async () => {
      close();
      remove.disabled = true;
      // No refresh of this page may ask for the schedule once it is gone.
      await stopRefresh();
      try {
        await api("DELETE", schedulePath(id));
        location.hash = "#/schedules";
      } catch (error) {
        message.replaceChildren(failure(error));
        remove.disabled = false;
        every(render);
      }
    });
    no.addEventListener("click", close);
    confirm.replaceChildren(el("span", {}, "Delete schedule " + id + "? The workflows it started are not touched."), yes, no);
    confirm.hidden = false;
    remove.disabled = true;
  });
  return [el("h2", {}, "Actions"), el("div", { class: "actions card" },
    el("div", { class: "row" }, el("label", { class: "field" }, "Overlap policy", overlap), trigger,
      el("label", { class: "field" }, "Note", note), pause, el("span", { class: "grow" }), remove),
    confirm)];
}

// ---- routing and live updates -----------------------------------------

function every(render) {
  // At most once a second, one at a time, and only while the page is seen.
  refreshTimer = setInterval(() => {
    if (document.visibilityState === "visible" && !refreshing) {
      refreshing = render().finally(() => { refreshing = null; });
    }
  }, REFRESH_MS);
}

// Stops the page's refresh, once the one in flight has answered.
async function stopRefresh() {
  if (refreshTimer) clearInterval(refreshTimer);
  refreshTimer = null;
  if (refreshing) await refreshing.catch(() => {});
}

function route() {
  if (refreshTimer) clearInterval(refreshTimer);
  refreshTimer = null;
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const run = path.match(/^\/workflows\/(.+)$/);
  const schedule = path.match(/^\/schedules\/(.+)$/);
  const onSchedules = path === "/schedules" || schedule !== null;
  for (const [link, current] of [["nav-workflows", !onSchedules], ["nav-schedules", onSchedules]]) {
    const node = document.getElementById(link);
    if (node) node.classList.toggle("current", current);
  }
  let page;
  if (run) page = runPage(decodeURIComponent(run[1]), params.get("run"));
  else if (schedule) page = schedulePage(decodeURIComponent(schedule[1]));
  else if (path === "/schedules") page = schedulesPage();
  else page = listPage(params);
  page.catch((error) => show(failure(error)));
}

window.addEventListener("hashchange", route);
route();
