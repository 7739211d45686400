// Progressive enhancement only: every page works without this file.
// Choosing a type or health filter applies it at once (the Filter button still works).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form.filters select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });
});
