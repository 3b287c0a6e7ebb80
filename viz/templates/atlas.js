// chromadissect atlas: plain JS, works from file:// (all data is embedded in the page as window.ATLAS).
"use strict";
(function () {
  const A = window.ATLAS;

  function unitHref(block, unit) {
    return A.root + "units/" + A.blocks[block][1] + "/" + unit + ".html";
  }

  // "layer3.2:417" (or "417" on a block page) -> the unit page; errors shown next to the box.
  function setupJump() {
    const form = document.getElementById("jump");
    if (!form) return;
    const msg = document.getElementById("jump-msg");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      const text = form.elements.q.value.trim();
      const cut = text.lastIndexOf(":");
      const block = cut < 0 ? A.block : text.slice(0, cut);
      const unit = Number(cut < 0 ? text : text.slice(cut + 1));
      if (!block || !(block in A.blocks)) {
        msg.textContent = "unknown block; blocks are " + Object.keys(A.blocks).join(", ");
      } else if (!Number.isInteger(unit) || unit < 0 || unit >= A.blocks[block][0]) {
        msg.textContent = "units of " + block + " are 0-" + (A.blocks[block][0] - 1);
      } else {
        window.location.href = unitHref(block, unit);
      }
    });
  }

  function keyOf(sortBy) {
    const i = A.fields.indexOf(sortBy);
    return function (row) { const v = row[i]; return v === null ? -Infinity : v; };
  }

  // Block page: thumbnails from one sprite sheet, filtered by type and sorted.
  function setupBlock() {
    const grid = document.getElementById("grid");
    if (!grid) return;
    const typeSel = document.getElementById("type");
    const sortSel = document.getElementById("sort");
    const setSel = document.getElementById("nfset");
    const count = document.getElementById("count");
    const iUnit = A.fields.indexOf("unit"), iType = A.fields.indexOf("type");
    const sheet = document.createElement("style");
    document.head.appendChild(sheet);

    function render() {
      sheet.textContent = "#grid .tile{background-image:url('" + A.root + A.sprites[setSel.value] + "')}";
      let rows = A.units.filter(function (r) { return typeSel.value === "all" || r[iType] === typeSel.value; });
      if (sortSel.value !== "unit") {
        const key = keyOf(sortSel.value);
        rows = rows.slice().sort(function (a, b) { return key(b) - key(a) || a[iUnit] - b[iUnit]; });
      }
      grid.innerHTML = rows.map(function (r) {
        const u = r[iUnit], x = (u % A.cols) * A.thumb, y = Math.floor(u / A.cols) * A.thumb;
        const tip = A.fields.map(function (f, i) { return f + ": " + (r[i] === null ? "—" : r[i]); }).join("\n");
        return '<a class="tile t-' + r[iType] + '" data-unit="' + u + '" href="' + unitHref(A.block, u) +
          '" title="' + tip + '" style="background-position:-' + x + "px -" + y + 'px"><span>' + u + "</span></a>";
      }).join("");
      count.textContent = "showing " + rows.length + " of " + A.units.length + " units";
    }
    [typeSel, sortSel, setSel].forEach(function (el) { el.addEventListener("change", render); });
    render();
  }

  // Unit page: arrow keys step to the neighbouring units.
  function setupUnitKeys() {
    if (A.page !== "unit") return;
    document.addEventListener("keydown", function (ev) {
      const link = document.getElementById(ev.key === "ArrowLeft" ? "prev" : ev.key === "ArrowRight" ? "next" : "");
      if (link && ev.target.tagName !== "INPUT") window.location.href = link.href;
    });
  }

  setupJump();
  setupBlock();
  setupUnitKeys();
})();
