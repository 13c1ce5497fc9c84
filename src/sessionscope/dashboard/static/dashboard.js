/* sessionscope dashboard: draws the charts the server describes, with Chart.js (static file).
 *
 * Each <canvas data-chart="ID"> has a JSON spec in <script type="application/json" id="ID">.
 * Series differ by colour AND by line dash, point shape or fill pattern, so charts read without
 * colour; every chart also has its numbers as a table next to it. Times are UTC.
 */
(function () {
  "use strict";

  // Okabe-Ito: distinguishable with the common colour-vision deficiencies.
  var COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
  var DASHES = [[], [7, 4], [2, 3], [10, 3, 2, 3], [4, 4]];
  var POINTS = ["circle", "triangle", "rect", "rectRot", "star", "crossRot"];
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var S = 1000, M = 60 * S, H = 60 * M, D = 24 * H;
  var STEPS = [S, 5 * S, 10 * S, 30 * S, M, 5 * M, 10 * M, 15 * M, 30 * M, H, 2 * H, 3 * H,
    6 * H, 12 * H, D, 2 * D, 7 * D, 14 * D, 30 * D, 91 * D];

  function at(list, i) { return list[i % list.length]; }
  function two(n) { return (n < 10 ? "0" : "") + n; }

  function shortTime(ms, span) {
    var d = new Date(ms);
    var hm = two(d.getUTCHours()) + ":" + two(d.getUTCMinutes());
    if (span <= 10 * M) { return hm + ":" + two(d.getUTCSeconds()); }
    if (span <= 36 * H) { return hm; }
    var day = MONTHS[d.getUTCMonth()] + " " + two(d.getUTCDate());
    return span <= 8 * D ? day + " " + hm : day;
  }

  function fullTime(ms) {
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function duration(ms) {
    var s = Math.round(ms / 1000);
    if (ms < 1000) { return Math.round(ms) + " ms"; }
    if (ms < 10000) { return (ms / 1000).toFixed(2) + " s"; }
    if (s < 60) { return s + " s"; }
    var m = Math.floor(s / 60);
    if (m < 60) { return m + " min " + two(s % 60) + " s"; }
    var h = Math.floor(m / 60);
    if (h < 24) { return h + " h " + two(m % 60) + " min"; }
    return Math.floor(h / 24) + " d " + two(h % 24) + " h";
  }

  // A fill that differs by texture, not only by colour: solid, stripes or dots.
  function fill(color, kind) {
    if (kind === "solid") { return color; }
    var c = document.createElement("canvas");
    c.width = 8; c.height = 8;
    var x = c.getContext("2d");
    x.fillStyle = color + "30";
    x.fillRect(0, 0, 8, 8);
    x.strokeStyle = color;
    x.fillStyle = color;
    if (kind === "dots") {
      x.beginPath(); x.arc(4, 4, 1.6, 0, 2 * Math.PI); x.fill();
    } else {
      x.lineWidth = 2;
      x.beginPath();
      x.moveTo(0, 8); x.lineTo(8, 0);
      x.moveTo(-2, 2); x.lineTo(2, -2);
      x.moveTo(6, 10); x.lineTo(10, 6);
      x.stroke();
    }
    return x.createPattern(c, "repeat");
  }
  var TEXTURES = ["solid", "stripes", "dots"];

  function axisTitle(text) {
    return { display: Boolean(text), text: text || "", font: { weight: "bold" } };
  }

  function go(url) { if (url) { window.location.href = url; } }

  // Vertical reference lines (e.g. the Apdex threshold T and 4T) with a text label.
  var thresholdPlugin = {
    id: "ssThresholds",
    afterDatasetsDraw: function (chart, args, opts) {
      var lines = (opts && opts.lines) || [];
      var scale = chart.scales.x;
      var ctx = chart.ctx;
      lines.forEach(function (line, i) {
        if (line.value < scale.min || line.value > scale.max) { return; }
        var x = scale.getPixelForValue(line.value);
        ctx.save();
        ctx.strokeStyle = "#444";
        ctx.setLineDash(i === 0 ? [6, 4] : [2, 3]);
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        ctx.moveTo(x, chart.chartArea.top);
        ctx.lineTo(x, chart.chartArea.bottom);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = "#222";
        ctx.font = "11px sans-serif";
        ctx.fillText(line.label, x + 3, chart.chartArea.top + 11 + 13 * i);
        ctx.restore();
      });
    }
  };

  function lineChart(spec) {
    var n = spec.labels.length;
    var every = Math.max(1, Math.ceil(n / 24));
    var isBar = spec.type === "bar";
    return {
      type: spec.type === "bar" ? "bar" : "line",
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (d, i) {
          var color = at(COLORS, i);
          return {
            label: d.label,
            data: d.data,
            borderColor: color,
            backgroundColor: isBar ? fill(color, at(TEXTURES, i)) : color,
            borderWidth: isBar ? 1 : 2,
            borderDash: at(DASHES, i),
            pointStyle: at(POINTS, i),
            // Marks on every few points (shape tells series apart), and on lone points
            // between gaps, which would otherwise not show at all.
            pointRadius: function (ctx) {
              var i = ctx.dataIndex, v = d.data;
              var lone = (i === 0 || v[i - 1] === null) && (i === v.length - 1 || v[i + 1] === null);
              return i % every === 0 || lone ? 3.5 : 0;
            },
            pointHoverRadius: 5,
            spanGaps: false,
            tension: 0
          };
        })
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { title: axisTitle(spec.x.title), ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          y: {
            beginAtZero: true,
            suggestedMax: spec.y.max === null ? undefined : spec.y.max,
            title: axisTitle(spec.y.title)
          }
        },
        plugins: {
          legend: { labels: { usePointStyle: true, boxHeight: 8 } },
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? spec.titles[items[0].dataIndex] : ""; }
            }
          }
        }
      }
    };
  }

  function barChart(spec) {
    var horizontal = spec.type === "hbar";
    var value = horizontal ? "x" : "y";
    var index = horizontal ? "y" : "x";
    var stacked = Boolean(spec.y.stacked);
    var scales = {};
    var lines = spec.thresholds || [];
    scales[value] = {
      beginAtZero: true,
      stacked: stacked,
      max: spec.y.max === null ? undefined : spec.y.max,
      // Keep the first reference line (e.g. T) in view even when every bar is shorter.
      suggestedMax: lines.length ? lines[0].value * 1.1 : undefined,
      title: axisTitle(horizontal ? spec.x.title : spec.y.title)
    };
    scales[index] = {
      stacked: stacked,
      title: axisTitle(horizontal ? spec.y.title : spec.x.title),
      ticks: { autoSkip: !horizontal, maxRotation: 0 }
    };
    return {
      type: "bar",
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (d, i) {
          var color = at(COLORS, i);
          return {
            label: d.label,
            data: d.data,
            backgroundColor: fill(color, at(TEXTURES, i)),
            borderColor: color,
            borderWidth: 1.5,
            pointStyle: "rect"
          };
        })
      },
      options: {
        indexAxis: horizontal ? "y" : "x",
        interaction: { mode: "index", intersect: false, axis: index },
        scales: scales,
        onClick: function (evt, els) {
          if (els.length && spec.links && spec.links.length) { go(spec.links[els[0].index]); }
        },
        plugins: {
          legend: { labels: { usePointStyle: true, boxHeight: 8 } },
          ssThresholds: { lines: spec.thresholds || [] }
        }
      },
      plugins: [thresholdPlugin]
    };
  }

  function niceStep(span) {
    for (var i = 0; i < STEPS.length; i++) {
      if (span / STEPS[i] <= 8) { return STEPS[i]; }
    }
    return STEPS[STEPS.length - 1];
  }

  function timelineChart(spec) {
    var span = Math.max(1, spec.xmax - spec.xmin);
    var step = niceStep(span);
    var spanIndex = 0, markIndex = 0;
    var datasets = spec.datasets.map(function (d, i) {
      var color = at(COLORS, i);
      if (d.kind === "span") {
        var striped = d.style === "striped";
        spanIndex += 1;
        return {
          type: "bar",
          label: d.label,
          data: d.data,
          indexAxis: "y",
          grouped: false,
          borderSkipped: false,
          backgroundColor: fill(color, striped ? "stripes" : "solid"),
          borderColor: color,
          borderWidth: 1,
          barPercentage: striped ? 0.45 : 0.8,
          categoryPercentage: 0.9,
          minBarLength: 2,
          pointStyle: "rect",
          order: 2
        };
      }
      markIndex += 1;
      var cross = d.style === "cross";
      return {
        type: "scatter",
        label: d.label,
        data: d.data,
        backgroundColor: color,
        borderColor: color,
        pointStyle: cross ? "crossRot" : at(POINTS, markIndex - 1),
        pointRadius: cross ? 7 : 4,
        pointBorderWidth: cross ? 2.5 : 1,
        order: 1
      };
    });
    return {
      type: "bar",
      data: { labels: spec.rows, datasets: datasets },
      options: {
        scales: {
          x: {
            type: "linear",
            min: spec.xmin,
            max: spec.xmax,
            title: axisTitle(spec.x.title),
            afterBuildTicks: function (scale) {
              var ticks = [];
              for (var v = Math.ceil(spec.xmin / step) * step; v <= spec.xmax; v += step) {
                ticks.push({ value: v });
              }
              scale.ticks = ticks;
            },
            ticks: {
              autoSkip: false,
              maxRotation: 0,
              callback: function (v) { return shortTime(v, span); }
            }
          },
          y: {
            type: "category",
            labels: spec.rows,
            offset: true,
            title: axisTitle(spec.y.title)
          }
        },
        onClick: function (evt, els) {
          if (!els.length) { return; }
          var el = els[0];
          go(this.data.datasets[el.datasetIndex].data[el.index].url);
        },
        plugins: {
          legend: { labels: { usePointStyle: true, boxHeight: 8 } },
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? items[0].raw.y : ""; },
              label: function (item) {
                var raw = item.raw;
                var ds = item.dataset.label;
                if (Array.isArray(raw.x)) {
                  return ds + ": " + fullTime(raw.x[0]) + " to " + fullTime(raw.x[1]) +
                    " (" + duration(raw.x[1] - raw.x[0]) + ")" + (raw.note ? " · " + raw.note : "");
                }
                return ds + ": " + fullTime(raw.x) + (raw.note ? " · " + raw.note : "");
              }
            }
          }
        }
      }
    };
  }

  function draw(canvas) {
    var holder = document.getElementById(canvas.getAttribute("data-chart"));
    if (!holder || typeof Chart === "undefined") { return; }
    var spec = JSON.parse(holder.textContent);
    var box = canvas.parentElement;
    if (box && box.getAttribute("data-height")) {
      box.style.height = box.getAttribute("data-height") + "px";
    }
    var config = spec.type === "timeline" ? timelineChart(spec)
      : spec.over_time ? lineChart(spec) : barChart(spec);
    config.options.animation = false;
    config.options.responsive = true;
    config.options.maintainAspectRatio = false;
    var chart = new Chart(canvas, config);
    var points = 0;
    chart.data.datasets.forEach(function (d) {
      d.data.forEach(function (v) { if (v !== null && v !== undefined) { points += 1; } });
    });
    canvas.setAttribute("data-drawn", String(points));
  }

  function rangePicker() {
    var select = document.querySelector("select[data-range]");
    var custom = document.querySelector("[data-custom]");
    if (!select || !custom) { return; }
    var sync = function () { custom.hidden = select.value !== "custom"; };
    sync();
    select.addEventListener("change", function () {
      sync();
      if (select.value !== "custom") { select.form.submit(); }
    });
  }

  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      var button = select.form.querySelector("button");
      if (button) { button.hidden = true; }
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  function start() {
    if (typeof Chart !== "undefined") {
      Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
      Chart.defaults.color = "#1b1f24";
    }
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
    rangePicker();
    autosubmit();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
