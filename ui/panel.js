// The job panel: an MCP Apps view (io.modelcontextprotocol/ui) speaking the extension's postMessage
// JSON-RPC to its host directly. No library, no network: every tool call goes through the host.
"use strict";
(() => {
  const PROTOCOL_VERSION = "2026-01-26";
  const TERMINAL = new Set(["completed", "failed", "canceled"]);
  const STATUS_MARK = { submitted: "◷", working: "▶", completed: "✓", failed: "✕", canceled: "⊘" };
  const DETAIL_REFRESH_MS = 2000; // a job's record and log tail, while it runs
  const LIST_REFRESH_MS = 5000; // the page, while any job on it is active
  const CALL_TIMEOUT_MS = 60000;
  const LOG_LINES = 50;
  const STOP_META = "io.github.cancel-job-mcp/stop";
  const MAX_MESSAGE = 300;

  const tools = new Set(
    document.querySelector('meta[name="cancel-job-mcp-tools"]').content.split(" ").filter(Boolean)
  );
  const canCancel = tools.has("cancel_job");
  const hasLogs = tools.has("get_job_logs");
  const $ = (id) => document.getElementById(id);

  const state = {
    project: null, // project_reference, from the tool's input (else the jobs' project_id)
    filter: {}, // status and limit the tool was called with
    page: null, // {jobs, next_cursor}
    cursors: [null], // the cursor of each page seen so far
    pageIndex: 0,
    inputCursor: null, // the cursor the tool was called with: its page is not the first
    midway: false, // the pages before the shown one are not known (so they are not numbered)
    detail: null, // the record shown in detail
    logs: null,
    confirming: null, // the record awaiting "Cancel <name>?"
    cancelling: new Set(), // job ids with a cancel_job call under way
    canCallTools: true,
    locale: undefined,
    timeZone: undefined,
    tornDown: false,
  };

  // --- JSON-RPC over postMessage -------------------------------------------------------------------
  let nextId = 1;
  const pending = new Map();

  function post(message) {
    window.parent.postMessage({ jsonrpc: "2.0", ...message }, "*");
  }

  function request(method, params) {
    const id = nextId++;
    post({ id, method, params });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error("The host did not answer in time."));
      }, CALL_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
    });
  }

  const notify = (method, params) => post({ method, params });

  window.addEventListener("message", (event) => {
    const message = event.data;
    if (event.source !== window.parent || !message || message.jsonrpc !== "2.0") return;
    if (message.method === undefined) return settle(message);
    if (message.id !== undefined) return answer(message);
    onNotification(message.method, message.params || {});
  });

  function settle(message) {
    const call = pending.get(message.id);
    if (!call) return;
    pending.delete(message.id);
    clearTimeout(call.timer);
    if (message.error) call.reject(new Error(short(message.error.message) || "The host refused the call."));
    else call.resolve(message.result);
  }

  function answer(message) {
    if (message.method === "ui/resource-teardown") {
      state.tornDown = true;
      stopRefreshing();
      post({ id: message.id, result: {} });
    } else if (message.method === "ping") {
      post({ id: message.id, result: {} });
    } else {
      post({ id: message.id, error: { code: -32601, message: "Method not found" } });
    }
  }

  function onNotification(method, params) {
    if (method === "ui/notifications/tool-input") {
      const args = params.arguments || {};
      if (typeof args.project_reference === "string") state.project = args.project_reference;
      state.filter = {};
      if (typeof args.status === "string") state.filter.status = args.status;
      if (Number.isInteger(args.limit)) state.filter.limit = args.limit;
      state.inputCursor = typeof args.cursor === "string" ? args.cursor : null;
    } else if (method === "ui/notifications/tool-result") {
      showToolResult(params);
    } else if (method === "ui/notifications/host-context-changed") {
      applyHostContext(params);
    } else if (method === "ui/notifications/tool-cancelled") {
      say("The tool call was cancelled.", true);
      $("panel").setAttribute("aria-busy", "false");
    }
  }

  class ToolFailure extends Error {}

  // A tool call proxied by the host: the structured result, or a ToolFailure with the server's words.
  async function callTool(name, args) {
    const result = await request("tools/call", { name, arguments: args });
    if (!result || result.isError) throw new ToolFailure(textOf(result) || `${name} failed.`);
    return result;
  }

  const textOf = (result) =>
    short(((result && result.content) || []).filter((b) => b.type === "text").map((b) => b.text).join("\n"));

  // Error texts are shown, never more than their first lines: no stack or trace reaches the page.
  function short(text) {
    if (typeof text !== "string") return "";
    const lines = text.split("\n").slice(0, 4).join("\n");
    return lines.length > MAX_MESSAGE ? `${lines.slice(0, MAX_MESSAGE)}…` : lines;
  }

  // --- what the host showed us -------------------------------------------------------------------
  function showToolResult(result) {
    $("panel").setAttribute("aria-busy", "false");
    if (result.isError) return say(textOf(result) || "The tool call failed.", true);
    const data = result.structuredContent || {};
    if (Array.isArray(data.jobs)) {
      // "Newer" from a page the tool reached with a cursor goes back to the first page.
      state.cursors = state.inputCursor ? [null, state.inputCursor] : [null];
      state.pageIndex = state.cursors.length - 1;
      state.midway = Boolean(state.inputCursor);
      showPage(data);
    } else if (typeof data.id === "string" && typeof data.status === "string") {
      showPage({ jobs: [data], next_cursor: null });
      openDetail(data);
    } else if (typeof data.job_id === "string") {
      state.project = state.project || data.project_id;
      showPage({ jobs: [], next_cursor: null });
      state.logs = data;
      openDetail({ id: data.job_id, status: "" }); // its record comes with the first refresh
    }
  }

  function showPage(page) {
    state.page = page;
    const first = page.jobs[0];
    if (!state.project && first) state.project = first.project_id;
    $("project").textContent = state.project ? `project ${state.project}` : "";
    renderTable();
    scheduleListRefresh();
  }

  // --- the table ---------------------------------------------------------------------------------
  function renderTable() {
    const jobs = [...state.page.jobs].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    const focused = focusedControl();
    $("jobs").tBodies[0].replaceChildren(...jobs.map(renderRow));
    if (focused) focusControl(...focused);
    $("empty").hidden = jobs.length > 0;
    $("newer").disabled = state.pageIndex === 0 || !state.canCallTools;
    $("older").disabled = !state.page.next_cursor || !state.canCallTools;
    const paged = state.pageIndex > 0 || Boolean(state.page.next_cursor);
    $("pager").hidden = !paged;
    $("page").textContent = paged && !state.midway ? `Page ${state.pageIndex + 1}` : "";
    for (const cell of document.querySelectorAll(".cancel-column")) cell.hidden = !canCancel;
  }

  function renderRow(job) {
    const row = el("tr", { "data-job-id": job.id, "data-status": job.status });
    if (state.detail && state.detail.id === job.id) row.className = "selected";
    const open = el("button", { type: "button", class: "link", "data-action": "open" }, job.name || job.id);
    open.setAttribute("aria-label", `${job.name || job.id}: show details`);
    open.addEventListener("click", () => openDetail(job));
    row.append(
      el("td", { class: "name" }, open),
      el("td", {}, chip(job.status)),
      el("td", {}, when(job.started_at)),
      el("td", { class: "number" }, duration(job)),
      el("td", { class: "number" }, job.exit_code === null || job.exit_code === undefined ? "—" : String(job.exit_code))
    );
    if (canCancel) row.append(el("td", { class: "cancel-column" }, cancelButton(job)));
    return row;
  }

  // The table is redrawn as it refreshes: the control that had the keyboard focus gets it back.
  function focusedControl() {
    const active = document.activeElement;
    const row = active && active.closest && active.closest("tbody tr[data-job-id]");
    return row ? [row.dataset.jobId, active.dataset.action] : null;
  }

  function focusControl(jobId, action) {
    const row = $("jobs").querySelector(`tbody tr[data-job-id="${CSS.escape(jobId)}"]`);
    const control = row && (row.querySelector(`[data-action="${action}"]`) || row.querySelector("button"));
    if (control) control.focus();
  }

  function cancelButton(job) {
    const busy = state.cancelling.has(job.id); // kept (disabled) until cancel_job answers: the stop is under way
    if (TERMINAL.has(job.status) && !busy) return "";
    const button = el("button", { type: "button", class: "danger", "data-action": "cancel" }, busy ? "Canceling…" : "Cancel");
    button.setAttribute("aria-label", `Cancel ${job.name || job.id}`);
    button.disabled = busy || !state.canCallTools;
    button.addEventListener("click", () => askToCancel(job, button));
    return button;
  }

  function chip(status) {
    const known = Object.prototype.hasOwnProperty.call(STATUS_MARK, status);
    const mark = known ? STATUS_MARK[status] : "•";
    return el("span", { class: `chip chip-${known ? status : "other"}` }, `${mark} ${status}`);
  }

  async function goToPage(index) {
    try {
      const args = { project_reference: state.project, ...state.filter };
      if (state.cursors[index]) args.cursor = state.cursors[index];
      const result = await callTool("list_jobs", args);
      const page = result.structuredContent;
      state.pageIndex = index;
      if (index === 0) state.midway = false;
      if (page.next_cursor) state.cursors[index + 1] = page.next_cursor;
      showPage(page);
    } catch (error) {
      say(error.message, true);
    }
  }

  $("older").addEventListener("click", () => {
    if (state.page.next_cursor) state.cursors[state.pageIndex + 1] = state.page.next_cursor;
    goToPage(state.pageIndex + 1);
  });
  $("newer").addEventListener("click", () => goToPage(Math.max(0, state.pageIndex - 1)));

  // --- a job's detail and log tail ---------------------------------------------------------------
  function openDetail(job) {
    state.detail = job;
    if (!state.logs || state.logs.job_id !== job.id) state.logs = null;
    renderDetail();
    renderTable();
    $("detail").hidden = false;
    refreshDetail(job.id);
  }

  $("detail-close").addEventListener("click", () => {
    state.detail = null;
    state.logs = null;
    $("detail").hidden = true;
    stopDetailRefresh();
    renderTable();
  });

  function renderDetail() {
    const job = state.detail;
    if (!job) return;
    $("detail-title").textContent = job.name || job.id;
    const fields = [
      ["Status", chip(job.status)],
      ["Job id", job.id],
      ["Target", job.target],
      ["Created", when(job.created_at)],
      ["Started", when(job.started_at)],
      ["Finished", when(job.completed_at)],
      ["Duration", duration(job)],
      ["Exit code", job.exit_code === null || job.exit_code === undefined ? "—" : String(job.exit_code)],
      ["Failure", job.failed_reason || "—"],
      ["Timeout", job.timeout_seconds ? `${job.timeout_seconds} s` : "—"],
    ];
    $("fields").replaceChildren(...fields.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value || "—")]));
    $("detail-actions").replaceChildren(...(canCancel ? [cancelButton(job)] : []));
    const logs = state.logs;
    $("logs").hidden = !hasLogs || !logs;
    if (logs) {
      $("log-tail").textContent = logs.lines.length ? logs.lines.join("\n") : "(no output yet)";
      $("logs-note").textContent = logs.truncated ? `(last ${logs.lines.length} lines, truncated)` : `(last ${logs.lines.length} lines)`;
      const tail = $("log-tail");
      tail.scrollTop = tail.scrollHeight;
    }
  }

  let detailTimer = null;
  let listTimer = null;

  async function refreshDetail(jobId) {
    stopDetailRefresh();
    if (!state.canCallTools || state.tornDown) return;
    const args = { project_reference: state.project, job_id: jobId };
    try {
      const [record, logs] = await Promise.all([
        callTool("get_job", args).then((r) => r.structuredContent),
        hasLogs ? callTool("get_job_logs", { ...args, tail_lines: LOG_LINES }).then((r) => r.structuredContent) : null,
      ]);
      if (!state.detail || state.detail.id !== jobId) return; // closed, or another job opened meanwhile
      state.detail = record;
      state.logs = logs;
      replaceInPage(record);
      renderDetail();
    } catch (error) {
      say(error.message, true);
      return;
    }
    if (!TERMINAL.has(state.detail.status) && !document.hidden) {
      detailTimer = setTimeout(() => refreshDetail(jobId), DETAIL_REFRESH_MS);
    }
  }

  function stopDetailRefresh() {
    clearTimeout(detailTimer);
    detailTimer = null;
  }

  function scheduleListRefresh() {
    clearTimeout(listTimer);
    listTimer = null;
    const active = state.page && state.page.jobs.some((job) => !TERMINAL.has(job.status));
    if (active && state.project && state.canCallTools && !document.hidden && !state.tornDown) {
      listTimer = setTimeout(() => goToPage(state.pageIndex), LIST_REFRESH_MS);
    }
  }

  function stopRefreshing() {
    stopDetailRefresh();
    clearTimeout(listTimer);
    listTimer = null;
  }

  // Refreshing stops while the view is hidden and resumes when it is shown again.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return stopRefreshing();
    scheduleListRefresh();
    if (state.detail && !TERMINAL.has(state.detail.status)) refreshDetail(state.detail.id);
  });

  function replaceInPage(record) {
    if (!state.page) return;
    const index = state.page.jobs.findIndex((job) => job.id === record.id);
    if (index >= 0) state.page.jobs[index] = record;
    else if (!state.page.jobs.length) state.page.jobs.push(record);
    renderTable();
  }

  // --- cancel, asked in the view -----------------------------------------------------------------
  let returnFocus = null;

  function askToCancel(job, button) {
    state.confirming = job;
    returnFocus = { button, jobId: job.id };
    $("confirm-question").textContent = `Cancel ${job.name || job.id}?`;
    $("confirm").hidden = false;
    $("confirm-no").focus();
  }

  function closeConfirm() {
    state.confirming = null;
    $("confirm").hidden = true;
    if (returnFocus && returnFocus.button.isConnected) returnFocus.button.focus();
    else if (returnFocus) focusControl(returnFocus.jobId, "cancel");
  }

  $("confirm-no").addEventListener("click", closeConfirm);
  $("confirm").addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeConfirm();
  });
  $("confirm-yes").addEventListener("click", async () => {
    const job = state.confirming;
    if (!job) return;
    closeConfirm();
    state.cancelling.add(job.id);
    renderTable();
    renderDetail();
    say(`Canceling ${job.name || job.id}…`);
    try {
      const result = await callTool("cancel_job", { project_reference: state.project, job_id: job.id });
      const record = result.structuredContent;
      state.cancelling.delete(job.id);
      if (state.detail && state.detail.id === record.id) state.detail = record;
      replaceInPage(record);
      renderDetail();
      say(`${record.name || record.id}: ${record.status}.${evidence(result)}`);
      if (state.detail && state.detail.id === record.id) refreshDetail(record.id);
    } catch (error) {
      state.cancelling.delete(job.id);
      renderTable();
      renderDetail();
      say(error.message, true);
      if (state.project) goToPage(state.pageIndex); // the job's status as it is now (it may have ended)
    }
  });

  // What the server says it did to stop the job: its plain-words block, else its _meta facts.
  function evidence(result) {
    const words = (result.content || []).slice(1).filter((b) => b.type === "text").map((b) => b.text);
    if (words.length) return `\n${short(words.join("\n"))}`;
    const facts = result._meta && result._meta[STOP_META];
    return facts ? `\n${short(JSON.stringify(facts))}` : "";
  }

  // --- host context: theme, styles, size ---------------------------------------------------------
  function applyHostContext(context) {
    const root = document.documentElement;
    if (context.theme === "light" || context.theme === "dark") root.dataset.theme = context.theme;
    const variables = (context.styles && context.styles.variables) || {};
    for (const [name, value] of Object.entries(variables)) {
      if (name.startsWith("--") && typeof value === "string") root.style.setProperty(name, value);
    }
    const box = context.containerDimensions || {};
    const height = box.height || box.maxHeight;
    if (height) root.style.setProperty("--panel-max-height", `${Math.max(120, height - 160)}px`);
    if (context.locale) state.locale = context.locale;
    if (context.timeZone) state.timeZone = context.timeZone;
    if (state.page) renderTable();
    renderDetail();
  }

  let reported = { width: 0, height: 0 };
  new ResizeObserver(() => {
    const root = document.documentElement;
    const size = { width: Math.ceil(root.scrollWidth), height: Math.ceil(root.scrollHeight) };
    if (size.width === reported.width && size.height === reported.height) return;
    reported = size;
    notify("ui/notifications/size-changed", size);
  }).observe(document.documentElement);

  // --- small helpers -----------------------------------------------------------------------------
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    node.append(...children.filter((child) => child !== "" && child !== null));
    return node;
  }

  function when(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    const options = { dateStyle: "medium", timeStyle: "medium", timeZone: state.timeZone };
    try {
      return date.toLocaleString(state.locale, options);
    } catch {
      return date.toISOString();
    }
  }

  function duration(job) {
    if (!job.started_at) return "—";
    const end = job.completed_at ? Date.parse(job.completed_at) : Date.now();
    const seconds = Math.max(0, Math.round((end - Date.parse(job.started_at)) / 1000));
    if (Number.isNaN(seconds)) return "—";
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    return h ? `${h}h ${m}m` : m ? `${m}m ${String(s).padStart(2, "0")}s` : `${s}s`;
  }

  function say(text, isError = false) {
    const notice = $("notice");
    notice.textContent = text;
    notice.className = isError ? "notice error" : "notice";
    notice.setAttribute("role", isError ? "alert" : "status");
    notice.hidden = !text;
  }

  // --- start: ui/initialize, then ui/notifications/initialized -----------------------------------
  async function start() {
    try {
      const result = await request("ui/initialize", {
        appInfo: { name: "cancel-job-mcp panel", version: "1" },
        appCapabilities: {},
        protocolVersion: PROTOCOL_VERSION,
      });
      state.canCallTools = Boolean(result.hostCapabilities && result.hostCapabilities.serverTools);
      applyHostContext(result.hostContext || {});
      notify("ui/notifications/initialized", {});
      if (!state.canCallTools) say("This host does not let the panel call tools: it shows the result only.");
    } catch (error) {
      say(error.message, true);
    }
  }

  start();
})();
