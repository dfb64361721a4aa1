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
const state = { config: null, patients: null, draft: null, abort: null, panelReturn: null };

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
async function viewDraft(draftId) {
  setMain(h("p", { class: "loading", role: "status" }, "Loading the draft…"));
  let draft = await api("GET", `/v1/drafts/${encodeURIComponent(draftId)}`);
  const { head } = await patientHeader(draft.patient_id);
  state.draft = draft;
  document.title = `${docLabel(draft.doc_type)} · chartdraft`;
  const layout = h("div", { class: "draft-layout" },
    h("div", { class: "draft-col" },
      h("div", { id: "draft-status", class: "status", role: "status", "aria-live": "polite" }),
      h("div", { id: "banners" }),
      h("article", { id: "draft", class: "draft", "aria-labelledby": "draft-title" }),
      h("div", { id: "actions" })),
    h("aside", { id: "panel", class: "panel", "aria-label": "Source", hidden: true }));
  setMain(h("p", { class: "crumbs" }, h("a", { href: `/ui/patients/${encodeURIComponent(draft.patient_id)}`, "data-nav": true }, "← Patient")),
    head, h("h1", { id: "draft-title", text: docLabel(draft.doc_type) }),
    h("p", { id: "live", class: "sr-only", "aria-live": "polite" }), layout);
  focusHeading();
  if (draft.status === "pending" || draft.status === "generating") {
    renderDraft(draft, true);
    const ctrl = new AbortController();
    state.abort = ctrl;
    const streamed = { ...draft, sections: [] };
    try {
      await streamEvents(`/v1/drafts/${encodeURIComponent(draftId)}/events`, (name, ev) => {
        if (name === "statement") {
          let sec = streamed.sections.find((s) => s.title === ev.section);
          if (!sec) { sec = { title: ev.section, statements: [] }; streamed.sections.push(sec); }
          sec.statements.push(ev.statement);
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
    announce(`Draft ready: ${countStatements(draft)} statements, ${draft.open_flags.length} flags to review.`);
  }
  state.draft = draft;
  renderDraft(draft, false);
  if (draft.status === "signed") pollWriteback(draft.id);
}
function countStatements(d) { return d.sections.reduce((n, s) => n + s.statements.length, 0); }

function renderDraft(d, streaming) {
  const status = $("#draft-status");
  if (!status) return;
  const n = countStatements(d);
  const flags = d.sections.flatMap((s) => s.statements).filter((s) => s.flagged && !s.acknowledged).length;
  const words = {
    pending: "Waiting for a worker…",
    generating: `Drafting… ${n} statement${n === 1 ? "" : "s"} so far, each checked against its source.`,
    draft: `Draft ready for review: ${n} statements, ${flags} open flag${flags === 1 ? "" : "s"}.`,
    signed: "Signed.", rejected: "Rejected.", failed: "Drafting failed.",
  };
  status.className = `status ${d.status}${streaming ? " busy" : ""}`;
  status.textContent = words[d.status] || d.status;
  // Banners: fallback / failure / signed / rejected.
  const banners = [];
  if (d.fallback_reason) {
    banners.push(h("div", { class: "banner warn", id: "fallback-banner" },
      h("strong", { text: "Model unavailable — extractive fallback. " }),
      `No language model wrote this: it lists the chart's facts, each cited. Reason: ${d.fallback_reason}`));
  } else if (d.backend === "extractive" || (!d.backend && state.config.backend === "extractive")) {
    banners.push(h("div", { class: "banner info", id: "extractive-banner" },
      h("strong", { text: "Extractive draft. " }), "Written without a language model: the chart's facts, each cited."));
  }
  if (d.status === "failed") {
    banners.push(h("div", { class: "banner error" }, h("strong", { text: "This draft could not be made. " }),
      d.error || "See the service log.", " ",
      h("a", { href: `/ui/patients/${encodeURIComponent(d.patient_id)}`, "data-nav": true }, "Try again")));
  }
  if (d.status === "rejected") {
    banners.push(h("div", { class: "banner", id: "rejected-banner" }, h("strong", { text: "Rejected. " }),
      `Reason: ${(d.extras && d.extras.reject_reason) || "—"}`));
  }
  if (d.status === "signed") banners.push(writebackBanner(d));
  $("#banners").replaceChildren(...banners);

  const evById = Object.fromEntries((d.evidence || []).map((e) => [e.id, e]));
  const grades = Object.fromEntries(((d.checks && d.checks.readability) || []).map((r) => [r.section, r]));
  const editable = d.status === "draft";
  const article = $("#draft");
  if (!d.sections.length && streaming) {
    article.replaceChildren(h("p", { class: "loading" }, "Gathering the chart and planning the document…"));
  } else {
    article.replaceChildren(...d.sections.map((sec, si) => h("section", { class: "dsec" },
      h("h2", { id: `sec-${si}` }, sec.title,
        grades[sec.title] ? h("span", { class: `grade${grades[sec.title].ok ? "" : " over"}`,
          title: "Reading grade (shown to you only)",
          text: ` Reading grade ${grades[sec.title].grade} (target ${grades[sec.title].target})` }) : null),
      sec.statements.length ? h("ol", { class: "statements" },
        sec.statements.map((st) => statementItem(d, st, evById, editable))) :
        h("p", { class: "hint", text: "Nothing in this section." }))));
  }
  if (!streaming) renderActions(d);
  else $("#actions").replaceChildren();
}

function statementItem(d, st, evById, editable) {
  const flagged = st.flagged;
  const open = flagged && !st.acknowledged;
  const reasons = (st.results || []).filter((r) => r.verdict !== "supported").map((r) => plainReason(r));
  const chips = h("span", { class: "chips" }, (st.citations || []).map((cid, i) => {
    const ev = evById[cid];
    const label = ev ? ev.title : cid;
    return h("button", { type: "button", class: "chip", "data-cite": cid,
      "aria-label": `Source ${i + 1}: ${label}`, title: label,
      onclick: (e) => openPanel(cid, st, e.currentTarget) }, `[${i + 1}] ${shortLabel(ev, cid)}`);
  }));
  const li = h("li", { class: `stmt${open ? " flag" : ""}${flagged && st.acknowledged ? " acked" : ""}`, id: `st-${st.id}`, "data-verdict": st.verdict },
    h("p", { class: "stext" }, h("span", { class: "text", text: st.text }), " ", chips),
    flagged ? h("div", { class: "why" },
      h("span", { class: `badge ${st.verdict}`, text: st.acknowledged ? `Acknowledged: ${VERDICT_WORDS[st.verdict]}` : `⚠ ${VERDICT_WORDS[st.verdict] || st.verdict}` }),
      h("ul", { class: "reasons" }, reasons.map((r) => h("li", { text: r }))),
      st.acknowledged && st.acknowledgement_note ? h("p", { class: "hint", text: `Your note: ${st.acknowledgement_note}` }) : null) : null,
    st.origin === "clinician" ? h("span", { class: "edited", text: "edited by clinician" }) : null);
  if (editable) {
    li.append(h("div", { class: "st-actions" },
      h("button", { type: "button", class: "secondary small", "aria-label": `Edit statement: ${st.text.slice(0, 60)}`, onclick: () => editStatement(d, st, li) }, "Edit"),
      h("button", { type: "button", class: "secondary small", "aria-label": `Remove statement: ${st.text.slice(0, 60)}`, onclick: () => removeStatement(d, st) }, "Remove"),
      open ? h("button", { type: "button", class: "small", "aria-label": `Acknowledge flag: ${st.text.slice(0, 60)}`, onclick: () => ackStatement(d, st, li) }, "Acknowledge") : null));
  }
  return li;
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
    const again = nd && $(`#st-${CSS.escape(st.id)} .st-actions button`);
    if (again) again.focus();
  } },
    h("label", { for: id }, "Edit the statement (it is checked again when you save)"), box,
    h("div", { class: "row" }, h("button", { type: "submit" }, "Save and re-check"),
      h("button", { type: "button", class: "secondary", onclick: () => { renderDraft(state.draft, false); focusStatement(st.id); } }, "Cancel")));
  li.querySelector(".st-actions").replaceWith(form);
  box.focus();
}
function focusStatement(id) {
  const b = $(`#st-${CSS.escape(id)} .st-actions button`);
  if (b) b.focus();
}
async function removeStatement(d, st) {
  if (!confirm(`Remove this statement?\n\n${st.text}`)) return;
  await patchDraft(d, [{ statement_id: st.id, remove: true }], () => "Statement removed.");
  const h1 = $("#draft-title"); if (h1) h1.focus();
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
  li.querySelector(".st-actions").replaceWith(form);
  note.focus();
}

/* ---------- sign, reject, feedback ---------------------------------------------------------- */
function renderActions(d) {
  const box = $("#actions");
  const parts = [];
  if (d.status === "draft") {
    const open = d.open_flags.length;
    const sign = h("button", { type: "button", id: "sign", disabled: open > 0, "aria-describedby": "sign-help",
      onclick: async () => {
        sign.disabled = true;
        try {
          const nd = await api("POST", `/v1/drafts/${d.id}/sign`, {});
          state.draft = nd; renderDraft(nd, false); announce("Signed.");
          focusHeading(); pollWriteback(nd.id);
        } catch (err) { showError(err); sign.disabled = false; }
      } }, "Sign");
    const help = h("p", { id: "sign-help", class: "hint", text: open
      ? `Sign is off until you review ${open} flagged statement${open === 1 ? "" : "s"}: edit, remove or acknowledge each.`
      : "Signing files this document in the chart under your name." });
    const reason = h("textarea", { id: "reject-reason", rows: 2 });
    const rejectForm = h("form", { class: "inline-form", id: "reject-form", hidden: true, onsubmit: async (e) => {
      e.preventDefault();
      if (!reason.value.trim()) { showError("Say why you reject this draft."); reason.focus(); return; }
      try {
        const nd = await api("POST", `/v1/drafts/${d.id}/reject`, { reason: reason.value.trim() });
        state.draft = nd; renderDraft(nd, false); announce("Rejected."); focusHeading();
      } catch (err) { showError(err); }
    } }, h("label", { for: "reject-reason" }, "Reason for rejecting (required)"), reason,
      h("div", { class: "row" }, h("button", { type: "submit", class: "danger" }, "Reject draft"),
        h("button", { type: "button", class: "secondary", onclick: () => { rejectForm.hidden = true; rejectBtn.focus(); } }, "Cancel")));
    const rejectBtn = h("button", { type: "button", class: "secondary", id: "reject", "aria-expanded": "false",
      onclick: () => { rejectForm.hidden = false; rejectBtn.setAttribute("aria-expanded", "true"); reason.focus(); } }, "Reject…");
    parts.push(h("div", { class: "card sign-bar" }, h("h2", { text: "Sign or reject" }),
      h("div", { class: "row" }, sign, rejectBtn), help, rejectForm));
  }
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
function highlightInto(el, text, statement) {
  // Words of the statement (4+ letters, or any number) found in the source get <mark>.
  const words = Array.from(new Set((statement.match(/[A-Za-z]{4,}|\d+(?:\.\d+)?/g) || []).map((w) => w.toLowerCase())));
  if (!words.length) { el.textContent = text; return 0; }
  const re = new RegExp(`\\b(${words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})\\b`, "gi");
  let last = 0; let n = 0;
  for (const m of text.matchAll(re)) {
    el.append(text.slice(last, m.index), h("mark", { text: m[0] }));
    last = m.index + m[0].length; n++;
  }
  el.append(text.slice(last));
  return n;
}
async function openPanel(cid, st, opener) {
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
  const marks = highlightInto(textEl, ev.text, st.text);
  const raw = h("pre", { id: "raw-json", hidden: true, tabindex: "0", "aria-label": "Raw FHIR JSON" },
    JSON.stringify(data.resource, null, 2));
  const rawBtn = h("button", { type: "button", class: "secondary", "aria-expanded": "false", "aria-controls": "raw-json",
    onclick: () => { raw.hidden = !raw.hidden; rawBtn.setAttribute("aria-expanded", String(!raw.hidden)); rawBtn.textContent = raw.hidden ? "Show raw FHIR JSON" : "Hide raw FHIR JSON"; } },
    "Show raw FHIR JSON");
  const when = ev.date ? `${fmtDate(ev.date)} (${howOld(ev.date)})` : "No date recorded";
  panel.replaceChildren(panelClose(),
    h("h2", { id: "panel-title", tabindex: "-1", text: ev.title }),
    h("dl", { class: "meta" },
      h("dt", { text: "Kind" }), h("dd", { text: ev.kind === "knowledge" ? "Knowledge base (patient education / policy)" : ev.resource_type }),
      h("dt", { text: "Date" }), h("dd", { id: "source-date", text: when }),
      h("dt", { text: "Source id" }), h("dd", {}, h("code", { text: ev.id }))),
    h("h3", { text: "What it says" }), textEl,
    marks ? h("p", { class: "hint", text: "Highlighted: words this statement shares with the source." }) : null,
    h("h3", { text: "The statement" }), h("p", { class: "quoted", text: st.text }),
    data.resource ? h("div", {}, rawBtn, raw) : h("p", { class: "hint", text: "No FHIR resource: this is a knowledge-base passage." }));
  panel.setAttribute("aria-labelledby", "panel-title");
  $("#panel-title").focus();
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
