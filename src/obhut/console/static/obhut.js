// Small progressive enhancement; every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Typed confirmations: the button stays disabled until the expected words are typed.
  for (const input of document.querySelectorAll("input[data-confirm]")) {
    const button = input.form && input.form.querySelector("button[type=submit]");
    if (!button) continue;
    const check = () => { button.disabled = input.value.trim() !== input.dataset.confirm; };
    input.addEventListener("input", check);
    check();
  }
  // Privacy centre toggles send their form at once.
  for (const box of document.querySelectorAll("input[data-autosubmit]")) {
    box.addEventListener("change", () => box.form.requestSubmit());
  }
});
