// The console's small behaviours, kept out of the HTML: the CSP allows no inline script.
(function () {
  "use strict";

  // Links that only open menus ("#", and any javascript: link left in a template)
  // must not navigate.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[href]");
    if (!link) { return; }
    var href = link.getAttribute("href");
    if (href === "#" || /^\s*javascript:/i.test(href)) { event.preventDefault(); }
  }, true);

  // Bulk actions on the list pages (Flask-Admin's actions.js does the submitting).
  document.addEventListener("click", function (event) {
    var item = event.target.closest && event.target.closest("[data-loket-action]");
    if (!item || !window.modelActions) { return; }
    event.preventDefault();
    window.modelActions.execute(item.getAttribute("data-loket-action"));
  });

  // "Add <field>" under inline forms (a category's form fields, a contact's identities).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-loket-inline-add]");
    if (!button || !window.faForm) { return; }
    event.preventDefault();
    window.faForm.addInlineField(button, button.getAttribute("data-loket-inline-add"));
  });

  // Confirmation before destructive buttons.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-loket-confirm]");
    if (button && !window.confirm(button.getAttribute("data-loket-confirm"))) {
      event.preventDefault();
    }
  });

  // Canned replies: insert the chosen text into the reply box without a reload.
  function insertCanned(select) {
    var option = select.options[select.selectedIndex];
    var target = document.getElementById(select.getAttribute("data-target"));
    if (!option || !option.value || !target) { return; }
    var text = option.getAttribute("data-body") || "";
    var start = target.selectionStart || 0;
    var end = target.selectionEnd || 0;
    var before = target.value.slice(0, start);
    var after = target.value.slice(end);
    target.value = before + text + after;
    target.focus();
    target.selectionStart = target.selectionEnd = before.length + text.length;
    select.selectedIndex = 0;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("canned");
    if (!select) { return; }
    select.addEventListener("change", function () { insertCanned(select); });
    var form = select.form;
    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        insertCanned(select);
      });
    }
  });

  // Keyboard shortcuts, listed on the "?" overlay (loket_admin/base.html). None fires while
  // the agent types in a field or holds a modifier, so text and the browser's keys are safe.
  function typing(target) {
    return !!(target && target.closest &&
              target.closest("input, textarea, select, [contenteditable]"));
  }

  // One link per inbox row: its number.
  function ticketLinks() {
    var rows = document.querySelectorAll("#loket-list tbody tr");
    var links = [];
    Array.prototype.forEach.call(rows, function (row) {
      var link = row.querySelector("a.loket-ticket-link");
      if (link) { links.push(link); }
    });
    return links;
  }

  function moveInInbox(step) {
    var links = ticketLinks();
    if (!links.length) { return; }
    var current = links.indexOf(document.activeElement);
    var next = current < 0 ? 0 : Math.min(Math.max(current + step, 0), links.length - 1);
    links.forEach(function (link) { link.closest("tr").classList.remove("loket-current"); });
    links[next].closest("tr").classList.add("loket-current");
    links[next].focus();
  }

  function focusField(selector) {
    var field = document.querySelector(selector);
    if (!field) { return false; }
    field.focus();
    if (field.scrollIntoView) { field.scrollIntoView({block: "center"}); }
    return true;
  }

  var awaitingGo = false;

  document.addEventListener("keydown", function (event) {
    var help = document.getElementById("loket-shortcuts");
    if (!help || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey ||
        typing(event.target) || help.open) {
      return;
    }
    var key = event.key;
    if (awaitingGo) {
      awaitingGo = false;
      if (key === "i") {
        event.preventDefault();
        window.location.assign(help.getAttribute("data-inbox"));
      }
      return;
    }
    var handled = true;
    var links = ticketLinks();
    if (key === "?") {
      help.showModal();
    } else if (key === "g") {
      awaitingGo = true;
    } else if (key === "j" && links.length) {
      moveInInbox(1);
    } else if (key === "k" && links.length) {
      moveInInbox(-1);
    } else if (key === "o" && links.indexOf(document.activeElement) >= 0) {
      window.location.assign(document.activeElement.href);
    } else if (key === "/") {
      handled = focusField("input[name=search]");
    } else if (key === "r") {
      handled = focusField("#reply-text");
    } else if (key === "n") {
      handled = focusField("#note-text");
    } else if (key === "a") {
      handled = focusField("#assignee");
    } else if (key === "s") {
      handled = focusField("#status-form select");
    } else {
      handled = false;
    }
    if (handled) { event.preventDefault(); }
  });

}());
