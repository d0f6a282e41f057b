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
}());
