// <select multiple data-multiselect data-placeholder="Any model">: a type-ahead picker with
// chips for the chosen values. Progressive enhancement: the native select stays in the form
// (hidden) and holds the selection, so the form submits ?model=a&model=b as before and the
// page works without this script. Keys: type to narrow, ↑/↓ to move, Enter to pick or drop,
// Backspace on an empty box drops the last chip, Escape closes. Nothing is highlighted until
// the user types or moves, so Enter in an untouched box still submits the form.
(function () {
  "use strict";

  var counter = 0;

  function enhance(select) {
    if (select.getAttribute("data-enhanced") === "1") return;
    select.setAttribute("data-enhanced", "1");
    var id = select.id || "ms-" + (++counter);
    var root = document.createElement("div");
    root.className = "ms";
    var box = document.createElement("div");
    box.className = "ms-box";
    var chips = document.createElement("span");
    chips.className = "ms-chips";
    var input = document.createElement("input");
    input.type = "text";
    input.className = "ms-input";
    input.id = id + "-search";
    input.autocomplete = "off";
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", id + "-list");
    var list = document.createElement("ul");
    list.className = "ms-list";
    list.id = id + "-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-multiselectable", "true");
    list.hidden = true;
    box.appendChild(chips);
    box.appendChild(input);
    root.appendChild(box);
    root.appendChild(list);
    select.parentNode.insertBefore(root, select.nextSibling);
    select.classList.add("ms-native");
    select.setAttribute("aria-hidden", "true");
    select.tabIndex = -1;
    // The field's label now names the search box.
    var label = select.id && document.querySelector("label[for='" + select.id + "']");
    if (label) {
      label.htmlFor = input.id;
      input.setAttribute("aria-label", label.textContent.trim());
    }
    var placeholder = select.getAttribute("data-placeholder") || "Any";
    var active = -1;
    var shown = [];

    function options() { return Array.prototype.slice.call(select.options); }

    function renderChips() {
      chips.textContent = "";
      options().forEach(function (option) {
        if (!option.selected) return;
        var chip = document.createElement("span");
        chip.className = "ms-chip";
        chip.setAttribute("data-value", option.value);
        var text = document.createElement("span");
        text.textContent = option.textContent;
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "ms-remove";
        remove.textContent = "×";
        remove.setAttribute("aria-label", "Remove " + option.textContent);
        remove.addEventListener("click", function (event) {
          event.stopPropagation();
          setSelected(option, false);
          input.focus();
        });
        chip.appendChild(text);
        chip.appendChild(remove);
        chips.appendChild(chip);
      });
      input.placeholder = select.selectedOptions.length ? "" : placeholder;
    }

    function renderList() {
      var needle = input.value.trim().toLowerCase();
      list.textContent = "";
      shown = options().filter(function (option) {
        return !needle || option.textContent.toLowerCase().indexOf(needle) !== -1
          || option.value.toLowerCase().indexOf(needle) !== -1;
      });
      // Nothing is active until the user types or moves (Enter then submits the form).
      if (active >= shown.length) active = shown.length - 1;
      shown.forEach(function (option, i) {
        var item = document.createElement("li");
        item.className = "ms-option" + (i === active ? " active" : "");
        item.id = id + "-opt-" + i;
        item.setAttribute("role", "option");
        item.setAttribute("aria-selected", option.selected ? "true" : "false");
        item.setAttribute("data-value", option.value);
        item.textContent = option.textContent;
        // mousedown, not click: the search box keeps the focus (and the list stays open).
        item.addEventListener("mousedown", function (event) {
          event.preventDefault();
          active = i;
          setSelected(option, !option.selected);
        });
        list.appendChild(item);
      });
      if (!shown.length) {
        var none = document.createElement("li");
        none.className = "ms-empty";
        none.textContent = "No match";
        list.appendChild(none);
      }
      if (active >= 0) {
        input.setAttribute("aria-activedescendant", id + "-opt-" + active);
        var current = list.children[active];
        if (current && current.scrollIntoView && !list.hidden) current.scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function setSelected(option, on) {
      option.selected = on;
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function open() {
      if (!list.hidden) return;
      active = -1;
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      root.classList.add("open");
      renderList();
    }

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      root.classList.remove("open");
    }

    select.addEventListener("change", function () {
      renderChips();
      if (!list.hidden) renderList();
    });
    box.addEventListener("mousedown", function (event) {
      if (event.target === box || event.target === chips) {
        event.preventDefault();
        input.focus();
        open();
      }
    });
    input.addEventListener("focus", open);
    input.addEventListener("blur", close);
    input.addEventListener("input", function () {
      open();
      active = input.value.trim() ? 0 : -1;
      renderList();
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        open();
        if (shown.length) {
          active = active < 0 ? (event.key === "ArrowDown" ? 0 : shown.length - 1)
            : (active + (event.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
        }
        renderList();
      } else if (event.key === "Enter") {
        // Enter picks while the list is open and something matches; otherwise it submits.
        if (!list.hidden && active >= 0 && shown[active]) {
          event.preventDefault();
          setSelected(shown[active], !shown[active].selected);
          // The typed text has done its job: the next pick starts from the whole list.
          if (input.value) {
            input.value = "";
            active = -1;
            renderList();
          }
        }
      } else if (event.key === "Escape") {
        if (!list.hidden) { event.preventDefault(); close(); }
      } else if (event.key === "Backspace" && input.value === "") {
        var picked = select.selectedOptions;
        if (picked.length) setSelected(picked[picked.length - 1], false);
      }
    });
    renderChips();
  }

  function enhanceAll(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("select[multiple][data-multiselect]"), enhance);
  }

  window.MeterlogMultiselect = { enhanceAll: enhanceAll };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { enhanceAll(); });
  } else {
    enhanceAll();
  }
})();
