// david-data browse: the table and the detail view of a report (no server, no network).
// Every string reaches the page through textContent or setAttribute, never as HTML.
(function () {
  "use strict";
  var D = window.BROWSE_DATA;
  var COLS = D.columns;
  var ROWS = D.rows;
  var FLAGS = COLS.length; // index of each row's picture flags
  var ID = indexOf("sample_id");
  var PAGE_SIZES = [25, 50, 100, 250, 500];
  var LABELS = { rgb: "RGB", alpha: "alpha", depth: "depth", normal: "normals" };
  var state = {
    sort: indexOf(D.sort.column),
    descending: D.sort.descending,
    filter: "",
    page: 0,
    pageSize: D.pageSize,
    order: [],
  };
  var rendered = 0;
  var byId = {};
  ROWS.forEach(function (row, i) { byId[row[ID]] = i; });

  function indexOf(key) {
    for (var i = 0; i < COLS.length; i++) if (COLS[i].key === key) return i;
    return 0;
  }
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function pad(n, width) { var s = String(n); while (s.length < width) s = "0" + s; return s; }
  // The same names as david_data/browse/images.py's image_name.
  function picture(sid, key, size) {
    return "img/" + pad(Math.floor(sid / 1000), 3) + "/" + pad(sid, 7) + "." + key + "." + size + (size === "t" ? ".webp" : ".jpg");
  }
  function shown(value, col) {
    if (value === null || value === undefined) return "";
    if (col.kind === "float") return Number(value).toPrecision(4).replace(/\.?0+$/, "").replace(/\.?0+e/, "e");
    return String(value);
  }
  // The pictures of a row: [label, key] for the ground truth, then each run holding it.
  function pictures(row) {
    var flags = row[FLAGS];
    if (!(flags & 1)) return [];
    var out = D.groundTruth.map(function (k) { return { group: "ground truth", label: LABELS[k] || k, key: k }; });
    D.runs.forEach(function (run, i) {
      if (!(flags & (1 << (i + 1)))) return;
      run.fields.forEach(function (f) {
        out.push({ group: run.name, label: f, key: run.key + "." + f });
        out.push({ group: run.name, label: f + " error", key: run.key + "." + f + "-err" });
      });
    });
    return out;
  }

  // --- filtering and sorting ------------------------------------------------------------
  function parseFilter(text) {
    return text.trim().split(/\s+/).filter(Boolean).map(function (term) {
      var m = /^([^<>=!]+)(<=|>=|!=|<|>|=)(.+)$/.exec(term);
      if (m) {
        for (var i = 0; i < COLS.length; i++) {
          if (COLS[i].key.toLowerCase() === m[1].toLowerCase()) return { col: i, op: m[2], value: m[3] };
        }
      }
      return { text: term.toLowerCase() };
    });
  }
  function matches(row, terms) {
    for (var t = 0; t < terms.length; t++) {
      var term = terms[t];
      if (term.text !== undefined) {
        var hit = false;
        for (var i = 0; i < COLS.length && !hit; i++) {
          if (row[i] !== null && String(row[i]).toLowerCase().indexOf(term.text) >= 0) hit = true;
        }
        if (!hit) return false;
      } else {
        var v = row[term.col];
        if (v === null) return false;
        var numeric = COLS[term.col].kind !== "str";
        var a = numeric ? Number(v) : String(v).toLowerCase();
        var b = numeric ? Number(term.value) : term.value.toLowerCase();
        var ok = term.op === "=" ? a === b : term.op === "!=" ? a !== b : term.op === "<" ? a < b
          : term.op === ">" ? a > b : term.op === "<=" ? a <= b : a >= b;
        if (!ok) return false;
      }
    }
    return true;
  }
  function compute() {
    var terms = parseFilter(state.filter);
    var order = [];
    for (var i = 0; i < ROWS.length; i++) if (!terms.length || matches(ROWS[i], terms)) order.push(i);
    var c = state.sort, sign = state.descending ? -1 : 1;
    order.sort(function (x, y) {
      var a = ROWS[x][c], b = ROWS[y][c];
      if (a === null || b === null) {
        if (a === b) return ROWS[x][ID] - ROWS[y][ID];
        return a === null ? 1 : -1; // missing values last, either way
      }
      if (a < b) return -sign;
      if (a > b) return sign;
      return ROWS[x][ID] - ROWS[y][ID];
    });
    state.order = order;
    var pages = Math.max(1, Math.ceil(order.length / state.pageSize));
    if (state.page >= pages) state.page = pages - 1;
  }

  // --- the table --------------------------------------------------------------------------
  function header() {
    var thead = $("samples").tHead;
    thead.textContent = "";
    var tr = el("tr");
    tr.appendChild(el("th", { "class": "pictures", scope: "col" }, "pictures"));
    COLS.forEach(function (col, i) {
      var th = el("th", { scope: "col", "data-column": col.key, title: "sort by " + col.key });
      if (col.run) {
        th.appendChild(el("span", { "class": "run" }, col.run));
        th.appendChild(el("br"));
        th.appendChild(el("span", null, col.metric));
      } else {
        th.textContent = col.key;
      }
      if (i === state.sort) th.setAttribute("aria-sort", state.descending ? "descending" : "ascending");
      th.addEventListener("click", function () {
        if (state.sort === i) state.descending = !state.descending;
        else { state.sort = i; state.descending = col.better === "lower"; }
        state.page = 0;
        update();
      });
      tr.appendChild(th);
    });
    thead.appendChild(tr);
  }
  function body() {
    var tbody = $("samples").tBodies[0];
    tbody.textContent = "";
    var start = state.page * state.pageSize;
    var rows = state.order.slice(start, start + state.pageSize);
    var fragment = document.createDocumentFragment();
    rows.forEach(function (index) {
      var row = ROWS[index];
      var sid = row[ID];
      var tr = el("tr", { "data-sample": sid });
      var cell = el("td", { "class": "pictures" });
      var link = el("a", { href: "#sample=" + sid, "class": "open", title: "open sample " + sid });
      pictures(row).forEach(function (p) {
        link.appendChild(el("img", {
          "class": "thumb", loading: "lazy", width: 48, height: 64, src: picture(sid, p.key, "t"),
          alt: p.group + " " + p.label, title: p.group + ": " + p.label,
        }));
      });
      if (!link.childNodes.length) link.textContent = "open";
      cell.appendChild(link);
      tr.appendChild(cell);
      COLS.forEach(function (col, i) {
        tr.appendChild(el("td", { "class": col.kind }, shown(row[i], col)));
      });
      fragment.appendChild(tr);
    });
    tbody.appendChild(fragment);
    var n = state.order.length;
    $("count").textContent = n === ROWS.length ? n + " samples" : n + " of " + ROWS.length + " samples";
    var pages = Math.max(1, Math.ceil(n / state.pageSize));
    $("page").textContent = "page " + (state.page + 1) + " of " + pages +
      " (rows " + (n ? start + 1 : 0) + "\u2013" + Math.min(start + state.pageSize, n) + ")";
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page + 1 >= pages;
  }
  function update() {
    compute();
    header();
    body();
    done("table");
  }
  function done(view) {
    rendered += 1;
    document.documentElement.setAttribute("data-rendered", String(rendered));
    document.documentElement.setAttribute("data-view", view);
    document.dispatchEvent(new CustomEvent("browse:rendered", { detail: { view: view, count: rendered } }));
  }

  // --- the detail view --------------------------------------------------------------------
  function detail(sid) {
    var index = byId[sid];
    var section = $("detail");
    section.textContent = "";
    var nav = el("nav");
    nav.appendChild(el("a", { href: "#", id: "back" }, "\u2190 back to the table"));
    var at = state.order.indexOf(index);
    if (at > 0) nav.appendChild(el("a", { href: "#sample=" + ROWS[state.order[at - 1]][ID], id: "previous" }, "previous"));
    if (at >= 0 && at + 1 < state.order.length) nav.appendChild(el("a", { href: "#sample=" + ROWS[state.order[at + 1]][ID], id: "following" }, "next"));
    section.appendChild(nav);
    if (index === undefined) {
      section.appendChild(el("h2", null, "sample " + sid + " is not in this report"));
      return;
    }
    var row = ROWS[index];
    section.appendChild(el("h2", { id: "detail-title" }, "sample " + sid));
    var groups = {};
    var list = [];
    pictures(row).forEach(function (p) {
      if (!groups[p.group]) { groups[p.group] = []; list.push(p.group); }
      groups[p.group].push(p);
    });
    list.forEach(function (name) {
      var box = el("div", { "class": "group" });
      box.appendChild(el("h3", null, name));
      var strip = el("div", { "class": "strip" });
      groups[name].forEach(function (p) {
        var figure = el("figure");
        figure.appendChild(el("img", { "class": "full", loading: "lazy", width: 384, height: 512, src: picture(sid, p.key, "f"), alt: name + " " + p.label }));
        figure.appendChild(el("figcaption", null, p.label));
        strip.appendChild(figure);
      });
      box.appendChild(strip);
      section.appendChild(box);
    });
    if (!list.length) section.appendChild(el("p", null, "no pictures for this sample (see the job's report)"));
    var scales = D.errorScales;
    section.appendChild(el("p", { "class": "note" },
      "error maps: dark = 0, bright = depth relative error " + scales.depth + ", normal angle " +
      scales.normal + " degrees, |foreground - alpha| " + scales.foreground + " or more"));
    var table = el("table", { "class": "values" });
    COLS.forEach(function (col, i) {
      var tr = el("tr");
      tr.appendChild(el("th", { scope: "row" }, col.key));
      tr.appendChild(el("td", { "class": col.kind }, shown(row[i], col)));
      table.appendChild(tr);
    });
    section.appendChild(table);
  }
  function route() {
    var m = /^#sample=(\d+)$/.exec(location.hash);
    if (m) {
      detail(Number(m[1]));
      $("list").hidden = true;
      $("detail").hidden = false;
      window.scrollTo(0, 0);
      done("detail");
    } else {
      $("detail").hidden = true;
      $("list").hidden = false;
      done("table");
    }
  }

  // --- start ----------------------------------------------------------------------------
  var runs = D.runs.map(function (r) { return r.name + " (" + r.model + ")"; }).join(", ");
  $("about").textContent = ROWS.length + " samples; " + (D.runs.length ? "runs: " + runs : "no runs") +
    "; written " + D.created + " by david-data " + D.version;
  var select = $("page-size");
  PAGE_SIZES.forEach(function (n) {
    var option = el("option", { value: n }, n);
    if (n === state.pageSize) option.selected = true;
    select.appendChild(option);
  });
  select.addEventListener("change", function () { state.pageSize = Number(select.value); state.page = 0; update(); });
  $("prev").addEventListener("click", function () { state.page -= 1; body(); done("table"); });
  $("next").addEventListener("click", function () { state.page += 1; body(); done("table"); });
  var timer = null;
  $("filter").addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { state.filter = $("filter").value; state.page = 0; update(); }, 150);
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && location.hash) location.hash = "";
  });
  window.addEventListener("hashchange", route);
  compute();
  header();
  body();
  route();
})();
