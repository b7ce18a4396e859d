// The graph explorer's script: replays the recorded backward sweep over the drawings.
//
// Everything it shows comes from the JSON block written by minigrad/viz/explorer.py:
//   tensors[i]  the i-th tensor of the topological order (name, scope, op, shape, value
//               summary; "done": the sweep entry at which its gradient was complete, and
//               its summary; leaves instead have "arrivals", one per contribution)
//   sweep[k]    the k-th op whose backward the engine ran: the tensor it made, the norm
//               of that tensor's gradient, the inputs it sent a contribution to
//   views[v]    how drawing v names the node of each tensor and of each op, and the ids
//               of its edges that carry one tensor ([edge id, tensor index])
// Timeline position p (0..N) is the state after the first p entries ran: 0 is before
// the sweep, p >= 1 highlights entry p - 1.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("explorer-data").textContent);
  const T = D.tensors;
  const N = D.sweep.length;
  const $ = (id) => document.getElementById(id);
  const num = (x) => (typeof x === "string" ? { nan: NaN, inf: Infinity, "-inf": -Infinity }[x] : x);
  const fmt = (x) => {
    x = num(x);
    if (x === null || x === undefined) return "\u2013";
    if (!isFinite(x)) return String(x);
    if (x === 0) return "0";
    const a = Math.abs(x);
    return a >= 1e-3 && a < 1e5 ? String(Number(x.toPrecision(4))) : x.toExponential(3);
  };
  const tensorName = (i) => {
    const t = T[i];
    return t.name !== null ? t.name : t.op !== null ? t.op : "(unnamed " + t.role + ")";
  };
  const where = (i) => (T[i].scope ? T[i].scope : "top level");

  // -- gradients over time --------------------------------------------------------------
  // The summary of tensor i's gradient once entry k has run, or null if it has none yet;
  // its "fill" is the colour of its norm on the drawings' scale (and "dark": white text),
  // worked out once in Python (minigrad/viz/style.py), as for every other picture.
  // A non-leaf's gradient is complete when its op's backward runs; a leaf holds the sum
  // of the contributions it has received so far.
  function gradAt(i, k) {
    const t = T[i];
    if (!t.leaf) return t.done !== null && t.done <= k ? t.grad : null;
    let found = null;
    for (const a of t.arrivals) {
      if (a[0] > k) break;
      found = a[3];
    }
    return found;
  }

  // -- the drawings ---------------------------------------------------------------------
  const views = {};
  for (const div of document.querySelectorAll(".drawing")) {
    const name = div.dataset.view;
    const svg = div.querySelector("svg");
    const map = D.views[name];
    const nodes = new Map();
    for (const g of svg.querySelectorAll("g.node")) {
      nodes.set(g.querySelector("title").textContent, g);
    }
    const edges = [];
    for (const g of svg.querySelectorAll("g.edge")) {
      const [tail, head] = g.querySelector("title").textContent.split("->");
      edges.push({ g, tail, head });
    }
    const members = new Map(); // node id -> indices of the tensors it stands for
    map.tensor.forEach((id, i) => {
      if (id === null || !nodes.has(id)) return;
      if (!members.has(id)) members.set(id, []);
      members.get(id).push(i);
    });
    const ofNode = new Map(); // node id -> the tensor a click on it selects
    members.forEach((list, id) => ofNode.set(id, list[list.length - 1]));
    map.op.forEach((id, i) => {
      if (id !== null && !ofNode.has(id)) ofNode.set(id, i);
    });
    // Edges that carry a tensor (a state from one step to the next) show its gradient;
    // the drawing gives each an id (prefixed with the view's name in the page).
    const carriers = [];
    for (const [id, i] of map.edges) {
      const e = edges.find((x) => x.g.id === name + "-" + id);
      if (e) carriers.push({ g: e.g, i, stroke: e.g.querySelector("path").getAttribute("stroke") });
    }
    const box = svg.viewBox.baseVal;
    views[name] = { name, div, svg, map, nodes, edges, members, ofNode, carriers,
      width: box.width * 4 / 3, height: box.height * 4 / 3, zoom: null };
  }
  const viewNames = Object.keys(views);

  const state = { pos: 0, view: viewNames.includes(D.start_view) ? D.start_view : viewNames[0], playing: false, timer: null, selected: null };

  // -- drawing the state of one timeline position ----------------------------------------
  function shapeOf(g) {
    return g.querySelector("polygon, path, ellipse");
  }

  function paint(view, pos) {
    const k = pos - 1;
    const entry = k >= 0 ? D.sweep[k] : null;
    for (const [id, list] of view.members) {
      const g = view.nodes.get(id);
      let largest = null; // the gradient with the largest norm (a NaN wins: it must show)
      for (const i of list) {
        const grad = gradAt(i, k);
        if (grad !== null && (largest === null || num(grad.norm) > num(largest.norm) ||
            isNaN(num(grad.norm)))) largest = grad;
      }
      shapeOf(g).setAttribute("fill", largest === null ? "#ffffff" : largest.fill);
      for (const text of g.querySelectorAll("text")) {
        text.setAttribute("fill", largest !== null && largest.dark ? "#ffffff" : "#000000");
      }
      g.classList.toggle("has-grad", largest !== null);
    }
    for (const c of view.carriers) {
      const grad = gradAt(c.i, k);
      const colour = grad === null ? c.stroke : grad.fill;
      for (const part of c.g.querySelectorAll("path, polygon")) {
        part.setAttribute("stroke", colour);
        if (part.tagName === "polygon") part.setAttribute("fill", colour);
      }
      c.g.querySelector("path").setAttribute("stroke-width", grad === null ? "1" : "3.5");
      c.g.classList.toggle("has-grad", grad !== null);
    }
    for (const g of view.nodes.values()) g.classList.remove("current", "arriving", "selected");
    for (const e of view.edges) e.g.classList.remove("flow");
    if (entry !== null) {
      const current = view.map.op[entry.tensor] || view.map.tensor[entry.tensor];
      const out = view.map.tensor[entry.tensor];
      if (view.nodes.has(current)) view.nodes.get(current).classList.add("current");
      const tails = new Set(entry.inputs.map(([i]) => view.map.tensor[i]));
      const sent = new Set(entry.inputs.map(([i]) => i));
      const carried = new Map(view.carriers.map((c) => [c.g, c.i]));
      for (const e of view.edges) {
        // An edge that carries one tensor flows only when that tensor receives gradient.
        const flows = carried.has(e.g) ? sent.has(carried.get(e.g)) && e.head === current
          : (e.head === current && tails.has(e.tail)) || (e.tail === current && e.head === out);
        if (flows) e.g.classList.add("flow");
      }
      for (const [i] of entry.inputs) {
        const id = view.map.tensor[i];
        if (T[i].leaf && view.nodes.has(id) && id !== current) view.nodes.get(id).classList.add("arriving");
      }
    }
    if (state.selected !== null) {
      const id = view.map.tensor[state.selected];
      if (view.nodes.has(id)) view.nodes.get(id).classList.add("selected");
    }
  }

  // -- zoom and follow ------------------------------------------------------------------
  const graphBox = $("graph");
  function fitZoom(view) {
    return Math.min(1.5, (graphBox.clientWidth - 8) / view.width, (graphBox.clientHeight - 8) / view.height);
  }
  function applyZoom(view) {
    // Small drawings are fitted to the window; big ones start readable, and "follow"
    // keeps the op being differentiated in view.
    if (view.zoom === null) view.zoom = fitZoom(view) >= 0.5 ? fitZoom(view) : 0.75;
    view.svg.setAttribute("width", Math.round(view.width * view.zoom));
    view.svg.setAttribute("height", Math.round(view.height * view.zoom));
  }
  function follow(view, smooth) {
    if (!$("follow").checked) return;
    // Before the sweep, show where it starts: the root, the last tensor of the order.
    const i = state.pos === 0 ? T.length - 1 : D.sweep[state.pos - 1].tensor;
    const id = state.pos === 0 ? view.map.tensor[i] : view.map.op[i] || view.map.tensor[i];
    const g = view.nodes.get(id);
    if (!g) return;
    const r = g.getBoundingClientRect();
    const c = graphBox.getBoundingClientRect();
    const x = r.left + r.width / 2 - c.left;
    const y = r.top + r.height / 2 - c.top;
    const inside = x > c.width * 0.2 && x < c.width * 0.8 && y > c.height * 0.2 && y < c.height * 0.8;
    if (!inside) {
      graphBox.scrollBy({ left: x - c.width / 2, top: y - c.height / 2, behavior: smooth ? "smooth" : "auto" });
    }
  }

  // -- the status line ------------------------------------------------------------------
  function status(pos) {
    const el = $("status");
    el.textContent = "";
    const add = (tag, text, cls) => {
      const s = document.createElement(tag);
      s.textContent = text;
      if (cls) s.className = cls;
      el.appendChild(s);
    };
    if (pos === 0) {
      add("span", "Before the sweep: the forward pass built this graph and no tensor has a gradient yet. " +
        "Press play or \u2192 to run the backward pass one op at a time.");
      return;
    }
    const entry = D.sweep[pos - 1];
    const t = T[entry.tensor];
    add("span", entry.label ? "now at " + entry.label : "outside the time steps", "now");
    add("span", "  \u00b7  backward of ");
    add("code", t.op + (t.detail ? " " + t.detail : ""));
    const made = t.name !== null ? t.name : "its output";
    add("span", " (" + where(entry.tensor) + ") with \u2016dLoss/d(" + made + ")\u2016 = " +
      fmt(entry.norm) + ".  ");
    if (entry.inputs.length) {
      add("span", "It sends gradient to " + entry.inputs.map(([i, n]) =>
        tensorName(i) + (T[i].leaf ? " (" + T[i].role + ")" : "") + " \u2016" + fmt(n) + "\u2016").join(", ") + ".");
    } else {
      add("span", "None of its inputs needs a gradient.");
    }
    if (pos === N) add("span", "  That was the last op: every gradient is complete.");
  }

  // -- parameters: the sum over time ----------------------------------------------------
  const params = D.parameters.map((i) => {
    const t = T[i];
    const labels = [];
    for (const a of t.arrivals) if (!labels.includes(a[1])) labels.push(a[1]);
    labels.sort((a, b) => (a === null) - (b === null) || (a && b ? +a.slice(1) - +b.slice(1) : 0));
    const finals = new Map();
    for (const a of t.arrivals) finals.set(a[1], num(a[2]));
    const top = Math.max(1e-300, ...[...finals.values()].filter(isFinite));
    const card = document.createElement("div");
    card.className = "param";
    card.innerHTML = '<span class="name"></span><span class="so-far"></span><canvas height="54"></canvas>' +
      '<div class="sum"><figure><canvas></canvas><figcaption>so far</figcaption></figure>' +
      '<span>=</span><figure><canvas></canvas><figcaption>before</figcaption></figure>' +
      '<span>+</span><figure><canvas></canvas><figcaption>latest</figcaption></figure></div>';
    card.querySelector(".name").textContent = tensorName(i) + " " + JSON.stringify(t.shape).replace(/,/g, ", ");
    card.querySelector(".name").addEventListener("click", () => select(i));
    $("parameter-list").appendChild(card);
    return { i, labels, finals, top, card, canvas: card.querySelector("canvas"),
      sum: [...card.querySelectorAll(".sum canvas")], captions: [...card.querySelectorAll(".sum figcaption")] };
  });

  function drawParam(p, pos) {
    const k = pos - 1;
    const t = T[p.i];
    const now = new Map();
    let last = null;
    let arriving = false;
    for (const a of t.arrivals) {
      if (a[0] > k) break;
      now.set(a[1], num(a[2]));
      last = a[3];
      if (a[0] === k) arriving = true;
    }
    const final = t.arrivals.length ? t.arrivals[t.arrivals.length - 1][3].norm : 0;
    // The sum as heatmaps on one colour scale: so far = the sum before + the latest.
    let j = -1;
    while (j + 1 < t.arrivals.length && t.arrivals[j + 1][0] <= k) j++;
    const parts = j < 0 ? [null, null, null]
      : [t.arrivals[j][3], j > 0 ? t.arrivals[j - 1][3] : "zero", t.arrivals[j][4]];
    const common = Math.max(...parts.map((x) => (x && x.heat ? x.heat.scale : 0)));
    parts.forEach((x, m) => heatmap(p.sum[m], x, common, 96, 48));
    p.captions[2].textContent = j < 0 ? "latest" : "latest: " + (t.arrivals[j][1] || "outside");
    p.card.querySelector(".so-far").textContent =
      "\u2016grad\u2016 " + (last === null ? "0" : fmt(last.norm)) + " of " + fmt(final);
    p.card.classList.toggle("arriving", arriving);
    const w = p.canvas.clientWidth || 340;
    const h = 54;
    const ctx = sharpCanvas(p.canvas, w, h);
    const n = Math.max(p.labels.length, 1);
    const slot = w / n;
    const base = h - 12;
    ctx.font = "10px system-ui, sans-serif";
    ctx.textAlign = "center";
    p.labels.forEach((label, j) => {
      const x = j * slot + slot * 0.15;
      const bw = slot * 0.7;
      const fh = (p.finals.get(label) / p.top) * (base - 2);
      ctx.strokeStyle = "#bbb";
      ctx.setLineDash([2, 2]);
      ctx.strokeRect(x, base - fh, bw, fh);
      ctx.setLineDash([]);
      if (now.has(label)) {
        const v = now.get(label);
        const bh = (isFinite(v) ? v / p.top : 1) * (base - 2);
        const justNow = t.arrivals.some((a) => a[0] === k && a[1] === label);
        ctx.fillStyle = justNow ? "#d50000" : "#fd8d3c";
        ctx.fillRect(x, base - bh, bw, bh);
      }
      ctx.fillStyle = "#555";
      if (j % Math.max(1, Math.ceil(n * 26 / w)) === 0 || label === null) {
        ctx.fillText(label === null ? "outside the steps" : label, x + bw / 2, h - 2);
      }
    });
  }

  // -- the per-step chart -----------------------------------------------------------------
  const chart = $("chart");
  const COLOURS = ["#c62828", "#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"];
  let chartPoints = [];
  function drawChart(pos) {
    const k = pos - 1;
    const series = D.states;
    if (!series.length) {
      $("chart-box").hidden = true;
      return;
    }
    const w = chart.clientWidth || 800;
    const h = 120;
    const ctx = sharpCanvas(chart, w, h);
    let tmax = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of series) {
      for (const [t, i] of s.points) {
        tmax = Math.max(tmax, t);
        const g = T[i].grad;
        const v = g ? num(g.norm) : NaN;
        if (v > 0 && isFinite(v)) {
          lo = Math.min(lo, Math.log10(v));
          hi = Math.max(hi, Math.log10(v));
        }
      }
    }
    if (!isFinite(lo)) { lo = -1; hi = 0; }
    if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
    const left = 46, right = 110, top = 8, bottom = 20;
    const X = (t) => left + (tmax ? t / tmax : 0.5) * (w - left - right);
    const Y = (v) => top + (1 - (Math.log10(v) - lo) / (hi - lo)) * (h - top - bottom);
    ctx.font = "10px system-ui, sans-serif";
    ctx.strokeStyle = "#ddd";
    ctx.fillStyle = "#666";
    ctx.textAlign = "right";
    // Labels are thinned so that they never overlap, however many steps and decades.
    const decades = Math.max(1, Math.ceil((hi - lo) / 5));
    for (let e = Math.ceil(lo / decades) * decades; e <= Math.floor(hi); e += decades) {
      ctx.beginPath(); ctx.moveTo(left, Y(10 ** e)); ctx.lineTo(w - right, Y(10 ** e)); ctx.stroke();
      ctx.fillText("1e" + e, left - 4, Y(10 ** e) + 3);
    }
    ctx.textAlign = "center";
    const every = Math.max(1, Math.ceil((tmax + 1) * 30 / (w - left - right)));
    for (let t = 0; t <= tmax; t += every) ctx.fillText("t" + t, X(t), h - 6);
    const entry = k >= 0 ? D.sweep[k] : null;
    if (entry && entry.label) {
      const t = +entry.label.slice(1);
      ctx.fillStyle = "rgba(213, 0, 0, 0.10)";
      const half = tmax ? (w - left - right) / tmax / 2 : 20;
      const x0 = Math.max(left, X(t) - half);
      ctx.fillRect(x0, top, Math.min(w - right, X(t) + half) - x0, h - top - bottom);
    }
    chartPoints = [];
    series.forEach((s, j) => {
      const colour = COLOURS[j % COLOURS.length];
      ctx.strokeStyle = colour;
      ctx.fillStyle = colour;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let started = false;
      for (const [t, i, done] of s.points) {
        const g = T[i].grad;
        const v = g ? num(g.norm) : NaN;
        if (done === null || !(v > 0) || !isFinite(v)) continue;
        chartPoints.push({ x: X(t), y: Y(v), pos: done + 1 });
        if (done > k) { started = false; continue; }
        if (started) ctx.lineTo(X(t), Y(v)); else ctx.moveTo(X(t), Y(v));
        started = true;
      }
      ctx.stroke();
      for (const [t, i, done] of s.points) {
        const g = T[i].grad;
        const v = g ? num(g.norm) : NaN;
        if (done === null || done > k || !(v > 0) || !isFinite(v)) continue;
        ctx.beginPath(); ctx.arc(X(t), Y(v), done === k ? 5 : 3, 0, 2 * Math.PI); ctx.fill();
      }
      ctx.textAlign = "left";
      ctx.fillText("\u2016dLoss/d" + s.name + "\u2016 " + (s.layer || ""), w - right + 8, top + 12 + 14 * j);
    });
  }
  chart.addEventListener("click", (ev) => {
    const r = chart.getBoundingClientRect();
    const x = ev.clientX - r.left;
    const y = ev.clientY - r.top;
    let best = null;
    for (const p of chartPoints) {
      const d = Math.hypot(p.x - x, p.y - y);
      if (d < 14 && (best === null || d < best.d)) best = { d, pos: p.pos };
    }
    if (best) go(best.pos);
  });

  // -- the selected node ------------------------------------------------------------------
  // A summary's heatmap on ``canvas``: blue negative, white 0, red positive, full colour
  // at ``common`` (default: the summary's own largest magnitude), cells fitting w x h.
  // A cleared 2-d context drawing in CSS pixels (w x h) on a canvas with one backing
  // pixel per device pixel, so lines and text stay sharp on high-density screens.
  function sharpCanvas(canvas, w, h) {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return ctx;
  }

  function heatmap(canvas, summary, common, w = 160, h = 90) {
    const ctx = canvas.getContext("2d");
    if (!summary || !summary.heat) {
      canvas.width = Math.min(w, 120); canvas.height = 20;
      ctx.clearRect(0, 0, canvas.width, 20);
      ctx.fillStyle = "#999"; ctx.font = "11px system-ui, sans-serif";
      ctx.fillText(typeof summary === "string" ? summary : "none yet", 8, 14);
      return;
    }
    const { rows, cols, codes, scale } = summary.heat;
    const ratio = common > 0 ? scale / common : 1;
    // Cells as square as the space allows, but a single row or column stays visible.
    let cw = Math.max(2, Math.min(14, Math.floor(w / cols)));
    let ch = Math.max(2, Math.min(14, Math.floor(h / rows)));
    [cw, ch] = [Math.min(cw, Math.max(ch, 10)), Math.min(ch, Math.max(cw, 10))];
    canvas.width = cols * cw;
    canvas.height = rows * ch;
    const bytes = atob(codes);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        let v = bytes.charCodeAt(r * cols + c);
        if (v > 127) v -= 256;
        let colour;
        if (v === -128) colour = "#000000";
        else {
          const f = Math.min(1, (Math.abs(v) / 127) * ratio);
          const far = v < 0 ? [33, 102, 172] : [178, 24, 43];
          colour = "rgb(" + far.map((a) => Math.round(255 + (a - 255) * f)).join(",") + ")";
        }
        ctx.fillStyle = colour;
        ctx.fillRect(c * cw, r * ch, cw, ch);
      }
    }
  }

  function statsRow(row, summary) {
    for (const td of row.querySelectorAll("td")) {
      const v = summary ? summary[td.dataset.stat] : null;
      td.textContent = summary ? fmt(v) : "\u2013";
      td.title = summary && v !== null ? String(v) : "";
    }
  }

  function details(pos) {
    if (state.selected === null) return;
    const i = state.selected;
    const t = T[i];
    const k = pos - 1;
    $("details-hint").hidden = true;
    $("details-body").hidden = false;
    $("detail-title").textContent = tensorName(i);
    const view = views[state.view];
    const node = view.map.tensor[i];
    const shared = node && view.members.has(node) ? view.members.get(node).length : 1;
    const facts = [
      ["node", !node ? "(not drawn in this view)" : shared > 1
        ? node + " (it stands for " + shared + " tensors; this one is made last)" : node],
      ["scope", where(i)],
      ["made by", t.op === null ? "nothing: a leaf (" + t.role + ")" : t.op + (t.detail ? " " + t.detail : "")],
      ["shape", "(" + t.shape.join(", ") + (t.shape.length === 1 ? ",)" : ")")],
      ["dtype", t.dtype],
    ];
    const body = $("detail-facts");
    body.textContent = "";
    for (const [a, b] of facts) {
      const tr = document.createElement("tr");
      const th = document.createElement("td");
      const td = document.createElement("td");
      th.textContent = a; td.textContent = b;
      td.dataset.fact = a;
      tr.append(th, td);
      body.appendChild(tr);
    }
    const grad = gradAt(i, k);
    statsRow($("stats-value"), t.value);
    statsRow($("stats-grad"), grad);
    let note;
    if (t.leaf) {
      const count = t.arrivals.filter((a) => a[0] <= k).length;
      note = t.arrivals.length === 0 ? "This leaf gets no gradient (it does not require one)."
        : "Gradient so far: the sum of " + count + " of its " + t.arrivals.length + " contributions.";
    } else if (t.done === null) {
      note = "The sweep never reaches this tensor: the loss does not depend on it through a differentiable path.";
    } else if (t.done > k) {
      note = "Its gradient is complete at step " + (t.done + 1) + ", when its op's backward runs.";
    } else {
      note = "Gradient complete since step " + (t.done + 1) + ".";
    }
    $("grad-note").textContent = note;
    heatmap($("heat-value"), t.value);
    heatmap($("heat-grad"), grad);
    const range = (summary) => (summary && summary.heat ? " \u00b1" + fmt(summary.heat.scale) : "");
    $("heat-value").nextElementSibling.textContent = "value" + range(t.value);
    $("heat-grad").nextElementSibling.textContent = "gradient" + range(grad);
    const heat = t.value.heat;
    $("heat-note").textContent = heat
      ? "Heatmaps: blue negative, red positive, white 0, each scaled to its largest magnitude" +
        (heat.rows * heat.cols < t.shape.reduce((a, b) => a * b, 1) ? "; shown as " + heat.rows + " \u00d7 " + heat.cols + " cells" : "") + "."
      : "";
  }

  function select(i) {
    state.selected = i;
    render(false);
    $("details").scrollIntoView({ block: "nearest" });
  }

  // -- the timeline -----------------------------------------------------------------------
  function render(smooth) {
    const view = views[state.view];
    paint(view, state.pos);
    status(state.pos);
    for (const p of params) drawParam(p, state.pos);
    drawChart(state.pos);
    details(state.pos);
    $("slider").value = state.pos;
    $("counter").textContent = "step " + state.pos + " of " + N;
    document.body.dataset.pos = state.pos;
    document.body.dataset.view = state.view;
    follow(view, smooth);
  }

  function go(pos, smooth = true) {
    state.pos = Math.max(0, Math.min(N, pos));
    render(smooth);
  }

  function setView(name) {
    state.view = name;
    for (const v of Object.values(views)) v.div.hidden = v.name !== name;
    for (const b of $("view-buttons").children) b.classList.toggle("active", b.dataset.view === name);
    applyZoom(views[name]);
    render(false);
  }

  function play() {
    if (state.playing) return pause();
    if (state.pos >= N) state.pos = 0;
    state.playing = true;
    $("play").textContent = "|| pause";
    const tick = () => {
      if (state.pos >= N) return pause();
      go(state.pos + 1, false);
      state.timer = setTimeout(tick, 400 / +$("speed").value);
    };
    tick();
  }
  function pause() {
    state.playing = false;
    clearTimeout(state.timer);
    $("play").textContent = "\u25B6 play";
  }

  for (const name of viewNames) {
    const b = document.createElement("button");
    b.textContent = name;
    b.dataset.view = name;
    const keep = views[name].map.keep_steps;
    if (keep) b.textContent = name + " (" + keep + " + " + keep + " steps)";
    b.title = (keep ? "only the first and last " + keep + " time steps are drawn in this view, " +
      "the others would be too big to lay out; " : "") + ({ ops: "every primitive op and tensor: the unrolled graph in full",
      steps: "one node per time step, the state passing along labelled edges",
      rolled: "one step's ops drawn once, the recurrence as back-edges" })[name] || name + " view";
    b.addEventListener("click", () => setView(name));
    $("view-buttons").appendChild(b);
  }
  $("slider").max = N;
  $("slider").addEventListener("input", () => { pause(); go(+$("slider").value, false); });
  $("first").addEventListener("click", () => { pause(); go(0); });
  $("back").addEventListener("click", () => { pause(); go(state.pos - 1); });
  $("forward").addEventListener("click", () => { pause(); go(state.pos + 1); });
  $("last").addEventListener("click", () => { pause(); go(N); });
  $("play").addEventListener("click", play);
  const zoomBy = (f) => {
    const v = views[state.view];
    v.zoom = Math.max(0.05, Math.min(3, v.zoom * f));
    applyZoom(v);
    follow(v, false);
  };
  $("zoom-in").addEventListener("click", () => zoomBy(1.25));
  $("zoom-out").addEventListener("click", () => zoomBy(0.8));
  $("zoom-fit").addEventListener("click", () => {
    const v = views[state.view];
    v.zoom = fitZoom(v);
    applyZoom(v);
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "SELECT" || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const keys = { ArrowRight: () => go(state.pos + 1), ArrowLeft: () => go(state.pos - 1),
      Home: () => go(0), End: () => go(N), " ": play };
    if (!(ev.key in keys)) return;
    ev.preventDefault();
    if (ev.key !== " ") pause();
    keys[ev.key]();
  });
  graphBox.addEventListener("click", (ev) => {
    const g = ev.target.closest("g.node");
    if (!g) return;
    const id = g.querySelector("title").textContent;
    const i = views[state.view].ofNode.get(id);
    if (i !== undefined) select(i);
  });
  window.addEventListener("resize", () => render(false));

  // The legend: what the fills and borders mean, with the range of the scale.
  const legend = $("legend");
  const stops = D.scale.map((c, j) => c + " " + (100 * j / (D.scale.length - 1)).toFixed(0) + "%").join(", ");
  legend.innerHTML =
    '<span>\u2016grad\u2016 (fill): 1e' + D.range[0].toFixed(1) +
    '<span class="ramp" style="background: linear-gradient(to right, ' + stops + ')"></span>1e' +
    D.range[1].toFixed(1) + '</span>' +
    '<span><span class="swatch" style="background:#fff"></span>no gradient yet</span>' +
    Object.entries(D.roles).map(([role, colour]) =>
      '<span><span class="swatch" style="background:#fff; border: 2px solid ' + colour + '"></span>' + role + "</span>").join("") +
    '<span><span class="swatch" style="background:#fff; border: 3px solid #d50000"></span>backward running</span>';

  // A link can open the page at a step and view: bptt.html#pos=60&view=ops.
  const asked = new URLSearchParams(location.hash.slice(1));
  if (asked.has("view") && views[asked.get("view")]) state.view = asked.get("view");
  if (asked.has("pos") && isFinite(+asked.get("pos"))) state.pos = Math.max(0, Math.min(N, +asked.get("pos")));
  setView(state.view);
})();
