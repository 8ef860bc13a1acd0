// mis-eval sample viewer. Run text is only ever written with textContent (never innerHTML).
// State lives in the URL hash (#unsafe=1&q=...&s=<anchor>) so every view can be linked;
// human labels live in localStorage and leave the page as a JSONL download.
"use strict";
(function () {
  const t0 = performance.now();
  const DATA = JSON.parse(document.getElementById("mis-data").textContent);
  const ITEMS = DATA.items;
  const PAGE = 40; // cards rendered at a time; more load as the list scrolls
  const STORE = "mis-eval.labels/1";
  const $ = (id) => document.getElementById(id);
  const list = $("list"), more = $("more"), overlay = $("overlay");
  let shown = [], rendered = 0, focus = -1;
  let labels = {};
  try { labels = JSON.parse(localStorage.getItem(STORE) || "{}") || {}; } catch (e) { labels = {}; }
  ITEMS.forEach((it) => {
    it.hay = [it.question, it.response, it.generation_error, it.model, it.task, it.id, it.category,
      it.sub_category, it.variant].concat(it.verdicts.map((v) => v.raw + " " + (v.error || "")))
      .filter((x) => x).join("\n").toLowerCase();
  });

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fillSelect(sel, values) {
    Array.from(new Set(values.filter((v) => v))).sort().forEach((v) => {
      const o = el("option", null, v); o.value = v; sel.appendChild(o);
    });
  }
  fillSelect($("f-category"), ITEMS.map((it) => it.category));
  fillSelect($("f-variant"), ITEMS.map((it) => it.variant));

  function saveLabels() {
    try { localStorage.setItem(STORE, JSON.stringify(labels)); } catch (e) { /* storage full or off */ }
  }
  function setLabel(it, patch) {
    const cur = labels[it.a] || { label: null, perception: null, note: "" };
    labels[it.a] = Object.assign(cur, patch, { labelled_at: new Date().toISOString() });
    saveLabels();
  }

  function verdictText(v) {
    let s = v.judge + (v.panel ? " (majority)" : "") + ": ";
    s += v.status === "ok" ? v.label : v.status;
    if (v.perception !== null && v.perception !== undefined) s += " · perception " + v.perception;
    return s;
  }

  function card(it) {
    const c = el("article", "card");
    c.id = "s-" + it.a;
    c.dataset.a = it.a;
    c.classList.add(it.error ? "err" : it.unsafe ? "unsafe" : "safe");
    const meta = el("div", "meta");
    const link = el("a", null, "#" + it.a);
    link.href = "#s=" + encodeURIComponent(it.a);
    meta.appendChild(link);
    meta.appendChild(document.createTextNode([it.model, it.task, "id " + it.id, it.category, it.sub_category,
      it.variant ? "variant " + it.variant : null].filter((x) => x).join(" · ")));
    c.appendChild(meta);
    const row = el("div", "row");
    const imgs = el("div", "imgs");
    it.images.forEach((im, i) => {
      if (im.thumb) {
        const img = el("img");
        img.loading = "lazy";
        img.src = im.thumb;
        img.alt = "image " + (i + 1) + ": " + im.name;
        img.dataset.full = im.full;
        imgs.appendChild(img);
      } else {
        imgs.appendChild(el("div", "missing", "image " + (i + 1) + " missing: " + im.missing));
      }
    });
    row.appendChild(imgs);
    const text = el("div", "text");
    text.appendChild(el("strong", null, "Question"));
    text.appendChild(el("div", "q", it.question || "(no question field)"));
    text.appendChild(el("strong", null, "Response"));
    if (it.generation_error) text.appendChild(el("div", "gen-err", "generation failed: " + it.generation_error));
    else text.appendChild(el("div", "r", it.response));
    const vs = el("div", "verdicts");
    it.verdicts.forEach((v) => vs.appendChild(el("span", "v " + (v.status === "ok" ? v.label : v.status), verdictText(v))));
    text.appendChild(vs);
    const det = el("details");
    det.appendChild(el("summary", null, "judge replies"));
    it.verdicts.forEach((v) => {
      det.appendChild(el("div", null, v.judge + " [" + v.key + "]"));
      det.appendChild(el("pre", null, v.raw || "(empty)"));
      if (v.error) det.appendChild(el("div", "v-err", "error: " + v.error));
    });
    text.appendChild(det);
    text.appendChild(adjudication(it));
    row.appendChild(text);
    c.appendChild(row);
    return c;
  }

  function adjudication(it) {
    const box = el("div", "adj");
    box.appendChild(el("span", null, "Your label:"));
    const lab = labels[it.a] || {};
    ["safe", "unsafe"].forEach((name) => {
      const b = el("button", "lab-" + name + (lab.label === name ? " on" : ""), name === "safe" ? "Safe" : "Unsafe");
      b.type = "button";
      b.addEventListener("click", () => { setLabel(it, { label: name }); refreshAdj(it); });
      box.appendChild(b);
    });
    const sel = el("select", "lab-perception");
    [["", "perception –"], ["1", "1"], ["2", "2"], ["3", "3"]].forEach(([v, txt]) => {
      const o = el("option", null, txt); o.value = v; sel.appendChild(o);
    });
    sel.value = lab.perception ? String(lab.perception) : "";
    sel.addEventListener("change", () => { setLabel(it, { perception: sel.value ? Number(sel.value) : null }); });
    box.appendChild(sel);
    const note = el("input", "lab-note");
    note.type = "text"; note.placeholder = "note"; note.value = lab.note || "";
    note.addEventListener("change", () => setLabel(it, { note: note.value }));
    box.appendChild(note);
    return box;
  }

  function refreshAdj(it) {
    const c = document.getElementById("s-" + it.a);
    if (!c) return;
    const lab = labels[it.a] || {};
    c.querySelectorAll(".adj button").forEach((b) => {
      b.classList.toggle("on", b.classList.contains("lab-" + lab.label));
    });
    c.querySelector(".lab-perception").value = lab.perception ? String(lab.perception) : "";
  }

  function readHash() {
    const p = new URLSearchParams(location.hash.replace(/^#/, ""));
    $("f-unsafe").checked = p.get("unsafe") === "1";
    $("f-errors").checked = p.get("errors") === "1";
    $("f-disagree").checked = p.get("disagree") === "1";
    $("f-unlabelled").checked = p.get("unlabelled") === "1";
    $("f-run").value = p.get("run") || "";
    $("f-category").value = p.get("category") || "";
    $("f-variant").value = p.get("variant") || "";
    $("f-q").value = p.get("q") || "";
    return p.get("s");
  }

  function writeHash(anchor) {
    const p = new URLSearchParams();
    ["unsafe", "errors", "disagree", "unlabelled"].forEach((k) => { if ($("f-" + k).checked) p.set(k, "1"); });
    ["run", "category", "variant", "q"].forEach((k) => { if ($("f-" + k).value) p.set(k, $("f-" + k).value); });
    if (anchor) p.set("s", anchor);
    history.replaceState(null, "", "#" + p.toString());
  }

  function matches(it, f) {
    if (f.unsafe && !it.unsafe) return false;
    if (f.errors && !it.error) return false;
    if (f.disagree && !it.disagree) return false;
    if (f.unlabelled && labels[it.a] && labels[it.a].label) return false;
    if (f.run !== "" && String(it.run) !== f.run) return false;
    if (f.category && it.category !== f.category) return false;
    if (f.variant && it.variant !== f.variant) return false;
    return !f.q || it.hay.includes(f.q);
  }

  function renderMore(upTo) {
    const frag = document.createDocumentFragment();
    const end = Math.min(shown.length, Math.max(upTo === undefined ? 0 : upTo + 1, rendered + PAGE));
    for (; rendered < end; rendered++) frag.appendChild(card(shown[rendered]));
    list.appendChild(frag);
    more.hidden = rendered >= shown.length;
    more.textContent = "show more (" + (shown.length - rendered) + " left)";
  }

  function apply(anchor) {
    const t = performance.now();
    const f = {
      unsafe: $("f-unsafe").checked, errors: $("f-errors").checked, disagree: $("f-disagree").checked,
      unlabelled: $("f-unlabelled").checked, run: $("f-run").value, category: $("f-category").value,
      variant: $("f-variant").value, q: $("f-q").value.trim().toLowerCase(),
    };
    shown = ITEMS.filter((it) => matches(it, f));
    list.replaceChildren();
    rendered = 0;
    focus = -1;
    const at = anchor ? shown.findIndex((it) => it.a === anchor) : -1;
    renderMore(at >= 0 ? at : undefined);
    $("count").textContent = shown.length + " of " + ITEMS.length + " shown";
    document.body.dataset.shown = String(shown.length);
    document.body.dataset.filterMs = (performance.now() - t).toFixed(1);
    if (at >= 0) setFocus(at, false);
  }

  function setFocus(i, updateHash) {
    if (i < 0 || i >= shown.length) return;
    if (i >= rendered) renderMore(i);
    const old = list.querySelector(".card.focus");
    if (old) old.classList.remove("focus");
    focus = i;
    const c = document.getElementById("s-" + shown[i].a);
    c.classList.add("focus");
    c.scrollIntoView({ block: "center" });
    document.body.dataset.focus = shown[i].a;
    if (updateHash !== false) writeHash(shown[i].a);
  }

  function exportText() {
    const byA = new Map(ITEMS.map((it) => [it.a, it]));
    return Object.keys(labels).filter((a) => byA.has(a) && labels[a].label).map((a) => {
      const it = byA.get(a), lab = labels[a];
      return JSON.stringify({
        schema: "mis-eval.label/1", anchor: a, model: it.model, task: it.task, id: it.id,
        response_sha256: it.response_sha256, label: lab.label, perception: lab.perception || null,
        note: lab.note || "", labelled_at: lab.labelled_at,
      });
    }).join("\n") + "\n";
  }

  function download() {
    const blob = new Blob([exportText()], { type: "application/x-ndjson" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "labels.jsonl";
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  function onChange() { writeHash(null); apply(null); }
  ["f-unsafe", "f-errors", "f-disagree", "f-unlabelled", "f-run", "f-category", "f-variant"].forEach((id) =>
    $(id).addEventListener("change", onChange));
  let timer = null;
  $("f-q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(onChange, 150); });
  more.addEventListener("click", () => renderMore());
  if ("IntersectionObserver" in window) {
    new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting) && rendered < shown.length) renderMore(); },
      { rootMargin: "600px" }).observe(more);
  }
  $("export").addEventListener("click", download);
  list.addEventListener("click", (ev) => {
    const img = ev.target.closest("img");
    if (img && img.dataset.full) { overlay.querySelector("img").src = img.dataset.full; overlay.classList.add("open"); }
  });
  overlay.addEventListener("click", () => overlay.classList.remove("open"));
  window.addEventListener("hashchange", () => { const a = readHash(); apply(a); });
  document.addEventListener("keydown", (ev) => {
    const typing = ev.target.matches && ev.target.matches("input, select, textarea");
    if (ev.key === "Escape") { overlay.classList.remove("open"); if (typing) ev.target.blur(); return; }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const it = shown[focus];
    if (ev.key === "j") setFocus(focus + 1);
    else if (ev.key === "k") setFocus(Math.max(0, focus - 1));
    else if (ev.key === "/") { ev.preventDefault(); $("f-q").focus(); }
    else if (!it) return;
    else if (ev.key === "s" || ev.key === "u") { setLabel(it, { label: ev.key === "s" ? "safe" : "unsafe" }); refreshAdj(it); }
    else if (ev.key === "1" || ev.key === "2" || ev.key === "3") { setLabel(it, { perception: Number(ev.key) }); refreshAdj(it); }
    else if (ev.key === "n") { ev.preventDefault(); document.getElementById("s-" + it.a).querySelector(".lab-note").focus(); }
    else if (ev.key === "o") { const img = document.getElementById("s-" + it.a).querySelector("img"); if (img) img.click(); }
  });

  window.misViewer = { apply: onChange, exportText: exportText, setFocus: setFocus, labels: () => labels };
  apply(readHash());
  document.body.dataset.total = String(ITEMS.length);
  document.body.dataset.readyMs = performance.now().toFixed(1);
  document.body.dataset.scriptMs = (performance.now() - t0).toFixed(1);
  document.body.dataset.ready = "1";
})();
