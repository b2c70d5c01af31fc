// Niceties of the kms console; every page works without this script.
// Copy buttons, confirmations, typed confirmations and live row filtering.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  if (navigator.clipboard) {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      var target = document.querySelector(button.getAttribute("data-copy"));
      if (!target) { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        var text = "value" in target && target.value !== undefined ? target.value : target.textContent;
        navigator.clipboard.writeText(text.trim()).then(function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 1500);
        });
      });
    });
  }
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
  document.querySelectorAll("[data-must-equal]").forEach(function (input) {
    var submit = input.form && input.form.querySelector("button[type=submit]");
    if (!submit) { return; }
    var check = function () { submit.disabled = input.value !== input.getAttribute("data-must-equal"); };
    input.addEventListener("input", check);
    check();
  });
  document.querySelectorAll("[data-filter]").forEach(function (input) {
    var body = document.querySelector(input.getAttribute("data-filter"));
    if (!body) { return; }
    input.addEventListener("input", function () {
      var needle = input.value.toLowerCase();
      body.querySelectorAll("tr[data-key-id]").forEach(function (row) {
        row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) === -1;
      });
    });
  });
});
