// The segment rule builder: AND/OR groups (each can be negated) of conditions, kept as JSON in a hidden input,
// with a live count of matching customers. Also draws a read-only summary of saved rules.
(function () {
  "use strict";
  var catalogueNode = document.getElementById("rule-catalogue");
  if (!catalogueNode) {
    return;
  }
  var catalogue = JSON.parse(catalogueNode.textContent);
  var text = catalogue.text;
  var fields = {};
  catalogue.fields.forEach(function (field) { fields[field.key] = field; });
  var NO_VALUE = ["is_empty", "is_set", "is_true", "is_false"];
  var LISTS = ["in", "not_in", "has_any", "has_all", "has_none", "bought_any", "bought_none"];
  var DAYS = ["within_last_days", "more_than_days_ago"];

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (name === "text") {
        node.textContent = attributes[name];
      } else {
        node.setAttribute(name, attributes[name]);
      }
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function operatorsOf(field) {
    return catalogue.operators[field.type] || [];
  }

  function choicesOf(field) {
    if (field.type === "segment") {
      return catalogue.segments.map(function (s) { return [s.value, s.label]; });
    }
    return field.choices;
  }

  function label(pairs, value) {
    var found = (pairs || []).filter(function (pair) { return String(pair[0]) === String(value); })[0];
    return found ? found[1] : String(value);
  }

  // ---- the editor ----
  var builder = document.getElementById("rule-builder");
  if (builder) {
    var input = document.getElementById("id_rules");
    var tree;
    try {
      tree = JSON.parse(input.value || "{}");
    } catch (error) {
      tree = {};
    }
    if (!tree.rules) {
      tree = { match: "all", negate: false, rules: [] };
    }
    var timer = null;

    var changed = function () {
      input.value = JSON.stringify(tree);
      clearTimeout(timer);
      timer = setTimeout(preview, 400);
    };

    var valueInput = function (condition, field) {
      var operator = condition.operator;
      var box = el("span", { class: "d-inline-flex gap-1 align-items-center" });
      if (NO_VALUE.indexOf(operator) >= 0) {
        delete condition.value;
        return box;
      }
      var choices = choicesOf(field);
      var setValue = function (value) { condition.value = value; changed(); };
      if (field.type === "event") {
        var name = el("input", { class: "form-control form-control-sm", "aria-label": field.label, value: condition.value || "" });
        name.addEventListener("input", function () { setValue(name.value); });
        var days = el("input", { class: "form-control form-control-sm", type: "number", min: "1", style: "width: 6rem", "aria-label": text.days, value: condition.days || 30 });
        days.addEventListener("input", function () { condition.days = days.value; changed(); });
        condition.days = condition.days || 30;
        box.appendChild(name);
        box.appendChild(days);
        return box;
      }
      if (choices && LISTS.indexOf(operator) < 0 && DAYS.indexOf(operator) < 0) {
        var select = el("select", { class: "form-select form-select-sm", "aria-label": field.label });
        choices.forEach(function (pair) {
          var option = el("option", { value: pair[0], text: pair[1] });
          if (String(condition.value) === String(pair[0])) {
            option.selected = true;
          }
          select.appendChild(option);
        });
        if (condition.value === undefined && choices.length) {
          condition.value = String(choices[0][0]);
        }
        select.addEventListener("change", function () { setValue(select.value); });
        box.appendChild(select);
        return box;
      }
      if (choices && LISTS.indexOf(operator) >= 0) {
        var multiple = el("select", { class: "form-select form-select-sm", multiple: "multiple", size: "3", "aria-label": field.label });
        var chosen = Array.isArray(condition.value) ? condition.value.map(String) : [];
        choices.forEach(function (pair) {
          var option = el("option", { value: pair[0], text: pair[1] });
          option.selected = chosen.indexOf(String(pair[0])) >= 0;
          multiple.appendChild(option);
        });
        multiple.addEventListener("change", function () {
          setValue(Array.prototype.filter.call(multiple.options, function (o) { return o.selected; }).map(function (o) { return o.value; }));
        });
        box.appendChild(multiple);
        return box;
      }
      if (LISTS.indexOf(operator) >= 0) {
        var list = el("input", { class: "form-control form-control-sm", "aria-label": field.label, value: (condition.value || []).join(", ") });
        list.addEventListener("input", function () {
          setValue(list.value.split(/[,，]/).map(function (s) { return s.trim(); }).filter(Boolean));
        });
        box.appendChild(list);
        return box;
      }
      var type = DAYS.indexOf(operator) >= 0 || field.type === "number" ? "number" : field.type === "date" ? "date" : "text";
      if (operator === "between") {
        var pair = Array.isArray(condition.value) ? condition.value : ["", ""];
        var low = el("input", { class: "form-control form-control-sm", type: type, "aria-label": field.label, value: pair[0] });
        var high = el("input", { class: "form-control form-control-sm", type: type, "aria-label": field.label, value: pair[1] });
        var both = function () { setValue([low.value, high.value]); };
        low.addEventListener("input", both);
        high.addEventListener("input", both);
        box.appendChild(low);
        box.appendChild(el("span", { text: "–" }));
        box.appendChild(high);
        return box;
      }
      var single = el("input", { class: "form-control form-control-sm", type: type, "aria-label": field.label, value: condition.value === undefined || Array.isArray(condition.value) ? "" : condition.value });
      single.addEventListener("input", function () { setValue(single.value); });
      box.appendChild(single);
      return box;
    };

    var conditionRow = function (condition, parent, index) {
      var row = el("div", { class: "d-flex flex-wrap gap-1 align-items-center mb-1 rule-condition" });
      var fieldSelect = el("select", { class: "form-select form-select-sm w-auto", "aria-label": "field" });
      var groups = {};
      catalogue.fields.forEach(function (field) {
        if (!groups[field.group]) {
          groups[field.group] = el("optgroup", { label: field.group });
          fieldSelect.appendChild(groups[field.group]);
        }
        var option = el("option", { value: field.key, text: field.label });
        option.selected = field.key === condition.field;
        groups[field.group].appendChild(option);
      });
      var field = fields[condition.field] || catalogue.fields[0];
      condition.field = field.key;
      var operatorSelect = el("select", { class: "form-select form-select-sm w-auto", "aria-label": "operator" });
      var operators = operatorsOf(field);
      if (!operators.some(function (pair) { return pair[0] === condition.operator; })) {
        condition.operator = operators[0][0];
        delete condition.value;
      }
      operators.forEach(function (pair) {
        var option = el("option", { value: pair[0], text: pair[1] });
        option.selected = pair[0] === condition.operator;
        operatorSelect.appendChild(option);
      });
      fieldSelect.addEventListener("change", function () {
        parent.rules[index] = { field: fieldSelect.value };
        render();
        changed();
      });
      operatorSelect.addEventListener("change", function () {
        var listy = LISTS.indexOf(operatorSelect.value) >= 0 || operatorSelect.value === "between";
        if (listy !== Array.isArray(condition.value)) {
          delete condition.value;
        }
        condition.operator = operatorSelect.value;
        render();
        changed();
      });
      var remove = el("button", { type: "button", class: "btn btn-sm btn-link text-danger", text: text.remove });
      remove.addEventListener("click", function () { parent.rules.splice(index, 1); render(); changed(); });
      row.appendChild(fieldSelect);
      row.appendChild(operatorSelect);
      row.appendChild(valueInput(condition, field));
      row.appendChild(remove);
      return row;
    };

    var groupBox = function (group, parent, index) {
      var box = el("div", { class: "border rounded p-2 mb-2 rule-group" + (parent ? " ms-3" : "") });
      var head = el("div", { class: "d-flex flex-wrap gap-2 align-items-center mb-2" });
      var negate = el("input", { type: "checkbox", class: "form-check-input", id: "" });
      negate.checked = !!group.negate;
      negate.addEventListener("change", function () { group.negate = negate.checked; changed(); });
      var negateLabel = el("label", { class: "form-check-label small" }, [negate, document.createTextNode(" " + text.negate)]);
      var match = el("select", { class: "form-select form-select-sm w-auto", "aria-label": "match" });
      [["all", text.all], ["any", text.any]].forEach(function (pair) {
        var option = el("option", { value: pair[0], text: pair[1] });
        option.selected = (group.match || "all") === pair[0];
        match.appendChild(option);
      });
      match.addEventListener("change", function () { group.match = match.value; changed(); });
      head.appendChild(negateLabel);
      head.appendChild(match);
      if (parent) {
        var remove = el("button", { type: "button", class: "btn btn-sm btn-link text-danger", text: text.remove });
        remove.addEventListener("click", function () { parent.rules.splice(index, 1); render(); changed(); });
        head.appendChild(remove);
      }
      box.appendChild(head);
      group.rules.forEach(function (child, position) {
        box.appendChild(child.rules ? groupBox(child, group, position) : conditionRow(child, group, position));
      });
      if (!group.rules.length) {
        box.appendChild(el("p", { class: "small text-body-secondary mb-1", text: text.empty }));
      }
      var addCondition = el("button", { type: "button", class: "btn btn-sm btn-outline-primary me-1 add-condition", text: text.condition });
      addCondition.addEventListener("click", function () { group.rules.push({ field: catalogue.fields[0].key }); render(); changed(); });
      var addGroup = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary add-group", text: text.group });
      addGroup.addEventListener("click", function () { group.rules.push({ match: "all", negate: false, rules: [] }); render(); changed(); });
      box.appendChild(el("div", {}, [addCondition, addGroup]));
      return box;
    };

    var render = function () {
      builder.replaceChildren(groupBox(tree, null, 0));
    };

    var preview = function () {
      var form = document.getElementById("segment-form");
      var data = new FormData();
      data.append("rules", input.value);
      data.append("segment", builder.dataset.segment || "");
      data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      var count = document.getElementById("rules-count");
      var sample = document.getElementById("rules-sample");
      fetch(builder.dataset.preview, { method: "POST", body: data, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (result) {
          sample.replaceChildren();
          if (result.errors) {
            count.textContent = "";
            result.errors.forEach(function (message) {
              sample.appendChild(el("li", { class: "text-danger", text: message }));
            });
            return;
          }
          var template = result.count === 1 ? text.matching_one : text.matching_other;
          count.textContent = template.replace("%(n)s", result.count.toLocaleString());
          result.sample.forEach(function (customer) {
            sample.appendChild(el("li", {}, [el("a", { href: customer.url, text: customer.name }), document.createTextNode(" " + customer.number)]));
          });
        });
    };

    var kind = document.getElementById("id_kind");
    kind.addEventListener("change", function () {
      document.getElementById("rules-card").hidden = kind.value === "static";
    });
    render();
    input.value = JSON.stringify(tree);
    preview();
  }

  // ---- the read-only summary ----
  var summary = document.getElementById("rule-summary");
  var saved = document.getElementById("rule-tree");
  if (summary && saved) {
    var describe = function (node) {
      if (node.rules) {
        var parts = node.rules.map(describe).filter(Boolean);
        if (!parts.length) {
          return "";
        }
        var joined = (node.match === "any" ? text.any : text.all) + " (" + parts.join("; ") + ")";
        return node.negate ? text.negate + " " + joined : joined;
      }
      var field = fields[node.field] || { label: node.field, type: "text" };
      var operator = label(operatorsOf(field), node.operator);
      var value = node.value;
      var choices = choicesOf(field);
      if (Array.isArray(value)) {
        value = value.map(function (v) { return label(choices, v); }).join(", ");
      } else if (value !== undefined) {
        value = label(choices, value);
      }
      // "in the last N days": the number goes where the N is.
      if (node.days) {
        operator = operator.replace("N", node.days);
      } else if (DAYS.indexOf(node.operator) >= 0) {
        operator = operator.replace("N", value);
        value = undefined;
      }
      var words = [field.label, operator];
      if (value !== undefined) {
        words.push(value);
      }
      return words.join(" ");
    };
    summary.textContent = describe(JSON.parse(saved.textContent)) || text.empty;
  }
})();
