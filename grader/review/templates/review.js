"use strict";
(function () {
  var form = document.getElementById("mark-form");
  var points = document.getElementById("points");
  var comment = document.getElementById("comment");
  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT");
  }
  function click(id) {
    var el = document.getElementById(id);
    if (el) { el.click(); }
  }
  document.querySelectorAll("button[data-comment]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      comment.value = button.dataset.comment;
      comment.focus();
    });
  });
  document.addEventListener("keydown", function (event) {
    if (!form) { return; }
    if (event.altKey && /^[1-9]$/.test(event.key)) {
      var bank = document.getElementById("bank-" + event.key);
      if (bank) { event.preventDefault(); bank.click(); }
      return;
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target === comment) {
      event.preventDefault();
      click("save");
      return;
    }
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "a") { event.preventDefault(); click("accept"); }
    else if (event.key === "c") { event.preventDefault(); comment.focus(); }
    else if (event.key === "m") { event.preventDefault(); points.focus(); points.select(); }
    else if (event.key === "g") {
      var whole = document.getElementById("whole-group");
      if (whole) { event.preventDefault(); whole.checked = !whole.checked; }
    }
    else if (event.key === "n" || event.key === "j") { event.preventDefault(); click("next"); }
    else if (event.key === "p" || event.key === "k") { event.preventDefault(); click("previous"); }
    else if (/^[0-9.]$/.test(event.key)) {
      event.preventDefault();
      points.focus();
      points.value = event.key;
    }
  });
})();
