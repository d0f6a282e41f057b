/* The console's open chat: new messages and the visitor's typing appear without a reload. */
(function () {
  "use strict";
  var list = document.getElementById("livechat-transcript");
  if (!list) { return; }
  var typing = document.getElementById("livechat-typing");
  var after = parseInt(list.getAttribute("data-after"), 10) || 0;
  var box = document.getElementById("livechat-text");
  Array.prototype.forEach.call(document.querySelectorAll(".livechat-canned"), function (button) {
    button.addEventListener("click", function () {
      if (!box) { return; }
      box.value = (box.value ? box.value + "\n" : "") + button.getAttribute("data-body");
      box.focus();
    });
  });
  // The agent's typing reaches the visitor, at most every 3 seconds.
  var form = document.getElementById("livechat-reply");
  var lastTyping = 0;
  if (box && form) {
    box.addEventListener("input", function () {
      if (Date.now() - lastTyping < 3000) { return; }
      lastTyping = Date.now();
      var token = form.querySelector('input[name="csrf_token"]');
      fetch(list.getAttribute("data-typing"), {
        method: "POST", credentials: "same-origin",
        headers: {"X-CSRFToken": token ? token.value : ""}
      }).catch(function () { /* typing is a hint; a lost one does not matter */ });
    });
  }
  function add(m) {
    var item = document.createElement("li");
    item.className = "livechat-" + m.author;
    item.setAttribute("data-id", m.id);
    var who = document.createElement("strong");
    who.textContent = m.who;
    var when = document.createElement("small");
    when.textContent = " " + m.at + (m.delivery ? " · " + m.delivery : "");
    var text = document.createElement("pre");
    text.className = "livechat-text";
    text.textContent = m.text;
    item.appendChild(who); item.appendChild(when); item.appendChild(text);
    (m.files || []).forEach(function (f) {
      var a = document.createElement("a");
      a.href = f.url;
      a.setAttribute("download", "");
      a.textContent = f.name;
      item.appendChild(a);
    });
    list.appendChild(item);
  }
  function poll() {
    fetch(list.getAttribute("data-feed") + "?after=" + after, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        data.messages.forEach(function (m) {
          if (m.id > after && !list.querySelector('[data-id="' + m.id + '"]')) { add(m); }
          after = Math.max(after, m.id);
        });
        if (typing) { typing.hidden = !data.typing; }
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);
})();
