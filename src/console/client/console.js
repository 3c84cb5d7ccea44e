// Fence console: the little the pages need a script for. Everything works without it (forms post,
// tables show the numbers); with it, charts draw and Ask streams its answer. Loaded as a file (the
// Content-Security-Policy allows no inline script); it writes text with textContent only, never
// markup, so nothing a tenant wrote can become HTML here.
(function () {
  "use strict";

  /** The session's CSRF token, from the page's <meta name="csrf-token">. */
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Charts: <figure class="chart" data-chart='{"x":[unix seconds…],"series":[{"label":…,"values":[…]}]}'>
  // with the same numbers as a table inside, which stays for readers without script.
  var COLORS = ["#2156c9", "#c2410c", "#1a7f37", "#7c3aed", "#a4262c", "#0e7490"];
  function drawCharts() {
    if (typeof window.uPlot !== "function") return;
    document.querySelectorAll("figure.chart[data-chart]").forEach(function (figure) {
      var data;
      try {
        data = JSON.parse(figure.getAttribute("data-chart"));
      } catch (e) {
        return;
      }
      var target = figure.querySelector(".plot");
      if (!target || !data.x || data.x.length === 0) return;
      var width = Math.max(280, target.clientWidth || figure.clientWidth || 600);
      var opts = {
        width: width,
        height: 220,
        series: [{}].concat(
          data.series.map(function (s, i) {
            return { label: s.label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: data.x.length < 40 } };
          }),
        ),
        axes: [{}, { size: 60 }],
        scales: { x: { time: data.time !== false } },
      };
      var plot = new window.uPlot(opts, [data.x].concat(data.series.map(function (s) { return s.values; })), target);
      figure.classList.add("drawn");
      window.addEventListener("resize", function () {
        plot.setSize({ width: Math.max(280, target.clientWidth || 600), height: 220 });
      });
    });
  }

  // Ask: post the question, read the answer's server-sent events as they come, and show the tokens,
  // then the citations (links to the documents) and a link to the run.
  function parseEvents(buffer, onEvent) {
    var parts = buffer.split("\n\n");
    var rest = parts.pop();
    parts.forEach(function (block) {
      var name = "message";
      var data = "";
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) name = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data += line.slice(5).replace(/^ /, "");
      });
      try {
        onEvent(name, JSON.parse(data));
      } catch (e) {
        /* a malformed event is skipped */
      }
    });
    return rest;
  }

  function link(href, text) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function setupAsk() {
    var form = document.getElementById("ask-form");
    if (!form) return;
    var answer = document.getElementById("ask-answer");
    var citations = document.getElementById("ask-citations");
    var status = document.getElementById("ask-status");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      answer.textContent = "";
      citations.textContent = "";
      status.textContent = "Asking…";
      button.disabled = true;
      var body = new URLSearchParams(new FormData(form));
      fetch(form.getAttribute("data-stream"), {
        method: "POST",
        body: body,
        headers: { "x-csrf-token": csrfToken(), accept: "text/event-stream" },
        credentials: "same-origin",
      })
        .then(function (res) {
          if (!res.ok || !res.body) {
            return res.text().then(function (text) {
              var message = "The question was refused (" + res.status + ").";
              try {
                message = JSON.parse(text).error.message;
              } catch (e) {
                /* not the API's error body */
              }
              throw new Error(message);
            });
          }
          var reader = res.body.getReader();
          var decoder = new TextDecoder();
          var buffer = "";
          function onEvent(name, data) {
            if (name === "token") answer.textContent += data.text;
            else if (name === "citations") {
              data.citations.forEach(function (c) {
                var item = document.createElement("li");
                // The number the answer cites, as the page without script shows it.
                item.appendChild(link("/console/documents/" + encodeURIComponent(c.document_id), "[" + c.citation + "] " + (c.title || c.document_id)));
                if (c.snippet || c.text) {
                  var quote = document.createElement("div");
                  quote.className = "muted";
                  quote.textContent = c.snippet || c.text;
                  item.appendChild(quote);
                }
                citations.appendChild(item);
              });
            } else if (name === "done") {
              status.textContent = data.no_answer ? "No passage of your documents answers this. " : "";
              if (data.request_id) status.appendChild(link("/console/runs/" + encodeURIComponent(data.request_id), "See this run's steps"));
            } else if (name === "error") status.textContent = data.error && data.error.message ? data.error.message : "The answer failed.";
          }
          function pump() {
            return reader.read().then(function (chunk) {
              if (chunk.done) return;
              buffer = parseEvents(buffer + decoder.decode(chunk.value, { stream: true }), onEvent);
              return pump();
            });
          }
          return pump();
        })
        .catch(function (error) {
          status.textContent = error.message;
        })
        .finally(function () {
          button.disabled = false;
        });
    });
  }

  // Buttons that ask before they act (delete, revoke, purge): data-confirm holds the question.
  function setupConfirm() {
    document.addEventListener("submit", function (event) {
      var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
      if (question && !window.confirm(question)) event.preventDefault();
    }, true);
  }

  // An upload's bytes on their way (htmx reports the request's progress).
  function setupUploadProgress() {
    document.body.addEventListener("htmx:xhr:progress", function (event) {
      var bar = document.getElementById("upload-progress");
      if (!bar || !event.detail.lengthComputable) return;
      bar.hidden = false;
      bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
    });
    document.body.addEventListener("htmx:afterRequest", function () {
      var bar = document.getElementById("upload-progress");
      if (bar) bar.hidden = true;
    });
    // A refused upload (400, 402, 403, 413, 429) shows the server's message instead of nothing.
    document.body.addEventListener("htmx:responseError", function (event) {
      var note = document.getElementById("upload-error");
      if (!note) return;
      note.hidden = false;
      note.textContent = event.detail.xhr.responseText || "The upload was refused (" + event.detail.xhr.status + ").";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupUploadProgress();
    drawCharts();
    setupAsk();
    setupConfirm();
  });
})();
