/* chartdraft clinician UI: plain JavaScript over the /v1 API, no build step, no network beyond
   this server. Every string from a chart or a model is inserted as text (never as HTML): chart
   text can carry injected instructions or markup. */
"use strict";

const TOKEN_KEY = "chartdraft.token";
const DOC_TYPES = [
  ["discharge-instructions", "Discharge instructions", "For the patient to take home; plain language."],
  ["summary", "Note summary", "A cited summary of the chart for a colleague."],
  ["prior-auth", "Prior-authorization letter", "A letter to the payer about one order."],
];
const VERDICT_WORDS = {
  contradicted: "Contradicts the chart",
  invalid_citation: "Cites something it may not",
  unsupported: "Not supported by its sources",
  uncited: "No source cited",
  not_verified: "Could not be checked against its sources",
  supported: "Supported",
};
const state = { config: null, patients: null, draft: null, abort: null, panelReturn: null,
  patient: null, current: null, pendingRemoval: null };

/* ---------- small DOM helpers -------------------------------------------------------------- */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}
const $ = (sel, root) => (root || document).querySelector(sel);
const main = () => $("#main");
function setMain(...kids) {
  const m = main();
  m.replaceChildren(...kids);
}
function announce(msg) {
  const live = $("#live");
  if (live) live.textContent = msg;
}
function showError(err) {
  const box = $("#alerts");
  const p = err && err.problem;
  const title = p ? `${p.title}: ${p.detail}` : String((err && err.message) || err);
  box.replaceChildren(h("div", { class: "error-box" },
    h("strong", { text: title }),
    p && p.fix ? h("p", { text: `How to fix: ${p.fix}` }) : null,
    h("button", { type: "button", class: "link", onclick: () => box.replaceChildren() }, "Dismiss")));
}
function clearError() { $("#alerts").replaceChildren(); }

/* ---------- dates --------------------------------------------------------------------------- */
function parseDate(s) {
  if (!s) return null;
  const d = new Date(s.length === 4 ? `${s}-01-01` : s.length === 7 ? `${s}-01` : s);
  return isNaN(d) ? null : d;
}
function fmtDate(s) {
  const d = parseDate(s);
  return d ? d.toISOString().slice(0, 10) : (s || "no date");
}
function howOld(s) {
  const d = parseDate(s);
  if (!d) return "";
  const days = Math.round((Date.now() - d.getTime()) / 86400000);
  const future = days < 0;
  const n = Math.abs(days);
  let span;
  if (n === 0) return "today";
  if (n < 45) span = `${n} day${n === 1 ? "" : "s"}`;
  else if (n < 730) span = `${Math.round(n / 30.4)} months`;
  else span = `${Math.floor(n / 365.25)} years`;
  return future ? `in ${span}` : `${span} ago`;
}
function age(birth) {
  const b = parseDate(birth);
  if (!b) return null;
  const now = new Date();
  let a = now.getFullYear() - b.getFullYear();
  if (now.getMonth() < b.getMonth() || (now.getMonth() === b.getMonth() && now.getDate() < b.getDate())) a -= 1;
  return a;
}
function sexWord(g) {
  return { female: "Female", male: "Male", other: "Other", unknown: "Unknown" }[g] || (g || "Sex not recorded");
}

/* ---------- the API ------------------------------------------------------------------------- */
function token() { return sessionStorage.getItem(TOKEN_KEY); }
function claims() {
  const t = token();
  if (!t) return null;
  try {
    const b = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(b + "===".slice((b.length + 3) % 4)));
  } catch (e) { return {}; }
}
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new Error("The chartdraft service cannot be reached. Check your connection and try again.");
  }
  const ct = r.headers.get("content-type") || "";
  const data = ct.includes("json") ? await r.json() : await r.text();
  if (!r.ok) {
    const err = new Error(data && data.detail ? data.detail : `HTTP ${r.status}`);
    err.status = r.status;
    err.problem = typeof data === "object" ? data : null;
    if (r.status === 401 && !path.startsWith("/ui/api/dev-login")) {
      sessionStorage.removeItem(TOKEN_KEY);
      navigate("/ui/signin?next=" + encodeURIComponent(location.pathname), true);
    }
    throw err;
  }
  return data;
}

/* Server-sent events over fetch: EventSource cannot send the Authorization header. */
async function streamEvents(path, onEvent, signal) {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" }, signal });
  if (!r.ok) {
    const err = new Error(`stream failed (HTTP ${r.status})`);
    err.problem = await r.json().catch(() => null);
    throw err;
  }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) {
        const ev = JSON.parse(data.join("\n"));
        if (onEvent(name, ev) === false) { reader.cancel(); return; }
      }
    }
  }
}

/* ---------- routing ------------------------------------------------------------------------- */
function navigate(path, replace) {
  if (replace) history.replaceState({}, "", path); else history.pushState({}, "", path);
  route();
}
document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a[data-nav]");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", route);

async function route() {
  if (state.abort) { state.abort.abort(); state.abort = null; }
  if (state.pendingRemoval) leaveRemoval();
  state.draft = null; state.current = null;
  closePanel(false);
  clearError();
  renderAccount();
  const path = location.pathname.replace(/\/+$/, "");
  document.body.classList.remove("print-mode");
  if (!state.config) state.config = await api("GET", "/ui/api/config").catch(() => ({ dev_auth: false }));
  if (path === "/ui/signin" || !token()) return viewSignin();
  let m;
  try {
    if ((m = path.match(/^\/ui\/patients\/([^/]+)$/))) return await viewPatient(decodeURIComponent(m[1]));
    if ((m = path.match(/^\/ui\/drafts\/([^/]+)\/print$/))) return await viewPrint(decodeURIComponent(m[1]));
    if ((m = path.match(/^\/ui\/drafts\/([^/]+)$/))) return await viewDraft(decodeURIComponent(m[1]));
    return await viewPatients();
  } catch (err) {
    if (err.status === 401) return;
    setMain(h("h1", { text: "Something went wrong" }), h("p", { text: "The page could not be shown." }),
      h("p", {}, h("a", { href: "/ui", "data-nav": true }, "Back to patients")));
    showError(err);
  }
}

function focusHeading() {
  const h1 = $("#main h1");
  if (h1) { h1.setAttribute("tabindex", "-1"); h1.focus({ preventScroll: false }); }
}

function renderAccount() {
  const nav = $("#account");
  const c = claims();
  if (!token() || !c) { nav.replaceChildren(); return; }
  const who = `${c.sub || "signed in"} (${c.role || "?"}${c.patient ? `, patient ${c.patient} only` : ""})`;
  nav.replaceChildren(h("span", { class: "who", text: who }),
    h("button", { type: "button", class: "secondary", onclick: () => {
      sessionStorage.removeItem(TOKEN_KEY); navigate("/ui/signin");
    } }, "Sign out"));
}

/* ---------- sign-in ------------------------------------------------------------------------- */
function afterSignin() {
  const next = new URLSearchParams(location.search).get("next");
  navigate(next && next.startsWith("/ui") && !next.startsWith("/ui/signin") ? next : "/ui", true);
}
function viewSignin() {
  document.title = "Sign in · chartdraft";
  const tokenBox = h("textarea", { id: "token", name: "token", rows: 4, autocomplete: "off", spellcheck: "false",
    "aria-describedby": "token-help", required: true });
  const form = h("form", { class: "card", onsubmit: async (e) => {
    e.preventDefault();
    const t = tokenBox.value.trim().replace(/^Bearer\s+/i, "");
    if (!t) { showError("Paste a bearer token first."); tokenBox.focus(); return; }
    sessionStorage.setItem(TOKEN_KEY, t);
    try { await api("GET", "/v1/patients"); afterSignin(); } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      if (history.state) history.replaceState({}, "", "/ui/signin");
      viewSignin(); showError(err);
    }
  } },
    h("h2", { text: "Sign in with a token" }),
    h("label", { for: "token" }, "Bearer token"),
    tokenBox,
    h("p", { id: "token-help", class: "hint", text: "A JWT from your organisation's sign-in. It stays in this browser tab only." }),
    h("button", { type: "submit" }, "Sign in with token"),
    state.config && !state.config.dev_auth ? h("p", { class: "hint", id: "no-dev-login",
      text: "No token? Ask your administrator. On a development machine with synthetic patients only, " +
        "start the service with CHARTDRAFT_DEV_AUTH=true to get a development sign-in button here." }) : null);
  const dev = state.config && state.config.dev_auth ? h("section", { class: "card dev" },
    h("h2", { text: "Development sign-in" }),
    h("p", { class: "hint", text: "This server accepts development tokens. Use only with synthetic patients." }),
    h("button", { type: "button", id: "dev-login", onclick: async () => {
      try {
        const r = await api("POST", "/ui/api/dev-login", {});
        sessionStorage.setItem(TOKEN_KEY, r.token);
        afterSignin();
      } catch (err) { showError(err); }
    } }, "Sign in as development clinician")) : null;
  setMain(h("h1", { text: "Sign in" }), h("div", { class: "signin" }, dev, form));
  focusHeading();
}

/* ---------- patient list -------------------------------------------------------------------- */
async function viewPatients() {
  document.title = "Patients · chartdraft";
  setMain(h("h1", { text: "Patients" }), h("p", { class: "loading", role: "status" }, "Loading patients…"));
  const patients = await api("GET", "/v1/patients");
  state.patients = patients;
  const search = h("input", { id: "patient-search", type: "search", autocomplete: "off",
    placeholder: "Name or id", "aria-controls": "patient-list" });
  const count = h("p", { id: "patient-count", role: "status", class: "hint" });
  const list = h("ul", { id: "patient-list", class: "patient-list" });
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const rows = patients.filter((p) => !q || `${p.name || ""} ${p.id}`.toLowerCase().includes(q));
    list.replaceChildren(...rows.map((p) => h("li", {},
      h("a", { href: `/ui/patients/${encodeURIComponent(p.id)}`, "data-nav": true, class: "patient-link" },
        h("span", { class: "pname", text: p.name || p.id }),
        h("span", { class: "pmeta", text: `${sexWord(p.gender)} · ${age(p.birth_date) ?? "?"} years · born ${fmtDate(p.birth_date)}` })))));
    count.textContent = `${rows.length} of ${patients.length} patients`;
  };
  search.addEventListener("input", draw);
  draw();
  setMain(h("h1", { text: "Patients" }),
    h("div", { class: "search" }, h("label", { for: "patient-search" }, "Search patients"), search),
    count, patients.length ? list : h("p", { text: "No patients you may see are in the chart store yet." }));
  focusHeading();
}

/* ---------- patient header and allergy banner ----------------------------------------------- */
async function patientHeader(patientId) {
  const [p, ctx] = await Promise.all([
    api("GET", `/v1/patients/${encodeURIComponent(patientId)}`),
    api("GET", `/ui/api/patients/${encodeURIComponent(patientId)}/context`),
  ]);
  const a = age(p.birth_date);
  const head = h("section", { class: "patient-header", "aria-label": "Patient" },
    h("div", { class: "pid" },
      h("span", { class: "pname", id: "patient-name", text: p.name || p.id }),
      h("span", { class: "pmeta", text: `${a === null ? "Age unknown" : `${a} years`} · ${sexWord(p.gender)} · born ${fmtDate(p.birth_date)}` })),
    allergyBanner(ctx));
  return { patient: p, ctx, head };
}
function allergyBanner(ctx) {
  const items = ctx.allergies;
  const body = items.length
    ? h("ul", {}, items.map((x) => h("li", {},
        h("strong", { text: x.substance }),
        x.reactions.length ? ` (${x.reactions.join(", ")})` : "",
        x.criticality === "high" ? h("span", { class: "crit", text: " high risk" }) : "")))
    : h("span", { text: ctx.allergies_recorded ? "No known allergies (recorded)" : "No allergy information in the chart" });
  return h("div", { class: `allergy-banner${items.length ? " has" : ""}`, role: "region", "aria-label": "Allergies", id: "allergy-banner" },
    h("span", { class: "label", text: "Allergies:" }), body);
}

/* ---------- patient page: request a draft --------------------------------------------------- */
async function viewPatient(patientId) {
  setMain(h("p", { class: "loading", role: "status" }, "Loading the chart…"));
  const { patient, ctx, head } = await patientHeader(patientId);
  document.title = `${patient.name || patient.id} · chartdraft`;
  const radios = DOC_TYPES.map(([value, label, hint], i) => h("div", { class: "radio" },
    h("input", { type: "radio", name: "doc_type", id: `dt-${value}`, value, checked: i === 0, "aria-describedby": `dt-${value}-hint` }),
    h("label", { for: `dt-${value}` }, label),
    h("span", { class: "hint", id: `dt-${value}-hint`, text: hint })));
  const encSel = h("select", { id: "encounter", name: "encounter" },
    h("option", { value: "" }, "Latest hospital stay (else the latest visit)"),
    ctx.encounters.map((e) => h("option", { value: e.id }, `${fmtDate(e.start)} · ${e.title}${e.reason ? ` (${e.reason})` : ""}`)));
  const ordSel = h("select", { id: "order", name: "order" },
    h("option", { value: "" }, "Newest order a payer policy covers"),
    ctx.orders.map((o) => h("option", { value: o.id }, `${fmtDate(o.date)} · ${o.title}${o.policy ? ` — ${o.policy}` : " — no policy on file"}`)));
  const encField = h("div", { class: "field", id: "encounter-field" }, h("label", { for: "encounter" }, "Encounter"), encSel);
  const ordField = h("div", { class: "field", id: "order-field", hidden: true }, h("label", { for: "order" }, "Order"), ordSel);
  const form = h("form", { class: "card request", id: "request-form", onsubmit: async (e) => {
    e.preventDefault();
    const docType = form.querySelector("input[name=doc_type]:checked").value;
    const body = { patient_id: patient.id, doc_type: docType };
    if (docType === "prior-auth") { if (ordSel.value) body.order_id = ordSel.value; } else if (encSel.value) body.encounter_id = encSel.value;
    const btn = form.querySelector("button[type=submit]");
    btn.disabled = true; btn.textContent = "Asking…";
    try {
      const r = await api("POST", "/v1/drafts", body);
      navigate(`/ui/drafts/${r.id}`);
    } catch (err) { showError(err); btn.disabled = false; btn.textContent = "Draft it"; }
  } },
    h("h2", { text: "New draft" }),
    h("fieldset", {}, h("legend", { text: "Document type" }), radios),
    encField, ordField,
    h("button", { type: "submit" }, "Draft it"));
  form.addEventListener("change", () => {
    const pa = form.querySelector("input[name=doc_type]:checked").value === "prior-auth";
    ordField.hidden = !pa; encField.hidden = pa;
  });
  const drafts = await api("GET", `/v1/drafts?patient_id=${encodeURIComponent(patient.id)}&limit=20`).catch(() => []);
  const past = h("section", { class: "card" }, h("h2", { text: "Earlier drafts" }),
    drafts.length ? h("ul", { class: "draft-list" }, drafts.map((d) => h("li", {},
      h("a", { href: `/ui/drafts/${d.id}`, "data-nav": true }, `${docLabel(d.doc_type)} · ${d.status}`),
      h("span", { class: "hint", text: ` ${fmtDate(d.created_at)}` })))) : h("p", { class: "hint", text: "None yet." }));
  setMain(h("p", { class: "crumbs" }, h("a", { href: "/ui", "data-nav": true }, "← All patients")),
    head, h("h1", { text: "Request a draft" }), h("div", { class: "two-col" }, form, past));
  focusHeading();
}
function docLabel(t) { return (DOC_TYPES.find((d) => d[0] === t) || [t, t])[1]; }

/* ---------- the draft ----------------------------------------------------------------------- */
/* The review screen: a sticky bar (status, open flags as links, progress, Sign), compact
   statements whose actions show on hover or focus, keyboard shortcuts, accept per statement and
   per section, remove with undo, and signing through an in-page dialog that shows what is filed. */
const ORIGIN_WORDS = {
  composed: ["composed", "Built from the chart by rules; no language model wrote it."],
  extractive: ["composed", "Built from the chart by rules (extractive); no language model wrote it."],
  clinician: ["edited by clinician", "Changed by a clinician during review."],
};
// [key, what it does (help dialog), the word in the bar's one-line list]
const KEYS = [
  ["n / p", "next / previous open flag", "flag"], ["j / k", "next / previous statement", "statement"],
  ["a", "accept the statement (acknowledge a flag)", "accept"], ["A", "accept the whole section", "section"],
  ["e", "edit", "edit"], ["x", "remove (with undo)", "remove"], ["o", "open its source", "source"],
  ["s", "sign", "sign"], ["?", "all keys", "all keys"],
];
function undoMs() { return window.chartdraftUndoMs || 8000; }

async function viewDraft(draftId) {
  setMain(h("p", { class: "loading", role: "status" }, "Loading the draft…"));
  let draft = await api("GET", `/v1/drafts/${encodeURIComponent(draftId)}`);
  const { head, patient } = await patientHeader(draft.patient_id);
  state.draft = draft;
  state.patient = patient;
  document.title = `${docLabel(draft.doc_type)} · chartdraft`;
  const bar = h("section", { id: "review-bar", class: "review-bar", "aria-label": "Review" },
    h("div", { class: "bar-main" },
      h("div", { id: "draft-status", class: "status", role: "status", "aria-live": "polite" }),
      h("div", { id: "bar-progress", class: "bar-progress" }),
      h("div", { id: "bar-buttons", class: "bar-buttons" })),
    h("nav", { id: "flag-links", class: "flag-links", "aria-label": "Open flags" }),
    h("p", { id: "key-help", class: "keys hint" }, "Keys: ",
      KEYS.slice(0, -1).flatMap(([k, , word], i) => [i ? " · " : "", h("kbd", { text: k }), ` ${word}`]), " · ",
      h("button", { type: "button", class: "link", id: "keys-button", onclick: () => showKeys() }, "? all keys")),
    h("div", { id: "bar-forms" }));
  const layout = h("div", { class: "draft-layout" },
    h("div", { class: "draft-col" },
      h("div", { id: "banners" }),
      h("article", { id: "draft", class: "draft", "aria-labelledby": "draft-title" }),
      h("div", { id: "actions" })),
    h("aside", { id: "panel", class: "panel", "aria-label": "Source", hidden: true }));
  setMain(h("p", { class: "crumbs" }, h("a", { href: `/ui/patients/${encodeURIComponent(draft.patient_id)}`, "data-nav": true }, "← Patient")),
    // The title first: focus lands on it when the page opens, and the next Tab stops are the bar's.
    h("h1", { id: "draft-title", text: docLabel(draft.doc_type) }),
    h("div", { class: "sticky-top" }, head, bar),
    h("p", { id: "live", class: "sr-only", "aria-live": "polite" }), layout,
    h("div", { id: "toast", class: "toast", role: "status", "aria-live": "polite" }));
  focusHeading();
  if (draft.status === "pending" || draft.status === "generating") {
    renderDraft(draft, true);
    const ctrl = new AbortController();
    state.abort = ctrl;
    const streamed = { ...draft, sections: [], evidence: [] };
    try {
      await streamEvents(`/v1/drafts/${encodeURIComponent(draftId)}/events`, (name, ev) => {
        if (name === "statement") {
          let sec = streamed.sections.find((s) => s.title === ev.section);
          if (!sec) { sec = { title: ev.section, statements: [] }; streamed.sections.push(sec); }
          sec.statements.push(ev.statement);
          // Readable chip names from the first event: each event names the sources it cites.
          for (const [id, src] of Object.entries(ev.sources || {})) {
            if (!streamed.evidence.some((e) => e.id === id)) streamed.evidence.push({ id, ...src });
          }
          streamed.status = "generating";
          renderDraft(streamed, true);
        } else if (name === "fallback") {
          streamed.fallback_reason = ev.reason || "the model is unavailable";
          renderDraft(streamed, true);
        } else if (name === "done") {
          if (ev.error) streamed.error = ev.error;
          return false;
        }
        return true;
      }, ctrl.signal);
    } catch (err) {
      if (err.name === "AbortError") return;
      showError(err);
    }
    state.abort = null;
    draft = await api("GET", `/v1/drafts/${encodeURIComponent(draftId)}`);
    if (streamed.error) draft.error = streamed.error;
    announce(draft.status === "draft"
      ? `Draft ready: ${countStatements(draft)} statements, ${draft.open_flags.length} flags to review.`
      : `Drafting ended: ${draft.status}.`);
  }
  state.draft = draft;
  renderDraft(draft, false);
  if (draft.status === "signed") pollWriteback(draft.id);
}
function countStatements(d) { return d.sections.reduce((n, s) => n + s.statements.length, 0); }
function allStatements(d) { return d.sections.flatMap((s) => s.statements); }
function isOpenFlag(st) { return st.flagged && !st.acknowledged; }

/* Accepted statements are this reviewer's working state, kept in the tab (sessionStorage): the
   API records what changes the document (edits, acknowledgements, signing), not reading progress. */
function reviewedKey(d) { return `chartdraft.reviewed.${d.id}`; }
function acceptedIds(d) {
  try { return new Set(JSON.parse(sessionStorage.getItem(reviewedKey(d)) || "[]")); } catch (e) { return new Set(); }
}
function saveAccepted(d, ids) { sessionStorage.setItem(reviewedKey(d), JSON.stringify([...ids])); }
function isReviewed(d, st, accepted) {
  if (isOpenFlag(st)) return false;
  return (accepted || acceptedIds(d)).has(st.id) || st.acknowledged || st.origin === "clinician";
}
function visibleSections(d) {
  // A statement whose removal can still be undone is not shown and not counted.
  const gone = state.pendingRemoval && state.pendingRemoval.st.id;
  return d.sections.map((s) => ({ ...s, statements: s.statements.filter((st) => st.id !== gone) }));
}

function renderDraft(d, streaming) {
  const status = $("#draft-status");
  if (!status) return;
  const sections = visibleSections(d);
  const statementsNow = sections.flatMap((s) => s.statements);
  const n = statementsNow.length;
  const flags = statementsNow.filter(isOpenFlag).length;
  const cancelled = d.status === "failed" && d.extras && d.extras.cancelled_by;
  const words = {
    pending: "Waiting for a worker…",
    generating: `Drafting… ${n} statement${n === 1 ? "" : "s"} so far, each checked against its source.`,
    draft: `Draft ready for review: ${n} statements, ${flags} open flag${flags === 1 ? "" : "s"}.`,
    signed: "Signed.", rejected: "Rejected.", failed: cancelled ? "Cancelled." : "Drafting failed.",
  };
  status.className = `status ${d.status}${streaming ? " busy" : ""}`;
  status.textContent = words[d.status] || d.status;
  renderBanners(d, statementsNow, streaming);

  const evById = Object.fromEntries((d.evidence || []).map((e) => [e.id, e]));
  const grades = Object.fromEntries(((d.checks && d.checks.readability) || []).map((r) => [r.section, r]));
  const editable = d.status === "draft" && !streaming;
  const accepted = acceptedIds(d);
  const article = $("#draft");
  if (!sections.length && streaming) {
    article.replaceChildren(h("p", { class: "loading" }, "Gathering the chart and planning the document…"));
  } else {
    article.replaceChildren(...sections.map((sec, si) => {
      const todo = sec.statements.filter((st) => !st.flagged && !isReviewed(d, st, accepted));
      const done = sec.statements.length && sec.statements.every((st) => isReviewed(d, st, accepted));
      return h("section", { class: "dsec", "data-section": si },
        h("div", { class: "sec-head" },
          h("h2", { id: `sec-${si}` }, sec.title,
            grades[sec.title] ? h("span", { class: `grade${grades[sec.title].ok ? "" : " over"}`,
              title: "Reading grade (shown to you only)",
              text: ` Reading grade ${grades[sec.title].grade} (target ${grades[sec.title].target})` }) : null),
          editable && todo.length ? h("button", { type: "button", class: "secondary small accept-section",
            "aria-label": `Accept section ${sec.title}: ${todo.length} statement${todo.length === 1 ? "" : "s"}`,
            onclick: () => acceptSection(d, si) }, `Accept section (${todo.length})`) : null,
          editable && done ? h("span", { class: "sec-done", text: "✓ reviewed" }) : null),
        sec.statements.length ? h("ol", { class: "statements" },
          sec.statements.map((st) => statementItem(d, st, evById, editable, accepted))) :
          h("p", { class: "hint", text: "Nothing in this section." }));
    }));
  }
  renderBar(d, statementsNow, streaming, accepted);
  if (!streaming) renderActions(d);
  else $("#actions").replaceChildren();
  // The source panel and scrolled-to statements sit below the sticky header and bar.
  const top = $(".sticky-top");
  if (top) document.documentElement.style.setProperty("--sticky-h", `${top.offsetHeight}px`);
}

function renderBanners(d, statementsNow, streaming) {
  const banners = [];
  if (d.fallback_reason) {
    banners.push(h("div", { class: "banner warn", id: "fallback-banner" },
      h("strong", { text: "Model unavailable — extractive fallback. " }),
      `No language model wrote this: it lists the chart's facts, each cited. Reason: ${d.fallback_reason}`));
  } else if (d.backend === "extractive" || (!d.backend && state.config.backend === "extractive")) {
    banners.push(h("div", { class: "banner info", id: "extractive-banner" },
      h("strong", { text: "Extractive draft. " }), "Written without a language model: the chart's facts, each cited."));
  } else if (!streaming && statementsNow.length && !statementsNow.some((st) => st.origin === "model")) {
    banners.push(h("div", { class: "banner info", id: "composed-banner" },
      h("strong", { text: "Composed without the language model. " }), "Every sentence is built from the chart by rules, each cited."));
  }
  if (d.status === "failed") {
    const by = d.extras && d.extras.cancelled_by;
    banners.push(h("div", { class: "banner error", id: "failed-banner" },
      h("strong", { text: by ? `Cancelled by ${by}. ` : "This draft could not be made. " }),
      by ? "Nothing was filed." : (d.error || "See the service log."), " ",
      h("a", { href: `/ui/patients/${encodeURIComponent(d.patient_id)}`, "data-nav": true }, by ? "Ask for a new draft" : "Try again")));
  }
  if (d.status === "rejected") {
    banners.push(h("div", { class: "banner", id: "rejected-banner" }, h("strong", { text: "Rejected. " }),
      `Reason: ${(d.extras && d.extras.reject_reason) || "—"}`));
  }
  if (d.status === "signed") banners.push(writebackBanner(d));
  $("#banners").replaceChildren(...banners);
}

function renderBar(d, statementsNow, streaming, accepted) {
  const progress = $("#bar-progress");
  const buttons = $("#bar-buttons");
  const links = $("#flag-links");
  const open = statementsNow.filter(isOpenFlag);
  if (streaming) {
    progress.replaceChildren();
    links.replaceChildren();
    buttons.replaceChildren(h("button", { type: "button", class: "danger", id: "cancel-draft",
      onclick: (e) => cancelDraft(d, e.currentTarget) }, "Cancel draft"));
    $("#key-help").hidden = true;
    return;
  }
  const reviewing = d.status === "draft";
  $("#key-help").hidden = !reviewing;
  if (!reviewing) { progress.replaceChildren(); links.replaceChildren(); buttons.replaceChildren(); $("#bar-forms").replaceChildren(); return; }
  const done = statementsNow.filter((st) => isReviewed(d, st, accepted)).length;
  progress.replaceChildren(
    h("span", { id: "review-progress", text: `Reviewed ${done} of ${statementsNow.length}` }),
    h("progress", { max: statementsNow.length || 1, value: done, "aria-labelledby": "review-progress" }));
  links.replaceChildren(...(open.length ? [
    h("span", { class: "flag-count", text: `${open.length} open flag${open.length === 1 ? "" : "s"}:` }),
    ...open.map((st, i) => h("a", { href: `#st-${st.id}`, class: `flag-link v-${st.verdict}`, "data-statement": st.id,
      onclick: (e) => { e.preventDefault(); goToStatement(st.id); } },
      `${i + 1}. ${VERDICT_WORDS[st.verdict] || st.verdict}: ${st.text.length > 48 ? `${st.text.slice(0, 46)}…` : st.text}`)),
  ] : [h("span", { class: "flag-count none", text: "No open flags." })]));
  const sign = h("button", { type: "button", id: "sign", "aria-disabled": open.length ? "true" : null,
    "aria-describedby": "sign-help", onclick: () => startSign(d) }, "Sign…");
  const rejectBtn = h("button", { type: "button", class: "secondary", id: "reject", "aria-expanded": "false",
    "aria-controls": "reject-form", onclick: () => openReject(d, rejectBtn) }, "Reject…");
  buttons.replaceChildren(sign, rejectBtn,
    h("span", { id: "sign-help", class: "sr-only", text: open.length
      ? `Sign is off until you review ${open.length} flagged statement${open.length === 1 ? "" : "s"}; pressing it goes to the first.`
      : "Signing shows what will be filed, then files it in the chart under your name." }));
}

function goToStatement(id) {
  const li = $(`#st-${CSS.escape(id)}`);
  if (!li) return;
  li.scrollIntoView({ block: "center" });
  li.focus({ preventScroll: true });
}
function focusStatement(id) { goToStatement(id); }
function currentStatement() {
  const a = document.activeElement;
  const li = a && a.closest && a.closest("#draft li.stmt");
  return li || (state.current && $(`#st-${CSS.escape(state.current)}`)) || null;
}
function findStatement(d, id) { return allStatements(d).find((s) => s.id === id); }

function statementItem(d, st, evById, editable, accepted) {
  const flagged = st.flagged;
  const open = flagged && !st.acknowledged;
  const reviewed = isReviewed(d, st, accepted);
  const chips = h("span", { class: "chips" }, (st.citations || []).map((cid, i) => {
    const ev = evById[cid];
    const label = ev ? ev.title : cid;
    return h("button", { type: "button", class: "chip", "data-cite": cid,
      "aria-label": `Source ${i + 1}: ${label}`, title: label,
      onclick: (e) => openPanel(cid, st, e.currentTarget) }, `[${i + 1}] ${shortLabel(ev, cid)}`);
  }));
  const [originWord, originWhy] = ORIGIN_WORDS[st.origin] ||
    (d.mode === "constrained" ? ["model rewrite", "A language model rewrote a composed sentence in plain words; it was checked again."]
      : ["model-written", "Written by the language model, then checked against its sources."]);
  const short = st.text.slice(0, 60);
  const li = h("li", { class: `stmt${open ? " flag" : ""}${flagged && st.acknowledged ? " acked" : ""}${reviewed ? " reviewed" : ""}`,
    id: `st-${st.id}`, "data-verdict": st.verdict, "data-origin": st.origin, tabindex: "-1",
    onfocusin: () => { state.current = st.id; } },
    h("p", { class: "stext" }, h("span", { class: "text", text: st.text }), " ", chips, " ",
      h("span", { class: `origin o-${st.origin}`, title: originWhy, text: originWord }),
      reviewed && !flagged ? h("span", { class: "ok-mark", text: " ✓", "aria-label": "accepted" }) : null,
      editable ? h("span", { class: `st-actions${open ? " shown" : ""}` },
        !flagged && !reviewed ? h("button", { type: "button", class: "secondary small", "aria-label": `Accept statement: ${short}`,
          onclick: () => acceptStatement(d, st.id) }, "Accept") : null,
        h("button", { type: "button", class: "secondary small", "aria-label": `Edit statement: ${short}`, onclick: () => editStatement(d, st, li) }, "Edit"),
        h("button", { type: "button", class: "secondary small", "aria-label": `Remove statement: ${short}`, onclick: () => removeStatement(d, st) }, "Remove"),
        open ? h("button", { type: "button", class: "small", "aria-label": `Acknowledge flag: ${short}`,
          onclick: () => ackStatement(d, st, li) }, "Acknowledge") : null) : null),
    flagged ? h("div", { class: "why" },
      h("span", { class: `badge ${st.verdict}`, text: st.acknowledged ? `Acknowledged: ${VERDICT_WORDS[st.verdict]}` : `⚠ ${VERDICT_WORDS[st.verdict] || st.verdict}` }),
      h("ul", { class: "reasons" }, (st.results || []).filter((r) => r.verdict !== "supported").map((r) => {
        const cid = flagSource(st, r);
        return h("li", {}, cid
          ? h("button", { type: "button", class: "link reason-link", "data-cite": cid,
            title: "Open the source this flag is about",
            onclick: (e) => openPanel(cid, st, e.currentTarget, r) }, plainReason(r))
          : h("span", { text: plainReason(r) }));
      })),
      st.acknowledged && st.acknowledgement_note ? h("p", { class: "hint", text: `Your note: ${st.acknowledgement_note}` }) : null) : null,
    h("div", { class: "st-forms" }));
  return li;
}
/* The source a flag is about: the first cited source the check named, else the first citation. */
function flagSource(st, r) {
  const ids = (r && r.evidence_ids) || [];
  return ids.find((c) => (st.citations || []).includes(c)) || ids[0] || (st.citations || [])[0] || null;
}
function shortLabel(ev, cid) {
  if (!ev) return cid.startsWith("kb:") ? "guide" : cid.split("/")[0];
  const t = ev.title.length > 28 ? `${ev.title.slice(0, 26)}…` : ev.title;
  return t;
}
function plainReason(r) {
  const what = { citation: "Citation", support: "Source check", contradiction: "Chart conflict",
    injection: "Suspicious source text", phi: "Identifier check" }[r.check] || r.check;
  return `${what}: ${r.reason || VERDICT_WORDS[r.verdict]}`;
}

/* ---------- accept, edit, remove (with undo), acknowledge ----------------------------------- */
function nextStatementId(d, id, step) {
  const ids = visibleSections(d).flatMap((s) => s.statements).map((s) => s.id);
  const i = ids.indexOf(id);
  if (i < 0) return ids[0] || null;
  return ids[i + step] || null;
}
function acceptStatement(d, id) {
  const ids = acceptedIds(d);
  ids.add(id);
  saveAccepted(d, ids);
  renderDraft(d, false);
  const next = nextStatementId(d, id, 1);
  goToStatement(next || id);
  announce("Accepted.");
}
function acceptSection(d, si) {
  const sec = visibleSections(d)[si];
  if (!sec) return;
  const ids = acceptedIds(d);
  const todo = sec.statements.filter((st) => !st.flagged);
  todo.forEach((st) => ids.add(st.id));
  saveAccepted(d, ids);
  renderDraft(d, false);
  const flagsLeft = sec.statements.filter(isOpenFlag).length;
  announce(`Section ${sec.title} accepted: ${todo.length} statements.${flagsLeft ? ` ${flagsLeft} flag${flagsLeft === 1 ? "" : "s"} in it still open.` : ""}`);
  const nextSec = visibleSections(d).slice(si + 1).find((s) => s.statements.length);
  if (nextSec) goToStatement(nextSec.statements[0].id);
  else { const b = $("#sign"); if (b) b.focus(); }
}

async function patchDraft(d, edits, doneMsg) {
  try {
    const nd = await api("PATCH", `/v1/drafts/${d.id}`, { edits });
    state.draft = nd;
    renderDraft(nd, false);
    announce(doneMsg(nd));
    return nd;
  } catch (err) { showError(err); return null; }
}
function editStatement(d, st, li) {
  const id = `edit-${st.id}`;
  const box = h("textarea", { id, rows: 3, class: "edit-box" });
  box.value = st.text;
  const form = h("form", { class: "inline-form", onsubmit: async (e) => {
    e.preventDefault();
    const text = box.value.trim();
    if (!text) { showError("A statement cannot be empty; use Remove instead."); return; }
    const nd = await patchDraft(d, [{ statement_id: st.id, text }], (x) => {
      const s = x.sections.flatMap((q) => q.statements).find((q) => q.id === st.id);
      return s ? `Re-checked: ${VERDICT_WORDS[s.verdict]}.` : "Saved.";
    });
    const again = nd && $(`#st-${CSS.escape(st.id)} .st-actions button[aria-label^="Edit"]`);
    if (again) again.focus();
  } },
    h("label", { for: id }, "Edit the statement (it is checked again when you save)"), box,
    h("div", { class: "row" }, h("button", { type: "submit" }, "Save and re-check"),
      h("button", { type: "button", class: "secondary", onclick: () => { renderDraft(state.draft, false); focusStatement(st.id); } }, "Cancel")));
  li.querySelector(".st-forms").replaceChildren(form);
  box.focus();
}
function showToast(text, actionLabel, onAction) {
  const t = $("#toast");
  if (!t) return;
  t.replaceChildren(h("span", { text }), ...(actionLabel ? [h("button", { type: "button", class: "secondary small", id: "toast-action",
    onclick: onAction }, actionLabel)] : []));
  t.classList.add("shown");
}
function hideToast() {
  const t = $("#toast");
  if (t) { t.classList.remove("shown"); t.replaceChildren(); }
}
/* Remove hides the statement at once and offers Undo; the edit is sent when the undo time is
   up, or before anything else changes the draft (another removal, signing, leaving the page). */
function removeStatement(d, st) {
  flushRemoval();
  const next = nextStatementId(d, st.id, 1) || nextStatementId(d, st.id, -1);
  state.pendingRemoval = { draftId: d.id, st, timer: setTimeout(() => flushRemoval(), undoMs()) };
  renderDraft(state.draft, false);
  const short = st.text.length > 60 ? `${st.text.slice(0, 58)}…` : st.text;
  showToast(`Removed: “${short}”`, "Undo", () => undoRemoval());
  if (next) goToStatement(next);
}
function undoRemoval() {
  const p = state.pendingRemoval;
  if (!p) return;
  clearTimeout(p.timer);
  state.pendingRemoval = null;
  hideToast();
  if (state.draft && state.draft.id === p.draftId) { renderDraft(state.draft, false); goToStatement(p.st.id); }
  announce("Statement restored.");
}
async function flushRemoval() {
  const p = state.pendingRemoval;
  if (!p) return null;
  clearTimeout(p.timer);
  state.pendingRemoval = null;
  hideToast();
  const keep = document.activeElement && document.activeElement.closest && document.activeElement.closest("li.stmt");
  const keepId = keep && keep.id;
  if (state.draft && state.draft.id === p.draftId && $("#draft")) {
    const nd = await patchDraft(state.draft, [{ statement_id: p.st.id, remove: true }], () => "Statement removed.");
    if (keepId && $(`#${CSS.escape(keepId)}`)) $(`#${CSS.escape(keepId)}`).focus({ preventScroll: true });
    return nd;
  }
  return null;
}
function leaveRemoval() {
  // Leaving the draft: the removal is sent as it is, nothing is re-rendered.
  const p = state.pendingRemoval;
  clearTimeout(p.timer);
  state.pendingRemoval = null;
  hideToast();
  api("PATCH", `/v1/drafts/${p.draftId}`, { edits: [{ statement_id: p.st.id, remove: true }] }).catch(showError);
}
async function quickAcknowledge(d, st) {
  try {
    const nd = await api("POST", `/v1/drafts/${d.id}/acknowledge`, { statement_id: st.id, note: null });
    state.draft = nd; renderDraft(nd, false);
    announce(`Flag acknowledged. ${nd.open_flags.length} open flag${nd.open_flags.length === 1 ? "" : "s"} left.`);
    goToStatement(st.id);
  } catch (err) { showError(err); }
}
function ackStatement(d, st, li) {
  const id = `ack-${st.id}`;
  const note = h("textarea", { id, rows: 2, class: "ack-note" });
  const form = h("form", { class: "inline-form", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const nd = await api("POST", `/v1/drafts/${d.id}/acknowledge`, { statement_id: st.id, note: note.value.trim() || null });
      state.draft = nd; renderDraft(nd, false);
      announce(`Flag acknowledged. ${nd.open_flags.length} open flags left.`);
      focusStatement(st.id);
    } catch (err) { showError(err); }
  } },
    h("label", { for: id }, "Why is this statement acceptable as written? (note, optional)"), note,
    h("div", { class: "row" }, h("button", { type: "submit" }, "Acknowledge flag"),
      h("button", { type: "button", class: "secondary", onclick: () => { renderDraft(state.draft, false); focusStatement(st.id); } }, "Cancel")));
  li.querySelector(".st-forms").replaceChildren(form);
  note.focus();
}
async function cancelDraft(d, btn) {
  btn.disabled = true; btn.textContent = "Cancelling…";
  try {
    await api("POST", `/v1/drafts/${d.id}/cancel`);
    announce("Draft cancelled.");
  } catch (err) { showError(err); btn.disabled = false; btn.textContent = "Cancel draft"; }
}

/* ---------- keyboard shortcuts -------------------------------------------------------------- */
function showKeys() {
  let dlg = $("#keys-dialog");
  if (!dlg) {
    dlg = h("dialog", { id: "keys-dialog", "aria-labelledby": "keys-title" },
      h("h2", { id: "keys-title", text: "Keyboard shortcuts" }),
      h("p", { class: "hint", text: "They work anywhere on the draft except while you type in a field." }),
      h("dl", { class: "keys-list" }, KEYS.flatMap(([k, what]) => [h("dt", {}, h("kbd", { text: k })), h("dd", { text: what })])),
      h("button", { type: "button", onclick: () => dlg.close() }, "Close"));
    document.body.append(dlg);
  }
  if (!dlg.open) dlg.showModal();
}
function moveFlag(d, step) {
  const open = visibleSections(d).flatMap((s) => s.statements).filter(isOpenFlag);
  if (!open.length) { announce("No open flags."); return; }
  const cur = currentStatement();
  const ids = visibleSections(d).flatMap((s) => s.statements).map((s) => s.id);
  const at = cur ? ids.indexOf(cur.id.slice(3)) : (step > 0 ? -1 : ids.length);
  const order = step > 0 ? open : [...open].reverse();
  const next = order.find((st) => (step > 0 ? ids.indexOf(st.id) > at : ids.indexOf(st.id) < at)) || order[0];
  goToStatement(next.id);
}
function moveStatement(d, step) {
  const cur = currentStatement();
  const id = cur ? nextStatementId(d, cur.id.slice(3), step) : nextStatementId(d, null, 1);
  if (id) goToStatement(id);
}
document.addEventListener("keydown", (e) => {
  if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  // Never while typing, and not over an open dialog.
  if (t && t.closest && t.closest("input, textarea, select, [contenteditable=''], [contenteditable=true], dialog")) return;
  const d = state.draft;
  if (!d || !$("#draft") || d.status !== "draft" || state.abort) return;
  const cur = currentStatement();
  const st = cur && findStatement(d, cur.id.slice(3));
  const run = {
    n: () => moveFlag(d, 1), p: () => moveFlag(d, -1), j: () => moveStatement(d, 1), k: () => moveStatement(d, -1),
    a: () => st && (isOpenFlag(st) ? quickAcknowledge(d, st) : acceptStatement(d, st.id)),
    A: () => { const sec = cur && cur.closest(".dsec"); if (sec) acceptSection(d, Number(sec.dataset.section)); },
    e: () => st && editStatement(d, st, cur),
    x: () => st && removeStatement(d, st),
    o: () => {
      if (!st) return;
      const r = isOpenFlag(st) ? (st.results || []).find((q) => q.verdict !== "supported") : null;
      const cid = r ? flagSource(st, r) : (st.citations || [])[0];
      if (cid) openPanel(cid, st, cur, r); else announce("This statement cites no source.");
    },
    s: () => { const b = $("#sign"); if (b) b.click(); },
    "?": () => showKeys(),
  }[e.key];
  if (!run) return;
  e.preventDefault();
  run();
});

/* ---------- sign, reject, feedback ---------------------------------------------------------- */
async function startSign(d) {
  const open = visibleSections(state.draft).flatMap((s) => s.statements).filter(isOpenFlag);
  if (open.length) {
    // A disabled Sign leads to what stands in its way.
    announce(`Sign is off: ${open.length} open flag${open.length === 1 ? "" : "s"}. Showing the first.`);
    goToStatement(open[0].id);
    return;
  }
  if (state.pendingRemoval) await flushRemoval();
  signDialog(state.draft);
}
function signDialog(d) {
  const old = $("#sign-dialog");
  if (old) old.remove();
  const stmts = allStatements(d);
  const acked = stmts.filter((st) => st.flagged && st.acknowledged);
  const needReason = acked.filter((st) => st.verdict === "contradicted" && !(st.acknowledgement_note || "").trim());
  const where = state.config.writeback ? "files it in the chart (a DocumentReference and its Provenance)"
    : "keeps it here as signed (filing to the chart is not configured on this server)";
  const reason = needReason.length ? h("input", { type: "text", id: "sign-reason", autocomplete: "off", "aria-required": "true",
    "aria-describedby": "sign-reason-help" }) : null;
  const err = h("p", { class: "dialog-error", id: "sign-error", role: "alert" });
  const confirmBtn = h("button", { type: "submit", id: "sign-confirm" }, "Sign and file");
  const dlg = h("dialog", { id: "sign-dialog", class: "sign-dialog", "aria-labelledby": "sign-title" },
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      const why = reason ? reason.value.trim() : "";
      if (reason && !why) { err.textContent = "Give a reason: it is filed with each acknowledged contradiction."; reason.focus(); return; }
      confirmBtn.disabled = true;
      try {
        const body = needReason.length ? { acknowledge: needReason.map((st) => st.id), note: why } : {};
        const nd = await api("POST", `/v1/drafts/${d.id}/sign`, body);
        dlg.close(); dlg.remove();
        state.draft = nd; renderDraft(nd, false); announce("Signed.");
        focusHeading(); pollWriteback(nd.id);
      } catch (x) { err.textContent = (x.problem && `${x.problem.title}: ${x.problem.detail}`) || x.message; confirmBtn.disabled = false; }
    } },
      h("h2", { id: "sign-title", text: `Sign ${docLabel(d.doc_type).toLowerCase()}` }),
      h("p", { id: "sign-summary", text: `For ${(state.patient && state.patient.name) || d.patient_id}: ${stmts.length} statements in ` +
        `${d.sections.filter((s) => s.statements.length).length} sections. Signing ${where} under your name.` }),
      acked.length ? h("div", { id: "sign-acked" },
        h("h3", { text: `Filed with ${acked.length} acknowledged flag${acked.length === 1 ? "" : "s"}` }),
        h("ul", { class: "sign-flags" }, acked.map((st) => h("li", {},
          h("strong", { text: `${VERDICT_WORDS[st.verdict]}: ` }), h("span", { text: st.text }),
          (st.acknowledgement_note || "").trim() ? h("span", { class: "hint", text: ` — your note: ${st.acknowledgement_note}` }) : null)))) : null,
      reason ? h("div", {},
        h("label", { for: "sign-reason" }, `Why sign with ${needReason.length === 1 ? "this contradiction" : "these contradictions"}? (required)`),
        reason, h("p", { id: "sign-reason-help", class: "hint", text: "Filed as your note on each contradiction listed above that has none." })) : null,
      err,
      h("div", { class: "row" }, confirmBtn,
        h("button", { type: "button", class: "secondary", onclick: () => { dlg.close(); } }, "Go back"))));
  dlg.addEventListener("close", () => { const b = $("#sign"); if (b) b.focus(); setTimeout(() => dlg.remove(), 0); });
  document.body.append(dlg);
  dlg.showModal();
  (reason || confirmBtn).focus();
}
function openReject(d, rejectBtn) {
  const reason = h("textarea", { id: "reject-reason", rows: 2 });
  const rejectForm = h("form", { class: "inline-form", id: "reject-form", onsubmit: async (e) => {
    e.preventDefault();
    if (!reason.value.trim()) { showError("Say why you reject this draft."); reason.focus(); return; }
    try {
      const nd = await api("POST", `/v1/drafts/${d.id}/reject`, { reason: reason.value.trim() });
      state.draft = nd; renderDraft(nd, false); announce("Rejected."); focusHeading();
    } catch (err) { showError(err); }
  } }, h("label", { for: "reject-reason" }, "Reason for rejecting (required)"), reason,
    h("div", { class: "row" }, h("button", { type: "submit", class: "danger" }, "Reject draft"),
      h("button", { type: "button", class: "secondary", onclick: () => {
        $("#bar-forms").replaceChildren(); rejectBtn.setAttribute("aria-expanded", "false"); rejectBtn.focus();
      } }, "Cancel")));
  $("#bar-forms").replaceChildren(rejectForm);
  rejectBtn.setAttribute("aria-expanded", "true");
  reason.focus();
}
function renderActions(d) {
  const box = $("#actions");
  const parts = [];
  if (d.doc_type === "discharge-instructions" && ["draft", "signed"].includes(d.status)) {
    parts.push(h("p", {}, h("a", { href: `/ui/drafts/${d.id}/print`, "data-nav": true, id: "print-link", class: "button-like" }, "Patient print view")));
  }
  if (["draft", "signed", "rejected"].includes(d.status)) parts.push(feedbackForm(d));
  box.replaceChildren(...parts);
}
function feedbackForm(d) {
  let rating = null;
  // Visible words, not emoji: the accessible name matches what is seen, and no emoji font is needed.
  const up = h("button", { type: "button", class: "thumb", "aria-pressed": "false", id: "thumb-up" }, "▲ Thumbs up");
  const down = h("button", { type: "button", class: "thumb", "aria-pressed": "false", id: "thumb-down" }, "▼ Thumbs down");
  const pick = (r) => { rating = r; up.setAttribute("aria-pressed", String(r === "up")); down.setAttribute("aria-pressed", String(r === "down")); };
  up.addEventListener("click", () => pick("up"));
  down.addEventListener("click", () => pick("down"));
  const comment = h("textarea", { id: "feedback-comment", rows: 2 });
  const msg = h("p", { class: "hint", role: "status", id: "feedback-status" });
  return h("form", { class: "card feedback", onsubmit: async (e) => {
    e.preventDefault();
    if (!rating) { msg.textContent = "Pick thumbs up or down first."; return; }
    try {
      await api("POST", `/v1/drafts/${d.id}/feedback`, { rating, comment: comment.value.trim() || null });
      msg.textContent = "Thank you — feedback sent.";
      comment.value = "";
    } catch (err) { showError(err); }
  } }, h("h2", { text: "Was this draft useful?" }),
    h("div", { class: "row", role: "group", "aria-label": "Rating" }, up, down),
    h("label", { for: "feedback-comment" }, "Comment (optional)"), comment,
    h("button", { type: "submit", class: "secondary" }, "Send feedback"), msg);
}
function writebackBanner(d) {
  const wb = d.writeback;
  const text = !state.config.writeback ? "Filing to the chart is not configured on this server; the signed draft is kept here."
    : !wb ? "Queued for filing in the chart…"
    : wb.status === "sent" ? "Filed in the chart (DocumentReference and Provenance)."
    : wb.status === "failed" || wb.last_error ? `Not filed yet (attempt ${wb.attempts}): ${wb.last_error || "will retry"}. It will be retried.`
    : `Filing in the chart: ${wb.status}…`;
  return h("div", { class: `banner ${wb && wb.status === "sent" ? "ok" : "info"}`, id: "writeback-status", role: "status" },
    h("strong", { text: `Signed by ${(d.extras && d.extras.signed_by) || "you"}. ` }), text);
}
async function pollWriteback(id) {
  for (let i = 0; i < 30; i++) {
    const d = state.draft;
    if (!d || d.id !== id || !state.config.writeback || (d.writeback && d.writeback.status === "sent")) return;
    await new Promise((r) => setTimeout(r, 1000));
    if (!state.draft || state.draft.id !== id || !$("#writeback-status")) return;
    try {
      const nd = await api("GET", `/v1/drafts/${id}`);
      state.draft = nd;
      $("#writeback-status").replaceWith(writebackBanner(nd));
    } catch (err) { return; }
  }
}

/* ---------- the citation panel -------------------------------------------------------------- */
/* The passage of the source a statement (or a flag) is about: the source's sentences or lines are
   scored by the words and numbers they share with the statement and the flag's reason, and the
   best one is marked whole, so the reader sees the passage, not scattered words. */
function passageWords(s) {
  return new Set((s.toLowerCase().match(/[a-z]{4,}|\d+(?:\.\d+)?/g) || []));
}
function highlightInto(el, text, statement, reason) {
  const parts = text.split(/(?<=[.;:!?])\s+|\n+/).filter((p) => p.trim());
  const want = passageWords(`${statement} ${reason || ""}`);
  let best = null; let bestScore = 0;
  for (const p of parts) {
    let score = 0;
    for (const w of passageWords(p)) if (want.has(w)) score += /\d/.test(w) ? 2 : 1;
    if (score > bestScore) { best = p; bestScore = score; }
  }
  if (!best || parts.length < 2 && bestScore < 2) {
    // One short record (a medication order, a lab value): the whole text is the passage.
    if (best && bestScore) { el.append(h("mark", { class: "passage", id: "passage", text })); return 1; }
    el.textContent = text; return 0;
  }
  const at = text.indexOf(best);
  el.append(text.slice(0, at), h("mark", { class: "passage", id: "passage", text: best }), text.slice(at + best.length));
  return 1;
}
async function openPanel(cid, st, opener, flag) {
  const panel = $("#panel");
  state.panelReturn = opener;
  panel.hidden = false;
  document.body.classList.add("panel-open");
  panel.replaceChildren(h("p", { class: "loading", role: "status" }, "Loading the source…"));
  let data;
  try { data = await api("GET", `/v1/evidence/${cid.split("/").map(encodeURIComponent).join("/")}`); } catch (err) {
    panel.replaceChildren(panelClose(), h("p", { class: "error-box", text: `This source cannot be shown: ${err.message}` }));
    panel.querySelector("button").focus();
    return;
  }
  const ev = data.evidence;
  const textEl = h("blockquote", { class: "source-text", id: "source-text" });
  const marks = highlightInto(textEl, ev.text, st.text, flag ? flag.reason : "");
  const raw = h("pre", { id: "raw-json", hidden: true, tabindex: "0", "aria-label": "Raw FHIR JSON" },
    JSON.stringify(data.resource, null, 2));
  const rawBtn = h("button", { type: "button", class: "secondary", "aria-expanded": "false", "aria-controls": "raw-json",
    onclick: () => { raw.hidden = !raw.hidden; rawBtn.setAttribute("aria-expanded", String(!raw.hidden)); rawBtn.textContent = raw.hidden ? "Show raw FHIR JSON" : "Hide raw FHIR JSON"; } },
    "Show raw FHIR JSON");
  const when = ev.date ? `${fmtDate(ev.date)} (${howOld(ev.date)})` : "No date recorded";
  // replaceChildren is the DOM's: a null would be shown as the text "null", so filter.
  panel.replaceChildren(...[panelClose(),
    h("h2", { id: "panel-title", tabindex: "-1", text: ev.title }),
    flag ? h("div", { class: `panel-flag v-${flag.verdict}`, id: "panel-flag" },
      h("strong", { text: `${VERDICT_WORDS[flag.verdict] || flag.verdict}: ` }), h("span", { text: flag.reason || "" })) : null,
    h("dl", { class: "meta" },
      h("dt", { text: "Kind" }), h("dd", { text: ev.kind === "knowledge" ? "Knowledge base (patient education / policy)" : ev.resource_type }),
      h("dt", { text: "Date" }), h("dd", { id: "source-date", text: when }),
      h("dt", { text: "Source id" }), h("dd", {}, h("code", { text: ev.id }))),
    h("h3", { text: "What it says" }), textEl,
    marks ? h("p", { class: "hint", text: flag ? "Highlighted: the passage this flag is about." : "Highlighted: the passage this statement draws on." }) : null,
    h("h3", { text: "The statement" }), h("p", { class: "quoted", text: st.text }),
    data.resource ? h("div", {}, rawBtn, raw) : h("p", { class: "hint", text: "No FHIR resource: this is a knowledge-base passage." })].filter(Boolean));
  panel.setAttribute("aria-labelledby", "panel-title");
  $("#panel-title").focus();
  const mark = $("#passage");
  if (mark) mark.scrollIntoView({ block: "nearest" });
}
function panelClose() {
  return h("button", { type: "button", class: "secondary close", id: "panel-close", onclick: () => closePanel(true) }, "Close source ✕");
}
function closePanel(restore) {
  const panel = $("#panel");
  if (!panel || panel.hidden) return;
  panel.hidden = true;
  document.body.classList.remove("panel-open");
  if (restore && state.panelReturn && document.contains(state.panelReturn)) state.panelReturn.focus();
  state.panelReturn = null;
}
document.addEventListener("keydown", (e) => { if (e.key === "Escape") closePanel(true); });

/* ---------- patient-facing print view ------------------------------------------------------- */
async function viewPrint(draftId) {
  const d = await api("GET", `/v1/drafts/${encodeURIComponent(draftId)}`);
  const p = await api("GET", `/v1/patients/${encodeURIComponent(d.patient_id)}`);
  document.title = `Discharge instructions · ${p.name || ""}`;
  document.body.classList.add("print-mode");
  const grades = (d.checks && d.checks.readability) || [];
  const worst = grades.reduce((m, g) => Math.max(m, g.grade || 0), 0);
  const target = grades.length ? grades[0].target : state.config.reading_grade_target;
  const clinicianBar = h("div", { class: "clinician-only no-print", role: "region", "aria-label": "For the clinician" },
    h("p", {}, h("strong", { text: "For you only (not printed): " }),
      grades.length ? `reading grade up to ${worst} (target ${target}).` : "no reading grade was measured.",
      d.status !== "signed" ? " This draft is not signed yet." : "",
      d.open_flags.length ? ` ${d.open_flags.length} flagged statements are still open.` : ""),
    h("div", { class: "row" },
      h("button", { type: "button", id: "print-now", onclick: () => window.print() }, "Print"),
      h("a", { href: `/ui/drafts/${d.id}`, "data-nav": true, class: "button-like secondary" }, "Back to the draft")));
  const doc = h("article", { class: "patient-doc", "aria-labelledby": "pd-title" },
    h("h1", { id: "pd-title", text: d.doc_type === "discharge-instructions" ? "Your discharge instructions" : docLabel(d.doc_type) }),
    h("p", { class: "for", text: `For ${p.name || "you"}` }),
    d.sections.filter((s) => s.statements.length).map((s) => h("section", {},
      h("h2", { text: s.title }),
      h("ul", {}, s.statements.map((st) => h("li", { text: st.text }))))));
  setMain(clinicianBar, doc);
  focusHeading();
}

document.addEventListener("DOMContentLoaded", route);
