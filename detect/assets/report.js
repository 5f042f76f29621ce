(function () {
  "use strict";
  var graph = document.getElementById("graph");
  function focus(cid) {
    if (!graph) return;
    var on = cid && graph.getAttribute("data-focus") !== cid;
    graph.setAttribute("data-focus", on ? cid : "");
    graph.classList.toggle("focus", !!on);
    var items = graph.querySelectorAll("[data-campaign]");
    for (var i = 0; i < items.length; i++) {
      var c = items[i].getAttribute("data-campaign");
      var c2 = items[i].getAttribute("data-campaign2");
      items[i].classList.toggle("hl", !!on && (c === cid || c2 === cid));
    }
  }
  var buttons = document.querySelectorAll("[data-focus-campaign]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function (ev) {
      ev.preventDefault();
      focus(this.getAttribute("data-focus-campaign"));
    });
  }
  var filter = document.getElementById("account-filter");
  if (filter) {
    filter.addEventListener("input", function () {
      var q = filter.value.toLowerCase();
      var rows = document.querySelectorAll("#accounts tbody tr");
      for (var j = 0; j < rows.length; j++) {
        rows[j].hidden = q !== "" && rows[j].textContent.toLowerCase().indexOf(q) < 0;
      }
    });
  }
  document.documentElement.setAttribute("data-report-ready", "1");
})();
