// The console's article form: "Preview" renders the unsaved Markdown body on the server.
// The answer is the same nh3-sanitised HTML the public page shows (render.markdown_to_html),
// so what is inserted here carries no script; the console's CSP forbids inline script anyway.
(function () {
  "use strict";
  var button = document.getElementById("kb-preview-button");
  var body = document.getElementById("body");
  if (!button || !body || !body.form) {
    return;
  }
  var output = document.getElementById("kb-preview");
  var status = document.getElementById("kb-preview-status");

  button.addEventListener("click", function () {
    var data = new FormData();
    data.append("body", body.value);
    var token = body.form.elements.namedItem("csrf_token");
    if (token) {
      data.append("csrf_token", token.value);
    }
    status.textContent = "Rendering…";
    fetch(button.getAttribute("data-preview-url"), {
      method: "POST", body: data, credentials: "same-origin",
      headers: {"Accept": "application/json"}
    }).then(function (response) {
      if (!response.ok) {
        throw new Error(String(response.status));
      }
      return response.json();
    }).then(function (answer) {
      output.innerHTML = answer.html;
      output.hidden = false;
      status.textContent = "";
    }).catch(function (error) {
      status.textContent = "The preview failed (" + error.message + "). Reload the page and try again.";
    });
  });
}());
