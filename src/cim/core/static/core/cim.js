// Small progressive enhancements; every page also works without them.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Ask before destructive posts: <form data-confirm="...">.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  }, true);

  document.addEventListener("change", function (event) {
    var target = event.target;
    // "Select all on this page" in the customer list (the table is replaced by htmx, so delegate).
    if (target.matches("[data-select-all]")) {
      document.querySelectorAll("input[data-row-check]").forEach(function (box) {
        box.checked = target.checked;
      });
    }
    if (target.matches("[data-kind-select]")) {
      toggleKind(target);
    }
    // A filter that applies as soon as it changes: <select data-submit-on-change>.
    if (target.matches("[data-submit-on-change]") && target.form) {
      target.form.submit();
    }
  });

  // Organization-only fields (USCC, industry, size) are hidden for persons.
  function toggleKind(select) {
    var person = select.value === "person";
    document.querySelectorAll("[data-org-only]").forEach(function (element) {
      element.classList.toggle("d-none", person);
    });
  }

  document.addEventListener("click", function (event) {
    // A value shown once to be copied: <input readonly data-select-on-click>.
    if (event.target.matches && event.target.matches("[data-select-on-click]")) {
      event.target.select();
      return;
    }
    // Export links carry the filters of the page as loaded; a click takes the filter form's current ones.
    var exportLink = event.target.closest("[data-export-format]");
    var filters = document.getElementById("filter-form");
    if (exportLink && filters) {
      var query = new URLSearchParams();
      new FormData(filters).forEach(function (value, key) { if (value) { query.append(key, value); } });
      query.set("format", exportLink.getAttribute("data-export-format"));
      exportLink.search = query.toString();
      return;
    }
    var add = event.target.closest("[data-add-row]");
    if (add) {
      var name = add.getAttribute("data-add-row");
      var container = document.getElementById(name + "-rows");
      var template = document.getElementById(name + "-template");
      var next = parseInt(container.getAttribute("data-next"), 10);
      var html = template.innerHTML.replace(/__i__/g, String(next));
      container.insertAdjacentHTML("beforeend", html);
      container.setAttribute("data-next", String(next + 1));
      var total = document.getElementById(name + "-count");
      if (total) { total.value = String(next + 1); }
      var first = container.lastElementChild && container.lastElementChild.querySelector("input[type=text], input[type=email], input[type=tel]");
      if (first) { first.focus(); }
      return;
    }
    var remove = event.target.closest("[data-remove-row]");
    if (remove) {
      var row = remove.closest("[data-row]");
      // Emptied rows are skipped by the server, so clearing works like removing.
      row.querySelectorAll("input[type=text], input[type=email], input[type=tel]").forEach(function (input) {
        input.value = "";
      });
      row.classList.add("d-none");
    }
  });

  // Leave empty filters out of htmx GETs, so pushed URLs stay short and shareable.
  document.addEventListener("htmx:configRequest", function (event) {
    var data = event.detail.formData;
    if (!data || event.detail.verb !== "get") { return; }
    Array.from(new Set(data.keys())).forEach(function (key) {
      var values = data.getAll(key).filter(function (value) { return value !== ""; });
      data.delete(key);
      values.forEach(function (value) { data.append(key, value); });
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    var kind = document.querySelector("[data-kind-select]");
    if (kind) { toggleKind(kind); }
  });
})();
