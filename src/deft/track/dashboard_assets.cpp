#include "deft/track/dashboard_assets.h"
#include "deft/track/plot.h"

#include <cctype>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

namespace deft::track::dash {

using json = nlohmann::json;

std::string html_escape(std::string_view text) { return svg::escape(std::string(text)); }

std::string url_encode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string percent_decode(std::string_view text) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

namespace {

std::string text_of(const json& v) {
  if (v.is_null()) return "\u2013";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    return std::isfinite(d) ? fmt::format("{:.5g}", d) : "\u2013";
  }
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string when(const json& t) {
  if (!t.is_number()) return "\u2013";
  const std::time_t tt = static_cast<std::time_t>(t.get<double>());
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string cell(const std::string& text, const char* cls = "") {
  return *cls ? fmt::format("<td class=\"{}\">{}</td>", cls, html_escape(text)) : "<td>" + html_escape(text) + "</td>";
}

std::string page(const std::string& title, const std::string& page_name, const std::string& data_attrs,
                 const std::string& main) {
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<title>" + html_escape(title) + " \u00b7 deft dashboard</title>"
         "<link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/static/dashboard.css\"></head>\n"
         "<body data-page=\"" + page_name + "\"" + data_attrs + ">\n"
         "<header class=\"top\"><a class=\"brand\" href=\"/\">deft dashboard</a><span id=\"live\" class=\"live\"></span></header>\n"
         "<main>\n" + main + "\n</main>\n<script src=\"/static/dashboard.js\"></script>\n</body></html>\n";
}

std::string study_row(const json& s) {
  const json& c = s["counts"];
  std::string dirs;
  for (const auto& d : s["directions"]) dirs += (dirs.empty() ? "" : ", ") + d.get<std::string>();
  return "<tr><td><a href=\"/study/" + url_encode(s["name"].get<std::string>()) + "\">" +
         html_escape(s["name"].get<std::string>()) + "</a></td>" + cell(dirs) + cell(text_of(s["n_trials"]), "num") +
         cell(text_of(c["complete"]), "num") + cell(text_of(c["pruned"]), "num") + cell(text_of(c["fail"]), "num") +
         cell(text_of(c["running"]), "num") + cell(text_of(s["best_value"]), "num") + cell(when(s["created"])) +
         "</tr>\n";
}

std::string run_row(const json& r) {
  const std::string name = r["name"].get<std::string>();
  std::string study = "\u2013";
  if (r["study"].is_string()) study = r["study"].get<std::string>();
  std::string summary;
  int shown = 0;
  for (const auto& [k, v] : r["summary"].items()) {
    if (shown++ == 3) break;
    summary += (summary.empty() ? "" : ", ") + k + " " + text_of(v);
  }
  return "<tr><td><a href=\"/run/" + url_encode(name) + "\">" + html_escape(name) + "</a></td>" +
         cell(r["command"].get<std::string>()) + cell(study) + cell(r["status"].get<std::string>()) +
         cell(when(r["start_time"])) + cell(summary) + "</tr>\n";
}

}  // namespace

std::string index_page(const json& studies, const json& runs, int refresh_ms) {
  std::string rows;
  for (const auto& s : studies) rows += study_row(s);
  std::string run_rows;
  for (const auto& r : runs) run_rows += run_row(r);
  const std::string main =
      "<section><h1>Studies</h1>\n"
      "<table class=\"grid\" id=\"studies\"><thead><tr><th>study</th><th>direction</th><th class=\"num\">trials</th>"
      "<th class=\"num\">complete</th><th class=\"num\">pruned</th><th class=\"num\">fail</th>"
      "<th class=\"num\">running</th><th class=\"num\">best</th><th>created</th></tr></thead>\n"
      "<tbody id=\"studies-body\">\n" + rows + "</tbody></table>\n"
      "<p id=\"no-studies\" class=\"muted\"" + (studies.empty() ? "" : " hidden") + ">No studies in this store yet.</p>"
      "</section>\n"
      "<section><h2>Recent runs</h2>\n"
      "<table class=\"grid\" id=\"runs\"><thead><tr><th>run</th><th>command</th><th>study</th><th>status</th>"
      "<th>started</th><th>summary</th></tr></thead>\n<tbody id=\"runs-body\">\n" + run_rows + "</tbody></table>\n"
      "<p id=\"no-runs\" class=\"muted\"" + (runs.empty() ? "" : " hidden") + ">No runs recorded yet.</p></section>";
  return page("studies", "index", fmt::format(" data-refresh-ms=\"{}\"", refresh_ms), main);
}

std::string study_page(const json& summary, int refresh_ms) {
  const std::string name = summary["name"].get<std::string>();
  std::string dirs;
  for (const auto& d : summary["directions"]) dirs += (dirs.empty() ? "" : ", ") + d.get<std::string>();
  const bool multi = summary["directions"].size() > 1;
  std::string states;
  for (const char* s : {"complete", "pruned", "fail", "running", "waiting"})
    states += fmt::format("<label class=\"state-box\"><input type=\"checkbox\" id=\"state-{0}\" value=\"{0}\" checked> "
                          "<span class=\"state state-{0}\">{0}</span></label>",
                          s);
  std::string charts;
  for (const auto& [kind, title] : std::vector<std::pair<std::string, std::string>>{
           {"history", "Optimization history"},
           {"intermediate", "Intermediate values"},
           {"parallel", "Parallel coordinates"},
           {"importance", "Parameter importance"},
           {"pareto", "Pareto front"}}) {
    if (kind == "pareto" && !multi) continue;
    // the plots carry their own titles
    charts += "<figure class=\"chart-box\"><div class=\"chart\" id=\"plot-" + kind + "\" data-kind=\"" + kind +
              "\"><p class=\"muted\">" + title + " \u2026</p></div></figure>\n";
  }
  const std::string main =
      "<nav class=\"crumbs\"><a href=\"/\">studies</a> /</nav>\n"
      "<h1 id=\"title\">" + html_escape(name) + "</h1>\n<p class=\"muted\" id=\"subtitle\">" + html_escape(dirs) +
      " \u00b7 " + text_of(summary["n_trials"]) + " trials</p>\n"
      "<section id=\"summary\" class=\"summary\"></section>\n"
      "<section id=\"charts\" class=\"charts\">\n" + charts + "</section>\n"
      "<section id=\"trials\"><h2>Trials</h2>\n<div class=\"controls\">" + states +
      "<input type=\"search\" id=\"q\" placeholder=\"filter parameters, e.g. model=mlp adam\" aria-label=\"filter\">"
      "<label>rows <select id=\"limit\"><option>25</option><option selected>50</option><option>100</option>"
      "<option>200</option></select></label></div>\n"
      "<div class=\"table-wrap\"><table class=\"grid\" id=\"trial-table\"><thead><tr id=\"trial-head\"></tr></thead>"
      "<tbody id=\"trial-body\"></tbody></table></div>\n"
      "<div class=\"pager\"><button id=\"prev\" type=\"button\">\u2039 prev</button><span id=\"page-info\"></span>"
      "<button id=\"next\" type=\"button\">next \u203a</button></div></section>\n"
      "<section id=\"detail\" class=\"detail\" hidden></section>";
  return page(name, "study",
              " data-study=\"" + html_escape(name) + "\" data-objectives=\"" +
                  std::to_string(summary["directions"].size()) + "\"" + fmt::format(" data-refresh-ms=\"{}\"", refresh_ms),
              main);
}

std::string run_page(const std::string& run_name, int refresh_ms) {
  const std::string main =
      "<nav class=\"crumbs\"><a href=\"/\">runs</a> /</nav>\n<h1 id=\"title\">" + html_escape(run_name) +
      "</h1>\n<p class=\"muted\" id=\"subtitle\"></p>\n"
      "<section class=\"summary\" id=\"run-info\"></section>\n"
      "<section class=\"charts\"><figure class=\"chart-box wide\">"
      "<div class=\"chart\" id=\"plot-learning\"><p class=\"muted\">Learning curves \u2026</p></div></figure></section>\n"
      "<section class=\"two\"><div><h2>Parameters</h2><table class=\"grid kv\" id=\"run-params\"></table></div>"
      "<div><h2>Summary</h2><table class=\"grid kv\" id=\"run-summary\"></table></div></section>\n"
      "<section><h2>Artifacts</h2><table class=\"grid kv\" id=\"run-artifacts\"></table></section>\n"
      "<section><details><summary>Configuration</summary><pre id=\"run-config\"></pre></details>"
      "<details><summary>System</summary><pre id=\"run-system\"></pre></details></section>";
  return page(run_name, "run",
              " data-run=\"" + html_escape(run_name) + "\"" + fmt::format(" data-refresh-ms=\"{}\"", refresh_ms), main);
}

std::string not_found_page(const std::string& what) {
  return page("not found", "missing", "",
              "<h1>Not found</h1><p>There is no " + html_escape(what) + " in this store. <a href=\"/\">All studies</a></p>");
}

const std::string_view kDashboardCss = R"CSS(
:root { --fg: #1d2330; --muted: #6b7385; --line: #dfe3ea; --bg: #f6f7f9; --card: #fff; --accent: #2f6fde;
  --complete: #2a9d55; --pruned: #c88a12; --fail: #d1453b; --running: #2f6fde; --waiting: #8a63d2; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header.top { display: flex; align-items: center; gap: 12px; padding: 10px 24px; background: #1d2330; }
header.top .brand { color: #fff; font-weight: 600; text-decoration: none; }
.live { font-size: 12px; color: #9aa3b5; }
.live.ok::before { content: "\25cf "; color: #3ecf74; }
.live.err { color: #ff8a80; }
main { max-width: 1400px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 4px 0; word-break: break-word; }
h2 { font-size: 16px; margin: 20px 0 8px; }
a { color: var(--accent); }
.muted { color: var(--muted); }
.crumbs { color: var(--muted); font-size: 13px; }
section { margin-bottom: 16px; }
table.grid { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); }
table.grid th, table.grid td { padding: 5px 9px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
table.grid th { background: #eef1f5; font-weight: 600; position: sticky; top: 0; }
table.grid td.num, table.grid th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.grid tbody tr:hover { background: #f0f5ff; }
table.kv td:first-child { color: var(--muted); width: 35%; }
#trial-table th.sortable { cursor: pointer; user-select: none; }
#trial-table th.sorted-asc::after { content: " \25b2"; }
#trial-table th.sorted-desc::after { content: " \25bc"; }
#trial-table tbody tr { cursor: pointer; }
#trial-table tbody tr.selected { background: #e3ecff; }
.table-wrap { overflow-x: auto; }
.state { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 12px; color: #fff; background: var(--muted); }
.state-complete { background: var(--complete); } .state-pruned { background: var(--pruned); }
.state-fail { background: var(--fail); } .state-running { background: var(--running); }
.state-waiting { background: var(--waiting); }
.state-finished { background: var(--complete); } .state-failed { background: var(--fail); } .state-killed { background: var(--fail); }
.controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin-bottom: 8px; }
.controls input[type=search] { flex: 1; min-width: 220px; padding: 5px 8px; border: 1px solid var(--line); border-radius: 4px; }
.pager { display: flex; gap: 12px; align-items: center; margin-top: 8px; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 8px; }
.summary .stat { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.summary .stat .k { color: var(--muted); font-size: 12px; }
.summary .stat .v { font-size: 16px; font-weight: 600; word-break: break-word; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 12px; }
.chart-box { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
.chart-box.wide { grid-column: 1 / -1; }
.chart svg { max-width: 100%; height: auto; display: block; }
.detail { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
pre { background: var(--card); border: 1px solid var(--line); padding: 8px; overflow: auto; max-height: 480px; }
)CSS";

// Every text from the data goes into the page through textContent (el()'s "text",
// append of strings); SVG from the plot endpoints is parsed as XML and stripped of
// scripts and event handlers before it is inserted.
const std::string_view kDashboardJs = R"JS('use strict';
(function () {
  const body = document.body;
  const REFRESH = Number(body.dataset.refreshMs) || 2000;
  const DASH = '\u2013';
  const seen = {};

  function el(tag, props, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'text') e.textContent = String(v);
      else if (k === 'class') e.className = v;
      else if (typeof v === 'function') e.addEventListener(k, v);
      else e.setAttribute(k, v);
    }
    for (const c of children || []) e.append(c);
    return e;
  }
  function fmtNum(v) {
    if (v === null || v === undefined) return DASH;
    if (typeof v === 'number') {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(5)));
    }
    if (typeof v === 'string') return v;
    return JSON.stringify(v);
  }
  function fmtDuration(s) {
    if (s === null || s === undefined) return DASH;
    if (s < 60) return s.toFixed(1) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' m ' + Math.round(s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' m';
  }
  function fmtTime(t) {
    if (!t) return DASH;
    const d = new Date(t * 1000), p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + p(d.getHours()) + ':' +
      p(d.getMinutes()) + ':' + p(d.getSeconds());
  }
  const enc = encodeURIComponent;
  async function getJSON(url) {
    const r = await fetch(url, {cache: 'no-store'});
    let j = null;
    try { j = await r.json(); } catch (e) { j = null; }
    if (!r.ok) throw new Error((j && j.error) || ('HTTP ' + r.status));
    return j;
  }
  function setLive(ok, message) {
    const e = document.getElementById('live');
    if (!e) return;
    e.className = ok ? 'live ok' : 'live err';
    e.textContent = ok ? 'live' : 'offline';
    e.title = message || '';
  }
  // Runs fn now and every REFRESH ms while the page is visible, one call at a time.
  function poll(fn) {
    let busy = false;
    const tick = async (first) => {
      if (busy || (document.hidden && first !== true)) return;
      busy = true;
      try { await fn(); setLive(true); } catch (e) { setLive(false, String(e && e.message || e)); }
      busy = false;
    };
    tick(true);
    setInterval(tick, REFRESH);
  }
  // Calls render(data) only when data differs from the last data given under key.
  function changed(key, data) {
    const s = JSON.stringify(data);
    if (seen[key] === s) return false;
    seen[key] = s;
    return true;
  }
  function sanitizeSvg(root) {
    for (const bad of root.querySelectorAll('script, foreignObject, iframe, object, embed')) bad.remove();
    for (const e of [root, ...root.querySelectorAll('*')])
      for (const a of [...e.attributes])
        if (/^on/i.test(a.name) || (/href$/i.test(a.name) && !/^\s*#/.test(a.value))) e.removeAttribute(a.name);
  }
  // Returns whether the server said the plot is of an older state of the study.
  async function loadSvg(box, url) {
    const r = await fetch(url, {cache: 'no-store'});
    const text = await r.text();
    if (!r.ok) { box.replaceChildren(el('p', {class: 'muted', text: 'plot unavailable (HTTP ' + r.status + ')'})); return false; }
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const root = doc.documentElement;
    if (root.nodeName !== 'svg' || doc.getElementsByTagName('parsererror').length) {
      box.replaceChildren(el('p', {class: 'muted', text: 'plot unreadable'}));
      return false;
    }
    sanitizeSvg(root);
    box.replaceChildren(document.importNode(root, true));
    return r.headers.get('X-Deft-Stale') === '1';
  }
  function stateBadge(s) { return el('span', {class: 'state state-' + s, text: s}); }
  function stat(k, v, onclick) {
    const val = el('div', {class: 'v', text: v});
    if (onclick) { val.style.cursor = 'pointer'; val.addEventListener('click', onclick); }
    return el('div', {class: 'stat'}, [el('div', {class: 'k', text: k}), val]);
  }
  function kvRows(table, obj) {
    const rows = Object.entries(obj || {}).map(([k, v]) => el('tr', {}, [el('td', {text: k}), el('td', {text: fmtNum(v)})]));
    table.replaceChildren(...(rows.length ? rows : [el('tr', {}, [el('td', {text: DASH}), el('td', {text: ''})])]));
  }

  // ---- / -----------------------------------------------------------------------------
  function studyRow(s) {
    const c = s.counts || {};
    const num = (v) => el('td', {class: 'num', text: fmtNum(v)});
    return el('tr', {}, [
      el('td', {}, [el('a', {href: '/study/' + enc(s.name), text: s.name})]),
      el('td', {text: s.directions.join(', ')}),
      num(s.n_trials), num(c.complete), num(c.pruned), num(c.fail), num(c.running), num(s.best_value),
      el('td', {text: fmtTime(s.created)})]);
  }
  function summaryText(obj) {
    return Object.entries(obj || {}).slice(0, 3).map(([k, v]) => k + ' ' + fmtNum(v)).join(', ');
  }
  function runRow(r) {
    return el('tr', {}, [
      el('td', {}, [el('a', {href: '/run/' + enc(r.name), text: r.name})]),
      el('td', {text: r.command}),
      el('td', {}, [r.study ? el('a', {href: '/study/' + enc(r.study), text: r.study}) : DASH]),
      el('td', {}, [stateBadge(r.status)]),
      el('td', {text: fmtTime(r.start_time)}),
      el('td', {text: summaryText(r.summary)})]);
  }
  function indexPage() {
    poll(async () => {
      const [studies, runs] = await Promise.all([getJSON('/api/studies'), getJSON('/api/runs?limit=20')]);
      if (changed('studies', studies.studies)) {
        document.getElementById('studies-body').replaceChildren(...studies.studies.map(studyRow));
        document.getElementById('no-studies').hidden = studies.studies.length > 0;
      }
      if (changed('runs', runs.runs)) {
        document.getElementById('runs-body').replaceChildren(...runs.runs.map(runRow));
        document.getElementById('no-runs').hidden = runs.runs.length > 0;
      }
    });
  }

  // ---- /study/NAME ---------------------------------------------------------------------
  function studyPage() {
    const name = body.dataset.study;
    const api = '/api/studies/' + enc(name);
    const nObjectives = Number(body.dataset.objectives) || 1;
    const st = {sort: 'number', order: 'desc', offset: 0, limit: 50, q: '', version: null, request: 0, paramNames: []};
    const $ = (id) => document.getElementById(id);
    const stateBoxes = [...document.querySelectorAll('.state-box input')];

    function columns() {
      const cols = [{key: 'number', label: '#', num: true}, {key: 'state', label: 'state'}];
      for (let k = 0; k < nObjectives; ++k)
        cols.push({key: nObjectives === 1 ? 'value' : 'value:' + k, label: nObjectives === 1 ? 'value' : 'value ' + k,
                   num: true, cell: (r) => r.values[k]});
      cols.push({key: 'duration', label: 'duration', num: true, cell: (r) => r.duration_s, fmt: fmtDuration});
      cols.push({key: null, label: 'last step', num: true, cell: (r) => r.last_step});
      for (const p of st.paramNames) cols.push({key: 'param:' + p, label: p, cell: (r) => r.params[p]});
      return cols;
    }
    function renderHead(cols) {
      const ths = cols.map((c) => {
        const th = el('th', {text: c.label, class: (c.num ? 'num ' : '') + (c.key ? 'sortable' : '')});
        if (c.key === st.sort) th.classList.add(st.order === 'asc' ? 'sorted-asc' : 'sorted-desc');
        if (c.key) th.addEventListener('click', () => {
          if (st.sort === c.key) st.order = st.order === 'asc' ? 'desc' : 'asc';
          else { st.sort = c.key; st.order = c.key === 'number' ? 'desc' : 'asc'; }
          st.offset = 0;
          loadTable();
        });
        return th;
      });
      $('trial-head').replaceChildren(...ths);
    }
    function renderRows(cols, rows) {
      $('trial-body').replaceChildren(...rows.map((r) => {
        const tds = cols.map((c) => {
          if (c.key === 'number') return el('td', {class: 'num', text: r.number});
          if (c.key === 'state') return el('td', {}, [stateBadge(r.state)]);
          const v = c.cell(r);
          return el('td', {class: c.num ? 'num' : '', text: (c.fmt || fmtNum)(v)});
        });
        const tr = el('tr', {'data-number': r.number, click: () => showTrial(r.number)}, tds);
        if (st.selected === r.number) tr.classList.add('selected');
        return tr;
      }));
    }
    async function loadTable() {
      const states = stateBoxes.filter((b) => b.checked).map((b) => b.value);
      const id = ++st.request;
      if (!states.length) {
        $('trial-body').replaceChildren();
        $('page-info').textContent = 'no state selected';
        seen.rows = null;
        return;
      }
      const params = new URLSearchParams({offset: st.offset, limit: st.limit, sort: st.sort, order: st.order});
      if (states.length < stateBoxes.length) params.set('state', states.join(','));
      if (st.q.trim()) params.set('q', st.q.trim());
      const data = await getJSON(api + '/trials?' + params);
      if (id !== st.request) return;  // a newer request was sent meanwhile
      st.paramNames = data.param_names;
      const cols = columns();
      if (changed('head', [cols.map((c) => c.label), st.sort, st.order])) renderHead(cols);
      if (changed('rows', [data.rows, st.selected])) renderRows(cols, data.rows);
      const last = Math.min(data.offset + data.rows.length, data.filtered);
      $('page-info').textContent = (data.filtered ? (data.offset + 1) + '\u2013' + last : '0') + ' of ' + data.filtered +
        (data.filtered !== data.total ? ' (' + data.total + ' trials)' : ' trials');
      $('prev').disabled = data.offset === 0;
      $('next').disabled = last >= data.filtered;
    }
    function renderSummary(s) {
      const c = s.counts;
      const best = s.best;
      const items = [
        stat('trials', String(s.n_trials)),
        stat('complete / pruned / fail', c.complete + ' / ' + c.pruned + ' / ' + c.fail),
        stat('running / waiting', c.running + ' / ' + c.waiting),
        stat('best value', fmtNum(s.best_value)),
        stat('best trial', best ? '#' + best.number : DASH, best ? () => showTrial(best.number) : null),
        stat('best params', best ? Object.entries(best.params).map(([k, v]) => k + '=' + fmtNum(v)).join(', ') : DASH),
        stat('elapsed', fmtDuration(s.elapsed_s)),
        stat('started', fmtTime(s.first_start)),
        stat('last finished', fmtTime(s.last_end))];
      for (const [k, v] of Object.entries(s.user_attrs || {})) items.push(stat(k, fmtNum(v)));
      $('summary').replaceChildren(...items);
      $('subtitle').textContent = s.directions.join(', ') + ' \u00b7 ' + s.n_trials + ' trials';
    }
    async function loadPlots(version) {
      const stale = await Promise.all([...document.querySelectorAll('#charts .chart')].map((box) =>
        loadSvg(box, api + '/plots/' + box.dataset.kind + '.svg?v=' + version).catch((e) => {
          box.replaceChildren(el('p', {class: 'muted', text: String(e)}));
          return false;
        })));
      st.plotsStale = stale.some(Boolean);
    }
    async function showTrial(number) {
      st.selected = number;
      const t = await getJSON(api + '/trials/' + number);
      const d = $('detail');
      const table = (rows) => el('table', {class: 'grid kv'}, rows.map(([k, v]) => el('tr', {}, [el('td', {text: k}), el('td', {text: v})])));
      const params = Object.entries(t.params).map(([k, v]) => {
        const dist = t.distributions[k];
        return [k, fmtNum(v) + (dist ? '   (' + dist.type + (dist.type === 'categorical' ? ' ' + JSON.stringify(dist.choices) :
          ' ' + dist.low + '..' + dist.high + (dist.log ? ' log' : '')) + ')' : '')];
      });
      const inter = t.intermediate.map((p) => [String(p.step), p.values.map(fmtNum).join(', ')]);
      d.replaceChildren(
        el('h2', {text: 'Trial #' + t.number + ' '}, [stateBadge(t.state)]),
        table([['values', t.values.map(fmtNum).join(', ') || DASH], ['duration', fmtDuration(t.duration_s)],
               ['started', fmtTime(t.start_time)], ['finished', fmtTime(t.end_time)], ['last step', fmtNum(t.last_step)]]),
        el('h2', {text: 'Parameters'}), table(params),
        el('h2', {text: 'User attributes'}), table(Object.entries(t.user_attrs).map(([k, v]) => [k, fmtNum(v)])),
        el('h2', {text: 'System attributes'}), table(Object.entries(t.system_attrs).map(([k, v]) => [k, fmtNum(v)])),
        el('h2', {text: 'Intermediate values (step: values)'}), table(inter),
        el('button', {type: 'button', text: 'close', click: () => { d.hidden = true; st.selected = null; loadTable(); }}));
      d.hidden = false;
      loadTable();
    }

    for (const b of stateBoxes) b.addEventListener('change', () => { st.offset = 0; loadTable(); });
    let typing = 0;
    $('q').addEventListener('input', (e) => {
      clearTimeout(typing);
      typing = setTimeout(() => { st.q = e.target.value; st.offset = 0; loadTable(); }, 250);
    });
    $('limit').addEventListener('change', (e) => { st.limit = Number(e.target.value); st.offset = 0; loadTable(); });
    $('prev').addEventListener('click', () => { st.offset = Math.max(0, st.offset - st.limit); loadTable(); });
    $('next').addEventListener('click', () => { st.offset += st.limit; loadTable(); });

    // Every tick reads the summary; the table and the plots are read again only when
    // the study changed (its version), so an idle study costs one small request. Plots
    // the server had not redrawn yet (a big study changing fast) are asked for again.
    poll(async () => {
      const s = await getJSON(api + '/summary');
      if (changed('summary', s)) renderSummary(s);
      const fresh = s.version !== st.version;
      st.version = s.version;
      await Promise.all([fresh ? loadTable() : null, fresh || st.plotsStale ? loadPlots(s.version) : null]);
    });
  }

  // ---- /run/NAME -----------------------------------------------------------------------
  function runPage() {
    const name = body.dataset.run;
    const api = '/api/runs/' + enc(name);
    const $ = (id) => document.getElementById(id);
    let plottedWhileRunning = true;
    poll(async () => {
      const r = await getJSON(api);
      if (changed('run', r)) {
        $('subtitle').replaceChildren(stateBadge(r.status), ' ' + r.command +
          (r.study ? ' \u00b7 study ' + r.study + (r.trial_number !== null ? ' trial #' + r.trial_number : '') : ''));
        $('run-info').replaceChildren(stat('started', fmtTime(r.start_time)), stat('finished', fmtTime(r.end_time)),
          stat('duration', fmtDuration(r.duration_s)), stat('metrics', r.metric_keys.join(', ') || DASH));
        kvRows($('run-params'), r.params);
        kvRows($('run-summary'), r.summary);
        kvRows($('run-artifacts'), r.artifacts);
        $('run-config').textContent = JSON.stringify(r.config, null, 2);
        $('run-system').textContent = JSON.stringify(r.system, null, 2);
      }
      if (r.status === 'running' || plottedWhileRunning) {
        plottedWhileRunning = r.status === 'running';
        await loadSvg($('plot-learning'), api + '/plots/learning.svg');
      }
    });
  }

  if (body.dataset.page === 'index') indexPage();
  else if (body.dataset.page === 'study') studyPage();
  else if (body.dataset.page === 'run') runPage();
})();
)JS";

}  // namespace deft::track::dash
