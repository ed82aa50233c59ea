// Lightbridge Admin Center: small enhancements on top of pages that work without script.
(function () {
  "use strict";

  // F7: search as you type (debounced); the URL keeps the search so it can be bookmarked.
  const search = document.querySelector("[data-live-search]");
  const results = document.getElementById("results");
  if (search && results) {
    let timer = null;
    let seq = 0;
    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(async function () {
        const form = search.form;
        const params = new URLSearchParams(new FormData(form));
        if (!search.value.trim()) params.delete("search");
        const url = form.action.replace(/^https?:\/\/[^/]+/, "") + (params.toString() ? "?" + params : "");
        const mine = ++seq;
        const response = await fetch(url + (url.includes("?") ? "&" : "?") + "partial=1", { credentials: "same-origin" });
        if (mine !== seq || !response.ok) return;
        results.innerHTML = await response.text();
        history.replaceState(null, "", url);
        // The filters' form keeps the search too (#16): choosing a filter does not undo it.
        const kept = document.querySelector("#table-filters input[name=search]");
        if (kept) kept.value = search.value.trim();
        for (const link of document.querySelectorAll("[data-export]")) {
          const u = new URL(link.href);
          if (search.value.trim()) u.searchParams.set("search", search.value.trim()); else u.searchParams.delete("search");
          link.href = u.pathname + u.search;
        }
      }, 250);
    });
  }

  // #16: on narrow screens the filters fold behind a button (without scripts they stay open).
  document.documentElement.classList.add("js");
  const toggle = document.querySelector("[data-filters-toggle]");
  if (toggle) {
    toggle.addEventListener("click", function () {
      const filters = document.getElementById(toggle.getAttribute("aria-controls"));
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      filters.toggleAttribute("data-open", open);
    });
  }

  // #16: a filter takes effect when it is chosen (the Apply button does the same without
  // scripts).
  for (const form of document.querySelectorAll("form[data-auto-submit]")) {
    form.addEventListener("change", function (e) {
      if (e.target.matches("select")) form.requestSubmit();
    });
  }

  // #16: bulk actions act on the rows ticked; the bar counts them, and the header's box ticks
  // every row of the page. Rows come and go with the live search, so this listens on the page.
  function countSelected() {
    const counter = document.querySelector("[data-bulk-count]");
    if (!counter) return;
    const boxes = document.querySelectorAll("input[data-select]");
    const ticked = document.querySelectorAll("input[data-select]:checked").length;
    counter.textContent = ticked ? ticked + " selected" : "Select rows to act on several at once.";
    const all = document.querySelector("input[data-select-all]");
    if (all) {
      all.checked = ticked > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    }
  }
  document.addEventListener("change", function (e) {
    if (e.target.matches("input[data-select-all]")) {
      for (const box of document.querySelectorAll("input[data-select]")) box.checked = e.target.checked;
    }
    if (e.target.matches("input[data-select], input[data-select-all]")) countSelected();
  });

  // F11: the connection name is checked as it is typed.
  const name = document.querySelector("[data-name-check]");
  if (name) {
    const error = document.getElementById("name-error");
    let timer = null;
    name.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(async function () {
        const params = new URLSearchParams({ name: name.value });
        if (name.dataset.nameCheck) params.set("except", name.dataset.nameCheck);
        const response = await fetch("/connections/salesforce/name-available?" + params, { credentials: "same-origin" });
        if (!response.ok) return;
        const answer = await response.json();
        error.textContent = answer.available ? "" : answer.message;
        name.closest(".field").classList.toggle("invalid", !answer.available);
        name.setAttribute("aria-invalid", answer.available ? "false" : "true");
      }, 300);
    });
  }

  // Issue #14: a new OAuth connection whose sign-in would cost another connection (five
  // approvals per Salesforce user and connected app) says so before anyone signs in.
  const key = document.getElementById("consumer_key");
  const warning = document.getElementById("approval-warning");
  if (key && warning) {
    let timer = null;
    key.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(async function () {
        const params = new URLSearchParams({ consumer_key: key.value });
        const response = await fetch("/connections/salesforce/approvals?" + params, { credentials: "same-origin" });
        if (!response.ok) return;
        const answer = await response.json();
        warning.textContent = answer.warning || "";
        warning.hidden = !answer.warning;
      }, 300);
    });
  }

  // A form that changes a customer's org asks first (`data-confirm` holds the question).
  document.addEventListener("submit", function (e) {
    const question = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  });

  // Menus close with Escape and when focus or a click goes elsewhere.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    for (const open of document.querySelectorAll("details.menu[open]")) {
      open.removeAttribute("open");
      open.querySelector("summary").focus();
    }
  });
  document.addEventListener("click", function (e) {
    for (const open of document.querySelectorAll("details.menu[open]")) {
      // A click elsewhere, or on a download link in the menu, closes it.
      if (!open.contains(e.target) || e.target.closest("a[download]")) open.removeAttribute("open");
    }
  });
})();
