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
  // Timelines keep red for errors and orange for striped (recording, idle) spans.
  var TIMELINE_COLORS = ["#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#555555", "#F0E442"];
  var ERROR_COLOR = "#C0102A";
  var STRIPE_COLOR = "#B86E00";
  var STRIPE_BACK = "#FFF1D6";
  var DASHES = [[], [7, 4], [2, 3], [10, 3, 2, 3], [4, 4]];
  var POINTS = ["circle", "triangle", "rect", "rectRot", "star"];
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var S = 1000, M = 60 * S, H = 60 * M, D = 24 * H;
  // Tick intervals, each aligned to the epoch in UTC (whole minutes, hours, days; weeks
  // start on Mondays).
  var STEPS = [S, 5 * S, 10 * S, 30 * S, M, 5 * M, 10 * M, 15 * M, 30 * M, H, 2 * H, 3 * H,
    6 * H, 12 * H, D, 2 * D, 7 * D, 14 * D, 28 * D, 91 * D];

  function at(list, i) { return list[i % list.length]; }
  function two(n) { return (n < 10 ? "0" : "") + n; }

  function dayOf(ms) { return Math.floor(ms / D); }
  function dateText(ms) {
    var d = new Date(ms);
    return MONTHS[d.getUTCMonth()] + " " + two(d.getUTCDate());
  }
  function clockText(ms, seconds) {
    var d = new Date(ms);
    var hm = two(d.getUTCHours()) + ":" + two(d.getUTCMinutes());
    return seconds ? hm + ":" + two(d.getUTCSeconds()) : hm;
  }

  // Is ``ms`` on a tick of ``step``? Days count from the epoch (a Thursday): weeks are moved
  // to start on Mondays.
  function aligned(ms, step) {
    if (step < D) { return ms % step === 0; }
    var days = step / D;
    return ms % D === 0 && (dayOf(ms) + (days % 7 === 0 ? 3 : 0)) % days === 0;
  }

  // The smallest tick interval (at least ``least``) that puts at most ``most`` ticks on
  // ``span``.
  function tickStep(span, most, least) {
    for (var i = 0; i < STEPS.length; i++) {
      if (STEPS[i] >= least && span / STEPS[i] <= most) { return STEPS[i]; }
    }
    return STEPS[STEPS.length - 1];
  }

  // The ticks of ``step`` in [min, max].
  function tickValues(min, max, step) {
    var by = Math.min(step, D);
    var out = [];
    for (var v = Math.ceil(min / by) * by; v <= max; v += by) {
      if (aligned(v, step)) { out.push(v); }
    }
    return out;
  }

  // A tick's label: the time of day, with the date under it on the first tick and wherever
  // the day changes (so a 24-hour axis says which day each part is); days are dates.
  function tickLabel(ms, prev, step) {
    if (step >= D) { return dateText(ms); }
    var clock = clockText(ms, step < M);
    return prev === null || dayOf(prev) !== dayOf(ms) ? [clock, dateText(ms)] : clock;
  }

  function mostTicks(canvas, px) {
    var width = (canvas.parentElement && canvas.parentElement.clientWidth) || 600;
    return Math.max(2, Math.floor((width - 90) / px));
  }

  function fullTime(ms) {
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function units(big, bigUnit, small, smallUnit) {
    return small === 0 ? big + " " + bigUnit : big + " " + bigUnit + " " + two(small) + " " + smallUnit;
  }

  // As ``format.duration`` on the server: ``850 ms``, ``2.41 s``, ``12 min 05 s``, ``15 min``.
  function duration(ms) {
    var s = Math.round(ms / 1000);
    if (ms < 1000) { return Math.round(ms) + " ms"; }
    if (ms < 10000) { return (ms / 1000).toFixed(2) + " s"; }
    if (s < 60) { return s + " s"; }
    var m = Math.floor(s / 60);
    if (m < 60) { return units(m, "min", s % 60, "s"); }
    var h = Math.floor(m / 60);
    if (h < 24) { return units(h, "h", m % 60, "min"); }
    return units(Math.floor(h / 24), "d", h % 24, "h");
  }

  // A fill that differs by texture, not only by colour: solid, stripes or dots; ``back`` is
  // an opaque background (striped bars drawn over other bars stay readable).
  function fill(color, kind, back) {
    if (kind === "solid") { return color; }
    var c = document.createElement("canvas");
    c.width = 8; c.height = 8;
    var x = c.getContext("2d");
    x.fillStyle = back || color + "30";
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

  // Dark text on light colours, white on dark ones.
  function textOn(color) {
    var n = parseInt(color.slice(1, 7), 16);
    var r = (n >> 16) & 255, g = (n >> 8) & 255, b = n & 255;
    return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#111" : "#fff";
  }

  function axisTitle(text) {
    return { display: Boolean(text), text: text || "", font: { weight: "bold" } };
  }

  var legend = {
    labels: {
      usePointStyle: true,
      boxHeight: 8,
      sort: function (a, b) { return a.datasetIndex - b.datasetIndex; }
    }
  };

  function go(url) { if (url) { window.location.href = url; } }

  // Vertical reference lines (e.g. the Apdex threshold T and 4T), labelled above the plot
  // area (the legend goes below), never over the bars.
  var thresholdPlugin = {
    id: "ssThresholds",
    afterDatasetsDraw: function (chart, args, opts) {
      var lines = (opts && opts.lines) || [];
      var scale = chart.scales.x;
      var area = chart.chartArea;
      var ctx = chart.ctx;
      var rows = [-Infinity, -Infinity];  // right end of the last label in each row
      lines.forEach(function (line, i) {
        if (line.value < scale.min || line.value > scale.max) { return; }
        var x = scale.getPixelForValue(line.value);
        ctx.save();
        ctx.strokeStyle = "#444";
        ctx.setLineDash(i === 0 ? [6, 4] : [2, 3]);
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        ctx.moveTo(x, area.top);
        ctx.lineTo(x, area.bottom);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = "#222";
        ctx.font = "11px sans-serif";
        var width = ctx.measureText(line.label).width;
        var left = Math.min(Math.max(x - width / 2, 0), chart.width - width);
        var row = left > rows[0] + 6 ? 0 : 1;
        rows[row] = left + width;
        ctx.textBaseline = "bottom";
        ctx.fillText(line.label, left, area.top - 4 - 13 * row);
        ctx.restore();
      });
    }
  };

  // Span bars carry their text (e.g. a duration): written on the bar where it fits.
  var spanTextPlugin = {
    id: "ssSpanText",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx;
      chart.data.datasets.forEach(function (d, i) {
        if (d.ssKind !== "span") { return; }
        var meta = chart.getDatasetMeta(i);
        if (meta.hidden) { return; }
        meta.data.forEach(function (bar, j) {
          var text = d.data[j] && d.data[j].text;
          if (!text) { return; }
          var props = bar.getProps(["x", "y", "base", "height"], true);
          var left = Math.min(props.x, props.base), width = Math.abs(props.x - props.base);
          ctx.save();
          ctx.font = "11px sans-serif";
          var textWidth = ctx.measureText(text).width;
          if (textWidth + 12 <= width && props.height >= 12) {
            if (d.ssTextBack) {  // a plain box behind the text keeps it readable on stripes
              ctx.fillStyle = d.ssTextBack;
              ctx.fillRect(left + (width - textWidth) / 2 - 3, props.y - 7, textWidth + 6, 14);
            }
            ctx.fillStyle = d.ssText;
            ctx.textAlign = "center";
            ctx.textBaseline = "middle";
            ctx.fillText(text, left + width / 2, props.y);
          }
          ctx.restore();
        });
      });
    }
  };

  // ------------------------------------------------------------------ charts over time

  function lineChart(spec, canvas) {
    var isBar = spec.type === "bar";
    var partial = spec.partial || [];
    var isPartial = function (i) { return partial.indexOf(i) >= 0; };
    var times = spec.times;
    var span = times.length ? times[times.length - 1] - times[0] + spec.step : spec.step;
    var step = tickStep(span, mostTicks(canvas, 62), spec.step);
    var shown = [];
    times.forEach(function (t, i) { if (aligned(t, step)) { shown.push(i); } });
    if (!shown.length && times.length) { shown.push(0); }
    var labels = {};
    shown.forEach(function (i, k) {
      labels[i] = tickLabel(times[i], k ? times[shown[k - 1]] : null, step);
    });
    var every = Math.max(1, Math.ceil(times.length / 24));
    return {
      type: isBar ? "bar" : "line",
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (d, i) {
          var color = at(COLORS, i);
          var solid = isBar ? fill(color, at(TEXTURES, i)) : color;
          return {
            label: d.label,
            data: d.data,
            borderColor: color,
            backgroundColor: function (ctx) {
              return isBar && isPartial(ctx.dataIndex) ? color + "55" : solid;
            },
            borderWidth: isBar ? 1 : 2,
            borderDash: at(DASHES, i),
            // A segment into or out of a partial point is dotted and pale.
            segment: {
              borderDash: function (ctx) {
                return isPartial(ctx.p0DataIndex) || isPartial(ctx.p1DataIndex) ? [2, 3] : undefined;
              },
              borderColor: function (ctx) {
                return isPartial(ctx.p0DataIndex) || isPartial(ctx.p1DataIndex) ? color + "99" : undefined;
              }
            },
            pointStyle: at(POINTS, i),
            // Marks on every few points (shape tells series apart), on lone points between
            // gaps (which would otherwise not show at all), and on partial points (hollow).
            pointRadius: function (ctx) {
              var j = ctx.dataIndex, v = d.data;
              var lone = (j === 0 || v[j - 1] === null) && (j === v.length - 1 || v[j + 1] === null);
              return j % every === 0 || lone || isPartial(j) ? 3.5 : 0;
            },
            pointBackgroundColor: function (ctx) { return isPartial(ctx.dataIndex) ? "#fff" : color; },
            pointHoverRadius: 5,
            spanGaps: false,
            tension: 0
          };
        })
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: {
          x: {
            title: axisTitle(spec.x.title),
            grid: { offset: false },
            ticks: {
              autoSkip: false,
              maxRotation: 0,
              // Only ticks on whole intervals are labelled (null also hides the grid line).
              callback: function (value, index) {
                return Object.prototype.hasOwnProperty.call(labels, index) ? labels[index] : null;
              }
            }
          },
          y: {
            beginAtZero: true,
            suggestedMax: spec.y.max === null ? undefined : spec.y.max,
            title: axisTitle(spec.y.title),
            ticks: spec.y.integer ? { precision: 0 } : {}
          }
        },
        plugins: {
          legend: legend,
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? spec.titles[items[0].dataIndex] : ""; }
            }
          }
        }
      }
    };
  }

  // ------------------------------------------------------------------ bars per category

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
        // Room above the plot for the reference lines' labels; the legend goes below.
        layout: lines.length ? { padding: { top: 30 } } : {},
        onClick: function (evt, els) {
          if (els.length && spec.links && spec.links.length) { go(spec.links[els[0].index]); }
        },
        plugins: {
          legend: lines.length ? Object.assign({ position: "bottom" }, legend) : legend,
          ssThresholds: { lines: lines }
        }
      },
      plugins: [thresholdPlugin]
    };
  }

  // ------------------------------------------------------------------ timelines

  function timelineChart(spec, canvas) {
    var span = Math.max(1, spec.xmax - spec.xmin);
    var step = tickStep(span, mostTicks(canvas, 80), S);
    var solid = 0, marks = 0;
    var datasets = spec.datasets.map(function (d) {
      if (d.kind === "span") {
        var striped = d.style === "striped";
        var color = striped ? STRIPE_COLOR : at(TIMELINE_COLORS, solid++);
        return {
          type: "bar",
          label: d.label,
          data: d.data,
          indexAxis: "y",
          grouped: false,
          borderSkipped: false,
          backgroundColor: striped ? fill(color, "stripes", STRIPE_BACK) : color,
          borderColor: color,
          borderWidth: striped ? 1.5 : 1,
          barPercentage: striped ? 0.45 : 0.8,
          categoryPercentage: 0.9,
          minBarLength: 2,
          pointStyle: "rect",
          // Striped spans (recordings inside publish periods) are drawn over solid ones.
          order: striped ? 2 : 3,
          ssKind: "span",
          ssText: striped ? "#111" : textOn(color),
          ssTextBack: striped ? STRIPE_BACK : ""
        };
      }
      var cross = d.style === "cross";
      var markColor = cross ? ERROR_COLOR : at(TIMELINE_COLORS, (solid + marks) % TIMELINE_COLORS.length);
      var shape = cross ? "crossRot" : at(POINTS, marks);
      marks += 1;
      return {
        type: "scatter",
        label: d.label,
        data: d.data,
        backgroundColor: markColor,
        borderColor: markColor,
        pointStyle: shape,
        pointRadius: cross ? 7 : 4,
        pointBorderWidth: cross ? 3 : 1,
        order: 1,
        ssKind: "mark"
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
            // The axis spans exactly [xmin, xmax], its grid lines on the labelled ticks.
            offset: false,
            grid: { offset: false },
            title: axisTitle(spec.x.title),
            afterBuildTicks: function (scale) {
              scale.ticks = tickValues(spec.xmin, spec.xmax, step).map(function (v) {
                return { value: v };
              });
            },
            ticks: {
              autoSkip: false,
              maxRotation: 0,
              callback: function (v, i, ticks) {
                return tickLabel(v, i ? ticks[i - 1].value : null, step);
              }
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
          legend: legend,
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
      },
      plugins: [spanTextPlugin]
    };
  }

  function draw(canvas) {
    var holder = document.getElementById(canvas.getAttribute("data-chart"));
    if (!holder || typeof Chart === "undefined") { return; }
    var spec = JSON.parse(holder.textContent);
    var box = canvas.parentElement;
    if (box && box.getAttribute("data-height")) {
      // The box grows with its figure (see dashboard.css), never below the chart's height.
      box.style.height = box.getAttribute("data-height") + "px";
      box.style.minHeight = box.style.height;
    }
    var config = spec.type === "timeline" ? timelineChart(spec, canvas)
      : spec.over_time ? lineChart(spec, canvas) : barChart(spec);
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
