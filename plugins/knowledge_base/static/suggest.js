// Live suggestions on the ticket form: as the customer types the subject and description,
// ask the knowledge base (debounced) and list matching articles. A static file, not an
// inline script, so the help center's Content-Security-Policy stays strict; without
// JavaScript the block keeps its headlines and its link to the search page.
(function () {
  "use strict";
  var box = document.querySelector(".live-suggestions[data-live-url]");
  if (!box || !window.fetch) { return; }
  var form = box.closest("main").querySelector("form.form");
  if (!form) { return; }
  var fields = [form.querySelector("#subject"), form.querySelector("#description")]
    .filter(function (field) { return field; });
  var list = box.querySelector("ul");
  var url = box.getAttribute("data-live-url");
  var timer = null;
  var asked = "";
  var inFlight = null;

  function show(results) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    results.forEach(function (result) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = result.url;            // built by the server from its own routes
      link.textContent = result.title;   // text, never HTML
      link.target = "_blank";            // keep what the customer has typed so far
      link.rel = "noopener";
      item.appendChild(link);
      if (result.excerpt) {
        var excerpt = document.createElement("p");
        excerpt.className = "help";
        excerpt.textContent = result.excerpt;
        item.appendChild(excerpt);
      }
      list.appendChild(item);
    });
    box.hidden = results.length === 0;
  }

  function ask() {
    var text = fields.map(function (field) { return field.value; }).join(" ").trim();
    if (text.length < 3 || text === asked) { return; }
    asked = text;
    if (inFlight) { inFlight.abort(); }
    inFlight = window.AbortController ? new AbortController() : null;
    var separator = url.indexOf("?") < 0 ? "?" : "&";
    fetch(url + separator + "q=" + encodeURIComponent(text.slice(0, 500)), {
      credentials: "same-origin",
      headers: {"Accept": "application/json"},
      signal: inFlight ? inFlight.signal : undefined
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (data) {
      if (data && data.results) { show(data.results); }
    }).catch(function () { /* offline or aborted: keep what is shown */ });
  }

  fields.forEach(function (field) {
    field.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, 350);
    });
  });
})();
